"""The studio in a browser, as a user clicks it: build a two-condition segment, watch the
count change, save it, open it in Audiences; then the Profiles and Runs tabs.

uvicorn serves the app on 127.0.0.1 in a thread of this process (beside the test
session, as ``segengine studio`` runs beside its session); Playwright drives Debian's
chromium (``executable_path``, no ``playwright install``). One screenshot per tab is
saved under the test's temp dir.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

from segengine.studio import StudioSettings, create_app, make_server

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not on PATH (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    return path


@pytest.fixture
def studio_url(spark, lake, config, features):
    app = create_app(spark, lake, config, StudioSettings(default_user="ann", check_seconds=0))
    port = _free_port()
    server = make_server(app, "127.0.0.1", port, token=None)
    thread = threading.Thread(target=server.run, name="studio", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the studio did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(60)


def test_build_count_save_and_open_a_segment_in_the_browser(chromium, studio_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    # The first count caches the partition: on a busy 2-core machine that is seconds.
    expect.set_options(timeout=60_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{studio_url}/")
            count = page.get_by_role("status", name="Live count")
            expect(count).to_contain_text("Count: 5 (customer 3, prospect 1, visitor 1) on 2025-06-30")

            page.get_by_role("button", name="Add condition").click()
            page.get_by_label("Attribute 1", exact=True).select_option("fit_score")
            page.get_by_label("Operator 1", exact=True).select_option(">=")
            page.get_by_label("Value 1", exact=True).fill("70")
            expect(count).to_contain_text("Count: 3 (customer 2, prospect 1)")

            page.get_by_role("button", name="Add condition").click()
            page.get_by_label("Attribute 2", exact=True).select_option("country")
            page.get_by_label("Value 2", exact=True).fill("GB")
            expect(count).to_contain_text("Count: 1 (customer 1)")
            expect(page.get_by_label("Explanation")).to_contain_text("f.`country` = 'GB'")

            page.get_by_label("Match").select_option("any")
            expect(count).to_contain_text("Count: 4 (customer 3, prospect 1)")  # a, b, c (GB), e
            page.get_by_label("Match").select_option("all")
            expect(count).to_contain_text("Count: 1 (customer 1)")
            page.screenshot(path=str(shots / "segments.png"), full_page=True)

            page.get_by_label("Audience name").fill("GB high fit")
            page.get_by_label("Kind").select_option("static")
            page.get_by_role("button", name="Save as audience").click()
            saved = page.get_by_role("status", name="Save result")
            expect(saved).to_contain_text("Saved static audience GB high fit with 1 members.")
            saved.get_by_role("link", name="Open audience GB high fit").click()

            expect(page.get_by_role("heading", name="Audience GB high fit")).to_be_visible()
            expect(page.get_by_role("link", name="Audiences")).to_have_attribute("aria-current", "page")
            members = page.get_by_role("table", name="Members")
            expect(members.get_by_role("link")).to_have_text(["a"])
            page.screenshot(path=str(shots / "audiences.png"), full_page=True)

            page.get_by_role("link", name="Profiles").click()
            page.get_by_label("Persona id").fill("a")
            page.get_by_role("button", name="Show profile").click()
            expect(page.get_by_role("heading", name="Persona a as of 2025-06-30")).to_be_visible()
            expect(page.get_by_role("table", name="Profile audiences")).to_contain_text("GB high fit")
            page.screenshot(path=str(shots / "profiles.png"), full_page=True)

            page.get_by_role("link", name="Runs").click()
            expect(page.get_by_role("heading", name="Latest pipeline runs")).to_be_visible()
            page.screenshot(path=str(shots / "runs.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == ["audiences.png", "profiles.png", "runs.png", "segments.png"]
