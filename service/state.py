"""The service's long-lived state: the store and the live matcher, built once per app.

Read through :func:`get_store` and :func:`get_live` (flaskr's ``get_db()``
pattern); :func:`init_app` loads the model and fits at start-up, never at
import.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from matcher.embedding import make_embedder
from matcher.live import LiveMatcher, StoreBackedEmbedder
from matcher.store import Store

__all__ = ["ServiceState", "init_app", "get_state", "get_state_of", "get_store", "get_live"]

EXTENSION = "matcher"


@dataclass
class ServiceState:
    store: Store
    live: LiveMatcher


def init_app(app: Flask) -> None:
    """Open the store (it must be migrated), load the model, fit the catalog.

    ``MODEL`` is a model spec (``"e5+use"``, ``"use"``, …) or, in tests, an
    embedder object. Raises StoreError / UnknownModelError: the app does not
    start half-configured.
    """
    cfg = app.config
    store = Store(cfg["DATABASE_URL"])
    store.check_schema()
    model = cfg["MODEL"]
    base = make_embedder(model, threads=cfg["THREADS"]) if isinstance(model, str) else model
    # backends load their weights on the first encode: do it now, not in the first request
    base.encode(["Migration und Entwicklung auf kommunaler Ebene"], "query")
    embedder = StoreBackedEmbedder(base, store, request_cache_size=int(cfg["REQUEST_CACHE_SIZE"]))
    live = LiveMatcher(store, embedder, refit_wait=float(cfg["REFIT_WAIT_SECONDS"])).fit()
    app.extensions[EXTENSION] = ServiceState(store=store, live=live)


def get_state_of(app: Flask) -> ServiceState:
    return app.extensions[EXTENSION]


def get_state() -> ServiceState:
    return get_state_of(current_app)  # type: ignore[arg-type]


def get_store() -> Store:
    return get_state().store


def get_live() -> LiveMatcher:
    return get_state().live
