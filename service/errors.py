"""One error shape for every error: ``{"error": {"code", "message", "details"}}``.

:func:`error_response` is the only place that builds it. Library errors
(:class:`~matcher.errors.MatcherError`), request-level errors raised by the
views and Flask's own 404/405/413/415 all pass through the handlers below;
an unexpected exception becomes a 500 without a stack trace in the body
(and is logged, with an id the caller can quote).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError as PydanticValidationError
from werkzeug.exceptions import HTTPException

from matcher.domain.messages import validation_details
from matcher.errors import (
    CatalogError,
    ConflictError,
    InfeasibleError,
    MatcherError,
    NotFittedError,
    StoreError,
    UnknownEntityError,
    UnknownModelError,
    ValidationError,
)

__all__ = ["error_response", "init_app", "ApiError", "BadRequest", "Unauthorized", "Forbidden", "UnsupportedMediaType"]

log = logging.getLogger(__name__)


class ApiError(MatcherError):
    """An error about the HTTP request itself (not about the data)."""

    status = 400


class BadRequest(ApiError):
    code = "bad_request"
    status = 400


class Unauthorized(ApiError):
    code = "unauthorized"
    status = 401


class Forbidden(ApiError):
    code = "forbidden"
    status = 403


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"
    status = 415


# most specific first
_STATUS: list[tuple[type[MatcherError], int]] = [
    (ApiError, 0),                 # its own .status
    (CatalogError, 422),
    (ValidationError, 422),
    (InfeasibleError, 422),
    (UnknownEntityError, 404),
    (ConflictError, 409),
    (NotFittedError, 503),
    (StoreError, 503),
    (UnknownModelError, 500),
]

_HTTP_MESSAGES = {
    400: ("bad_request", "Die Anfrage ist fehlerhaft"),
    404: ("not_found", "Diese Adresse gibt es nicht: {path}. Alle Endpunkte stehen in /openapi.json"),
    405: ("method_not_allowed", "{method} ist für {path} nicht erlaubt; erlaubt: {allowed}"),
    413: ("payload_too_large", "Die Anfrage ist zu groß: höchstens {limit} Bytes"),
    415: ("unsupported_media_type", "Bitte JSON senden (Content-Type: application/json)"),
}
# the rest of what werkzeug can answer by itself (its descriptions are English); code http_<status>
_HTTP_OTHER = {
    401: "Für diese Anfrage ist eine Anmeldung nötig",
    403: "Dafür fehlt die Berechtigung",
    406: "Die gewünschte Antwortform (Accept) kann der Dienst nicht liefern",
    408: "Die Anfrage kam nicht rechtzeitig vollständig an; bitte erneut senden",
    409: "Die Anfrage widerspricht dem gespeicherten Stand",
    410: "Diese Adresse gibt es nicht mehr",
    411: "Die Angabe Content-Length fehlt",
    412: "Eine Bedingung der Anfrage (If-Match, If-Unmodified-Since) ist nicht erfüllt",
    414: "Die Adresse ist zu lang",
    416: "Der angefragte Bereich (Range) liegt außerhalb der Datei",
    417: "Die Erwartung im Header Expect kann der Dienst nicht erfüllen",
    428: "Die Anfrage braucht eine Bedingung (If-Match)",
    429: "Zu viele Anfragen; bitte später erneut versuchen",
    431: "Die Header der Anfrage sind zu groß",
    500: "Interner Fehler",
    501: "{method} wird von diesem Dienst nicht unterstützt",
    502: "Ein vorgeschalteter Dienst hat nicht richtig geantwortet",
    503: "Der Dienst ist gerade nicht verfügbar; bitte später erneut versuchen",
    504: "Ein vorgeschalteter Dienst hat nicht rechtzeitig geantwortet",
}


def error_response(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The JSON error response, the one shape every error of the API has."""
    resp = jsonify({"error": {"code": code, "message": message, "details": list(details or [])}})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _status_of(exc: MatcherError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return getattr(exc, "status", 400) if status == 0 else status
    return 500


def _matcher_error(exc: MatcherError) -> Response:
    status = _status_of(exc)
    if status >= 500:
        log.error("%s: %s", type(exc).__name__, exc)
    headers = {"WWW-Authenticate": 'Bearer realm="matcher"'} if isinstance(exc, Unauthorized) else None
    if isinstance(exc, StoreError):
        headers = {"Retry-After": "5"}
    elif status == 429:  # too many of something: say when to come back (RFC 6585)
        headers = {"Retry-After": str(getattr(exc, "retry_after", 10))}
    return error_response(status, exc.code, exc.message, exc.details, headers)


def _pydantic_error(exc: PydanticValidationError) -> Response:
    details = validation_details(exc, root="(body)")
    return error_response(422, "validation_error", "Ungültige Angaben; siehe details", details)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code, template = _HTTP_MESSAGES.get(status) or (f"http_{status}",
                                                     _HTTP_OTHER.get(status, f"Fehler (HTTP-Status {status})"))
    headers = {}
    allowed = ""
    if status == 405:
        allowed = ", ".join(m for m in (exc.valid_methods or []) if m not in ("HEAD", "OPTIONS"))
        headers["Allow"] = ", ".join(exc.valid_methods or [])
    limit = request.max_content_length if status == 413 else None
    message = template.format(path=request.path, method=request.method, allowed=allowed or "–", limit=limit)
    return error_response(status, code, message, headers=headers)


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    incident = uuid.uuid4().hex[:12]
    log.exception("unexpected error %s on %s %s", incident, request.method, request.path)
    return error_response(500, "internal_error",
                          f"Interner Fehler. Bitte mit der Fehlerkennung {incident} melden.", [{"incident": incident}])


def init_app(app: Flask) -> None:
    """Register the handlers that turn every exception into :func:`error_response`."""
    app.register_error_handler(MatcherError, _matcher_error)
    app.register_error_handler(PydanticValidationError, _pydantic_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
