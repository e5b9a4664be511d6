"""The vectors of request texts kept with the recommendations served (issue 18: training on 100,000 feedback
rows in under a minute from a fresh process): stored at serve time in the audit entry's transaction, read by
training instead of encoding, purged with the request texts after the retention period and on erasure.

Real parts: the fixture catalog with the real (fast) model, SQLite and PostgreSQL, the Flask app; encodes are
counted by a wrapper around the real embedder."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import update

NEEDS = [
    "Faire Beschaffung von Dienstkleidung für das Ordnungsamt",
    "Moderation eines Treffens von Migrantenvereinen aus verschiedenen Herkunftsländern im Rathaus",
    "Wir suchen eine Beratung zu Klimapartnerschaften mit Kommunen in Ghana",
]


class CountingEmbedder:
    """The real embedder, counting the texts that reach it, by role."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self.texts = {"query": [], "passage": []}

    def encode(self, texts, role):
        self.texts[role] += list(texts)
        return self.embedder.encode(texts, role)


@pytest.fixture
def served(make_app, any_database_url):
    """An app on each backend that has served the NEEDS once each (k = 10) with a take-up on each."""
    application = make_app(any_database_url)
    store = application.extensions["matcher"].store
    client = application.test_client()
    headers = {"Authorization": f"Bearer {store.create_key('editor', 'test')[1]}"}
    recs = []
    for text in NEEDS:
        r = client.post("/v1/recommendations/advisors", headers=headers, json={"text": text, "city": "Essen", "k": 10})
        assert r.status_code == 200, r.json
        recs.append(r.json)
        shown = [x["entity"]["id"] for x in r.json["results"]]
        assert client.post("/v1/feedback", headers=headers, json={"recommendation_id": r.json["id"],
                                                                   "entity_id": shown[2], "outcome": "accepted"}
                           ).status_code == 201
    return application, client, headers, recs


def _age(store, days: float) -> None:
    """Make everything in the audit log and the request vectors ``days`` days older."""
    from matcher.store import audit_log, request_vectors

    with store.db.write() as conn:
        for table, column in ((audit_log, audit_log.c.created_at), (request_vectors, request_vectors.c.used_at)):
            rows = conn.execute(table.select()).mappings().all()
            for row in rows:
                key = ({"id": row["id"]} if table is audit_log else
                       {"model_id": row["model_id"], "text_hash": row["text_hash"]})
                where = [table.c[k] == v for k, v in key.items()]
                conn.execute(update(table).where(*where).values({column.name: row[column.name] -
                                                                 dt.timedelta(days=days)}))


def test_the_request_vector_is_stored_at_serve_time_with_the_recommendation(served, fast_embedder):
    from matcher.store import request_key

    app, _, _, recs = served
    store = app.extensions["matcher"].store
    model = app.extensions["matcher"].live.embedder.model_id
    stored = store.request_vectors.get_many(model, [request_key(t) for t in NEEDS])
    assert len(stored) == len(NEEDS) == store.request_vectors.count()
    fresh = fast_embedder.encode(NEEDS, "query")
    for text, want in zip(NEEDS, fresh):
        assert float(stored[request_key(text)] @ want) == pytest.approx(1.0, abs=1e-5)
    # keyed by model: another model finds nothing (and encodes)
    assert store.request_vectors.get_many("another-model", [request_key(t) for t in NEEDS]) == {}
    # a request asked again shares the row; its last use moves on
    before = store.request_vectors.count()
    client, headers = served[1], served[2]
    assert client.post("/v1/recommendations/advisors", headers=headers,
                       json={"text": NEEDS[0], "city": "Essen"}).status_code == 200
    assert store.request_vectors.count() == before
    # a request without text stores none
    r = client.post("/v1/recommendations/partners", headers=headers, json={"organisation": "org-101"})
    assert r.status_code == 200, r.json
    assert store.request_vectors.count() == before


def test_training_in_a_fresh_process_encodes_no_stored_request_and_encodes_one_without(served, fast_embedder):
    from matcher.engine.matcher import Matcher
    from matcher.learning import train_ranker
    from matcher.live import StoreBackedEmbedder
    from matcher.live.rankers import feedback_events

    app, _, _, recs = served
    state = app.extensions["matcher"]
    store, index = state.store, state.live.current()[1].index_
    # an older entry, from before request vectors were kept: its request is stored, its vector is not
    old_text = "Beratung zur Städtepartnerschaft mit einer Stadt in Nicaragua"
    rec = store.record_recommendation(task="advisors", query={"k": 10},
                                      shown=[x["entity"]["id"] for x in recs[0]["results"]], model_id="m",
                                      catalog_version=1, role="editor",
                                      request={"task": "advisors", "text": old_text, "city": "Essen"})
    store.add_feedback(rec, recs[0]["results"][1]["entity"]["id"], "accepted")
    events = feedback_events(store)
    assert {e.query["text"] for e in events} == {*NEEDS, old_text}

    counting = CountingEmbedder(fast_embedder)
    fresh = Matcher(StoreBackedEmbedder(counting, store)).use_index(index)   # a new process: empty request cache
    ranker, metrics = train_ranker(fresh, feedback=events, tasks=["advisors"])
    assert metrics["recommendations"] == len(NEEDS) + 1 and metrics["pairs"] > 0
    assert counting.texts["query"] == [old_text], "a request with a stored vector was encoded again"
    assert counting.texts["passage"] == []
    assert fresh.embedder.request_cache.stored_hits == len(NEEDS)

    # the stored vectors are the ones encoding gives: the same ranker as a training that encodes every request
    encoding = CountingEmbedder(fast_embedder)
    again, _ = train_ranker(Matcher(encoding).use_index(index), feedback=events, tasks=["advisors"])
    assert sorted(encoding.texts["query"]) == sorted([*NEEDS, old_text])
    np.testing.assert_allclose(again.coefficients["advisors"], ranker.coefficients["advisors"], rtol=1e-4, atol=1e-6)


def test_purge_forgets_old_request_texts_and_their_vectors_and_keeps_the_rest(store):
    from matcher.live.rankers import feedback_events
    from matcher.store import request_key

    def serve(text):
        rec = store.record_recommendation(task="advisors", query={"text_chars": len(text)}, shown=["adv-1", "adv-2"],
                                          model_id="m/hand", catalog_version=1, role="editor",
                                          request={"task": "advisors", "text": text},
                                          request_vector=("m", np.full(4, 0.5, dtype=np.float32)))
        store.add_feedback(rec, "adv-2", "accepted")
        return rec

    old = serve("Eine alte Anfrage von Frau Beispiel aus Bottrop")
    _age(store, 200)
    new = serve("Eine neue Anfrage")
    assert store.request_vectors.count() == 2

    assert store.purge_requests(180) == {"requests": 1, "vectors": 1}
    assert store.audit.entry(old)["request"] is None
    assert store.audit.entry(old)["shown"] == ["adv-1", "adv-2"]       # the summary and what was shown stay
    assert store.audit.entry(new)["request"]["text"] == "Eine neue Anfrage"
    assert store.request_vectors.get_many("m", [request_key("Eine alte Anfrage von Frau Beispiel aus Bottrop")]) == {}
    assert set(store.request_vectors.get_many("m", [request_key("Eine neue Anfrage")])) == {request_key(
        "Eine neue Anfrage")}
    assert {e.recommendation_id for e in feedback_events(store)} == {new}   # nothing left to learn from the old
    assert store.purge_requests(180) == {"requests": 0, "vectors": 0}


def test_a_vector_still_in_use_by_a_newer_recommendation_outlives_the_older_text(store):
    from matcher.store import request_key

    text = "Dieselbe Anfrage zweimal gestellt"
    kwargs = dict(task="advisors", query={}, shown=["adv-1"], model_id="m/hand", catalog_version=1, role="editor",
                  request={"task": "advisors", "text": text}, request_vector=("m", np.ones(4, dtype=np.float32)))
    first = store.record_recommendation(**kwargs)
    _age(store, 200)
    second = store.record_recommendation(**kwargs)
    assert store.purge_requests(180) == {"requests": 1, "vectors": 0}
    assert store.audit.entry(first)["request"] is None and store.audit.entry(second)["request"]["text"] == text
    assert store.request_vectors.get_many("m", [request_key(text)])


def test_the_service_purges_at_its_start_after_the_retention_period(make_app, any_database_url, seed_store):
    seed_store(any_database_url)
    from matcher.store import Store

    store = Store(any_database_url)
    store.record_recommendation(task="advisors", query={}, shown=["adv-1"], model_id="m/hand", catalog_version=1,
                                role="editor", request={"task": "advisors", "text": "Alt"},
                                request_vector=("m", np.ones(4, dtype=np.float32)))
    _age(store, 31)
    store.close()
    app = make_app(any_database_url, seed=False, REQUEST_RETENTION_DAYS=30)
    state = app.extensions["matcher"]
    assert state.store.audit_entries(1)[0]["request"] is None and state.store.request_vectors.count() == 0
    assert state.retention.tick() is None   # not again within the hour


def test_matcher_db_purge_requests_says_in_german_what_it_deleted(runner, any_database_url):
    from matcher.cli import cli
    from matcher.store import Store

    store = Store(any_database_url)
    store.upgrade()
    store.record_recommendation(task="advisors", query={}, shown=["adv-1"], model_id="m/hand", catalog_version=1,
                                role="editor", request={"task": "advisors", "text": "Alt"},
                                request_vector=("m", np.ones(4, dtype=np.float32)))
    _age(store, 10)
    result = runner.invoke(cli, ["db", "purge-requests", "--database", any_database_url, "--days", "7"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 Anfragetexte und 1 Anfragevektoren gelöscht (älter als 7 Tage)."
    assert store.request_vectors.count() == 0
    result = runner.invoke(cli, ["db", "purge-requests", "--database", any_database_url, "--days", "0"])
    assert result.exit_code != 0
    store.close()


def test_erasure_deletes_the_vector_of_a_request_text_that_named_the_entity(served):
    from matcher.store import request_key

    app, client, headers, _ = served
    store = app.extensions["matcher"].store
    model = app.extensions["matcher"].live.embedder.model_id
    person = store.get_entity("adv-101")
    text = f"Wir möchten gern wieder mit {person.name} zur fairen Beschaffung arbeiten"
    r = client.post("/v1/recommendations/advisors", headers=headers, json={"text": text, "k": 5})
    assert r.status_code == 200, r.json
    assert store.request_vectors.get_many(model, [request_key(text)])
    kept = store.request_vectors.count() - 1

    report = store.delete_entity("adv-101", erase=True)
    assert report["request_vectors"] == 1
    assert store.request_vectors.get_many(model, [request_key(text)]) == {}
    assert store.request_vectors.count() == kept                     # the other requests' vectors stay
    assert person.name not in store.audit.entry(r.json["id"])["request"]["text"]
