"""Reading requests into pydantic models, with errors a person can act on."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from matcher.domain.messages import json_error_reason, quoted, validation_details
from matcher.errors import ValidationError

from .errors import BadRequest, UnsupportedMediaType

__all__ = ["parse_body", "parse_args", "read_body"]

M = TypeVar("M", bound=BaseModel)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} ist in JSON keine gültige Zahl")


def read_body(max_bytes: int | None = None) -> bytes:
    """The raw body; over ``max_bytes`` (default: MAX_CONTENT_LENGTH) Flask answers 413."""
    if max_bytes is not None:
        request.max_content_length = max_bytes
    return request.get_data(cache=True)


def parse_body(model: type[M]) -> M:
    """Validate the JSON body against ``model``.

    Raises:
        UnsupportedMediaType: the body is not declared as JSON (415).
        BadRequest: the body is not valid UTF-8 JSON (400).
        ValidationError: the JSON does not fit the model; one detail per field (422).
    """
    if not request.is_json:
        raise UnsupportedMediaType(
            "Bitte JSON senden (Content-Type: application/json); "
            + (f"gesendet wurde {quoted(request.mimetype)}" if request.mimetype else "der Content-Type fehlt"),
            [{"field": "Content-Type", "value": request.content_type}])
    raw = read_body()
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest("Der Inhalt ist nicht UTF-8-kodiert", [{"field": "(body)"}]) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"Ungültiges JSON in Zeile {exc.lineno}, Spalte {exc.colno}: {json_error_reason(exc)}",
                         [{"field": "(body)", "line": exc.lineno, "column": exc.colno}]) from None
    except ValueError as exc:
        raise BadRequest(f"Ungültiges JSON: {exc}", [{"field": "(body)"}]) from None
    except RecursionError:
        raise BadRequest("Das JSON ist zu tief verschachtelt", [{"field": "(body)"}]) from None
    return _validate(model, data)


def parse_args(model: type[M]) -> M:
    """Validate the query string against ``model`` (unknown parameters are rejected by name)."""
    args = request.args
    repeated = [k for k in args if len(args.getlist(k)) > 1]
    if repeated:
        raise ValidationError("Parameter mehrfach angegeben", [{"field": k, "message": "nur einmal angeben"}
                                                               for k in repeated])
    return _validate(model, args.to_dict())


def _validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ValidationError("Bitte ein JSON-Objekt {…} senden", [{"field": "(body)", "message": "Objekt erwartet"}])
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError("Ungültige Angaben; siehe details", validation_details(exc, root="(body)")) from None
