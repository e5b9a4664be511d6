"""The contract is exact: the server refuses what the document forbids and the document says what the server
refuses — strict types, cross-field rules in the schema, routes that do not shadow each other, a document that
follows this server's config, 413 for a chunked body over the limit, and the headers every answer carries."""

from __future__ import annotations

import time

import pytest
import requests
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource

ADVISORS = "/v1/recommendations/advisors"
EVENT = {"id": "evt-contract", "kind": "event", "name": "Vertragstest", "date": "2030-05-01", "capacity": 10}
SHAPE = {"code", "message", "details"}


def auth(api_keys, role="editor"):
    return {"Authorization": api_keys[role]}


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").json


def body_schema(spec, path, method="post"):
    """A validator of the request body of one operation, with the document's components to resolve $refs."""
    schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    registry = Registry().with_resource("urn:doc", Resource.opaque(spec))
    root = {**schema, "components": spec["components"]}
    return OAS31Validator(root, registry=registry)


# ---------------------------------------------------------------- strict types
STRICT = {
    "since=0 is no date": ("get", "/v1/invitations?since=0", None, "since"),
    "a date with a time": ("get", "/v1/invitations?since=2025-03-14T00:00:00", None, "since"),
    "limit=+5 is no integer text": ("get", "/v1/entities?limit=%2B5", None, "limit"),
    "limit=5.0 is no integer text": ("get", "/v1/entities?limit=5.0", None, "limit"),
    "erase=1 is no boolean": ("delete", "/v1/entities/adv-101?erase=1", None, "erase"),
    "k true is no integer": ("post", ADVISORS, {"text": "Fairer Handel", "k": True}, "k"),
    "k as a string": ("post", ADVISORS, {"text": "Fairer Handel", "k": "5"}, "k"),
    "require_languages 1 is no boolean": ("post", ADVISORS, {"text": "Fairer Handel", "require_languages": 1},
                                          "require_languages"),
    "capacity false is no integer": ("post", "/v1/entities", {**EVENT, "capacity": False}, "capacity"),
    "a date as a number": ("post", "/v1/entities", {**EVENT, "date": 0}, "date"),
    "a date as '0'": ("post", "/v1/recommendations/events", {"organisation": "org-201", "as_of": "0"}, "as_of"),
    "a lat as a string": ("post", ADVISORS, {"text": "x", "lat": "51.4", "lon": 7.0}, "lat"),
}


@pytest.mark.parametrize("case", STRICT.values(), ids=STRICT.keys())
def test_lax_values_are_refused_in_the_error_shape(client, api_keys, case):
    method, path, body, field = case
    r = getattr(client, method)(path, json=body, headers=auth(api_keys, "admin"))
    assert r.status_code == 422, r.get_data(as_text=True)
    error = r.json["error"]
    assert set(error) == SHAPE and error["code"] == "validation_error"
    assert any(d.get("field", "").split(".")[-1] == field for d in error["details"]), error


def test_what_json_schema_calls_an_integer_is_accepted(client, api_keys):
    r = client.post(ADVISORS, json={"text": "Fairer Handel in der Beschaffung", "k": 3.0}, headers=auth(api_keys))
    assert r.status_code == 200 and len(r.json["results"]) == 3


# ---------------------------------------------------------------- cross-field rules in the schema
RULES = {   # path: (refused by both, accepted by both)
    "text or municipality": (ADVISORS, {"k": 3}, {"municipality": "mun-301"}),
    "blank text is no text": (ADVISORS, {"text": "   "}, {"text": " Beschaffung "}),
    "lat and lon together": (ADVISORS, {"text": "x", "lat": 51.4}, {"text": "x", "lat": 51.4, "lon": 7.0}),
    "lat and lon: null counts as absent": (ADVISORS, {"text": "x", "lat": None, "lon": 7.0},
                                           {"text": "x", "lat": None, "lon": None}),
    "organisation xor profile": ("/v1/recommendations/partners",
                                 {"organisation": "org-201", "profile": {"description": "Eine Initiative"}},
                                 {"profile": {"description": "Eine Initiative für Fairen Handel"}}),
    "neither organisation nor profile": ("/v1/recommendations/partners", {"text": "Fairer Handel"},
                                         {"organisation": "org-201"}),
    "an inline profile needs content": ("/v1/recommendations/partners", {"profile": {"city": "Köln"}},
                                        {"profile": {"name": "Verein X", "city": "Köln"}}),
    "quota syntax": ("/v1/jobs/invitations", {"event": "evt-113", "size": 5, "quotas": ["migrant_organisation:1.5"]},
                     {"event": "evt-113", "size": 5, "quotas": ["migrant_organisation:40%"]}),
    "quota type": ("/v1/jobs/invitations", {"event": "evt-113", "size": 5, "quotas": ["vereine:0.4"]},
                   {"event": "evt-113", "size": 5, "quotas": ["civil_society:<=2"]}),
    "advisor quota only with include_advisors": ("/v1/jobs/invitations",
                                                 {"event": "evt-113", "size": 5, "quotas": ["advisor:1"]},
                                                 {"event": "evt-113", "size": 5, "quotas": ["advisor:1"],
                                                  "include_advisors": True}),
    "entity_ids need an event": ("/v1/invitations", {"entity_ids": ["org-201"]},
                                 {"entity_ids": ["org-201"], "event": "evt-113", "date": "2030-01-01"}),
    "ids or job, not both": ("/v1/invitations", {"entity_ids": ["org-201"], "event": "evt-113",
                                                 "job": "job_" + "0" * 32}, {"job": "job_" + "0" * 32}),
    "an assignment request needs text or municipality": ("/v1/jobs/assignments", {"requests": [{"id": "r1"}]},
                                                         {"requests": [{"id": "r1", "municipality": "mun-301"}]}),
}


@pytest.mark.parametrize("case", RULES.values(), ids=RULES.keys())
def test_cross_field_rules_are_in_the_schema_and_the_server_agrees(client, api_keys, spec, case):
    path, refused, accepted = case
    validator = body_schema(spec, path)
    assert not validator.is_valid(refused), f"the document allows {refused}"
    r = client.post(path, json=refused, headers=auth(api_keys))
    assert r.status_code == 422 and set(r.json["error"]) == SHAPE, r.json
    assert validator.is_valid(accepted), list(validator.iter_errors(accepted))
    r = client.post(path, json=accepted, headers=auth(api_keys))
    assert r.status_code != 422 or r.json["error"]["message"] != "Ungültige Angaben; siehe details", r.json


BLANKS = {   # (path, body, accepted): blanks as the server strips them, not as an ECMA `\s` would
    "a language with a next-line around it": (ADVISORS, {"text": "x", "languages": ["\x85de"]}, True),
    "a language with a byte-order mark": (ADVISORS, {"text": "x", "languages": ["\ufeffde"]}, False),
    "an e-mail with a next-line inside": ("/v1/entities", {**EVENT, "contact": {"email": "a\x85b@c.de"}}, False),
    "an e-mail with blanks around": ("/v1/entities", {**EVENT, "id": "evt-blank", "contact": {"email": " a@c.de "}},
                                     True),
    "a topic of blanks only": ("/v1/entities", {**EVENT, "topics": ["\u2003\t"]}, False),
    "a quota with a next-line": ("/v1/jobs/invitations", {"event": "evt-113", "size": 3,
                                                          "quotas": ["civil_society:\x852"]}, True),
}


@pytest.mark.parametrize("case", BLANKS.values(), ids=BLANKS.keys())
def test_the_document_and_the_server_read_blanks_alike(client, api_keys, spec, case):
    path, body, accepted = case
    assert body_schema(spec, path).is_valid(body) == accepted
    r = client.post(path, json=body, headers=auth(api_keys))
    assert (r.status_code != 422) == accepted, r.json


def test_rules_the_schema_cannot_state_are_described(spec):
    quota = spec["components"]["schemas"]["InvitationJobRequest"]["properties"]["quotas"]["items"]
    assert "pattern" in quota and "TYP" in quota["description"]
    city = spec["components"]["schemas"]["AdvisorsRequest"]["properties"]["city"]
    assert "422" in city["description"]                       # a place must be one the gazetteer knows
    assert "422" in spec["paths"]["/v1/entities/{entity_id}"]["put"]["description"]   # body id = address


# ---------------------------------------------------------------- routes and Allow
@pytest.mark.parametrize("path, allowed", [("/v1/entities/import", {"POST"}), ("/v1/jobs/invitations", {"POST"}),
                                           ("/v1/jobs/assignments", {"POST"})])
def test_a_route_beside_a_parameter_route_allows_only_its_own_methods(client, api_keys, path, allowed):
    options = client.options(path, headers=auth(api_keys))
    assert {m.strip() for m in options.headers["Allow"].split(",")} - {"OPTIONS", "HEAD"} == allowed
    r = client.get(path, headers=auth(api_keys))
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"
    assert {m.strip() for m in r.headers["Allow"].split(",")} - {"OPTIONS", "HEAD"} == allowed


def test_path_parameters_are_documented_with_their_pattern(spec):
    entity = spec["paths"]["/v1/entities/{entity_id}"]["get"]["parameters"][0]["schema"]
    job = spec["paths"]["/v1/jobs/{job_id}"]["get"]["parameters"][0]["schema"]
    assert entity["not"] == {"const": "import"} and entity["pattern"].startswith("^")
    assert job["pattern"] == "^job_[0-9a-f]{32}$"


# ---------------------------------------------------------------- the document follows the config
READS = ["/v1/entities", "/v1/landscape"]


def _security(spec, path, method="get"):
    return spec["paths"][path][method]["security"]


def test_reads_need_a_key_in_the_document_when_the_config_says_so(spec):
    for path in READS:
        assert _security(spec, path) == [{"bearerAuth": []}], path
    assert _security(spec, ADVISORS, "post") == [{"bearerAuth": []}]
    assert _security(spec, "/v1/feedback", "post") == [{"bearerAuth": []}]
    assert _security(spec, "/healthz") == []


def test_open_routes_are_open_in_the_document_of_an_open_server(make_app, tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'open.db'}", OPEN_RECOMMENDATIONS=True, OPEN_FEEDBACK=True)
    spec = app.test_client().get("/openapi.json").json
    for path in READS:
        assert _security(spec, path) == [{}, {"bearerAuth": []}], path
    assert _security(spec, "/v1/feedback", "post") == [{}, {"bearerAuth": []}]
    assert _security(spec, "/v1/jobs/invitations", "post") == [{"bearerAuth": []}]   # never open


def test_the_statuses_of_the_other_parts_are_documented(spec):
    feedback = spec["paths"]["/v1/feedback"]["post"]["responses"]
    assert {"200", "201"} <= set(feedback)
    for path, method in [("/v1/jobs/invitations", "post"), ("/v1/jobs/assignments", "post"),
                         ("/v1/landscape", "get"), ("/v1/landscape/report.xlsx", "get"),
                         ("/v1/jobs/{job_id}/export.csv", "get"), (ADVISORS, "post")]:
        limited = spec["paths"][path][method]["responses"]["429"]
        assert limited["headers"]["Retry-After"]["required"] is True, path


# ---------------------------------------------------------------- headers
def _private(r):
    return r.headers.get("Cache-Control") == "no-store" and r.headers.get("X-Content-Type-Options") == "nosniff"


def test_every_v1_answer_is_not_stored_and_not_sniffed(client, api_keys):
    answers = [client.get("/v1/entities/adv-101", headers=auth(api_keys)),
               client.post(ADVISORS, json={"text": "Fairer Handel"}, headers=auth(api_keys)),
               client.get("/v1/entities/unbekannt-1", headers=auth(api_keys)),
               client.get("/v1/entities"),
               client.get("/v1/landscape/report.xlsx?city=Bonn&limit=3", headers=auth(api_keys))]
    assert [r.status_code for r in answers] == [200, 200, 404, 401, 200]
    assert all(_private(r) for r in answers), [dict(r.headers) for r in answers]
    for path in ("/healthz", "/openapi.json", "/"):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff", path


def test_job_exports_are_not_stored(client, app):
    # a key of its own: the module's shared keys may still hold the fuzzing's jobs (3 pending at most per key)
    api_keys = {"editor": f"Bearer {app.extensions['matcher'].store.create_key('editor', 'exports')[1]}"}
    r = client.post("/v1/jobs/invitations", json={"event": "evt-113", "size": 3, "as_of": "2025-01-01"},
                    headers=auth(api_keys))
    assert r.status_code == 202, r.json
    job = r.json["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{job}", headers=auth(api_keys)).json["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for fmt in ("csv", "xlsx"):
        export = client.get(f"/v1/jobs/{job}/export.{fmt}", headers=auth(api_keys))
        assert export.status_code == 200 and _private(export), dict(export.headers)
        assert "Expires" not in export.headers


# ---------------------------------------------------------------- 413 for a chunked body, on a real server
@pytest.fixture(scope="module")
def served(tmp_path_factory, seed_store):
    from conftest import ServerProcess, free_port
    from matcher.store import Store

    root = tmp_path_factory.mktemp("contract-server")
    url = f"sqlite:///{root / 'matcher.db'}"
    seed_store(url)
    store = Store(url)
    key = store.create_key("reader", "contract")[1]
    store.close()
    port = free_port()
    server = ServerProcess(f"http://127.0.0.1:{port}", url, root / "server.log").start()
    yield server.url, {"Authorization": f"Bearer {key}"}
    server.kill()


def _chunks(data: bytes, size: int = 8192):
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.slow
def test_a_chunked_body_over_the_limit_is_a_413_not_broken_json(served):
    base, headers = served
    body = b'{"text": "' + b"x" * (300 * 1024) + b'"}'
    r = requests.post(base + ADVISORS, data=_chunks(body), timeout=60,
                      headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text[:300]
    assert r.json()["error"]["code"] == "payload_too_large" and r.headers["Cache-Control"] == "no-store"
    small = requests.post(base + ADVISORS, data=_chunks(b'{"text": "Fairer Handel", "k": 2}', 5), timeout=60,
                          headers={**headers, "Content-Type": "application/json"})
    assert small.status_code == 200 and len(small.json()["results"]) == 2, small.text[:300]
