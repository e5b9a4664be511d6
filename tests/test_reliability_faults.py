"""Faults under the service without a server process: PostgreSQL stopped and started under it (a private
cluster, never the shared server), and a SQLite file that is full or read-only."""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event

from bench.reliability.faults import PostgresCluster, mount_tmpfs, store_matches
from bench.reliability.fuzz import error_shape_problem
from bench.reliability.report import record
from bench.reliability.sizes import current, is_full
from conftest import ROOT

ADVISORS = "/v1/recommendations/advisors"
NEED = {"text": "Beratung zur fairen Beschaffung für das Ordnungsamt", "city": "Essen", "k": 3}


def _entity(tag: str, i: int, size: int = 400) -> dict:
    return {"id": f"org-{tag}-{i}", "kind": "organisation", "name": f"Verein {tag} {i}", "city": "Essen",
            "topics": ["Fairer Handel", f"Thema {i}"],
            "description": (f"Eintrag {i} des Fehlertests {tag}: faire Beschaffung, Klimapartnerschaft. " * 80)[:size]}


def _assert_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert error_shape_problem(r.status_code, r.content_type, r.get_data(), dict(r.headers)) is None
    assert r.json["error"]["code"] == code, r.json
    return r.json["error"]


# ----------------------------------------------------------------------------- SQLite: disk full
def _limit_pages(store, extra_pages: int) -> None:
    """SQLite's max_page_count on every connection of the store: the file cannot grow past it (disk full)."""
    with store.engine.connect() as conn:
        limit = int(conn.exec_driver_sql("PRAGMA page_count").scalar()) + extra_pages

    @event.listens_for(store.engine, "connect")
    def _limit(dbapi_connection, _record):
        dbapi_connection.execute(f"PRAGMA max_page_count = {limit}")

    store.engine.dispose()
    store._page_limit = _limit


def _lift_page_limit(store) -> None:
    event.remove(store.engine, "connect", store._page_limit)
    store.engine.dispose()


@pytest.fixture
def full_disk(tmp_path, seeded_template, make_app):
    """An app whose SQLite file runs out of space: a tiny tmpfs where it may be mounted (root in CI),
    else SQLite's max_page_count. Yields (app, free_space, method)."""
    size = seeded_template.stat().st_size
    mount = mount_tmpfs(tmp_path / "tiny", size + 2 * 1024 * 1024) if is_full() else None
    if mount is not None:
        path = mount.path / "store.db"
        shutil.copyfile(seeded_template, path)
        filler = mount.path / "filler"
        filler.write_bytes(b"\0" * (mount.free_bytes() - 400 * 1024))   # ~400 KB left: a few writes fit
        app = make_app(f"sqlite:///{path}", seed=False)
        yield app, filler.unlink, "tmpfs"
        app.extensions["matcher"].store.close()
        mount.unmount()
        return
    path = tmp_path / "store.db"
    shutil.copyfile(seeded_template, path)
    app = make_app(f"sqlite:///{path}", seed=False)
    _limit_pages(app.extensions["matcher"].store, extra_pages=6)
    yield app, lambda: _lift_page_limit(app.extensions["matcher"].store), "max_page_count"


def test_a_full_disk_is_a_clear_503_loses_nothing_acknowledged_and_recovers(full_disk):
    app, free_space, method = full_disk
    store = app.extensions["matcher"].store
    client = app.test_client()
    editor = {"Authorization": f"Bearer {store.create_key('editor')[1]}"}
    version = store.catalog_version()
    acknowledged: dict[str, dict] = {}
    error = None
    for i in range(400):
        record_ = _entity("voll", i, size=4000)
        r = client.post("/v1/entities", headers=editor, json=record_)
        if r.status_code != 201:
            error = _assert_error(r, 503, "store_unavailable")
            break
        acknowledged[record_["id"]] = record_
    assert error is not None, "the database never filled up: the test proved nothing"
    assert "voll" in error["message"] and error["details"][0]["reason"] == "disk_full", error
    assert acknowledged, "not a single write fitted: the test proved nothing"

    # reads go on; writes (the audit entry of a recommendation is one) fail the same clear way
    assert client.get(f"/v1/entities/{next(iter(acknowledged))}", headers=editor).status_code == 200
    assert client.get("/readyz").status_code == 200
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    report = store_matches(store, acknowledged, version_before=version)
    assert report.ok, report

    free_space()
    again = client.post("/v1/entities", headers=editor, json=_entity("voll", 999))
    assert again.status_code == 201, again.get_data(as_text=True)[:300]
    assert client.post(ADVISORS, headers=editor, json=NEED).status_code == 200
    record("disk_full", method=method, writes_acknowledged=len(acknowledged),
           writes_found=len(acknowledged) - len(report.lost), lost=len(report.lost), error_status=503,
           recovered_without_restart=True, integrity="ok")


# ----------------------------------------------------------------------------- SQLite: read-only
def test_a_database_opened_read_only_is_refused_at_start_with_a_clear_message(tmp_path, seeded_template):
    """A read-only volume (SQLite's mode=ro URI): the service needs to write (audit log, jobs), so it does
    not start half-working; it says why, and the file is untouched."""
    from matcher.errors import StoreError
    from service import create_app

    path = tmp_path / "ro.db"
    shutil.copyfile(seeded_template, path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="schreibgeschützt"):
        create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///file:{path}?mode=ro&uri=true", "MODEL": "use",
                    "RATELIMIT_ENABLED": False})
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("file:*")) and not (ROOT / "file:").exists(), "a stray directory was created"


@contextmanager
def _read_only(path: Path, store):
    """Make the database file read-only under a running store: ``chattr +i`` (even root cannot write it)
    where permitted, else SQLite's ``PRAGMA query_only`` on every connection. Yields the method."""
    store.engine.dispose()
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    if done:
        try:
            store.engine.dispose()
            yield "chattr +i"
        finally:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
            store.engine.dispose()
        return

    def _query_only(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA query_only = ON")

    event.listen(store.engine, "connect", _query_only)
    store.engine.dispose()
    try:
        yield "PRAGMA query_only"
    finally:
        event.remove(store.engine, "connect", _query_only)
        store.engine.dispose()


def test_a_database_turned_read_only_serves_reads_refuses_writes_clearly_and_recovers(tmp_path, seeded_template,
                                                                                    make_app):
    path = tmp_path / "ro.db"
    shutil.copyfile(seeded_template, path)
    app = make_app(f"sqlite:///{path}", seed=False)
    store = app.extensions["matcher"].store
    client = app.test_client()
    editor = {"Authorization": f"Bearer {store.create_key('editor')[1]}"}
    count, version = store.count_entities(), store.catalog_version()

    with _read_only(path, store) as method:
        assert client.get("/v1/entities/adv-101", headers=editor).status_code == 200
        assert client.get("/readyz").status_code == 200
        errors = [_assert_error(client.post("/v1/entities", headers=editor, json=_entity("ro", 1)), 503,
                                "store_unavailable"),
                  _assert_error(client.post(ADVISORS, headers=editor, json=NEED), 503, "store_unavailable"),
                  _assert_error(client.delete("/v1/entities/adv-101", headers=editor), 503, "store_unavailable")]
        for error in errors:
            assert "schreibgeschützt" in error["message"] and error["details"][0]["reason"] == "read_only", error
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert (store.count_entities(), store.catalog_version()) == (count, version)
    assert client.post("/v1/entities", headers=editor, json=_entity("ro", 2)).status_code == 201
    record("read_only", method=method, writes_refused=len(errors), integrity="ok", recovered_without_restart=True)


# ----------------------------------------------------------------------------- PostgreSQL outage
@pytest.fixture
def private_postgres():
    cluster = PostgresCluster().start()
    yield cluster
    cluster.destroy()


def _wait_ready(client, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if client.get("/readyz").status_code == 200:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("the service did not recover after PostgreSQL came back")


def test_postgres_stopped_and_started_under_the_service(private_postgres, make_app):
    """Readiness goes 503, every request fails cleanly with 503 in the error shape while PostgreSQL is
    down, /healthz stays 200, and the service recovers by itself (no restart) once it is back."""
    url = private_postgres.url
    app = make_app(url)
    store = app.extensions["matcher"].store
    client = app.test_client()
    editor = {"Authorization": f"Bearer {store.create_key('editor')[1]}"}
    acknowledged: dict[str, dict] = {}
    version = store.catalog_version()
    outages = current().postgres_outages
    refused = recovered = 0
    for n in range(outages):
        r = client.post("/v1/entities", headers=editor, json=(e := _entity("pg", n)))
        assert r.status_code == 201, r.get_data(as_text=True)[:300]
        acknowledged[e["id"]] = e
        assert client.post(ADVISORS, headers=editor, json=NEED).status_code == 200

        private_postgres.stop(mode="immediate" if n % 2 else "fast")
        assert _assert_error(client.get("/readyz"), 503, "store_unavailable")
        assert client.get("/readyz").headers["Retry-After"]
        during = [client.post(ADVISORS, headers=editor, json=NEED),
                  client.post("/v1/entities", headers=editor, json=_entity("pg-down", n)),
                  client.get("/v1/entities/adv-101", headers=editor),
                  client.get("/v1/entities?limit=5", headers=editor)]
        for r in during:
            _assert_error(r, 503, "store_unavailable")
            refused += 1
        assert client.get("/healthz").status_code == 200

        private_postgres.start()
        _wait_ready(client)
        again = client.post("/v1/entities", headers=editor, json=(e := _entity("pg-after", n)))
        assert again.status_code == 201, again.get_data(as_text=True)[:300]
        acknowledged[e["id"]] = e
        assert client.post(ADVISORS, headers=editor, json=NEED).status_code == 200
        recovered += 1
    report = store_matches(store, acknowledged, version_before=version)
    assert report.ok, report
    record("postgres_outage", outages=outages, recovered_without_restart=recovered, requests_refused_503=refused,
           writes_acknowledged=len(acknowledged), writes_found=len(acknowledged) - len(report.lost))
