"""The service's long-lived state: the store and the live matcher, built once per app.

Read through :func:`get_store` and :func:`get_live` (flaskr's ``get_db()``
pattern). :func:`init_app` opens and checks the store at once; loading the
model and fitting the catalog (a minute and more on a fresh store) run in a
background thread when ``START_IN_BACKGROUND`` is set, so that ``/healthz``
answers at once and ``/readyz`` can tell how far the start is. Until then
:func:`get_live` raises :class:`ServiceStarting` (503, with the progress).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from matcher import settings
from matcher.engine.embedding import make_embedder
from matcher.errors import MatcherError
from matcher.live import LiveMatcher, RequestRetention, StoreBackedEmbedder
from matcher.store import Store

from .errors import ApiError

__all__ = ["ServiceState", "StartProgress", "Startup", "ServiceNotReady", "ServiceStarting", "ServiceStartFailed",
           "init_app", "get_state", "get_state_of", "get_store", "get_live"]

EXTENSION = "matcher"
WARM_UP_TEXT = "Migration und Entwicklung auf kommunaler Ebene"
# what the start is doing, in German, by stage (LiveMatcher.fit reports catalog, encoding, indexing)
STAGES = {
    "model": "Das Sprachmodell wird geladen",
    "catalog": "Der Katalog wird gelesen",
    "encoding": "Profile werden kodiert: {done} von {total}",
    "indexing": "Der Katalog wird indiziert",
}

log = logging.getLogger(__name__)


def _de_number(n: int) -> str:
    return f"{n:,}".replace(",", ".")


@dataclass(frozen=True)
class StartProgress:
    """Where the start is: ``stage`` (model, catalog, encoding, indexing, ready or failed), counts while encoding."""

    stage: str
    done: int = 0
    total: int = 0
    seconds: float = 0.0          # since the start began
    error: str | None = None      # why it failed (German where the error is ours)

    @property
    def ready(self) -> bool:
        return self.stage == "ready"

    def describe(self) -> str:
        """The stage in German: "Profile werden kodiert: 83 von 170"."""
        return STAGES.get(self.stage, self.stage).format(done=_de_number(self.done), total=_de_number(self.total))

    def details(self) -> list[dict[str, Any]]:
        detail: dict[str, Any] = {"stage": self.stage, "done": self.done, "total": self.total,
                                  "seconds": round(self.seconds, 1)}
        if self.error is not None:
            detail["error"] = self.error
        return [detail]


class Startup:
    """The progress of one start, written by the starting thread and read by request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._began = time.monotonic()
        self._pid = os.getpid()
        self._stage, self._done, self._total, self._error = "model", 0, 0, None
        self._seconds: float | None = None    # frozen when the start ends
        self.finished = threading.Event()     # set when ready or failed

    def report(self, stage: str, done: int = 0, total: int = 0) -> None:
        with self._lock:
            self._stage, self._done, self._total = stage, done, total

    def succeed(self) -> None:
        with self._lock:
            self._stage, self._seconds = "ready", time.monotonic() - self._began
        self.finished.set()

    def fail(self, reason: str) -> None:
        with self._lock:
            self._error, self._seconds = reason, time.monotonic() - self._began
            self._stage = "failed"
        self.finished.set()

    def progress(self) -> StartProgress:
        """A consistent snapshot (stage and counts from the same report)."""
        with self._lock:
            if self._stage not in ("ready", "failed") and self._pid != os.getpid():
                # threads do not survive a fork: an app created before it (gunicorn --preload) never gets ready here
                return StartProgress("failed", error="Der Start lief in einem anderen Prozess (gunicorn --preload?); "
                                                     "bitte ohne --preload starten")
            seconds = self._seconds if self._seconds is not None else time.monotonic() - self._began
            return StartProgress(self._stage, self._done, self._total, seconds, self._error)


class ServiceNotReady(ApiError):
    """The matcher is not there yet (starting) or will not come (the start failed): 503."""

    status = 503

    def __init__(self, message: str, progress: StartProgress):
        super().__init__(message, progress.details())
        self.progress = progress


class ServiceStarting(ServiceNotReady):
    code = "starting"
    retry_after = 5


class ServiceStartFailed(ServiceNotReady):
    code = "start_failed"


@dataclass
class ServiceState:
    store: Store
    live: LiveMatcher             # fitted once ``startup`` is ready
    startup: Startup
    retention: RequestRetention   # purges request texts and their vectors after MATCHER_REQUEST_RETENTION_DAYS

    def not_ready(self) -> ServiceNotReady | None:
        """The error to answer with while the matcher is not (or never will be) ready; None when ready."""
        progress = self.startup.progress()
        if progress.ready:
            return None
        if progress.stage == "failed":
            return ServiceStartFailed(f"Der Dienst konnte nicht starten: {progress.error}. Bitte das Protokoll des "
                                      "Dienstes prüfen und ihn neu starten", progress)
        return ServiceStarting(f"Der Dienst startet: {progress.describe()}", progress)


def init_app(app: Flask) -> None:
    """Open the store (it must be migrated) and build the model; load it and fit the catalog.

    ``MODEL`` is a model spec (``"e5+use"``, ``"use"``, …) or, in tests, an
    embedder object. The store and the model spec are checked at once: a
    StoreError / UnknownModelError stops the app before it serves. With
    ``START_IN_BACKGROUND`` the model is loaded and the catalog fitted in a
    thread (the app serves meanwhile, see the module doc); without it here,
    and its errors are raised.
    """
    cfg = app.config
    store = Store(cfg["DATABASE_URL"])
    store.check_schema()
    model = cfg["MODEL"]
    base = make_embedder(model, threads=cfg["THREADS"]) if isinstance(model, str) else model
    window = cfg["ENCODE_BATCH_WINDOW"]
    embedder = StoreBackedEmbedder(base, store, request_cache_size=int(cfg["REQUEST_CACHE_SIZE"]),
                                   batch_window=None if window is None else float(window))
    index_dir = cfg["INDEX_DIR"]
    live = LiveMatcher(store, embedder, refit_wait=float(cfg["REFIT_WAIT_SECONDS"]),
                       index_dir=None if index_dir is False else Path(index_dir or settings.index_dir()))
    state = ServiceState(store=store, live=live, startup=Startup(),
                         retention=RequestRetention(store, float(cfg["REQUEST_RETENTION_DAYS"])))
    state.retention.tick()   # at the start, then at most hourly from the recommendations served
    app.extensions[EXTENSION] = state
    if not cfg["START_IN_BACKGROUND"]:
        _start(state, base)
        return
    threading.Thread(target=_start_in_background, args=(state, base), name="matcher-start", daemon=True).start()


def _start(state: ServiceState, model: Any) -> None:
    """Load the model, fit the catalog, and say so in ``state.startup``."""
    started = time.monotonic()
    state.startup.report("model")
    # the catalog's index file is mapped while the model loads: they overlap where they leave the
    # interpreter lock (reading files, the model's native code)
    preload = threading.Thread(target=state.live.preload, name="matcher-index-read", daemon=True)
    preload.start()
    # backends load their weights on the first encode: do it now, not in the first request
    model.encode([WARM_UP_TEXT], "query")
    preload.join()
    log.info("model %s loaded in %.1f s", state.live.embedder.model_id, time.monotonic() - started)
    state.live.fit(progress=state.startup.report)
    if state.live.matcher_.confidence_ is None:   # the answers say it too (assessment.calibrated false)
        log.warning("no confidence calibration: %s", state.live.matcher_.confidence_status_)
    state.startup.succeed()
    log.info("ready after %.1f s: %d entities, %d texts encoded", time.monotonic() - started,
             len(state.live.matcher_.entities_), state.live.embedder.catalog_encoded)


def _start_in_background(state: ServiceState, model: Any) -> None:
    try:
        _start(state, model)
    except Exception as exc:  # the start's end, whatever it is, is what /readyz reports
        reason = exc.message.rstrip(".") if isinstance(exc, MatcherError) else \
            f"unerwarteter Fehler ({type(exc).__name__})"
        log.exception("start failed at stage %s: the service will not become ready",
                      state.startup.progress().stage)
        state.startup.fail(reason)


def get_state_of(app: Flask) -> ServiceState:
    return app.extensions[EXTENSION]


def get_state() -> ServiceState:
    return get_state_of(current_app)  # type: ignore[arg-type]


def get_store() -> Store:
    return get_state().store


def get_live() -> LiveMatcher:
    """The fitted live matcher.

    Raises:
        ServiceStarting: the start is still loading the model or fitting the catalog (503, with progress).
        ServiceStartFailed: the start failed (503); the process needs a restart.
    """
    state = get_state()
    error = state.not_ready()
    if error is not None:
        raise error
    return state.live
