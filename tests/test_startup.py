"""A quick, talkative first start: the store is checked at once, the model is loaded and the catalog fitted
in the background, and until then ``/healthz`` answers, ``/readyz`` and every route that needs the matcher
say 503 "starting" with the progress, and routes that need only the store keep working.

The slowness of a real first start is made on demand where a test steps through it: the real (fast) model
behind a gate that lets one encode call through at a time. The gunicorn test starts for real: the USE model
on one thread encoding the fixture catalog into an empty store.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time

import pytest
import requests

from conftest import FIXTURES
from matcher.domain.schema import load_catalog, parse_entity
from matcher.engine.matcher import Matcher
from matcher.live import LiveMatcher, StoreBackedEmbedder
from matcher.store import Store
from matcher.text.profile import passages, profile_text

NEED = {"text": "Wir suchen Beratung zu fairer Beschaffung für unser Rathaus", "k": 3}
CATALOG = load_catalog(FIXTURES / "catalog.jsonl")


def _texts(entities) -> int:
    """What a first start encodes: every profile text and every distinct passage."""
    return len({profile_text(e) for e in entities}) + len({p for e in entities for p in passages(e)})


TO_ENCODE = _texts(CATALOG)


class GatedModel:
    """A real model whose encode calls wait until the test lets them through (a slow start, on demand)."""

    def __init__(self, model, fail: Exception | None = None):
        self.model, self.fail = model, fail
        self.model_id, self.dim = model.model_id, model.dim
        self._permits = threading.Semaphore(0)
        self._open = threading.Event()

    def allow(self, calls: int = 1) -> None:
        for _ in range(calls):
            self._permits.release()

    def open(self) -> None:
        self._open.set()
        self.allow(1000)

    def encode(self, texts, role):
        if not self._open.is_set() and not self._permits.acquire(timeout=60):
            raise TimeoutError("the test never let this encode through")
        if self.fail is not None:
            raise self.fail
        return self.model.encode(texts, role)


def _catalog_store(url: str) -> Store:
    """A migrated store holding the fixture catalog and no vectors (a fresh deployment)."""
    store = Store(url)
    store.upgrade()
    store.upsert_entities(CATALOG)
    return store


def _wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def _starting(response, stage: str) -> dict:
    """The 503 "starting" answer, in the one error shape, at ``stage``; returns its progress."""
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.headers["Retry-After"] == "5"
    error = response.json["error"]
    assert error["code"] == "starting" and error["message"].startswith("Der Dienst startet: ")
    progress = error["details"][0]
    assert progress["stage"] == stage, error
    return progress


# ------------------------------------------------------------------------------------ the library's hook
def test_fit_counts_the_texts_the_store_lacks_and_a_restart_on_a_full_store_counts_none(tmp_path, fast_embedder):
    store = _catalog_store(f"sqlite:///{tmp_path / 'm.db'}")
    first: list[tuple[str, int, int]] = []
    live = LiveMatcher(store, StoreBackedEmbedder(fast_embedder, store)).fit(
        progress=lambda *p: first.append(p))
    assert first[0] == ("catalog", 0, 0) and first[1] == ("encoding", 0, TO_ENCODE)
    encoding = [done for stage, done, total in first[1:] if total == TO_ENCODE]
    assert encoding == sorted(set(encoding)) and len(encoding) > 3          # one report per batch, counting up
    assert first[-1] == ("indexing", TO_ENCODE, TO_ENCODE)
    # what the model really encoded: those texts, and the engine's fixed domain text
    assert live.embedder.catalog_encoded == TO_ENCODE + 1

    again: list[tuple[str, int, int]] = []
    restarted = LiveMatcher(store, StoreBackedEmbedder(fast_embedder, store)).fit(progress=lambda *p: again.append(p))
    assert again == [("catalog", 0, 0), ("indexing", 0, 0)]
    assert restarted.embedder.encoded == 0
    store.close()


def test_fit_without_a_cache_lookup_counts_what_it_hands_the_embedder_and_nothing_it_reuses(fast_embedder):
    catalog = CATALOG[:30]
    reports: list[tuple[int, int]] = []
    fitted = Matcher(fast_embedder).fit(catalog, on_progress=lambda *p: reports.append(p))
    texts = _texts(catalog)
    assert reports[0] == (0, texts) and reports[-1] == (texts, texts)
    reused: list[tuple[int, int]] = []
    Matcher(fast_embedder).fit(catalog, reuse=fitted, on_progress=lambda *p: reused.append(p))
    assert reused == [(0, 0)]


# ------------------------------------------------------------------------------------ the service, in-process
@pytest.fixture
def starting_app(tmp_path, fast_embedder):
    """An app starting in the background on a store without vectors, its model gated; yields (app, model, keys)."""
    from service import create_app

    store = _catalog_store(f"sqlite:///{tmp_path / 'm.db'}")
    keys = {role: {"Authorization": f"Bearer {store.create_key(role)[1]}"} for role in ("reader", "editor")}
    store.close()
    model = GatedModel(fast_embedder)
    began = time.monotonic()
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}", "MODEL": model,
                      "RATELIMIT_ENABLED": False, "START_IN_BACKGROUND": True})
    assert time.monotonic() - began < 5, "create_app waited for the model"
    yield app, model, keys
    model.open()
    app.extensions["matcher"].startup.finished.wait(60)
    app.extensions["matcher"].store.close()


def test_while_starting_health_answers_and_matcher_routes_say_how_far_the_start_is(starting_app):
    app, model, keys = starting_app
    client, startup = app.test_client(), app.extensions["matcher"].startup

    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/metrics").status_code == 200   # process metrics while starting, catalog gauges later
    ready = client.get("/readyz")
    progress = _starting(ready, "model")
    assert (progress["done"], progress["total"]) == (0, 0) and progress["seconds"] >= 0
    assert ready.json["error"]["message"] == "Der Dienst startet: Das Sprachmodell wird geladen"
    # everything that needs the matcher: the same answer, at once
    _starting(client.post("/v1/recommendations/advisors", headers=keys["reader"], json=NEED), "model")
    _starting(client.get("/v1/landscape?city=Köln", headers=keys["reader"]), "model")
    _starting(client.post("/v1/jobs/invitations", headers=keys["reader"], json={"event": "evt-113", "size": 5}),
              "model")
    # what needs only the store works: catalog reads and writes
    assert client.get("/v1/entities/adv-101", headers=keys["reader"]).status_code == 200
    person = {"id": "adv-start", "kind": "advisor", "name": "Frühe Testperson", "city": "Minden",
              "description": "Berät Kommunen zu fairer Beschaffung von Dienstkleidung.", "languages": ["de"]}
    assert client.post("/v1/entities", headers=keys["editor"], json=person).status_code == 201
    # the page says so instead of hanging
    page = client.get("/")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert 'role="status"' in html and "Der Dienst startet: Das Sprachmodell wird geladen" in html
    assert "/static/starting.js" in html and "/static/page.js" not in html

    model.allow(1)                                   # the model is loaded; the first batch waits
    _wait_for(lambda: startup.progress().stage == "encoding")
    progress = _starting(client.get("/readyz"), "encoding")
    to_encode = _texts([*CATALOG, parse_entity(person)])     # the catalog as it was when the fit read it
    assert (progress["done"], progress["total"]) == (0, to_encode)
    model.allow(1)                                   # the profiles: one batch
    _wait_for(lambda: startup.progress().done > 0)
    ready = client.get("/readyz")
    assert _starting(ready, "encoding")["done"] == len(CATALOG) + 1     # the profile texts
    total = f"{to_encode:,}".replace(",", ".")
    assert re.fullmatch(rf"Der Dienst startet: Profile werden kodiert: \d+ von {re.escape(total)}",
                        ready.json["error"]["message"]), ready.json

    model.open()
    assert startup.finished.wait(60)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "ready"
    found = client.post("/v1/recommendations/advisors", headers=keys["reader"], json={**NEED, "k": 40})
    assert found.status_code == 200
    assert "adv-start" in [r["entity"]["id"] for r in found.json["results"]]   # written while starting
    assert client.get("/").status_code == 200


def test_a_start_that_fails_in_the_background_is_logged_and_reported_not_hidden(tmp_path, fast_embedder, caplog):
    from service import create_app

    _catalog_store(f"sqlite:///{tmp_path / 'm.db'}").close()
    model = GatedModel(fast_embedder, fail=RuntimeError("weights file /models/x.onnx truncated"))
    model.open()
    with caplog.at_level(logging.ERROR, logger="service.state"):
        app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}", "MODEL": model,
                          "OPEN_RECOMMENDATIONS": True, "RATELIMIT_ENABLED": False, "START_IN_BACKGROUND": True})
        assert app.extensions["matcher"].startup.finished.wait(60)
    client = app.test_client()
    for response in (client.get("/readyz"), client.get("/healthz"), client.post("/v1/recommendations/advisors",
                                                                                 json=NEED)):
        assert response.status_code == 503
        error = response.json["error"]
        assert error["code"] == "start_failed" and "Retry-After" not in response.headers
        assert error["message"].startswith("Der Dienst konnte nicht starten: unerwarteter Fehler (RuntimeError)")
        assert error["details"][0]["stage"] == "failed" and "x.onnx" not in response.get_data(as_text=True)
    assert "Der Dienst konnte nicht starten" in client.get("/").get_data(as_text=True)
    failure = [r for r in caplog.records if r.name == "service.state" and r.levelno == logging.ERROR]
    assert failure and "start failed at stage model" in failure[0].getMessage()
    assert "truncated" in failure[0].exc_text                     # the cause, with its traceback, in the log
    app.extensions["matcher"].store.close()


def test_an_unmigrated_store_still_stops_a_background_start_at_once(tmp_path, fast_embedder):
    from matcher.errors import StoreError
    from service import create_app

    with pytest.raises(StoreError, match="matcher db upgrade"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'leer.db'}", "MODEL": fast_embedder,
                    "START_IN_BACKGROUND": True})


def test_readyz_documents_the_starting_answer(app):
    spec = app.test_client().get("/openapi.json").json
    assert "starting" in spec["paths"]["/readyz"]["get"]["description"]
    assert "start_failed" in spec["paths"]["/healthz"]["get"]["description"]


# ------------------------------------------------------------------------------------ gunicorn, for real
def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.mark.alone
@pytest.mark.slow
def test_gunicorn_on_a_fresh_store_answers_health_at_once_and_counts_the_encoding_up(tmp_path, server_process):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    _catalog_store(url).close()
    server = server_process(url, wait=False, MATCHER_START_IN_BACKGROUND="true", MATCHER_OPEN_RECOMMENDATIONS="true")
    _wait_for(lambda: _port_open(server.port), timeout=60)
    port_open = time.monotonic()
    health = requests.get(f"{server.url}/healthz", timeout=30)
    first_answer = time.monotonic() - port_open
    assert health.status_code == 200 and health.json() == {"status": "ok"}

    answers, health_seconds, refused = [], [], None
    while True:
        ready = requests.get(f"{server.url}/readyz", timeout=5)
        if ready.status_code == 200:
            break
        assert ready.status_code == 503 and ready.headers["Retry-After"] == "5", ready.text
        answers.append(ready.json()["error"])
        t = time.monotonic()
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
        health_seconds.append(time.monotonic() - t)
        if refused is None and answers[-1]["details"][0]["stage"] == "encoding":
            t = time.monotonic()
            refused = requests.post(f"{server.url}/v1/recommendations/advisors", json=NEED, timeout=30)
            refused_seconds = time.monotonic() - t
        assert time.monotonic() - port_open < 180, server.log()
        time.sleep(0.1)
    ready_after = time.monotonic() - port_open

    print(f"\nfirst /healthz {first_answer:.2f} s after the port opened, /readyz 200 after {ready_after:.1f} s")
    assert all(a["code"] == "starting" and a["message"].startswith("Der Dienst startet: ") for a in answers)
    encoding = [a["details"][0] for a in answers if a["details"][0]["stage"] == "encoding"]
    assert {e["total"] for e in encoding} == {TO_ENCODE}
    done = [e["done"] for e in encoding]
    assert done == sorted(done) and len(set(done)) >= 2, done          # counting up, as the batches go
    assert any(re.search(r"Profile werden kodiert: \d+ von 1\.\d{3}$", a["message"]) for a in answers)
    assert max(health_seconds) < 1.0, health_seconds                  # never behind the encoding
    assert refused is not None and refused.status_code == 503 and refused_seconds < 2.0
    assert refused.json()["error"]["code"] == "starting"
    assert ready_after - first_answer > 2.0                           # health answered long before ready
    found = requests.post(f"{server.url}/v1/recommendations/advisors", json=NEED, timeout=30)
    assert found.status_code == 200 and len(found.json()["results"]) == 3


def test_a_start_begun_in_another_process_is_reported_failed_not_waited_for():
    """gunicorn --preload builds the app before the fork: the starting thread stays behind in the master."""
    from service.state import Startup

    startup = Startup()
    startup._pid = -1                                 # as if this process were a worker forked after the start began
    progress = startup.progress()
    assert progress.stage == "failed" and "--preload" in progress.error
