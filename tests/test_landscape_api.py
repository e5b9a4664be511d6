"""``/v1/landscape``: the report over HTTP as JSON, HTML and Excel; contacted pairs are never missing links."""

from __future__ import annotations

import io

import pytest


@pytest.fixture(scope="module")
def reader(api_keys):
    return {"Authorization": api_keys["reader"]}


def _pairs(report: dict) -> set[frozenset[str]]:
    return {frozenset((link["a"]["id"], link["b"]["id"])) for link in report["missing_links"]}


def test_landscape_json_has_coverage_and_missing_links_with_reasons(client, reader):
    r = client.get("/v1/landscape?city=Köln&radius_km=30", headers=reader)
    assert r.status_code == 200, r.json
    report = r.json
    assert report["area"]["title"] == "Köln und 30 km Umkreis"
    assert {row["field"] for row in report["coverage"]} == {f["id"] for f in report["fields"]}
    assert sum(row["total"] for row in report["coverage"]) > 0
    assert report["missing_links"] and all(link["reasons"] for link in report["missing_links"])
    assert all("contact" not in actor for actor in report["actors"])


def test_a_contacted_pair_is_never_a_missing_link(client, api_keys, reader):
    editor = {"Authorization": api_keys["editor"]}
    before = client.get("/v1/landscape?city=Köln&radius_km=30&limit=200", headers=reader).json
    link = before["missing_links"][0]
    a, b = link["a"]["id"], link["b"]["id"]
    asker, other = (a, b) if link["a"]["actor_type"] != "municipal_office" else (b, a)
    rec = client.post("/v1/recommendations/partners", headers=editor,
                      json={"organisation": asker, "k": 100}).json
    assert other in [x["entity"]["id"] for x in rec["results"]]
    r = client.post("/v1/feedback", headers=editor,
                    json={"recommendation_id": rec["id"], "entity_id": other, "outcome": "contacted"})
    assert r.status_code == 201
    after = client.get("/v1/landscape?city=Köln&radius_km=30&limit=200", headers=reader).json
    assert frozenset((a, b)) not in _pairs(after)
    assert after["excluded_pairs"].get("contacted", 0) >= 1


def test_html_report_is_self_contained_under_a_strict_csp(client, reader):
    r = client.get("/v1/landscape/report.html?city=Münster", headers=reader)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    page = r.get_data(as_text=True)
    assert "Wer arbeitet woran" in page and "<svg" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_excel_report_opens_with_openpyxl(client, reader):
    from openpyxl import load_workbook

    r = client.get("/v1/landscape/report.xlsx?city=Köln", headers=reader)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == 'attachment; filename="landschaft-koeln.xlsx"'
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["Abdeckung", "Namen", "Zuordnungen", "Fehlende Verbindungen", "Förderfristen"]
    assert wb["Abdeckung"]["A2"].value == "Handlungsfeld"


@pytest.mark.parametrize("query, field", [("city=Atlantis", "city"), ("", "city"),
                                          ("city=Köln&radius_km=0", "radius_km"), ("city=Köln&colour=blau", "colour")])
def test_bad_queries_are_a_422_naming_the_field(client, reader, query, field):
    r = client.get(f"/v1/landscape?{query}", headers=reader)
    assert r.status_code == 422
    assert set(r.json) == {"error"} and r.json["error"]["code"] == "validation_error"
    assert any(field in str(d.get("field", "")) for d in r.json["error"]["details"]), r.json


def test_the_landscape_needs_a_key_unless_recommendations_are_open(app, client, monkeypatch):
    assert client.get("/v1/landscape?city=Köln").status_code == 401
    monkeypatch.setitem(app.config, "OPEN_RECOMMENDATIONS", True)
    assert client.get("/v1/landscape?city=Köln").status_code == 200
