"""Exports staff can open: XLSX header, CSV round trip (both delimiters), JSON, contact data only on request."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from openpyxl import load_workbook

from matcher import ValidationError
from matcher.batch.assignment import assign_advisors
from matcher.batch.export import (
    ASSIGNMENT_HEADER,
    CONTACT_COLUMNS,
    INVITATION_HEADER,
    export,
    invitation_table,
    write_table,
)
from matcher.batch.invitations import invitation_list
from matcher.batch.requests import AdvisorRequest
from matcher.engine.matcher import Matcher

AS_OF = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def fast_matcher(fast_embedder, catalog):
    """The fast real model: what is exported is beside the point of the model."""
    return Matcher(fast_embedder).fit(catalog)


@pytest.fixture(scope="module")
def invitations(fast_matcher):
    return invitation_list(fast_matcher, "evt-113", 8, quotas=["migrant_organisation:0.4"], max_per_city=2, waitlist=3,
                           as_of=AS_OF)


@pytest.fixture(scope="module")
def assignment(fast_matcher):
    requests = [AdvisorRequest(id="r1", text="Faire Beschaffung von Dienstkleidung", city="Münster"),
                AdvisorRequest(id="r2", text="Frankophone Vereine bei Projekten begleiten", city="Dortmund",
                               languages=["fr"]),
                AdvisorRequest(id="r3", text="Tigrinya-sprachige Familien", city="Köln", languages=["ti"]),
                AdvisorRequest(id="r4", text="Tigrinya-sprachige Familien", city="Bonn", languages=["ti"]),
                AdvisorRequest(id="r5", text="Tigrinya-sprachige Familien", city="Essen", languages=["ti"])]
    return assign_advisors(fast_matcher, requests, allow_partial=True, as_of=AS_OF)


def test_xlsx_opens_with_the_expected_header_and_rows(invitations, tmp_path):
    path = export(invitations, tmp_path / "einladung.xlsx")
    wb = load_workbook(path)
    ws = wb["Einladungen"]
    assert [c.value for c in ws[1]] == INVITATION_HEADER
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(invitations.invitees) + len(invitations.waitlist)
    first = rows[0]
    assert first[0] == "Einladung" and first[1] == 1 and first[2] == invitations.invitees[0].entity.name
    assert isinstance(first[5], float) and first[6]  # score as a number, reasons as text
    assert rows[-1][0] == "Warteliste"
    assert [c.value for c in wb["Vorgaben"][1]][:3] == ["Vorgabe", "eingehalten", "aufgehoben"]


def test_assignment_xlsx_has_its_header_and_the_blocked_request(assignment, tmp_path):
    wb = load_workbook(export(assignment, tmp_path / "zuordnung.xlsx"))
    ws = wb["Zuordnung"]
    assert [c.value for c in ws[1]] == ASSIGNMENT_HEADER
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    assert set(rows) == {"r1", "r2", "r3", "r4", "r5"}
    blocked = [r for r in rows.values() if r[3] is None]
    assert len(blocked) == 1 and "Tigrinya" in blocked[0][7]
    assert "Auslastung" in wb.sheetnames


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_round_trips(invitations, tmp_path, delimiter):
    path = export(invitations, tmp_path / "einladung.csv", delimiter=delimiter)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    header, rows = invitation_table(invitations)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        read = list(csv.reader(fh, delimiter=delimiter))
    assert read[0] == header
    assert len(read) == len(rows) + 1
    for written, original in zip(read[1:], rows):
        score = float(written[5].replace(",", ".")) if delimiter == ";" else float(written[5])
        assert score == pytest.approx(original[5], abs=1e-4)
        assert [w for k, w in enumerate(written) if k != 5] == [str(o) for k, o in enumerate(original) if k != 5]


def test_contact_data_only_on_request(invitations, tmp_path):
    without = export(invitations, tmp_path / "ohne.csv")
    with_contact = export(invitations, tmp_path / "mit.csv", include_contact=True)
    header_without = without.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    header_with = with_contact.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert not set(CONTACT_COLUMNS) & set(header_without)
    assert header_with[-len(CONTACT_COLUMNS):] == CONTACT_COLUMNS
    emails = [e.contact.email for e in (p.entity for p in invitations.invitees) if e.contact and e.contact.email]
    assert emails and emails[0] in with_contact.read_text(encoding="utf-8-sig")
    assert emails[0] not in without.read_text(encoding="utf-8-sig")
    as_json = json.loads(export(invitations, tmp_path / "ohne.json").read_text(encoding="utf-8"))
    assert "contact" not in as_json["invitees"][0]["entity"]


def test_json_holds_the_whole_result(assignment, tmp_path):
    data = json.loads(export(assignment, tmp_path / "zuordnung.json").read_text(encoding="utf-8"))
    assert data["optimal"] is True and data["complete"] is False
    assert {a["request"]["id"] for a in data["assignments"]} == {"r1", "r2", "r3", "r4", "r5"}
    assert data["blocked"][0]["constraint"] == "language"


def test_text_that_looks_like_a_formula_stays_text(tmp_path):
    write_table(["Name", "Score"], [["=HYPERLINK(\"x\")", 1.5]], tmp_path / "t.xlsx")
    cell = load_workbook(tmp_path / "t.xlsx").active["A2"]
    assert cell.value == "=HYPERLINK(\"x\")" and cell.data_type == "s"
    write_table(["Name", "Score"], [["=1+1", 1.5]], tmp_path / "t.csv")
    assert "'=1+1" in (tmp_path / "t.csv").read_text(encoding="utf-8-sig")


def test_an_unknown_extension_is_an_error(invitations, tmp_path):
    with pytest.raises(ValidationError, match=".xlsx"):
        export(invitations, tmp_path / "einladung.pdf")
