"""Real HTTP on loopback: the werkzeug server in-process, and gunicorn subprocesses killed mid-import."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from conftest import FIXTURES, POSTGRES_URL


def test_advisors_over_real_http(app, api_keys, live_server):
    base = live_server(app)
    r = requests.post(f"{base}/v1/recommendations/advisors", timeout=30,
                      headers={"Authorization": api_keys["reader"]},
                      json={"text": "Wir möchten Migrantenorganisationen in unsere Städtepartnerschaft einbinden",
                            "municipality": "mun-102", "k": 5})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert "ö" in r.content.decode("utf-8") or "ä" in r.content.decode("utf-8")   # UTF-8, not \\u escapes
    body = r.json()
    assert len(body["results"]) == 5 and body["id"].startswith("rec_")
    assert all(x["explanation"]["reasons"] for x in body["results"])
    assert requests.get(f"{base}/nowhere", timeout=5).json()["error"]["code"] == "not_found"


@pytest.fixture(scope="module")
def big_import():
    """10,000 recombined profiles as one JSON Lines body (~8 MB)."""
    from bench.generate_catalog import generate_catalog

    records = generate_catalog(FIXTURES / "catalog.jsonl", 10_000, seed=11)
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode("utf-8")


def _write_probe(database_url: str):
    """A function that tells whether a transaction is writing and not yet committed: SQLite's WAL
    grows past the page cache (2 MB), or PostgreSQL shows a backend that holds a transaction id."""
    if database_url.startswith("sqlite:///"):
        wal = database_url.removeprefix("sqlite:///") + "-wal"
        start = os.path.getsize(wal) if os.path.exists(wal) else 0
        return lambda: os.path.exists(wal) and os.path.getsize(wal) > start + 2_000_000
    engine = create_engine(POSTGRES_URL)

    def probe() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_xid IS NOT NULL "
                "AND state <> 'idle'")).scalar())
    return probe


@pytest.mark.slow
def test_server_killed_mid_import_restarts_with_all_or_none_of_it(any_database_url, seed_store, server_process,
                                                                   big_import):
    from matcher.store import Store

    url = any_database_url
    seed_store(url)
    store = Store(url)
    editor = {"Authorization": f"Bearer {store.create_key('editor')[1]}", "Content-Type": "application/x-ndjson"}
    count, version = store.count_entities(), store.catalog_version()
    server = server_process(url)
    writing = _write_probe(url)

    outcome: dict = {}

    def post_import():
        try:
            outcome["response"] = requests.post(f"{server.url}/v1/entities/import", data=big_import,
                                                headers=editor, timeout=120)
        except requests.RequestException as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=post_import)
    sender.start()
    deadline = time.monotonic() + 60
    while not writing():
        assert time.monotonic() < deadline and "response" not in outcome, \
            f"never saw the import writing: {outcome}\n{server.log()}"
        time.sleep(0.005)
    server.kill()                           # SIGKILL to master and worker, mid-transaction
    sender.join(30)
    assert "error" in outcome, "the import finished before the kill; the test proved nothing"

    restarted = server_process(url)
    page = requests.get(f"{restarted.url}/v1/entities?limit=1", headers=editor, timeout=30).json()
    ready = requests.get(f"{restarted.url}/readyz", timeout=30).json()
    assert (page["total"], ready["stored_catalog_version"]) in [(count, version), (count + 10_000, version + 1)]
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    # the store takes writes again
    again = requests.post(f"{restarted.url}/v1/entities/import", headers=editor, timeout=60,
                          data=big_import.split(b"\n", 1)[0])
    assert again.status_code == 200, again.text
    store.close()
