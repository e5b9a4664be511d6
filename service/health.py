"""Operations: ``/healthz`` (alive), ``/readyz`` (store, schema, model, index), ``/metrics``, ``/openapi.json``."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from matcher.errors import StoreError

from .metrics import metrics_response
from .models import HealthOut, ReadyOut
from .openapi import documented, openapi_document
from .state import get_live, get_store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@documented("Lebt der Prozess?", responses={200: HealthOut})
def healthz() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@documented("Bereit: Datenbank erreichbar und migriert, Modell geladen, Katalog indiziert",
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
                            schema_revision=revision).model_dump())


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
