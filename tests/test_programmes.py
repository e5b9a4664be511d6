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
    for change in ({"deadlines": {}}, {"min_amount": 10, "max_amount": 5}, {"eligibility": {"applicant_types": []}},
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
