"""What the studio answers before any Spark work: binding, auth, body limits, request
validation, the rule compiler's 422s, explain and the catalog (no SparkSession at all)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from segengine.errors import UnsafeStudioBind
from segengine.studio import StudioSettings, check_bind, is_loopback, make_server

from .conftest import HIGH_FIT, as_user


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_hosts_bind_without_a_token(host):
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "studio.example.com"])
def test_a_non_loopback_bind_is_refused_without_a_token(host):
    assert not is_loopback(host)
    with pytest.raises(UnsafeStudioBind, match=f"--host {host}: the studio listens on a non-loopback address only"):
        check_bind(host, None)
    with pytest.raises(UnsafeStudioBind):
        make_server(object(), host, 8765, token="")
    check_bind(host, "s3cret")  # with a token it may


def test_the_command_refuses_a_public_host_before_starting_spark(monkeypatch):
    import segengine.session
    from segengine.cli import cli

    monkeypatch.setattr(segengine.session, "build_spark", lambda *a, **k: pytest.fail("Spark was started"))
    monkeypatch.delenv("SEGENGINE_STUDIO_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["studio", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --host 0.0.0.0: the studio listens on a non-loopback address only with --token "
        "(or SEGENGINE_STUDIO_TOKEN); bind 127.0.0.1 behind your proxy otherwise"
    )


def test_with_a_token_every_request_needs_the_bearer_header(offline):
    client = offline(StudioSettings(token="s3cret", default_user="ann"))
    for path in ("/api/catalog", "/segments", "/openapi.json", "/static/studio.js"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.json()["problems"] == ["header Authorization: expected Bearer <token>"]
        assert refused.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/catalog", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/catalog", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_user_comes_from_the_header_else_the_default_user(offline):
    assert "Signed in as <strong>tester</strong>" in offline().get("/runs").text
    assert "Signed in as <strong>bob</strong>" in offline().get("/runs", headers=as_user("bob")).text
    nobody = offline(StudioSettings(default_user=None)).get("/api/catalog")
    assert nobody.status_code == 401
    assert nobody.json()["detail"] == "header X-Segengine-User: missing (who is asking?)"
    custom = offline(StudioSettings(user_header="X-Forwarded-User", default_user=None))
    assert custom.get("/api/catalog", headers={"X-Forwarded-User": "ann"}).status_code == 200
    bad = offline().get("/api/catalog", headers=as_user("x" * 129))
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("header X-Segengine-User: expected a user name of 1 to 128")


def test_a_host_header_naming_another_site_is_refused(offline):
    from segengine.studio.auth import default_allowed_hosts

    allowed = default_allowed_hosts("127.0.0.1", ("studio.example.com",))
    client = offline(StudioSettings(default_user="tester", allowed_hosts=allowed))
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "Studio.Example.com"):
        assert client.get("/api/catalog", headers={"Host": host}).status_code == 200, host
    rebound = client.get("/api/catalog", headers={"Host": "evil.example.net:8765"})
    assert rebound.status_code == 400
    assert rebound.json()["detail"] == (
        "header Host: 'evil.example.net' is not a name this studio answers to (see --allowed-host)"
    )
    assert default_allowed_hosts("0.0.0.0") is None  # beyond loopback the token guards it


def test_a_body_over_the_limit_is_refused_before_it_is_read(offline):
    client = offline(StudioSettings(default_user="tester", max_body_bytes=1000))
    doc = {"name": "big", "description": "x" * 2000, "where": HIGH_FIT["where"]}
    response = client.post("/api/segments/validate", json={"document": doc})
    assert response.status_code == 413
    assert response.json()["detail"].startswith("request body: ")
    assert response.json()["detail"].endswith("bytes, more than the limit of 1000")


def test_request_fields_are_validated_and_named(offline):
    client = offline()
    cases = [
        ({"document": HIGH_FIT, "limit": 1001}, "body.limit: Input should be less than or equal to 1000"),
        ({"document": HIGH_FIT, "limit": 0}, "body.limit: Input should be greater than or equal to 1"),
        ({"document": HIGH_FIT, "date": "30/06/2025"}, "body.date: String should match pattern"),
        ({"document": HIGH_FIT, "colour": "red"}, "body.colour: Extra inputs are not permitted"),
        # A rule document is an object, never text that could be read as YAML or a file path.
        ({"document": "conf/segments/churn_risk.yaml"}, "body.document: Input should be a valid dictionary"),
        ({}, "body.document: Field required"),
    ]
    for body, expected in cases:
        response = client.post("/api/segments/count", json=body)
        assert response.status_code == 422, body
        assert any(p.startswith(expected) for p in response.json()["problems"]), response.json()


def test_a_body_that_is_not_json_is_not_read_as_a_request(offline):
    # What a cross-site HTML form can send (text/plain, no CORS preflight) is refused.
    form = offline().post(
        "/api/audiences", content='{"document": {"name": "x"}}', headers={"Content-Type": "text/plain"}
    )
    assert form.status_code == 422
    assert form.json()["problems"][0].startswith("body: Input should be a valid dictionary")


def test_a_bad_document_is_a_422_naming_each_field_path(offline):
    doc = {
        "name": "Bad",
        "where": {
            "all": [
                {"attr": "fit_score", "op": ">=", "value": "ten"},
                {"attr": "contry", "op": "=", "value": "GB"},
            ]
        },
    }
    for path in ("validate", "explain", "count", "preview"):
        response = offline().post(f"/api/segments/{path}", json={"document": doc})
        assert response.status_code == 422, path
        assert response.json()["problems"] == [
            "document.where.all[0].value: expected a number, got string 'ten'",
            "document.where.all[1].attr: unknown attribute 'contry' (did you mean country, monetary, city?)",
        ]
    nameless = offline().post("/api/segments/validate", json={"document": {"where": HIGH_FIT["where"]}})
    assert nameless.json()["problems"] == ["document.name: missing segment name"]


def _nested(depth: int) -> str:
    leaf = '{"attr": "fit_score", "op": ">=", "value": 1}'
    return '{"document": {"name": "deep", "where": ' + '{"not": ' * depth + leaf + "}" * depth + "}}"


def test_a_document_nested_too_deeply_is_refused_not_a_server_error(offline):
    headers = {"Content-Type": "application/json"}
    response = offline().post("/api/segments/validate", content=_nested(600), headers=headers)
    assert response.status_code == 422
    assert response.json()["problems"] == ["document: nested too deeply"]
    # Deeper still, the JSON parser itself gives up: a 400, still not a server error.
    response = offline().post("/api/segments/validate", content=_nested(3000), headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "There was an error parsing the body"


def test_a_bad_date_is_a_422_naming_it(offline):
    response = offline().post("/api/segments/explain", json={"document": HIGH_FIT, "date": "2025-02-30"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "date: expected a date YYYY-MM-DD, got '2025-02-30' (day is out of range for month)"
    )


def test_an_injection_attempt_stays_a_quoted_literal(offline):
    doc = {"name": "x", "where": {"attr": "country", "op": "=", "value": "GB' OR '1'='1"}}
    explained = offline().post("/api/segments/explain", json={"document": doc, "date": "2025-06-30"})
    assert explained.status_code == 200
    assert "f.`country` = 'GB\\' OR \\'1\\'=\\'1'" in explained.json()["sql"]
    attr = {"name": "x", "where": {"attr": "country = country OR 1", "op": "=", "value": "GB"}}
    refused = offline().post("/api/segments/validate", json={"document": attr})
    assert refused.status_code == 422
    assert refused.json()["problems"][0].startswith("document.where.attr: unknown attribute 'country = country OR 1'")


def test_validate_and_explain_answer_without_spark(offline):
    client = offline()
    ok = client.post("/api/segments/validate", json={"document": HIGH_FIT})
    assert ok.json() == {"ok": True, "name": "High fit", "condition_count": 1, "segments_used": [], "needs_events": []}
    explained = client.post("/api/segments/explain", json={"document": HIGH_FIT, "date": "2025-06-30"}).json()
    assert explained["snapshot_date"] == "2025-06-30"
    assert explained["explanation"].startswith("Segment: High fit (dynamic, shared) as of 2025-06-30")
    assert "f.`fit_score` >= 70" in explained["sql"]


def test_the_catalog_lists_filterable_attributes_with_operators_and_values(offline):
    attrs = {a["name"]: a for a in offline().get("/api/catalog").json()}
    assert "snapshot_date" not in attrs  # bookkeeping, not for rules
    plan = attrs["plan"]
    assert plan["type"] == "string"
    assert plan["allowed_values"] == ["free", "basic", "pro", "enterprise"]
    assert plan["description"] == "Subscription plan"
    assert plan["operator_shapes"]["in"] == "list"
    assert attrs["fit_score"]["operator_shapes"]["between"] == "pair"
    assert "contains" not in attrs["fit_score"]["operators"]


def test_the_openapi_spec_documents_the_request_models(offline):
    spec = offline().get("/openapi.json").json()
    assert {"/api/catalog", "/api/segments/count", "/api/audiences", "/api/profiles/{persona_id}", "/api/runs"} <= set(
        spec["paths"]
    )
    limit = spec["components"]["schemas"]["SegmentRequest"]["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"]) == (1, 1000)
    assert "/segments" not in spec["paths"]  # pages are not API
