"""The bench runner records each result's command without the machine's scratch path."""

import pytest

from bench.run import recorded_command


def test_recorded_command_drops_the_workdir():
    argv = ["--only", "recommend", "--personas", "1000000", "--workdir", "/scratch/bench-rec"]
    assert recorded_command(argv) == "python -m bench.run --only recommend --personas 1000000"
    assert recorded_command(["--scale", "--workdir=/scratch/x", "--scales", "1000000"]) == (
        "python -m bench.run --scale --scales 1000000"
    )
    assert recorded_command([]) == "python -m bench.run"


def _needs_smaps_rollup() -> None:
    import os

    if not os.path.exists(f"/proc/{os.getpid()}/smaps_rollup"):
        pytest.skip("needs /proc/<pid>/smaps_rollup")


def test_tree_memory_counts_pages_shared_by_forked_children_once():
    """Forked children share their parent's pages: summing RSS over the tree counted a
    100 MB buffer once per process (about 400 MB here); PSS counts it once."""
    import os
    import subprocess
    import sys
    import time

    from bench.memory import tree_memory

    _needs_smaps_rollup()
    script = (
        "import os, sys, time\n"
        "buf = bytearray(100 * 2**20)\n"
        "for i in range(0, len(buf), 4096): buf[i] = 1\n"
        "kids = []\n"
        "for _ in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(30); os._exit(0)\n"
        "    kids.append(pid)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        mb = tree_memory(proc.pid)[0] / 2**20
        assert 100 <= mb < 200, mb
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_tree_memory_tells_anonymous_memory_from_mapped_files(tmp_path):
    """A 100 MB file mapped and read counts in PSS but not in its anonymous part; a
    50 MB buffer counts in both."""
    import subprocess
    import sys

    from bench.memory import tree_memory

    _needs_smaps_rollup()
    data = tmp_path / "mapped.bin"
    data.write_bytes(b"\1" * (100 * 2**20))
    script = (
        "import mmap, sys, time\n"
        "buf = bytearray(50 * 2**20)\n"
        "for i in range(0, len(buf), 4096): buf[i] = 1\n"
        "fh = open(sys.argv[1], 'rb')\n"
        "m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)\n"
        "total = sum(m[i] for i in range(0, len(m), 4096))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(data)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        total, anon = (b / 2**20 for b in tree_memory(proc.pid))
        assert total >= 150, total
        assert 50 <= anon < 100, anon
    finally:
        proc.kill()
        proc.wait()


def test_sampler_pause_keeps_slow_samples_within_the_cpu_budget():
    """A 0.2 s sample (a 12 GB JVM) was followed by a 0.5 s pause: 29% of a core."""
    from bench.memory import SAMPLER_BUDGET, pause_after

    assert pause_after(0.001, 0.5) == 0.5
    assert pause_after(0.2, 0.5) == pytest.approx(3.8)
    assert pause_after(0.1, 0.5, budget=0.1) == pytest.approx(0.9)
    for took in (0.01, 0.05, 0.2, 1.0):
        assert took / (took + pause_after(took, 0.5)) <= SAMPLER_BUDGET + 1e-12


def test_peak_memory_samples_less_often_when_a_sample_is_slow(monkeypatch):
    """The sampler waited the interval after each sample, however long the sample took."""
    import threading

    import bench.memory as memory

    calls = []
    done = threading.Event()

    def slow_tree(root):
        calls.append(root)
        if len(calls) == 2:
            done.set()
        # A sample whose cost is a quarter of the interval: the pause must be 19x that.
        memory.time.sleep(0.025)
        return (100, 50)

    monkeypatch.setattr(memory, "tree_memory", slow_tree)
    with memory.PeakMemory(interval=0.1) as mem:
        # First sample on entry, second from the thread at once; the third only after >= 0.475 s.
        assert done.wait(5)
        memory.time.sleep(0.1)
    assert mem.samples == 2
    assert mem.peak == 100 and mem.peak_anon == 50
    assert "every 0.1 s" in mem.describe() and "at most 5% of a core" in mem.describe()
    assert "; 2 samples;" in mem.describe()


def test_example_audiences_are_created_after_the_segments_they_use():
    """The 1M run failed after 40 minutes: `at_risk_high_value` (in_segment churn_risk) was
    created before `churn_risk`, alphabetically, and creation compiles the rules."""
    from bench.bench_pipeline import dependency_order

    uses = {"at_risk": ["churn"], "churn": [], "sales": ["churn", "at_risk"], "b2b": [], "x": ["not_an_audience"]}
    assert dependency_order(uses) == ["b2b", "churn", "at_risk", "sales", "x"]
    with pytest.raises(ValueError, match="cycle: a, b"):
        dependency_order({"a": ["b"], "b": ["a"]})


def test_the_example_segments_have_a_creation_order():
    from pathlib import Path

    import yaml

    from bench.bench_pipeline import dependency_order
    from segengine.rules import parse_segment

    folder = Path(__file__).resolve().parents[1] / "conf" / "segments"
    uses = {p.stem: parse_segment(yaml.safe_load(p.read_text())).referenced_segments() for p in folder.glob("*.yaml")}
    order = dependency_order(uses)
    assert sorted(order) == sorted(uses)
    assert all(order.index(u) < order.index(n) for n, used in uses.items() for u in used if u in uses)
