"""Every error path answers with the one error shape, the right status and a message a person can act on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import pytest

ADVISORS = "/v1/recommendations/advisors"


@dataclass
class Case:
    method: str
    path: str
    status: int
    code: str
    role: str | None = "editor"          # key sent; None: no key; "invalid": a made-up key
    json: Any = None
    data: bytes | str | None = None
    content_type: str | None = None
    field: str | None = None             # a detail must name this field
    in_message: str | None = None        # ... and the message must say this
    headers: dict[str, str] = dc_field(default_factory=dict)


NESTED = "[" * 50_000 + "]" * 50_000
CASES = {
    "bad JSON": Case("post", ADVISORS, 400, "bad_request", data='{"text": "Fairer Handel",}',
                     content_type="application/json", in_message="Zeile 1"),
    "body not UTF-8": Case("post", ADVISORS, 400, "bad_request", data=b'{"text": "Stra\xdfe"}',
                           content_type="application/json", in_message="UTF-8"),
    "NaN is not JSON": Case("post", ADVISORS, 400, "bad_request", data='{"text": "x", "lat": NaN, "lon": 1}',
                            content_type="application/json", in_message="NaN"),
    "deeply nested JSON": Case("post", ADVISORS, 400, "bad_request", data=NESTED, content_type="application/json"),
    "JSON that is not an object": Case("post", ADVISORS, 422, "validation_error", json=["Fairer Handel"]),
    "wrong type": Case("post", ADVISORS, 422, "validation_error", json={"text": "Fairer Handel", "k": "zehn"},
                       field="k", in_message="ganze Zahl"),
    "unknown field": Case("post", ADVISORS, 422, "validation_error", json={"text": "x", "kommune": "Köln"},
                          field="kommune", in_message="unbekanntes Feld „kommune“"),
    "neither text nor municipality": Case("post", ADVISORS, 422, "validation_error", json={"k": 3},
                                          in_message="municipality"),
    "text too long": Case("post", ADVISORS, 422, "validation_error", json={"text": "x" * 5001}, field="text",
                          in_message="höchstens 5000 Zeichen"),
    "k too large": Case("post", ADVISORS, 422, "validation_error", json={"text": "x", "k": 101}, field="k",
                        in_message="höchstens 100"),
    "k zero": Case("post", ADVISORS, 422, "validation_error", json={"text": "x", "k": 0}, field="k"),
    "lat without lon": Case("post", ADVISORS, 422, "validation_error", json={"text": "x", "lat": 51.4},
                            in_message="lat und lon"),
    "latitude out of range": Case("post", ADVISORS, 422, "validation_error", json={"text": "x", "lat": 951, "lon": 7},
                                  field="lat"),
    "oversized body": Case("post", ADVISORS, 413, "payload_too_large", json={"text": "x" * 300_000},
                           in_message="höchstens"),
    "not JSON content type": Case("post", ADVISORS, 415, "unsupported_media_type", data="text=Fairer Handel",
                                  content_type="application/x-www-form-urlencoded", in_message="JSON"),
    "unknown municipality": Case("post", ADVISORS, 404, "not_found", json={"municipality": "mun-999"},
                                 in_message="mun-999"),
    "asker of the wrong kind": Case("post", ADVISORS, 422, "validation_error", json={"municipality": "evt-101"},
                                    in_message="evt-101"),
    "unknown place": Case("post", ADVISORS, 422, "validation_error",
                          json={"text": "Fairer Handel", "city": "Xyzzyhausen"}, field="city",
                          in_message="Xyzzyhausen"),
    "place abroad": Case("post", ADVISORS, 422, "validation_error", json={"text": "Fairer Handel", "city": "Atlantis"},
                         field="city", in_message="Ausland"),
    "unknown event": Case("post", "/v1/recommendations/invitees", 404, "not_found", json={"event": "evt-999"}),
    "partners with both asker forms": Case("post", "/v1/recommendations/partners", 422, "validation_error",
                                           json={"organisation": "org-101", "profile": {"description": "x"}}),
    "unknown entity id": Case("get", "/v1/entities/adv-999", 404, "not_found", in_message="adv-999"),
    "unknown route": Case("get", "/v1/advisors", 404, "not_found", in_message="/openapi.json"),
    "wrong method": Case("get", ADVISORS, 405, "method_not_allowed", in_message="POST"),
    "wrong method on an entity": Case("patch", "/v1/entities/adv-101", 405, "method_not_allowed"),
    "missing key": Case("post", ADVISORS, 401, "unauthorized", role=None, json={"text": "x"}),
    "malformed Authorization header": Case("get", "/v1/entities/adv-101", 401, "unauthorized", role=None,
                                           headers={"Authorization": "Token abc"}, in_message="Bearer"),
    "unknown key": Case("get", "/v1/entities/adv-101", 401, "unauthorized", role="invalid"),
    "reader may not write": Case("post", "/v1/entities", 403, "forbidden", role="reader",
                                 json={"id": "adv-x", "kind": "advisor", "name": "X"}, in_message="editor"),
    "editor may not erase": Case("delete", "/v1/entities/adv-102?erase=true", 403, "forbidden", in_message="admin"),
    "reader may not import": Case("post", "/v1/entities/import", 403, "forbidden", role="reader", data="{}",
                                  content_type="application/x-ndjson"),
    "entity id exists": Case("post", "/v1/entities", 409, "conflict",
                             json={"id": "adv-101", "kind": "advisor", "name": "Doppelt"}, in_message="PUT"),
    "entity of unknown kind": Case("post", "/v1/entities", 422, "validation_error",
                                   json={"id": "x-1", "kind": "person", "name": "X"}, field="kind"),
    "entity with a bad id": Case("post", "/v1/entities", 422, "validation_error",
                                 json={"id": "a b", "kind": "advisor", "name": "X"}, field="id"),
    "replace with another id": Case("put", "/v1/entities/adv-101", 422, "validation_error",
                                    json={"id": "adv-102", "kind": "advisor", "name": "X"}, field="id"),
    "replace a missing entity": Case("put", "/v1/entities/adv-999", 404, "not_found",
                                     json={"id": "adv-999", "kind": "advisor", "name": "X"}),
    "delete a missing entity": Case("delete", "/v1/entities/adv-999", 404, "not_found"),
    "unknown query parameter": Case("get", "/v1/entities?sort=name", 422, "validation_error", field="sort"),
    "page too large": Case("get", "/v1/entities?limit=100000", 422, "validation_error", field="limit"),
    "repeated query parameter": Case("get", "/v1/entities?kind=advisor&kind=event", 422, "validation_error",
                                     field="kind"),
    "erase not a boolean": Case("delete", "/v1/entities/adv-103?erase=vielleicht", 422, "validation_error",
                                field="erase"),
    "import without a known content type": Case("post", "/v1/entities/import", 415, "unsupported_media_type",
                                                 data="id,kind", content_type="application/pdf"),
    "import with a bad line": Case("post", "/v1/entities/import", 422, "catalog_error",
                                   data='{"id": "adv-i1", "kind": "advisor", "name": "A"}\n{"id": "adv-i2"}\n',
                                   content_type="application/x-ndjson", field="kind", in_message="Zeile 2"),
    "import with an unknown CSV column": Case("post", "/v1/entities/import", 422, "catalog_error",
                                              data="id;kind;name;telefon\nadv-c;advisor;C;0211\n",
                                              content_type="text/csv", in_message="telefon"),
    "feedback on an unknown recommendation": Case("post", "/v1/feedback", 404, "not_found",
                                                  json={"recommendation_id": "rec_0", "entity_id": "adv-101",
                                                        "outcome": "accepted"}),
    "feedback with an unknown outcome": Case("post", "/v1/feedback", 422, "validation_error",
                                             json={"recommendation_id": "rec_0", "entity_id": "adv-101",
                                                   "outcome": "liked"}, field="outcome"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_error_paths_answer_in_the_one_error_shape(client, api_keys, case: Case):
    headers = dict(case.headers)
    if case.role == "invalid":
        headers["Authorization"] = "Bearer mk_00000000_erfunden"
    elif case.role:
        headers["Authorization"] = api_keys[case.role]
    kwargs: dict[str, Any] = {"headers": headers}
    if case.json is not None:
        kwargs["json"] = case.json
    if case.data is not None:
        kwargs["data"] = case.data
        kwargs["content_type"] = case.content_type

    r = getattr(client, case.method)(case.path, **kwargs)

    assert r.status_code == case.status, r.get_data(as_text=True)[:500]
    assert r.mimetype == "application/json"
    body = r.json
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    error = body["error"]
    assert error["code"] == case.code
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    assert isinstance(error["details"], list) and all(isinstance(d, dict) for d in error["details"])
    assert "Traceback" not in r.get_data(as_text=True)
    if case.field:
        assert case.field in [d.get("field") for d in error["details"]], error
    if case.in_message:
        assert case.in_message in error["message"] + json.dumps(error["details"], ensure_ascii=False), error
    if case.status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    if case.status == 405:
        assert "POST" in r.headers["Allow"] or "GET" in r.headers["Allow"]


def test_an_unexpected_exception_is_a_500_in_the_same_shape_without_internals(app, client, api_keys, monkeypatch):
    def broken():
        raise ZeroDivisionError("geheimes Detail")

    live = app.extensions["matcher"].live
    monkeypatch.setattr(live, "current", broken)
    r = client.post(ADVISORS, headers={"Authorization": api_keys["reader"]}, json={"text": "x"})
    assert r.status_code == 500
    assert r.json["error"]["code"] == "internal_error" and "geheim" not in r.get_data(as_text=True)
    assert r.json["error"]["details"][0]["incident"]
