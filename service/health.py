"""Operations: ``/healthz`` (alive), ``/readyz`` (store, schema, model, index), ``/metrics``, ``/openapi.json``;
and the 503 "starting" answer (JSON, or a German page for ``/``) while the service starts (:mod:`service.state`)."""

from __future__ import annotations

import logging
import os

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from matcher.errors import NotFittedError, StoreError

from .errors import error_response
from .metrics import metrics_response
from .models import HealthOut, ReadyOut
from .openapi import documented, openapi_document
from .state import ServiceNotReady, ServiceStartFailed, get_live, get_state, get_store
from .web import SECURITY_HEADERS

__all__ = ["bp", "init_app"]

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
PAGE_ENDPOINT = "web.index"   # the web page: while the start runs it says so as a page, not as JSON


@bp.get("/healthz")
@documented("Lebt der Prozess?",
            description="Antwortet sofort, auch während des Starts (siehe /readyz). Ist der Start gescheitert, "
                        "503 mit error.code start_failed: der Prozess wird nie bereit und muss neu starten.",
            responses={200: HealthOut})
def healthz() -> ResponseReturnValue:
    error = get_state().not_ready()
    if isinstance(error, ServiceStartFailed):
        raise error
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@documented("Bereit: Datenbank erreichbar und migriert, Modell geladen, Katalog indiziert",
            description="Während des Starts 503 mit error.code starting, einer deutschen Meldung wie „Der Dienst "
                        "startet: Profile werden kodiert: 83 von 170 …“, dem Fortschritt in error.details "
                        "(stage: model, catalog, encoding oder indexing; done, total, seconds) und Retry-After. "
                        "So antworten dann auch alle Endpunkte, die den Index brauchen (Empfehlungen, Aufträge, "
                        "Landschaftsbericht); Katalog, Rückmeldungen und Schlüssel gehen schon. Ist der Start "
                        "gescheitert: 503 start_failed mit dem Grund.",
            responses={200: ReadyOut})
def readyz() -> ResponseReturnValue:
    store, live = get_store(), get_live()
    stored = store.catalog_version()           # StoreError → 503
    revision = store.schema_revision()
    if revision != current_app.config["SCHEMA_HEAD"]:
        raise StoreError("Die Datenbank ist nicht auf dem erwarteten Stand: `matcher db upgrade` ausführen",
                         [{"current": revision, "head": current_app.config["SCHEMA_HEAD"]}])
    version, matcher = live.state_
    return jsonify(ReadyOut(status="ready", catalog_version=version, stored_catalog_version=stored,
                            entities=len(matcher.entities_), model=matcher.model_id,
                            schema_revision=revision, worker=os.getpid()).model_dump())


@bp.get("/metrics")
@documented("Prometheus-Metriken", responses={200: ("text/plain", {"type": "string"})})
def metrics() -> ResponseReturnValue:
    return metrics_response()


@bp.get("/openapi.json")
@documented("Diese Beschreibung der API (OpenAPI 3.1)", responses={200: ("application/json", {"type": "object"})})
def openapi() -> ResponseReturnValue:
    doc = current_app.extensions.get("matcher_openapi")
    if doc is None:
        doc = current_app.extensions["matcher_openapi"] = openapi_document(current_app)
    return jsonify(doc)


def _not_ready(exc: ServiceNotReady) -> Response:
    """503 while the matcher is not ready: the error shape with Retry-After, or for the web page a German
    page that shows the progress and reloads itself when the service is ready."""
    retry = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry)} if retry else {}
    if request.endpoint == PAGE_ENDPOINT:
        html = render_template("starting.html", message=exc.message, progress=exc.progress)
        return Response(html, status=503, mimetype="text/html", headers={**SECURITY_HEADERS, **headers})
    return error_response(503, exc.code, exc.message, exc.details, headers)


def _not_fitted(exc: NotFittedError) -> Response:
    """The job runner holds the live matcher itself: found unfitted while the start runs, that is the start's 503."""
    error = get_state().not_ready()
    if error is not None:
        return _not_ready(error)
    log.error("%s: %s", type(exc).__name__, exc)
    return error_response(503, exc.code, exc.message, exc.details)


def init_app(app: Flask) -> None:
    """Register the answers of a service that is starting (or failed to start)."""
    app.register_error_handler(ServiceNotReady, _not_ready)
    app.register_error_handler(NotFittedError, _not_fitted)
