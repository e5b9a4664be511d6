"""Reading requests into pydantic models, with errors a person can act on."""

from __future__ import annotations

import functools
import json
import re
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from matcher.domain.messages import json_error_reason, quoted, validation_details
from matcher.errors import ValidationError

from .contract import read_limited
from .errors import BadRequest, UnsupportedMediaType

__all__ = ["parse_body", "parse_args", "read_body"]

M = TypeVar("M", bound=BaseModel)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} ist in JSON keine gültige Zahl")


def read_body(max_bytes: int | None = None) -> bytes:
    """The raw body; over ``max_bytes`` (default: MAX_CONTENT_LENGTH) Flask answers 413."""
    if max_bytes is not None:
        request.max_content_length = max_bytes
    chunked = read_limited(request.max_content_length)   # no Content-Length: werkzeug would cut it silently
    return chunked if chunked is not None else request.get_data(cache=True)


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
    return _validate(model, _integral_floats_as_ints(data))


def _integral_floats_as_ints(data: Any) -> Any:
    """JSON Schema counts 3.0 as an integer; pydantic's strict mode does not: make them agree.

    Changes the freshly parsed JSON in place, without recursion (bodies may be nested deeply)."""
    def integral(value: Any) -> bool:
        return isinstance(value, float) and value.is_integer() and abs(value) < 2**63

    if integral(data):
        return int(data)
    stack = [data]
    while stack:
        node = stack.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in list(pairs):
            if integral(value):
                node[key] = int(value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return data


# query text by the JSON Schema type of its parameter: exactly what the document allows, nothing coerced
_QUERY_TEXT = {"integer": re.compile(r"-?[0-9]+"), "boolean": re.compile(r"true|false"),
               "number": re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")}
_QUERY_EXPECTED = {"integer": "ganze Zahl erwartet", "boolean": "true oder false erwartet", "number": "Zahl erwartet"}


def _query_type(prop: dict[str, Any]) -> str | None:
    types = {p.get("type") for p in prop.get("anyOf", [prop])} - {"null"}
    return next(iter(types)) if len(types) == 1 else None


@functools.cache
def _query_kinds(model: type[BaseModel]) -> dict[str, str]:
    """The parameters of ``model`` whose query text :data:`_QUERY_TEXT` checks, with their schema type."""
    props = model.model_json_schema().get("properties", {})
    return {name: kind for name, prop in props.items() if (kind := _query_type(prop)) in _QUERY_TEXT}


def _check_query_text(model: type[BaseModel], args: dict[str, str]) -> None:
    kinds = _query_kinds(model)
    bad = [(name, _QUERY_EXPECTED[kinds[name]]) for name, value in args.items()
           if name in kinds and not _QUERY_TEXT[kinds[name]].fullmatch(value)]
    if bad:
        raise ValidationError("Ungültige Angaben; siehe details",
                              [{"field": name, "message": message, "value": args[name]} for name, message in bad])


def parse_args(model: type[M]) -> M:
    """Validate the query string against ``model`` (unknown parameters are rejected by name)."""
    args = request.args
    repeated = [k for k in args if len(args.getlist(k)) > 1]
    if repeated:
        raise ValidationError("Parameter mehrfach angegeben", [{"field": k, "message": "nur einmal angeben"}
                                                               for k in repeated])
    data = args.to_dict()
    _check_query_text(model, data)
    if not set(data) <= set(model.model_fields):
        return _validate(model, data)   # unknown parameters: rejected by name below
    try:
        return model.model_validate_strings(data, strict=True)
    except PydanticValidationError as exc:
        raise ValidationError("Ungültige Angaben; siehe details", validation_details(exc, root="(body)")) from None


def _validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ValidationError("Bitte ein JSON-Objekt {…} senden", [{"field": "(body)", "message": "Objekt erwartet"}])
    try:
        return model.model_validate(data, strict=True)   # no bool as int, no string as number
    except PydanticValidationError as exc:
        raise ValidationError("Ungültige Angaben; siehe details", validation_details(exc, root="(body)")) from None
