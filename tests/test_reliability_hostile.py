"""Hostile inputs beyond what a generator invents: each is refused in the one error shape (or served
inertly), nothing answers 5xx, and nothing half-arrives in the store."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import pytest

from bench.reliability.fuzz import error_shape_problem
from bench.reliability.report import record

ADVISORS = "/v1/recommendations/advisors"
IMPORT = "/v1/entities/import"
NDJSON = "application/x-ndjson"
MB = 1024 * 1024


@dataclass
class Hostile:
    method: str
    path: str
    status: int | tuple[int, ...]
    code: str | None = None              # error code expected (for 4xx)
    role: str = "admin"
    json: Any = None
    data: bytes | str | None = None
    content_type: str | None = None
    field: str | None = None             # a detail must name this field
    headers: dict[str, str] = dc_field(default_factory=dict)


def _line(**record: Any) -> str:
    return json.dumps({"kind": "advisor", "name": "Feindliche Eingabe", **record}, ensure_ascii=False)


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


HUGE = "Ä" * (MB // 2)                   # 1 MB of UTF-8 in one field
CASES = {
    # --- bytes that are not UTF-8
    "import JSONL in Latin-1": Hostile("post", IMPORT, 422, "catalog_error", content_type=NDJSON,
                                       data=_line(id="adv-h1", city="Düren").encode("latin-1")),
    "import CSV saved from Excel as Latin-1": Hostile("post", IMPORT, 422, "catalog_error", content_type="text/csv",
                                                      data="id;kind;name\nadv-h2;advisor;Müller\n".encode("cp1252")),
    "entity body with a lone surrogate escape": Hostile("post", "/v1/entities", (201, 400, 422), json=None,
                                                        content_type="application/json",
                                                        data='{"id": "adv-h3", "kind": "advisor", "name": "\\ud800"}'),
    "query string with bytes that are not UTF-8": Hostile("get", "/v1/entities?city=%FF%FE%FD", 200),
    "path with bytes that are not UTF-8": Hostile("get", "/v1/entities/%FF%FE", 404, "not_found"),
    # WSGI hands header bytes over as Latin-1 characters
    "API key with bytes that are not UTF-8": Hostile("get", "/v1/entities", 401, "unauthorized", role="",
                                                     headers={"Authorization": "Bearer mk_\xff\xfe_\x80x"}),
    # --- 1 MB of text in one field
    "1 MB need text": Hostile("post", ADVISORS, 413, "payload_too_large", json={"text": HUGE}),
    "1 MB entity name": Hostile("post", "/v1/entities", 413, "payload_too_large",
                                json={"id": "adv-h4", "kind": "advisor", "name": HUGE}),
    "1 MB description in a JSONL import": Hostile("post", IMPORT, 422, "catalog_error", content_type=NDJSON,
                                                  data=_line(id="adv-h5", description=HUGE), field="description"),
    "1 MB cell in a CSV import": Hostile("post", IMPORT, 422, "catalog_error", content_type="text/csv",
                                         data=f"id;kind;name;description\nadv-h6;advisor;A;{HUGE}\n"),
    "1 MB city in the query string": Hostile("get", f"/v1/entities?city={'x' * MB}", 422, "validation_error",
                                             field="city"),
    "1 MB API key": Hostile("get", "/v1/entities", 401, "unauthorized", role="",
                            headers={"Authorization": "Bearer mk_" + "k" * MB}),
    "1 MB landscape city": Hostile("get", f"/v1/landscape?city={'x' * MB}", 422, "validation_error", field="city"),
    # --- deeply nested JSON
    "nested 30,000 deep in an entity": Hostile("post", "/v1/entities", 400, "bad_request",
                                               content_type="application/json", data=_nested(30_000)),
    "nested 900 deep in the contact field": Hostile(
        "post", "/v1/entities", 422, "validation_error", content_type="application/json",
        data='{"id": "adv-h7", "kind": "advisor", "name": "A", "contact": ' + _nested(900) + "}"),
    "nested 100,000 deep in a JSONL line": Hostile("post", IMPORT, 422, "catalog_error", content_type=NDJSON,
                                                   data=_nested(100_000)),
    "nested 900 deep in a JSONL line": Hostile("post", IMPORT, 422, "catalog_error", content_type=NDJSON,
                                               data='{"id": "adv-h8", "kind": "advisor", "name": "A", "evidence": '
                                                    + "[" * 900 + "]" * 900 + "}"),
    "nested 100,000 deep in an assignment job": Hostile("post", "/v1/jobs/assignments", 400, "bad_request",
                                                        content_type="application/json", data="[" * 100_000),
    # --- NaN and Infinity
    "Infinity as a latitude": Hostile("post", "/v1/entities", 400, "bad_request", content_type="application/json",
                                      data='{"id": "adv-h9", "kind": "advisor", "name": "A", "lat": Infinity, '
                                           '"lon": 7}'),
    "1e999 (overflows to infinity) as a latitude": Hostile(
        "post", ADVISORS, 422, "validation_error", content_type="application/json",
        data='{"text": "Fairer Handel", "lat": 1e999, "lon": 7}', field="lat"),
    "-1e999 as k": Hostile("post", ADVISORS, 422, "validation_error", content_type="application/json",
                           data='{"text": "Fairer Handel", "k": -1e999}', field="k"),
    "NaN in a JSONL import": Hostile("post", IMPORT, 422, "catalog_error", content_type=NDJSON,
                                     data='{"id": "adv-h10", "kind": "advisor", "name": "A", "lat": NaN, "lon": 7}\n'),
    "nan and inf in a CSV import": Hostile("post", IMPORT, 422, "catalog_error", content_type="text/csv",
                                           data="id;kind;name;lat;lon\nadv-h11;advisor;A;nan;inf\n", field="lat"),
    "NaN as a string latitude": Hostile("post", ADVISORS, 422, "validation_error",
                                        json={"text": "Fairer Handel", "lat": "NaN", "lon": "7"}, field="lat"),
    "inf as a landscape radius": Hostile("get", "/v1/landscape?city=K%C3%B6ln&radius_km=inf", 422,
                                         "validation_error", field="radius_km"),
    "nan as a landscape radius": Hostile("get", "/v1/landscape?city=K%C3%B6ln&radius_km=nan", 422,
                                         "validation_error", field="radius_km"),
    "1e999 as the diversity weight of an invitation job": Hostile(
        "post", "/v1/jobs/invitations", 422, "validation_error", content_type="application/json",
        data='{"event": "evt-101", "size": 5, "mmr_lambda": 1e999}', field="mmr_lambda"),
    # --- coordinates out of range
    "latitude 90.0001": Hostile("post", ADVISORS, 422, "validation_error",
                                json={"text": "Fairer Handel", "lat": 90.0001, "lon": 7}, field="lat"),
    "longitude -180.5": Hostile("post", ADVISORS, 422, "validation_error",
                                json={"text": "Fairer Handel", "lat": 51, "lon": -180.5}, field="lon"),
    "entity at latitude 100": Hostile("post", "/v1/entities", 422, "validation_error",
                                      json={"id": "adv-h12", "kind": "advisor", "name": "A", "lat": 100, "lon": 7},
                                      field="lat"),
    "inline profile at longitude 1e6": Hostile("post", "/v1/recommendations/partners", 422, "validation_error",
                                               json={"profile": {"description": "Eine-Welt-Verein", "lat": 51,
                                                                 "lon": 1e6}}),
    "CSV import with latitude 91,5": Hostile("post", IMPORT, 422, "catalog_error", content_type="text/csv",
                                             data="id;kind;name;lat;lon\nadv-h13;advisor;A;91,5;7,1\n", field="lat"),
    # --- duplicate ids in a bulk import
    "the same id twice in a JSONL import": Hostile("post", IMPORT, 422, "catalog_error", content_type=NDJSON,
                                                   data=_line(id="adv-d1") + "\n" + _line(id="adv-d1") + "\n",
                                                   field="id"),
    "ids equal after trimming in a JSONL import": Hostile("post", IMPORT, 422, "catalog_error", content_type=NDJSON,
                                                          data=_line(id="adv-d2") + "\n" + _line(id=" adv-d2 ") + "\n",
                                                          field="id"),
    "the same id twice in a CSV import": Hostile("post", IMPORT, 422, "catalog_error", content_type="text/csv",
                                                 data="id;kind;name\nadv-d3;advisor;A\nadv-d3;advisor;B\n",
                                                 field="id"),
    "the same request id twice in an assignment job": Hostile(
        "post", "/v1/jobs/assignments", 422, "validation_error",
        json={"requests": [{"id": "r1", "text": "Fairer Handel", "city": "Bochum"},
                           {"id": "r1", "text": "Klimapartnerschaft", "city": "Köln"}]}),
    # --- k = 0 and k = 10⁹ (and neighbours)
    "k = 0": Hostile("post", ADVISORS, 422, "validation_error", json={"text": "Fairer Handel", "k": 0}, field="k"),
    "k = 10⁹": Hostile("post", ADVISORS, 422, "validation_error", json={"text": "Fairer Handel", "k": 10**9},
                       field="k"),
    "k = 10³⁰": Hostile("post", ADVISORS, 422, "validation_error", json={"text": "Fairer Handel", "k": 10**30},
                        field="k"),
    "k = -1": Hostile("post", "/v1/recommendations/invitees", 422, "validation_error",
                      json={"event": "evt-101", "k": -1}, field="k"),
    "k = 2.5": Hostile("post", "/v1/recommendations/events", 422, "validation_error",
                       json={"organisation": "org-101", "k": 2.5}, field="k"),
    "k = 10⁹ for partners": Hostile("post", "/v1/recommendations/partners", 422, "validation_error",
                                    json={"organisation": "org-101", "k": 10**9}, field="k"),
    "invitation list of 10⁹ places": Hostile("post", "/v1/jobs/invitations", 422, "validation_error",
                                             json={"event": "evt-101", "size": 10**9}, field="size"),
    "waitlist of 10⁹": Hostile("post", "/v1/jobs/invitations", 422, "validation_error",
                               json={"event": "evt-101", "size": 5, "waitlist": 10**9}, field="waitlist"),
    "page of 10⁹ entities": Hostile("get", "/v1/entities?limit=1000000000", 422, "validation_error", field="limit"),
    "offset 10³⁰": Hostile("get", "/v1/entities?offset=" + "1" + "0" * 30, 422, "validation_error", field="offset"),
    "landscape limit 10⁹": Hostile("get", "/v1/landscape?city=K%C3%B6ln&limit=1000000000", 422, "validation_error",
                                   field="limit"),
}


def _send(client, api_keys, case: Hostile):
    headers = dict(case.headers)
    if case.role and "Authorization" not in headers:
        headers["Authorization"] = api_keys[case.role]
    kwargs: dict[str, Any] = {"headers": headers}
    if case.json is not None:
        kwargs["json"] = case.json
    if case.data is not None:
        kwargs["data"] = case.data
        kwargs["content_type"] = case.content_type
    return getattr(client, case.method)(case.path, **kwargs)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_input_is_refused_in_the_one_error_shape(client, api_keys, case: Hostile, request):
    store = client.application.extensions["matcher"].store
    count = store.count_entities()

    r = _send(client, api_keys, case)

    expected = case.status if isinstance(case.status, tuple) else (case.status,)
    problem = error_shape_problem(r.status_code, r.content_type, r.get_data(), dict(r.headers))
    record("hostile", case=request.node.callspec.id, status=r.status_code,
           clean=r.status_code in expected and problem is None)
    assert r.status_code in expected, r.get_data(as_text=True)[:500]
    assert problem is None, problem
    if r.status_code >= 400:
        error = r.json["error"]
        if case.code:
            assert error["code"] == case.code, error
        if case.field:
            assert case.field in {d.get("field") for d in error["details"]}, error
        assert len(r.get_data()) < 64 * 1024, "an error must not echo a huge input back"
        assert store.count_entities() == count, "a refused write changed the catalog"


INERT = {
    "SQL in the name": "Robert'); DROP TABLE entities;--",
    "SQL in the city": "' OR '1'='1",
    "LIKE wildcards": "100% _Verein_",
    "HTML and script": '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "template syntax": "{{ 7*7 }} {% raw %} ${7*7} #{7*7}",
    "right-to-left override and marks": "Verein \u202eniereV\u202c \u200fعربي\u200e",
    "control characters": "Eine\x07Welt\x1b[31m\x08Laden\x7f",
    "zero-width and combining characters": "Cafe\u0301 \u200b\u200d\ufeffGruppe",
}


@pytest.mark.parametrize("text", INERT.values(), ids=INERT.keys())
def test_hostile_strings_are_stored_and_returned_inert(client, api_keys, text):
    editor = {"Authorization": api_keys["editor"]}
    store = client.application.extensions["matcher"].store
    count = store.count_entities()
    entity_id = f"org-inert-{abs(hash(text)) % 10**8}"
    entity = {"id": entity_id, "kind": "organisation", "name": text, "city": text, "description": text,
              "topics": [text], "evidence": [text]}

    created = client.post("/v1/entities", headers=editor, json=entity)
    assert created.status_code == 201, created.get_data(as_text=True)

    got = client.get(f"/v1/entities/{entity_id}", headers=editor).json
    assert {k: got[k] for k in entity} == {k: (v.strip() if isinstance(v, str) else [x.strip() for x in v])
                                           for k, v in entity.items()}
    page = client.get("/v1/entities", headers=editor, query_string={"city": text}).json
    assert [e["id"] for e in page["items"]] == [entity_id], "the filter matched more than the one value"
    page = client.get("/v1/entities", headers=editor, query_string={"topic": text}).json
    assert [e["id"] for e in page["items"]] == [entity_id]
    assert store.count_entities() == count + 1
    r = client.post(ADVISORS, headers=editor, json={"text": text, "city": "Essen", "k": 3})
    record("hostile", case=f"stored inert: {text[:30]!r}", status=r.status_code, clean=r.status_code == 200)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    # as a place it is no town: a 422 that names the field and echoes the value as data
    r = client.post(ADVISORS, headers=editor, json={"text": "Fairer Handel", "city": text, "k": 3})
    assert r.status_code == 422
    assert r.json["error"]["details"] == [{"field": "city", "value": text.strip(), "suggestions": []}]


def test_html_in_catalog_data_is_escaped_on_the_web_page(client, api_keys):
    """The page lists the catalog's cities server-side: a city that looks like markup arrives as text."""
    if "web.index" not in client.application.view_functions:
        pytest.fail("the web page (service/web.py) is not registered")
    editor = {"Authorization": api_keys["editor"]}
    payload = '<script>alert("stadt")</script>'
    r = client.post("/v1/entities", headers=editor,
                    json={"id": "org-html-city", "kind": "organisation", "name": "<b>Verein</b>", "city": payload})
    assert r.status_code == 201

    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    escaped = payload not in html and ("&lt;script&gt;alert(" in html or "\\u003cscript\\u003e" in html)
    record("hostile", case="markup in the catalog, on the web page", status=page.status_code, clean=escaped)
    assert payload not in html
    assert "&lt;script&gt;alert(" in html or "\\u003cscript\\u003e" in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def _poll_job(client, headers, job_id: str) -> dict[str, Any]:
    for _ in range(3000):
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {job}")


CONTROL_NAME = "Beratung\x07Glocke\x1b[31m \x0bTab\x1f"
FAIR_TRADE = ("Wir betreiben den Weltladen, beraten die Stadtverwaltung zur fairen Beschaffung und organisieren "
              "die Kampagne Fairtrade-Town Bochum mit fair gehandelter Kleidung und Kaffee.")
FORMULA_NAME = '=HYPERLINK("https://example.org/x";"Verein")'


def test_control_characters_in_names_survive_the_excel_exports(client, api_keys):
    """Found by fuzzing: openpyxl refuses control characters, so an XLSX export of a job or a landscape
    report naming such an entry answered 500. Exports now drop the characters Excel cannot hold."""
    from openpyxl import load_workbook

    editor = {"Authorization": api_keys["editor"]}
    need = "Beratung zu Tigrinya-sprachigen Familien und Kirchengemeinden in Bochum-Wattenscheid"
    for entity in ({"id": "adv-ctl", "kind": "advisor", "name": CONTROL_NAME, "city": "Bochum", "capacity": 5,
                    "description": need, "languages": ["ti", "de"]},
                   {"id": "org-ctl", "kind": "organisation", "name": CONTROL_NAME, "city": "Bochum",
                    "org_type": "migrant_organisation", "description": FAIR_TRADE, "topics": ["Fairer Handel"]},
                   {"id": "org-formula", "kind": "organisation", "name": FORMULA_NAME, "city": "Bochum",
                    "org_type": "civil_society", "description": FAIR_TRADE, "topics": ["Fairer Handel"]}):
        assert client.post("/v1/entities", headers=editor, json=entity).status_code == 201
    submitted = client.post("/v1/jobs/assignments", headers=editor,
                            json={"requests": [{"id": "r1", "text": need, "city": "Bochum", "languages": ["ti"]}],
                                  "alternates": 2, "allow_partial": True})
    assert submitted.status_code == 202, submitted.json
    job = _poll_job(client, editor, submitted.json["id"])
    assert job["state"] == "done", job
    assert "adv-ctl" in json.dumps(job["result"]), "the advisor with the control characters was not assigned"

    cleaned = "BeratungGlocke[31m Tab"
    for url in (f"/v1/jobs/{job['id']}/export.xlsx", "/v1/landscape/report.xlsx?city=Bochum"):
        r = client.get(url, headers=editor)
        assert r.status_code == 200, (url, r.get_data(as_text=True)[:300])
        book = load_workbook(io.BytesIO(r.get_data()))
        cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value]
        assert any(cleaned in str(c.value) for c in cells), (url, "the name is missing from the export")
        assert not [c.value for c in cells if c.data_type == "f"], (url, "a name became a formula")
    landscape = load_workbook(io.BytesIO(client.get("/v1/landscape/report.xlsx?city=Bochum", headers=editor).data))
    assert FORMULA_NAME in [c.value for ws in landscape.worksheets for row in ws.iter_rows() for c in row]
    csv_export = client.get(f"/v1/jobs/{job['id']}/export.csv", headers=editor)
    assert csv_export.status_code == 200 and CONTROL_NAME in csv_export.get_data(as_text=True)
    record("hostile", case="control characters and a formula in names, in the XLSX exports", status=200, clean=True)


def test_a_flood_of_jobs_is_refused_with_429_and_retry_after(make_app, tmp_path):
    """Found by fuzzing: 429 too_many_jobs came without Retry-After; every 429 now says when to retry."""
    app = make_app(f"sqlite:///{tmp_path / 'flood.db'}", JOB_MAX_PENDING=1)
    client = app.test_client()
    reader = {"Authorization": f"Bearer {app.extensions['matcher'].store.create_key('reader')[1]}"}
    slow = {"requests": [{"id": f"f-{i}", "text": f"Faire Beschaffung, Anfrage {i}", "city": "Köln"}
                         for i in range(80)], "allow_partial": True}
    answers = [client.post("/v1/jobs/assignments", headers=reader, json=slow) for _ in range(3)]
    assert answers[0].status_code == 202
    refused = answers[-1]
    assert refused.status_code == 429, refused.json
    assert error_shape_problem(429, refused.content_type, refused.get_data(), dict(refused.headers)) is None
    assert refused.json["error"]["code"] == "too_many_jobs" and int(refused.headers["Retry-After"]) > 0
    _poll_job(client, reader, answers[0].json["id"])
