"""Learning from feedback in the store (issue 18): „passt nicht“ lowers a candidate for that asker's similar
needs; learned ranker versions are trained, gated, activated and rolled back; replicas pick a new one up.

Real parts throughout: the fixture catalog with the real (fast) model, SQLite and PostgreSQL, the Flask app."""

from __future__ import annotations

import pytest

NEED = "Faire Beschaffung von Dienstkleidung für das Ordnungsamt"
SIMILAR = "Unser Ordnungsamt soll fair hergestellte Dienstkleidung bekommen: Beratung zur fairen Beschaffung"
UNRELATED = "Moderation eines Treffens von Migrantenvereinen aus verschiedenen Herkunftsländern im Rathaus"


def _ids(client, headers, text, k=100, **extra):
    r = client.post("/v1/recommendations/advisors", headers=headers, json={"text": text, "city": "Essen", "k": k,
                                                                           **extra})
    assert r.status_code == 200, r.json
    return r.json["id"], [x["entity"]["id"] for x in r.json["results"]]


@pytest.fixture
def keyed_app(make_app, any_database_url):
    application = make_app(any_database_url)
    store = application.extensions["matcher"].store
    keys = {name: {"Authorization": f"Bearer {store.create_key('editor', name)[1]}"} for name in ("a", "b")}
    return application, application.test_client(), keys


def test_passt_nicht_lowers_that_candidate_for_that_askers_next_similar_request(keyed_app):
    app, client, keys = keyed_app
    rec, before = _ids(client, keys["a"], NEED)
    declined = before[0]
    _, unrelated_before = _ids(client, keys["a"], UNRELATED)
    _, other_before = _ids(client, keys["b"], SIMILAR)
    _, similar_before = _ids(client, keys["a"], SIMILAR)
    assert declined in similar_before[:3]

    r = client.post("/v1/feedback", headers=keys["a"], json={"recommendation_id": rec, "entity_id": declined,
                                                              "outcome": "declined"})
    assert r.status_code == 201, r.json
    assert app.extensions["matcher"].store.declines.count() == 1

    _, similar_after = _ids(client, keys["a"], SIMILAR)
    assert similar_after.index(declined) > similar_before.index(declined), "not lowered for the similar need"
    assert [e for e in similar_after if e != declined][:5] == [e for e in similar_before if e != declined][:5]
    # the same need again: lowered too
    _, again = _ids(client, keys["a"], NEED)
    assert again.index(declined) > 0
    # another asker with the similar need, and the same asker with an unrelated need: unchanged
    assert _ids(client, keys["b"], SIMILAR)[1] == other_before
    assert _ids(client, keys["a"], UNRELATED)[1] == unrelated_before

    # „passt“ afterwards lifts it again
    rec2, _ = _ids(client, keys["a"], SIMILAR)
    r = client.post("/v1/feedback", headers=keys["a"], json={"recommendation_id": rec2, "entity_id": declined,
                                                              "outcome": "accepted"})
    assert r.status_code == 201, r.json
    assert _ids(client, keys["a"], SIMILAR)[1] == similar_before


def test_a_decline_by_an_asking_entity_follows_the_entity_not_the_key(keyed_app):
    _, client, keys = keyed_app
    body = {"text": NEED, "municipality": "mun-101", "k": 100}
    r = client.post("/v1/recommendations/advisors", headers=keys["a"], json=body)
    assert r.status_code == 200, r.json
    first = r.json["results"][0]["entity"]["id"]
    assert client.post("/v1/feedback", headers=keys["a"], json={"recommendation_id": r.json["id"], "entity_id": first,
                                                                 "outcome": "declined"}).status_code == 201
    # the same municipality asking through another key: still lowered
    after = client.post("/v1/recommendations/advisors", headers=keys["b"], json=body).json
    assert [x["entity"]["id"] for x in after["results"]].index(first) > 0


def test_erasure_removes_the_declines_of_and_by_an_entity(keyed_app):
    app, client, keys = keyed_app
    store = app.extensions["matcher"].store
    rec, shown = _ids(client, keys["a"], NEED, k=5)
    assert client.post("/v1/feedback", headers=keys["a"], json={"recommendation_id": rec, "entity_id": shown[0],
                                                                 "outcome": "declined"}).status_code == 201
    assert store.declines.count() == 1
    report = store.delete_entity(shown[0], erase=True)
    assert report["declines"] == 1 and store.declines.count() == 0
    entry = store.audit.entry(rec)
    assert shown[0] not in str(entry["request"]) and shown[0] not in entry["shown"]
