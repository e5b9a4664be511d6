"""Loading catalogs: a bad line names file, line and field, and nothing is half-loaded."""

from __future__ import annotations

import json

import pytest

from matcher import CatalogError, Query, load_catalog, parse_entity
from matcher.domain.schema import load_qrels, load_queries
from matcher.evaluation.judged import load_dataset

GOOD = {"id": "adv-1", "kind": "advisor", "name": "A", "description": "Beraterin.", "city": "Essen",
        "lat": 51.45, "lon": 7.01, "topics": ["Fairer Handel"], "languages": ["de", "FR"], "regions": ["NRW"],
        "capacity": 2}


def write_jsonl(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                    encoding="utf-8")
    return path


def test_fixture_catalog_loads_with_all_kinds(catalog):
    kinds = {e.kind for e in catalog}
    assert kinds == {"advisor", "organisation", "event", "municipality"}
    assert len(catalog) >= 150


def test_shared_dev_set_loads(tmp_path):
    from conftest import DEV_SET

    ds = load_dataset(DEV_SET)
    assert len(ds.catalog) == 86 and len(ds.queries) == 40 and ds.qrels


def test_bad_line_names_file_line_and_field_and_loads_nothing(tmp_path):
    bad = dict(GOOD, id="adv-2", lat=123.0)
    path = write_jsonl(tmp_path / "cat.jsonl", [GOOD, bad, dict(GOOD, id="adv-3")])
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    details = err.value.details
    assert details == [{"file": str(path), "line": 2, "field": "lat", "message": details[0]["message"]}]
    assert "nichts wurde geladen" in str(err.value)


def test_every_bad_line_is_reported(tmp_path):
    path = write_jsonl(tmp_path / "cat.jsonl", [GOOD, "{not json", dict(GOOD, id="x", kind="person"),
                                                dict(GOOD, id="y", colour="blue"), GOOD])
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    by_line = {d["line"]: d for d in err.value.details}
    assert by_line[2]["field"] == "(Zeile)"
    assert (by_line[3]["field"] == "kind" or "kind" in by_line[3]["message"].lower()
            or by_line[3]["field"] == "(Eintrag)")
    assert by_line[4]["field"].endswith("colour")
    assert by_line[5]["field"] == "id" and "doppelte" in by_line[5]["message"]


def test_unknown_fields_are_rejected_by_name():
    with pytest.raises(Exception, match="colour"):
        parse_entity(dict(GOOD, colour="blue"))


def test_kind_specific_field_on_the_wrong_kind_is_rejected():
    with pytest.raises(Exception, match="org_type"):
        parse_entity(dict(GOOD, org_type="civil_society"))


def test_languages_are_normalised_and_product_fields_accepted():
    e = parse_entity(dict(GOOD, evidence=["2024 beriet sie Hamm."], contact={"email": "a@example.org"},
                          partners=["org-1"]))
    assert e.languages == ["de", "fr"]
    assert e.texts() == ["Beraterin.", "2024 beriet sie Hamm."]


def test_non_utf8_file_is_a_clear_error(tmp_path):
    path = tmp_path / "cat.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + '{"name": "K\xf6ln"}'.encode("latin-1") + b"\n")
    with pytest.raises(CatalogError, match="UTF-8") as err:
        load_catalog(path)
    assert err.value.details[0]["line"] == 2


def test_nan_is_not_a_number_here(tmp_path):
    path = write_jsonl(tmp_path / "cat.jsonl", ['{"id": "a", "kind": "advisor", "name": "A", "lat": NaN, "lon": 1}'])
    with pytest.raises(CatalogError):
        load_catalog(path)


def test_json_list_file_loads(tmp_path):
    path = tmp_path / "cat.json"
    path.write_text(json.dumps([GOOD]), encoding="utf-8")
    assert [e.id for e in load_catalog(path)] == ["adv-1"]


def test_query_needs_text_or_from():
    with pytest.raises(Exception, match="text"):
        Query.model_validate({"task": "advisors"})
    assert Query.model_validate({"task": "partners", "from": "org-1"}).from_ == "org-1"


def test_queries_and_qrels_files(tmp_path):
    q = write_jsonl(tmp_path / "queries.jsonl", [{"id": "q1", "task": "advisors", "text": "x"}])
    assert load_queries(q)[0].id == "q1"
    r = tmp_path / "qrels.tsv"
    r.write_text("q1\tadv-1\t3\nq1\tadv-2\tzwei\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_qrels(r)
    assert err.value.details[0]["line"] == 2


def test_qrels_take_an_optional_note_column_and_name_file_and_line_otherwise(tmp_path):
    r = tmp_path / "qrels.tsv"
    r.write_text("q1\tadv-1\t3\tpasst genau: gleiche Stadt\nq1\tadv-2\t0\n", encoding="utf-8")
    assert load_qrels(r) == {"q1": {"adv-1": 3, "adv-2": 0}}
    r.write_text("q1\tadv-1\t3\tNotiz\nq1\tadv-2\nq1\tadv-3\t1\tNotiz\tzu viel\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_qrels(r)
    assert [(d["file"], d["line"]) for d in err.value.details] == [(str(r), 2), (str(r), 3)]
    assert "3 oder 4" in err.value.details[0]["message"] and "gefunden 2" in err.value.details[0]["message"]
    assert "gefunden 5" in err.value.details[1]["message"] and str(r) in str(err.value)
