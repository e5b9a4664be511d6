"""Funding programmes (issue 20): deadlines, the eligibility rules as a table, matching, the API route.

The table checks every rule against (programme, applicant) cases built on the example programmes of
``fixtures/programmes.jsonl``: each row names the programme, the facts, and the status each named rule
must have (rules not named are not asserted; ``eligible`` is asserted for every row).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import FIXTURES
from matcher.domain.schema import Deadlines, ProjectFacts, load_catalog, parse_entity
from matcher.errors import ValidationError
from matcher.programmes.deadlines import in_weeks, next_round
from matcher.programmes.eligibility import check_programme, eligible

PROGRAMMES = {p.id: p for p in load_catalog(FIXTURES / "programmes.jsonl")}
TODAY = dt.date(2026, 12, 3)
D = dt.date


# ----------------------------------------------------------------------------- data
def test_the_example_programmes_are_many_marked_as_examples_with_source_and_date():
    assert len(PROGRAMMES) >= 15
    for p in PROGRAMMES.values():
        assert p.example and p.source.startswith("Beispieldaten") and p.retrieved <= TODAY


def test_a_programme_without_deadlines_or_with_a_reversed_range_is_refused_by_field():
    record = json.loads((FIXTURES / "programmes.jsonl").read_text(encoding="utf-8").splitlines()[0])
    for change in ({"deadlines": {}}, {"deadlines": {"dates": [], "rolling": False}},
                   {"eligibility": {"applicant_types": []}},
                   {"own_share": 120}, {"retrieved": "15.11.2026"}):
        with pytest.raises(ValidationError):
            parse_entity(record | change)
    assert parse_entity(record).kind == "programme"


# ----------------------------------------------------------------------------- deadlines
def test_past_yearly_deadlines_roll_to_the_next_round_and_fixed_ones_close():
    yearly = Deadlines(dates=[D(2026, 1, 15), D(2026, 6, 15)], annual=True)
    assert next_round(yearly, D(2026, 3, 1)).date == D(2026, 6, 15)
    rolled = next_round(yearly, TODAY)
    assert rolled.date == D(2027, 1, 15) and rolled.rolled and not rolled.closed
    assert next_round(Deadlines(dates=[D(2024, 2, 29)], annual=True), D(2025, 3, 1)).date == D(2026, 2, 28)
    closed = next_round(Deadlines(dates=[D(2026, 6, 30)]), TODAY)
    assert closed.date is None and closed.closed and closed.last == D(2026, 6, 30)
    assert next_round(Deadlines(dates=[TODAY]), TODAY).date == TODAY          # a deadline today still counts
    assert next_round(Deadlines(rolling=True), TODAY) == next_round(Deadlines(rolling=True), D(2030, 1, 1))
    assert [in_weeks(TODAY + dt.timedelta(days=n), TODAY) for n in (0, 1, 5, 119)] == \
        ["heute", "morgen", "in 5 Tagen", "in 17 Wochen"]


# ----------------------------------------------------------------------------- the rule table
MSO, EW, AS, MUN, OFF = "migrant_organisation", "eine_welt_group", "association", "municipality", "municipal_office"
# (programme, facts, in_nrw, {rule: expected status}, eligible)
CASES = [
    # who may apply
    ("prg-101", dict(applicant_type=MUN), None, {"applicant_type": "ok"}, True),
    ("prg-101", dict(applicant_type=OFF), None, {"applicant_type": "ok"}, True),
    ("prg-101", dict(applicant_type=MSO), None, {"applicant_type": "fail"}, False),
    ("prg-101", dict(), None, {"applicant_type": "check"}, True),
    ("prg-105", dict(applicant_type=MSO, registered=True, years=3), None,
     {"applicant_type": "ok", "registered": "ok", "years": "ok"}, True),
    ("prg-105", dict(applicant_type=MUN), None, {"applicant_type": "fail"}, False),
    ("prg-105", dict(applicant_type=EW, registered=False), None, {"registered": "fail"}, False),
    ("prg-105", dict(applicant_type=EW), None, {"registered": "check", "years": "check"}, True),
    ("prg-106", dict(applicant_type=EW, registered=False), None, {"applicant_type": "ok"}, True),
    ("prg-109", dict(applicant_type=EW), None, {"applicant_type": "fail"}, False),
    ("prg-113", dict(applicant_type=OFF), None, {"applicant_type": "ok"}, True),
    ("prg-113", dict(applicant_type=MUN), None, {"applicant_type": "fail"}, False),
    # associations: registration and age (never asked of municipalities)
    ("prg-107", dict(applicant_type=AS, registered=True, years=3), None, {"years": "ok"}, True),
    ("prg-107", dict(applicant_type=AS, registered=True, years=2), None, {"years": "fail"}, False),
    ("prg-109", dict(applicant_type=MSO, registered=True, years=1), None, {"years": "fail"}, False),
    ("prg-109", dict(applicant_type=MSO, registered=True, years=2), None, {"years": "ok"}, True),
    ("prg-118", dict(applicant_type=OFF, registered=False, years=0), True, {"registered": None, "years": None}, True),
    # seat in NRW
    ("prg-108", dict(applicant_type=EW, registered=True), True, {"seat": "ok"}, True),
    ("prg-108", dict(applicant_type=EW, registered=True), False, {"seat": "fail"}, False),
    ("prg-108", dict(applicant_type=EW, registered=True), None, {"seat": "check"}, True),
    ("prg-105", dict(applicant_type=EW, registered=True), False, {"seat": None}, True),
    # where the project takes place
    ("prg-105", dict(applicant_type=MSO, registered=True, abroad=True), None, {"place": "fail"}, False),
    ("prg-105", dict(applicant_type=MSO, registered=True, abroad=False), None, {"place": "ok"}, True),
    ("prg-105", dict(applicant_type=MSO, registered=True), None, {"place": "check"}, True),
    ("prg-107", dict(applicant_type=AS, abroad=False), None, {"place": "fail"}, False),
    ("prg-107", dict(applicant_type=AS, abroad=True, partner_country="BO"), None, {"place": "ok"}, True),
    ("prg-109", dict(applicant_type=MSO, abroad=True, partner_country="GH"), None, {"country": "ok"}, True),
    ("prg-109", dict(applicant_type=MSO, abroad=True, partner_country="TR"), None, {"country": "fail"}, False),
    ("prg-109", dict(applicant_type=MSO, partner_country="TR"), None, {"country": "fail"}, False),
    ("prg-109", dict(applicant_type=MSO, abroad=True), None, {"country": "check"}, True),
    ("prg-114", dict(applicant_type=MUN, abroad=True, partner_country="UA"), None, {"country": "ok"}, True),
    ("prg-114", dict(applicant_type=MUN, abroad=True, partner_country="PL"), None, {"country": "fail"}, False),
    ("prg-117", dict(applicant_type=MUN, abroad=True, partner_country="PE"), None, {"country": "fail"}, False),
    ("prg-117", dict(applicant_type=MUN, abroad=False), None, {"place": "ok"}, True),
    # amount, own contribution, duration
    ("prg-103", dict(applicant_type=MUN, amount=20000), None, {"amount": "ok"}, True),
    ("prg-103", dict(applicant_type=MUN, amount=20001), None, {"amount": "fail"}, False),
    ("prg-101", dict(applicant_type=MUN, amount=49999), None, {"amount": "fail"}, False),
    ("prg-101", dict(applicant_type=MUN), None, {"amount": "info"}, True),
    ("prg-105", dict(applicant_type=MSO, registered=True, own_share=10), None, {"own_share": "fail"}, False),
    ("prg-105", dict(applicant_type=MSO, registered=True, own_share=25), None, {"own_share": "ok"}, True),
    ("prg-105", dict(applicant_type=MSO, registered=True), None, {"own_share": "check"}, True),
    ("prg-114", dict(applicant_type=MUN, own_share=0), None, {"own_share": "ok"}, True),
    ("prg-104", dict(applicant_type=MUN, months=12), None, {"duration": "fail"}, False),
    ("prg-104", dict(applicant_type=MUN, months=24), None, {"duration": "ok"}, True),
    ("prg-106", dict(applicant_type=EW, months=7), None, {"duration": "fail"}, False),
    # deadlines on 2026-12-03 and the planned start
    ("prg-101", dict(applicant_type=MUN, start=D(2027, 2, 1)), None, {"deadline": "info", "start": None}, True),
    ("prg-101", dict(applicant_type=MUN, start=D(2027, 1, 10)), None, {"start": "fail"}, False),
    ("prg-115", dict(applicant_type=AS, registered=True, years=5), None, {"deadline": "fail"}, False),
    ("prg-105", dict(applicant_type=MSO, registered=True, start=D(2027, 3, 1)), None, {"deadline": "ok"}, True),
    ("prg-105", dict(applicant_type=MSO, registered=True, start=D(2027, 2, 1)), None, {"deadline": "fail"}, False),
    ("prg-116", dict(applicant_type=MSO, start=D(2026, 12, 31)), True, {"deadline": "ok"}, True),
    # required partners never exclude: they are a to-do
    ("prg-101", dict(applicant_type=MUN), None, {"partner": "check"}, True),
]


@pytest.mark.parametrize(("programme", "facts", "in_nrw", "expected", "is_eligible"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_eligibility_rules(programme, facts, in_nrw, expected, is_eligible):
    rules = check_programme(PROGRAMMES[programme], ProjectFacts(**facts), TODAY, in_nrw, "Bielefeld")
    status = {r.code: r.status for r in rules}
    for code, want in expected.items():
        assert status.get(code) == want, (code, [r.line for r in rules])
    assert eligible(rules) is is_eligible, [r.line for r in rules]


def test_the_table_has_at_least_forty_cases():
    assert len(CASES) >= 40


def test_rules_read_as_german_checklist_lines():
    facts = ProjectFacts(applicant_type=MSO, registered=True, years=3, own_share=10, start=D(2027, 6, 1))
    lines = [r.line for r in check_programme(PROGRAMMES["prg-105"], facts, TODAY)]
    assert "✓ Migrantenorganisationen sind antragsberechtigt" in lines
    assert "✗ Eigenanteil 25 %, Ihr Budget sieht 10 % vor" in lines
    nakopa = [r.line for r in check_programme(PROGRAMMES["prg-102"], ProjectFacts(), D(2026, 12, 1))]
    assert "• Nächste Frist: 31.03.2027 — in 17 Wochen" in nakopa
    closed = [r.line for r in check_programme(PROGRAMMES["prg-115"], ProjectFacts(), TODAY)]
    assert "✗ Keine offene Antragsrunde: die letzte Frist war am 30.06.2026" in closed


# ----------------------------------------------------------------------------- API, end to end
ROUTE = "/v1/recommendations/programmes"
IDEA = {"text": "Unser ghanaischer Verein möchte mit einer Partnerorganisation in Ghana eine Ausbildungswerkstatt "
                "für junge Frauen aufbauen.", "city": "Bochum", "applicant_type": MSO, "registered": True,
        "years": 4, "abroad": True, "partner_country": "GH", "amount": 40000, "own_share": 10,
        "start": "2027-09-01", "as_of": "2026-12-03", "k": 20}


@pytest.fixture(scope="module")
def with_programmes(app, client_module, api_keys):
    """The module's app with the example programmes imported through the API (JSON Lines)."""
    body = (FIXTURES / "programmes.jsonl").read_bytes()
    r = client_module.post("/v1/entities/import", data=body, headers={**_auth(api_keys, "editor"),
                                                                      "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json["created"] == len(PROGRAMMES), r.json
    return app


@pytest.fixture(scope="module")
def client_module(app):
    return app.test_client()


def _auth(keys, role):
    return {"Authorization": keys[role]}


def test_programmes_are_entities_listed_exported_and_read_back(with_programmes, client_module, api_keys):
    page = client_module.get("/v1/entities?kind=programme&limit=100", headers=_auth(api_keys, "reader")).json
    assert page["total"] == len(PROGRAMMES)
    one = client_module.get("/v1/entities/prg-109", headers=_auth(api_keys, "reader")).json
    assert one["funder"].startswith("Deutsche Gesellschaft") and one["deadlines"]["annual"] is True
    assert parse_entity(one) == PROGRAMMES["prg-109"]


def test_a_project_idea_gets_eligible_programmes_first_and_the_excluded_ones_with_their_rule(
        with_programmes, client_module, api_keys):
    r = client_module.post(ROUTE, json=IDEA, headers=_auth(api_keys, "reader"))
    assert r.status_code == 200, r.json
    out = r.json
    assert out["task"] == "programmes" and out["as_of"] == "2026-12-03"
    assert len(out["eligible"]) + len(out["ineligible"]) == len(PROGRAMMES)
    best = out["eligible"][0]
    assert best["programme"]["id"] == "prg-109" and best["eligible"] is True and best["excluded_by"] == []
    assert "✓ Migrantenorganisationen sind antragsberechtigt" in [x["line"] for x in best["rules"]]
    assert "• Nächste Frist: 30.04.2027 — in 21 Wochen" in [x["line"] for x in best["rules"]]
    assert best["next_deadline"] == "2027-04-30"
    assert best["partners"] and all(p["kind"] == "organisation" for p in best["partners"])
    assert best["advisors"] and all(a["kind"] == "advisor" for a in best["advisors"])
    excluded = {x["programme"]["id"]: x for x in out["ineligible"]}
    assert [x["line"] for x in excluded["prg-107"]["excluded_by"]] == ["✗ Eigenanteil 25 %, Ihr Budget sieht 10 % vor"]
    assert all(x["excluded_by"] and x["eligible"] is False for x in out["ineligible"])
    # audited like every recommendation: the programmes and the suggestions shown, no free text
    entry = with_programmes.extensions["matcher"].store.audit_entries(1)[0]
    assert entry["task"] == "programmes" and "prg-109" in entry["shown"] and best["advisors"][0]["id"] in entry["shown"]
    assert IDEA["text"] not in json.dumps(entry, ensure_ascii=False, default=str)


@pytest.mark.parametrize(("body", "field"), [
    ({"city": "Bochum"}, "(body)"),
    ({"text": "Bildung", "applicant_type": "verein"}, "applicant_type"),
    ({"text": "Bildung", "own_share": 120}, "own_share"),
    ({"text": "Bildung", "start": "01.03.2027"}, "start"),
    ({"text": "Bildung", "partner_country": "Ghana"}, "partner_country"),
    ({"text": "Bildung", "amount": "5000"}, "amount"),
    ({"text": "Bildung", "budget": 5000}, "budget"),
    ({"text": "Bildung", "city": "Bochun"}, "city"),
])
def test_a_bad_request_is_422_in_german_naming_its_field(with_programmes, client_module, api_keys, body, field):
    r = client_module.post(ROUTE, json=body, headers=_auth(api_keys, "reader"))
    assert r.status_code == 422, r.json
    assert r.json["error"]["code"] == "validation_error"
    assert field in json.dumps(r.json["error"]["details"], ensure_ascii=False)


def test_an_applicant_from_the_catalog_gives_its_type_and_seat(with_programmes, client_module, api_keys):
    reader = _auth(api_keys, "reader")
    out = client_module.post(ROUTE, json={"applicant": "mun-101", "text": "Partnerschaftsprojekt Wasser in Tansania",
                                          "as_of": "2026-12-03"}, headers=reader).json
    nakopa = next(x for x in out["eligible"] if x["programme"]["id"] == "prg-101")
    assert "✓ Kommunen sind antragsberechtigt" in [x["line"] for x in nakopa["rules"]]
    assert all(x["programme"]["id"] != "prg-109" for x in out["eligible"])       # diaspora: not for municipalities
    assert client_module.post(ROUTE, json={"applicant": "org-999"}, headers=reader).status_code == 404
    wrong = client_module.post(ROUTE, json={"applicant": "adv-101"}, headers=reader)
    assert wrong.status_code == 422 and "adv-101" in wrong.json["error"]["message"]


def test_the_route_needs_a_key_like_the_other_recommendations(with_programmes, client_module):
    r = client_module.post(ROUTE, json={"text": "Bildung"})
    assert r.status_code == 401 and r.json["error"]["message"]
    assert ROUTE in client_module.get("/openapi.json").json["paths"]


# ----------------------------------------------------------------------------- matching, landscape, evaluation
@pytest.fixture(scope="module")
def programme_matcher(fast_embedder, catalog):
    """The engine (fast real model) on the fixture catalog plus the example programmes."""
    from matcher.engine.matcher import Matcher

    return Matcher(fast_embedder).fit([*catalog, *PROGRAMMES.values()])


def test_the_day_is_injectable_and_moves_deadlines_to_the_next_round(programme_matcher):
    from matcher.domain.schema import Query
    from matcher.programmes.matching import match_programmes

    query = Query(task="programmes", text="Partnerschaftsprojekt unserer Stadt mit der Partnerkommune in Tansania",
                  city="Witten", project=ProjectFacts(applicant_type=MUN, abroad=True, partner_country="TZ"))

    def line(today):
        found = match_programmes(programme_matcher, query, k=20, today=today, suggest=0)
        nakopa = next(m for m in found.eligible if m.programme.id == "prg-101")
        return next(r.line for r in nakopa.rules if r.code == "deadline"), {m.programme.id for m in found.ineligible}
    before, _ = line(D(2027, 1, 1))
    after, excluded = line(D(2027, 6, 20))
    assert before == "• Nächste Frist: 15.01.2027 — in 2 Wochen"
    assert after == "• Nächste Frist: 15.01.2028 — in 29 Wochen (nächste Runde)"
    assert "prg-114" in excluded                                              # Ukraine only


def test_the_landscape_lists_the_funding_deadlines_of_the_next_six_months(programme_matcher):
    from matcher.landscape.funding import funding_deadlines
    from matcher.landscape.report import render_html

    deadlines = funding_deadlines(programme_matcher, TODAY)
    dates = [f.date for f in deadlines]
    assert dates == sorted(dates) and all(TODAY <= d <= TODAY + dt.timedelta(days=183) for d in dates)
    pairs = {(f.programme_id, f.date) for f in deadlines}
    assert {("prg-101", D(2027, 1, 15)), ("prg-108", D(2027, 1, 31)), ("prg-108", D(2027, 5, 31))} <= pairs
    assert not {p for p, _ in pairs} & {"prg-115", "prg-105", "prg-110"}     # closed, rolling, too late

    from matcher.engine.fields import FieldClassifier
    from matcher.landscape.build import build_landscape

    report = build_landscape(programme_matcher, FieldClassifier().fit(programme_matcher), "Witten", today=TODAY)
    assert report.funding == deadlines
    html = render_html(report)
    assert "Förderfristen der nächsten 6 Monate" in html and "15.01.2027" in html
    assert report.as_dict()["funding_deadlines"][0]["date"] == dates[0].isoformat()


def test_the_judged_set_has_enough_defended_judgements():
    from matcher.evaluation.judged import load_dataset

    root = FIXTURES.parent / "eval" / "programmes"
    ds = load_dataset(root)
    assert len(ds.queries) >= 25 and {q.task for q in ds.queries} == {"programmes"}
    assert {e.id for e in ds.catalog} == set(PROGRAMMES)
    rows = [line.split("\t") for line in (root / "qrels.tsv").read_text(encoding="utf-8").splitlines()]
    assert all(len(r) == 4 and r[3].strip() for r in rows)                   # every judgement has its note


@pytest.mark.numerics
def test_evaluate_reports_the_programmes_task_above_the_bar(default_embedder):
    from matcher.engine.matcher import Matcher
    from matcher.evaluation.judged import evaluate, load_dataset, matcher_ranker

    ds = load_dataset(FIXTURES.parent / "eval" / "programmes")
    report = evaluate(matcher_ranker(Matcher(default_embedder).fit(ds.catalog)), ds)
    assert report.per_task["programmes"]["ndcg@10"] >= 0.85, report.per_task


def test_erasure_removes_a_programme_and_a_suggested_partner_from_the_programme_audit(
        with_programmes, client_module, api_keys):
    copy = json.loads(PROGRAMMES["prg-109"].model_dump_json(exclude_none=True)) | {"id": "prg-erase"}
    assert client_module.post("/v1/entities", json=copy, headers=_auth(api_keys, "editor")).status_code == 201
    out = client_module.post(ROUTE, json=IDEA, headers=_auth(api_keys, "reader")).json
    partner = out["eligible"][0]["partners"][0]["id"]
    store = with_programmes.extensions["matcher"].store
    shown = json.dumps([e["shown"] for e in store.audit_entries(1000)])
    assert "prg-erase" in shown and partner in shown
    for entity_id in ("prg-erase", partner):
        r = client_module.delete(f"/v1/entities/{entity_id}?erase=true", headers=_auth(api_keys, "admin"))
        assert r.status_code == 200 and r.json["erased"] and r.json["audit_entries"] >= 1, r.json
    shown = json.dumps([e["shown"] for e in store.audit_entries(1000)])
    assert "prg-erase" not in shown and partner not in shown


def test_the_command_line_ranks_programmes_with_the_checklist():
    from click.testing import CliRunner

    from matcher.cli import cli

    res = CliRunner().invoke(cli, [
        "rank", "--catalog", str(FIXTURES / "programmes.jsonl"), "--task", "programmes", "--text",
        "Die Stadt möchte mit ihrer ukrainischen Partnerstadt Notstromaggregate beschaffen", "--city", "Bielefeld",
        "--applicant-type", "municipality", "--abroad", "--partner-country", "UA", "--amount", "60000",
        "--own-share", "0", "--start", "2027-02-01", "--as-of", "2026-12-03", "-k", "3"])
    assert res.exit_code == 0, res.output
    assert "1. Kommunale Partnerschaften mit der Ukraine: Kleinprojekte (prg-114" in res.output
    assert "✓ Kommunen sind antragsberechtigt" in res.output and "Nicht passend (mit Ausschlussgrund):" in res.output
    assert "✗ Eigenanteil 10 %, Ihr Budget sieht 0 % vor" in res.output                   # Nakopa, excluded
