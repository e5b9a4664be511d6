"""The store on SQLite and PostgreSQL: migrations, transactions, catalog, vectors, keys, audit, erasure."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, text

from matcher.domain.schema import parse_entity
from matcher.errors import ConflictError, StoreError, UnknownEntityError, ValidationError
from matcher.store import (
    Catalog,
    InvitationHistory,
    Store,
    api_keys,
    embeddings,
    entities,
    entity_text_keys,
    metadata,
)


def advisor(id: str = "adv-t1", **fields):
    return parse_entity({"id": id, "kind": "advisor", "name": f"Beraterin {id}", "city": "Köln",
                         "description": "Berät Kommunen zu fairer Beschaffung. Hat Projekte mit Ghana begleitet.",
                         "topics": ["Faire Beschaffung", "Ghana"], "languages": ["de", "en"],
                         "contact": {"email": f"{id}@example.org", "phone": "+49 221 1"}, **fields})


def organisation(id: str = "org-t1", **fields):
    return parse_entity({"id": id, "kind": "organisation", "name": f"Verein {id}", "city": "Bonn",
                         "org_type": "migrant_organisation", "topics": ["Diaspora"], **fields})


def test_unmigrated_database_is_refused_with_the_command_to_run(any_database_url):
    store = Store(any_database_url)
    with pytest.raises(StoreError, match="matcher db upgrade"):
        store.check_schema()
    store.upgrade()
    store.check_schema()
    assert store.catalog_version() == 0
    store.close()


def test_migrations_create_exactly_the_tables_the_code_uses(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert store.schema_revision() == store.head_revision()


def test_upgrade_twice_is_harmless(store):
    assert store.upgrade() == store.head_revision()


def test_entity_round_trip_keeps_every_field_including_contact(store):
    ent = advisor(regions=["Rheinland"], capacity=2, evidence=["2023 begleitete sie Bonn."])
    store.create_entity(ent)
    assert store.get_entity(ent.id) == ent


def test_every_catalog_write_bumps_the_version_once(store):
    v0 = store.catalog_version()
    assert store.create_entity(advisor("adv-a")) == v0 + 1
    assert store.replace_entity(advisor("adv-a", name="Neu")) == v0 + 2
    assert store.upsert_entities([advisor("adv-b"), organisation("org-b")]).catalog_version == v0 + 3
    assert store.delete_entity("adv-b")["catalog_version"] == v0 + 4
    assert store.catalog_version() == v0 + 4


def test_a_failed_write_changes_nothing(store):
    store.create_entity(advisor("adv-a"))
    version = store.catalog_version()
    with pytest.raises(ConflictError, match="adv-a"):
        store.create_entity(advisor("adv-a", name="Doppelt"))
    with pytest.raises(UnknownEntityError):
        store.replace_entity(advisor("adv-missing"))
    with pytest.raises(UnknownEntityError):
        store.delete_entity("adv-missing")
    assert store.catalog_version() == version
    assert store.get_entity("adv-a").name == "Beraterin adv-a"


def test_bulk_write_is_all_or_nothing_when_it_fails_after_writing_rows(store, monkeypatch):
    store.create_entity(advisor("adv-a"))
    version = store.catalog_version()

    def fail(conn):  # the last step of the transaction: every row is written by now
        raise RuntimeError("Stromausfall")

    monkeypatch.setattr(Catalog, "bump_version", staticmethod(fail))
    with pytest.raises(RuntimeError):
        store.upsert_entities([advisor("adv-a", name="Neu"), advisor("adv-new1"), organisation("org-new2")])
    monkeypatch.undo()
    assert store.catalog_version() == version
    assert store.count_entities() == 1 and store.get_entity("adv-a").name == "Beraterin adv-a"


def test_a_value_the_database_refuses_is_a_validation_error(store):
    bad = advisor("adv-nul", description="Text mit \x00 Nullzeichen")
    if store.dialect == "sqlite":  # SQLite stores NUL characters as they are
        store.create_entity(bad)
        return
    with pytest.raises(ValidationError):
        store.create_entity(bad)
    assert store.count_entities() == 0


def test_bulk_write_rejects_duplicate_ids_before_writing(store):
    with pytest.raises(ValidationError, match="Doppelte"):
        store.upsert_entities([advisor("adv-a"), advisor("adv-a")])
    assert store.count_entities() == 0


def test_upsert_reports_created_and_updated(store):
    store.create_entity(advisor("adv-a"))
    report = store.upsert_entities([advisor("adv-a", name="Neu"), advisor("adv-b")])
    assert (report.created, report.updated, report.imported) == (1, 1, 2)
    assert store.get_entity("adv-a").name == "Neu"


def test_list_filters_by_kind_city_and_topic_and_pages_by_id(store):
    store.upsert_entities([advisor(f"adv-{i}") for i in range(5)] + [organisation("org-1"), organisation("org-2")])
    items, total = store.list_entities(kind="advisor", limit=2, offset=1)
    assert total == 5 and [e.id for e in items] == ["adv-1", "adv-2"]
    assert store.list_entities(city="  KÖLN ")[1] == 5
    assert store.list_entities(topic="diaspora")[1] == 2
    assert store.list_entities(kind="organisation", city="Köln")[1] == 0


def test_snapshot_returns_the_whole_catalog_ordered_by_id(store):
    store.upsert_entities([organisation("org-b"), advisor("adv-z"), advisor("adv-a")])
    version, catalog = store.snapshot()
    assert version == store.catalog_version()
    assert [e.id for e in catalog] == ["adv-a", "adv-z", "org-b"]


def test_vector_cache_round_trips_float32_per_model(store):
    v = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    store.vectors.put_many("m1", {"a": v[0], "b": v[1]})
    store.vectors.put_many("m1", {"a": v[2]})          # already stored: kept, not an error
    store.vectors.put_many("m2", {"a": v[2]})
    got = store.vectors.get_many("m1", ["a", "b", "c"])
    assert set(got) == {"a", "b"}
    # stored as bytes: a vector comes back bit for bit (no arithmetic in between)
    assert got["a"].tobytes() == v[0].astype("<f4").tobytes()
    assert store.vectors.get_many("m2", ["a"])["a"].tobytes() == v[2].astype("<f4").tobytes()
    assert store.vectors.count() == 3


def test_keys_are_stored_as_hashes_only_and_can_be_revoked(store):
    key, secret = store.create_key("editor", "Büro Köln")
    with store.engine.connect() as conn:
        stored = [str(v) for row in conn.execute(select(api_keys)) for v in row]
    assert not any(secret in v or secret[-20:] in v for v in stored)
    found = store.authenticate(secret)
    assert found is not None and found.id == key.id and found.role == "editor"
    assert found.allows("reader") and found.allows("editor") and not found.allows("admin")
    assert store.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.authenticate("mk_nope_x") is None and store.authenticate("garbage") is None
    store.revoke_key(key.id)
    assert store.authenticate(secret) is None
    assert store.list_keys()[0].revoked_at is not None
    with pytest.raises(UnknownEntityError):
        store.revoke_key("missing")
    with pytest.raises(ValidationError):
        store.create_key("superuser")


def test_feedback_needs_a_served_recommendation_that_showed_the_entity(store):
    store.upsert_entities([advisor("adv-a"), advisor("adv-b")])
    rec = store.record_recommendation(task="advisors", query={"k": 2}, shown=["adv-a"], model_id="m",
                                      catalog_version=1, role="reader")
    assert store.add_feedback(rec, "adv-a", "accepted") > 0
    with pytest.raises(ValidationError, match="nicht Teil"):
        store.add_feedback(rec, "adv-b", "accepted")
    with pytest.raises(UnknownEntityError):
        store.add_feedback("rec_missing", "adv-a", "accepted")
    with pytest.raises(ValidationError):
        store.add_feedback(rec, "adv-a", "liked")


def test_feedback_is_bound_to_its_key_and_stored_once_on_every_backend(store):
    store.upsert_entities([advisor("adv-a")])
    rec = store.record_recommendation(task="advisors", query={"k": 1}, shown=["adv-a"], model_id="m",
                                      catalog_version=1, role="editor", key_id="key-1")
    first = store.record_feedback(rec, "adv-a", "contacted", key_id="key-1", tab=None)
    assert first[1] is True
    assert store.record_feedback(rec, "adv-a", "contacted", key_id="key-1", tab=None) == (first[0], False)
    assert store.record_feedback(rec, "adv-a", "accepted", key_id="key-1", tab=None)[1] is True
    with pytest.raises(UnknownEntityError):
        store.record_feedback(rec, "adv-a", "declined", key_id="key-2", tab=None)
    assert len(store.feedback_for("adv-a")) == 2


def test_erasure_removes_entity_vectors_feedback_and_personal_data_in_the_audit_log(store):
    a, b = advisor("adv-a"), advisor("adv-b", description="Ganz andere Beschreibung der zweiten Person.")
    store.upsert_entities([a, b])
    vec = np.ones(4, dtype=np.float32)
    store.vectors.put_many("m", {h: vec for h in entity_text_keys(a) | entity_text_keys(b)})
    shared = entity_text_keys(a) & entity_text_keys(b)          # e.g. the same topic list
    rec = store.record_recommendation(task="advisors", query={"from": "adv-a", "k": 2}, shown=["adv-b", "adv-a"],
                                      model_id="m", catalog_version=1, role="reader", asker_id="adv-a")
    store.add_feedback(rec, "adv-a", "contacted")
    store.add_feedback(rec, "adv-b", "accepted")

    report = store.delete_entity("adv-a", erase=True)

    assert report["erased"] and report["feedback"] == 1 and report["audit_entries"] == 1
    assert report["vectors"] == len(entity_text_keys(a) - shared)
    with pytest.raises(UnknownEntityError):
        store.get_entity("adv-a")
    remaining = set(store.vectors.get_many("m", list(entity_text_keys(a) | entity_text_keys(b))))
    assert remaining == entity_text_keys(b)                       # b's vectors (shared ones too) stay
    assert store.feedback_for("adv-a") == [] and len(store.feedback_for("adv-b")) == 1
    entry = store.audit_entries()[0]
    dump = repr(entry)
    assert "adv-a" not in dump
    assert entry["shown"][0] == "adv-b" and entry["shown"][1].startswith("gelöscht-")
    assert entry["asker_id"] == entry["shown"][1] == entry["query"]["from"]


def test_plain_delete_keeps_feedback_and_audit_but_drops_vectors(store):
    a = advisor("adv-a")
    store.create_entity(a)
    store.vectors.put_many("m", {h: np.ones(4, dtype=np.float32) for h in entity_text_keys(a)})
    rec = store.record_recommendation(task="advisors", query={}, shown=["adv-a"], model_id="m",
                                      catalog_version=1, role="reader")
    store.add_feedback(rec, "adv-a", "declined")
    report = store.delete_entity("adv-a")
    assert report["vectors"] == len(entity_text_keys(a))
    assert store.vectors.count() == 0
    assert len(store.feedback_for("adv-a")) == 1
    assert store.audit_entries()[0]["shown"] == ["adv-a"]


def test_erasure_is_one_transaction_across_the_repositories(store, monkeypatch):
    a = advisor("adv-a")
    store.create_entity(a)
    store.vectors.put_many("m", {h: np.ones(4, dtype=np.float32) for h in entity_text_keys(a)})
    rec = store.record_recommendation(task="advisors", query={}, shown=["adv-a"], model_id="m",
                                      catalog_version=1, role="reader", asker_id="adv-a")
    store.add_feedback(rec, "adv-a", "contacted")
    version = store.catalog_version()

    def fail(conn, entity_id):  # the invitations go last: catalog, vectors, feedback and audit are changed by now
        raise RuntimeError("Stromausfall")

    monkeypatch.setattr(InvitationHistory, "delete_entity", staticmethod(fail))
    with pytest.raises(RuntimeError):
        store.delete_entity("adv-a", erase=True)
    monkeypatch.undo()
    assert store.catalog_version() == version and store.get_entity("adv-a") == a
    assert store.vectors.count() == len(entity_text_keys(a))
    assert len(store.feedback_for("adv-a")) == 1 and store.audit_entries()[0]["asker_id"] == "adv-a"


def test_a_transaction_of_ones_own_commits_at_its_end_and_rolls_back_as_a_whole(store):
    with store.db.write() as conn:
        store.catalog.insert(conn, [advisor("adv-a"), advisor("adv-b")], created={})
        store.catalog.bump_version(conn)
    assert store.count_entities() == 2 and store.catalog_version() == 1
    with pytest.raises(RuntimeError), store.db.write() as conn:
        store.catalog.delete_rows(conn, ["adv-a"])
        store.catalog.bump_version(conn)
        raise RuntimeError("Stromausfall")
    assert store.count_entities() == 2 and store.catalog_version() == 1
    with pytest.raises(ConflictError), store.db.write() as conn:   # translated like every store call
        store.catalog.insert(conn, [advisor("adv-b")], created={})
    with store.db.read() as conn:
        assert conn.execute(select(entities.c.id).order_by(entities.c.id)).scalars().all() == ["adv-a", "adv-b"]


def test_unreachable_database_raises_store_error_not_a_driver_error(tmp_path):
    store = Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(StoreError, match="nicht erreichbar"):
        store.catalog_version()


def test_sqlite_store_runs_in_wal_mode(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.upgrade()
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


def test_vectors_table_holds_no_request_texts(store, fast_embedder):
    """Catalog texts and fit-time texts are stored; request texts stay in process memory."""
    from matcher.live import StoreBackedEmbedder

    emb = StoreBackedEmbedder(fast_embedder, store)
    emb.encode(["Frau Müller aus dem Ordnungsamt sucht Beratung"], "query")
    assert store.vectors.count() == 0
    with emb.persisting():
        emb.encode(["Referenztext der Domäne"], "query")
    emb.encode(["Ein Profiltext"], "passage")
    with store.engine.connect() as conn:
        assert conn.execute(select(embeddings.c.model_id)).scalars().all() == [fast_embedder.model_id] * 2
