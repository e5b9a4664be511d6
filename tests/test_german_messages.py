"""German everywhere a person reads it (issue 14, item 6): error messages of the API and the library.

Every message and detail message is German, values stand in „…“ (never Python's ``'…'``
reprs), pydantic's and the JSON decoder's English never leaks through, and an unknown
place comes with the nearest known name ("Meinten Sie „Dortmund“?").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from matcher.domain.messages import GENERIC_MESSAGE, german_message
from matcher.text.gazetteer import default_gazetteer

ROOT = Path(__file__).resolve().parents[1]
ADVISORS = "/v1/recommendations/advisors"
ENGLISH = ("or '", "Expecting", "String should", "should match", "Input should", "Field required", "' or '",
           "erlaubt: '", "should be", "Unable to", "must be", "unknown", "Unknown", "valid ")
SINGLE_QUOTED = re.compile(r"'[^'\s][^']*'")   # a Python repr such as 'de' inside a sentence


def _messages(error: dict[str, Any]) -> list[str]:
    return [error["message"], *(d["message"] for d in error["details"] if "message" in d)]


def assert_german(error: dict[str, Any]) -> None:
    for message in _messages(error):
        assert not [w for w in ENGLISH if w in message], message
        assert not SINGLE_QUOTED.search(message), message


@pytest.fixture(scope="module")
def headers(api_keys):
    return {"Authorization": api_keys["editor"]}


# method, path, request, a text the answer must contain (in its message or a detail message)
LEAKS = {
    "JSON with an unquoted property name": ("post", ADVISORS, {"data": "{text: 1}"}, "Feldname in doppelten"),
    "JSON with a trailing comma": ("post", ADVISORS, {"data": '{"text": "x",}'}, "Zeile 1"),
    "reason language not de or en": ("post", ADVISORS, {"json": {"text": "x", "lang": "fr"}},
                                     "erlaubt: „de“ oder „en“"),
    "unknown feedback outcome": ("post", "/v1/feedback", {"json": {"recommendation_id": "rec_0", "entity_id": "adv-101",
                                                                   "outcome": "liked"}},
                                 "erlaubt: „accepted“, „declined“ oder „contacted“"),
    "language code of a wrong form": ("post", ADVISORS, {"json": {"text": "x", "languages": ["deutsch"]}},
                                      "Sprachcode"),
    # (an events request with text alone is a need now, not a missing organisation: issue 17)
    "required field missing": ("post", "/v1/jobs/invitations", {"json": {"event": "evt-113"}}, "Pflichtfeld"),
    "number as text": ("post", ADVISORS, {"json": {"text": "x", "k": "zehn"}}, "ganze Zahl"),
    "unknown actor type": ("post", "/v1/recommendations/partners",
                           {"json": {"organisation": "org-101", "org_types": ["verein"]}}, "„migrant_organisation“"),
    "entity of an unknown kind": ("post", "/v1/entities", {"json": {"id": "x-1", "kind": "person", "name": "X"}},
                                  "unbekannte Art „person“"),
    "entity without a kind": ("post", "/v1/entities", {"json": {"id": "x-1", "name": "X"}}, "„advisor“"),
    "id of a wrong form": ("post", "/v1/entities", {"json": {"id": "a b", "kind": "advisor", "name": "X"}},
                           "„adv-014“"),
    "a page number too large to parse": ("get", "/v1/entities?limit=1" + "0" * 5000, {}, "Zahl zu groß"),
    "id in the body not the one in the path": ("put", "/v1/entities/adv-101",
                                               {"json": {"id": "adv-102", "kind": "advisor", "name": "X"}},
                                               "(„adv-102“)"),
    "unknown entity": ("get", "/v1/entities/adv-999", {}, "„adv-999“"),
    "asker of the wrong kind": ("post", ADVISORS, {"json": {"municipality": "evt-101"}}, "(Art: Veranstaltung)"),
    "CSV delimiter": ("get", "/v1/jobs/job_" + "0" * 32 + "/export.csv?delimiter=|", {}, "erlaubt: „,“ oder „;“"),
    "job id of a wrong form": ("post", "/v1/invitations", {"json": {"job": "123"}}, "Auftragskennung"),
    "unreadable quota": ("post", "/v1/jobs/invitations", {"json": {"event": "evt-113", "size": 5, "quotas": ["mo=40"]}},
                         "Quote „mo=40“"),
    "not an event": ("post", "/v1/jobs/invitations", {"json": {"event": "org-101", "size": 5}},
                     "„org-101“ ist keine Veranstaltung (Art: Organisation)"),
    "place abroad": ("post", ADVISORS, {"json": {"text": "x", "city": "Atlantis"}},
                     "„Atlantis“ ist als Ort im Ausland"),
    "body that is not JSON": ("post", ADVISORS, {"data": "text=x", "content_type": "text/plain"},
                              "gesendet wurde „text/plain“"),
}


@pytest.mark.parametrize("case", LEAKS.values(), ids=LEAKS.keys())
def test_error_messages_are_german_with_german_quotes(client, headers, case):
    method, path, kwargs, expected = case
    if "data" in kwargs:
        kwargs = {"content_type": "application/json", **kwargs}
    r = getattr(client, method)(path, headers=headers, **kwargs)
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)[:300]
    error = r.json["error"]
    assert any(expected in m for m in _messages(error)), error
    assert_german(error)


def test_an_unknown_place_suggests_the_nearest_known_name(client, headers):
    r = client.post(ADVISORS, headers=headers, json={"text": "Fairer Handel", "city": "Dortmnd"})
    assert r.status_code == 422
    error = r.json["error"]
    assert error["message"].startswith("Unbekannter Ort „Dortmnd“")
    assert error["message"].endswith("Meinten Sie „Dortmund“?")
    assert error["details"] == [{"field": "city", "value": "Dortmnd", "suggestions": ["Dortmund"]}]
    assert_german(error)


def test_an_unknown_place_without_a_near_name_suggests_nothing(client, headers):
    error = client.post(ADVISORS, headers=headers, json={"text": "x", "city": "Xyzzyhausen"}).json["error"]
    assert "Meinten Sie" not in error["message"] and error["details"][0]["suggestions"] == []


def test_the_landscape_and_assignment_jobs_suggest_a_place_too(client, headers):
    r = client.get("/v1/landscape?city=Muenstr", headers=headers)
    assert r.status_code == 422
    assert r.json["error"]["message"].endswith("Meinten Sie „Münster“?")
    assert r.json["error"]["details"][0]["suggestions"] == ["Münster"]

    r = client.post("/v1/jobs/assignments", headers=headers,
                    json={"requests": [{"id": "r1", "text": "Beratung", "city": "Dortmnd"}]})
    assert r.status_code == 422
    detail = r.json["error"]["details"][0]
    assert detail["suggestions"] == ["Dortmund"]
    assert detail["message"] == "Ort „Dortmnd“ unbekannt. Meinten Sie „Dortmund“?"
    assert_german(r.json["error"])


@pytest.mark.parametrize("typed, expected", [("Dortmnd", ["Dortmund"]), ("Koln", ["Köln"]), ("Kln", ["Köln"]),
                                             ("Muenstr", ["Münster"]), ("Kreis Klev", ["Kreis Kleve"]),
                                             ("xyz", []), ("Berlin", []), ("", [])])
def test_gazetteer_suggests_known_names_with_their_umlauts(typed, expected):
    assert default_gazetteer().suggest(typed, n=3) == expected


def test_gazetteer_suggests_at_most_n_names_each_once():
    g = default_gazetteer()
    assert g.suggest("Dortmund", n=1) == ["Dortmund"]        # a known name is its own nearest
    assert g.suggest("Dorsten", n=0) == []
    names = g.suggest("Mnster", n=5)
    assert names[0] == "Münster" and len(names) == len(set(names)) <= 5


# ----------------------------------------------------------------------------- every error a schema can raise
def _schemas() -> dict[str, tuple[Any, dict[str, Any], list[str]]]:
    """name → (type to validate, a valid base record, the fields to break)."""
    from matcher.batch.requests import AdvisorRequest
    from matcher.domain.schema import Advisor, Contact, Entity, Event, Municipality, Organisation, Query
    from service import job_models, models
    from service.landscape import LandscapeQuery

    entity_fields = sorted({n for m in (Advisor, Organisation, Event, Municipality) for n in m.model_fields})
    out: dict[str, tuple[Any, dict[str, Any], list[str]]] = {
        "entity": (Entity, {"id": "a", "name": "n"}, [*entity_fields, *(f"contact.{n}" for n in Contact.model_fields)]),
    }
    requests = [Query, AdvisorRequest, LandscapeQuery, models.AdvisorsRequest, models.InlineProfile,
                models.PartnersRequest, models.EventsRequest, models.InviteesRequest, models.FeedbackRequest,
                models.EntityListQuery, models.DeleteQuery, models.ImportQuery, job_models.InvitationJobRequest,
                job_models.AssignmentJobRequest, job_models.ExportQuery, job_models.RecordInvitationsRequest,
                job_models.InvitationListQuery]
    for model in requests:
        out[model.__name__] = (model, {}, [f.alias or n for n, f in model.model_fields.items()])
    return out


BAD_VALUES = [None, 1, 1.5, -1, 10**30, "x", "", "a" * 6000, [], ["x"], ["x"] * 600, [None], {}, {"a": 1}, True,
              float("nan"), "1" + "0" * 5000, "2025-13-45", "2025-01-01T10:11:12", "\ud800", "DE1", "vielleicht",
              {"adv-1": -1}, {"a b": 1}, {"id": "r"}, [{"id": "r"}]]


@pytest.mark.parametrize("name", sorted(_schemas()))
def test_every_error_a_schema_raises_has_its_own_german_message(name):
    model, base, fields = _schemas()[name]
    adapter = TypeAdapter(model)
    seen: set[str] = set()
    for kind in (["advisor", "organisation", "event", "municipality"] if name == "entity" else [None]):
        record = dict(base, kind=kind) if kind else base
        for field in fields:
            outer, _, inner = field.partition(".")
            for value in BAD_VALUES:
                data = {**record, outer: {inner: value}} if inner else {**record, field: value}
                try:
                    adapter.validate_python(data)
                except PydanticValidationError as exc:
                    for err in exc.errors(include_url=False):
                        message = german_message(err)
                        seen.add(err["type"])
                        assert message != GENERIC_MESSAGE, (err["type"], err["loc"], err["msg"])
                        assert message != err["msg"] and not SINGLE_QUOTED.search(message), (err, message)
                        assert not [w for w in ENGLISH if w in message], (err, message)
    assert seen  # the bad values did reach the schema


def test_a_catalog_file_with_bad_lines_reports_in_german(tmp_path):
    from matcher.domain.schema import load_catalog
    from matcher.errors import CatalogError

    path = tmp_path / "katalog.jsonl"
    lines = ['{"id": "a", "kind": "advisor", "name": "A", "languages": ["deutsch"]}', "{id: 1}",
             '{"id": "b", "kind": "organisation", "name": "B", "org_type": "verein"}',
             '{"id": "a", "kind": "advisor", "name": "A2"}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert_german({"message": err.value.message, "details": err.value.details})
    assert [d["field"] for d in err.value.details][:3] == ["languages.0", "(Zeile)", "org_type"]


def test_library_errors_that_reach_the_command_line_are_german(matcher):
    from matcher.engine.embedding import make_embedder
    from matcher.engine.matcher import Matcher, Weights
    from matcher.errors import UnknownModelError, ValidationError

    for call, expected in [(lambda: Weights().without("magic"), "Unbekanntes Signal „magic“"),
                           (lambda: Weights.from_mapping({"magic": 1}), "Unbekannte Gewichte „magic“"),
                           (lambda: Matcher(matcher.embedder).fit([*matcher.entities_[:2], matcher.entities_[0]]),
                            f"Doppelte ids im Katalog: „{matcher.entities_[0].id}“"),
                           (lambda: make_embedder("gpt"), "Unbekanntes Embedding-Modell „gpt“")]:
        with pytest.raises((ValidationError, UnknownModelError)) as err:
            call()
        assert expected in err.value.message
        assert_german({"message": err.value.message, "details": err.value.details})


# ----------------------------------------------------------------------------- the source
GERMAN = re.compile(r"[äöüßÄÖÜ„“]|\b(?:ist|nicht|kein|keine|bitte|Bitte|oder|und|der|die|das|Unbekannt\w*|erlaubt)\b")


def test_no_german_message_in_the_source_quotes_a_value_with_repr():
    offenders = []
    for path in sorted([*(ROOT / "matcher").rglob("*.py"), *(ROOT / "service").rglob("*.py")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "!r}" in line and GERMAN.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            if re.search(r"erlaubt: '|\{', '\.join\([A-Z_]+\)\}\"", line) and GERMAN.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_json_decoder_reasons_are_translated():
    from matcher.domain.messages import json_error_reason

    for text in ['{"a" 1}', '{"a": 1 "b": 2}', "", '"abc', '"a\nb"', '"\\x"', '"\\u12"', "{} x", "{a: 1}"]:
        with pytest.raises(json.JSONDecodeError) as err:
            json.loads(text)
        reason = json_error_reason(err.value)
        assert reason != "nicht lesbar" and not [w for w in ENGLISH if w in reason], (text, reason)
