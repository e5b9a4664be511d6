"""``/openapi.json`` (OpenAPI 3.1) built from the URL map and the pydantic models.

Every view carries an :class:`Operation` (set by :func:`documented`): its
request body, query and response models. :func:`openapi_document` walks the
app's URL map, so a route without an operation is an error, not a gap in the
document; the access table supplies each operation's security.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from .auth import ACCESS
from .contract import JOB_ID_PATTERN, PRIVATE_HEADERS
from .models import ErrorOut

__all__ = ["Operation", "documented", "openapi_document"]

F = TypeVar("F", bound=Callable[..., Any])
ResponseSpec = type[BaseModel] | tuple[str, dict[str, Any]] | None
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str | None = None
    body: type[BaseModel] | None = None
    body_content: dict[str, dict[str, Any]] | None = None   # non-JSON bodies: media type → schema
    query: type[BaseModel] | None = None
    responses: dict[int, ResponseSpec] = field(default_factory=dict)


def documented(summary: str, *, description: str | None = None, body: type[BaseModel] | None = None,
               body_content: dict[str, dict[str, Any]] | None = None, query: type[BaseModel] | None = None,
               responses: dict[int, ResponseSpec] | None = None) -> Callable[[F], F]:
    """Attach the OpenAPI operation of a view (its models are also what the view validates with)."""
    def wrap(view: F) -> F:
        view.openapi = Operation(summary, description, body, body_content, query, dict(responses or {}))  # type: ignore[attr-defined]
        return view
    return wrap


def _path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop,
             **({"description": prop["description"]} if "description" in prop else {})}
            for name, prop in schema.get("properties", {}).items()]


def _security(endpoint: str, config: Mapping[str, Any]) -> tuple[list[dict[str, list[str]]], dict[str, Any]]:
    """This server's security of an endpoint: a route that its config opens (``open_if``) takes a key or none;
    with the switch off, it needs one, as every other non-public route does."""
    rule = ACCESS.get(endpoint)
    if rule is None:
        raise RuntimeError(f"endpoint {endpoint!r} has no entry in service.auth.ACCESS")
    if rule.role is None:
        return [], {"x-required-role": None}
    extra: dict[str, Any] = {"x-required-role": rule.role}
    if rule.open_if:
        extra["x-open-if"] = rule.open_if
        if config.get(rule.open_if):
            return [{}, {"bearerAuth": []}], extra
    return [{"bearerAuth": []}], extra


# the rate-limited routes (per key; service/ratelimit.py and the job quotas): 429 with Retry-After
LIMITED_PREFIXES = ("recommendations.", "landscape.", "jobs.create_", "jobs.export_", "rankers.train")
JOB_ENDPOINTS = ("jobs.", "invitations.record_invitations")   # jobs belong to the key that made them
_HEADER = {"schema": {"type": "string"}, "required": True}


def _path_parameter(rule: Rule, name: str) -> dict[str, Any]:
    # the converter as the rule's text names it (``<job_id:job_id>``; service/contract.py registers them)
    named = re.search(rf"<(?:(\w+)(?:\([^)]*\))?:)?{re.escape(name)}>", rule.rule)
    converter = named.group(1) if named else None
    schema: dict[str, Any] = {"type": "string"}
    if converter == "entity_id":
        schema = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$", "not": {"const": "import"}}
    elif converter == "job_id":
        schema = {"type": "string", "pattern": f"^{JOB_ID_PATTERN}$"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _headers(path: str, status: str) -> dict[str, Any]:
    """The headers a response of ``path`` with ``status`` always carries (service/contract.py, service/errors.py)."""
    headers: dict[str, Any] = {"X-Content-Type-Options": {**_HEADER, "schema": {"const": "nosniff"}}}
    if path.startswith("/v1/"):
        headers.update({name: {**_HEADER, "schema": {"const": value}} for name, value in PRIVATE_HEADERS.items()})
    if status == "429":
        headers["Retry-After"] = {**_HEADER, "schema": {"type": "string", "pattern": "^[0-9]+$"},
                                  "description": "Sekunden bis zum nächsten Versuch"}
    return headers


def openapi_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app``.

    Raises:
        RuntimeError: a route has no :func:`documented` operation or no access rule.
    """
    models: set[type[BaseModel]] = {ErrorOut}
    ops: list[tuple[str, str, str, Operation, list[dict[str, Any]]]] = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        op = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if op is None:
            raise RuntimeError(f"route {rule.rule} ({rule.endpoint}) is not @documented")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            ops.append((_path(rule.rule), method.lower(), rule.endpoint, op,
                        [_path_parameter(rule, a) for a in sorted(rule.arguments)]))
        models.update(m for m in [op.body, *op.responses.values()] if isinstance(m, type))

    _, defs = models_json_schema([(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
                                 ref_template=REF)
    error_ref = {"content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorOut")}}}}
    paths: dict[str, dict[str, Any]] = {}
    for path, method, endpoint, op, path_params in sorted(ops, key=lambda o: o[:3]):
        security, extra = _security(endpoint, app.config)
        operation: dict[str, Any] = {
            "operationId": endpoint.replace(".", "_"),
            "summary": op.summary,
            "tags": [endpoint.split(".")[0]],
            "security": security,
            **extra,
        }
        if op.description:
            operation["description"] = op.description
        params = list(path_params)
        if op.query is not None:
            params += _query_parameters(op.query)
        if params:
            operation["parameters"] = params
        if op.body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}}}
        elif op.body_content:
            operation["requestBody"] = {"required": True,
                                        "content": {mt: {"schema": s} for mt, s in op.body_content.items()}}
        responses: dict[str, Any] = {}
        for status, spec in sorted(op.responses.items()):
            if spec is None:
                responses[str(status)] = {"description": "ohne Inhalt"}
            elif isinstance(spec, tuple):
                responses[str(status)] = {"description": "OK", "content": {spec[0]: {"schema": spec[1]}}}
            else:
                schema = {"$ref": REF.format(model=spec.__name__)}
                responses[str(status)] = {"description": spec.__doc__.strip().splitlines()[0] if spec.__doc__ else "OK",
                                          "content": {"application/json": {"schema": schema}}}
        if endpoint.startswith(LIMITED_PREFIXES):
            responses["429"] = {"description": "Zu viele Anfragen oder Aufträge für diesen Schlüssel; Retry-After "
                                               "nennt die Sekunden bis zum nächsten Versuch", **error_ref}
        others = "; 404 auch für Aufträge eines anderen Schlüssels" if endpoint.startswith(JOB_ENDPOINTS) else ""
        responses["4XX"] = {"description": "Fehler in der Anfrage (Form: error.code, error.message, error.details)"
                                           + others, **error_ref}
        responses["5XX"] = {"description": "Dienst nicht verfügbar (503) oder interner Fehler", **error_ref}
        for status, response in responses.items():
            response["headers"] = _headers(path, status)
        operation["responses"] = responses
        paths.setdefault(path, {})[method] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "matcher – Migration und Entwicklung auf kommunaler Ebene",
            "version": "1",
            "description": "Empfehlungen (Beratung, Partner, Veranstaltungen, Einladungen) mit Begründungen, "
                           "und der Katalog dahinter. Fehler haben immer die Form "
                           '{"error": {"code", "message", "details"}}.',
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "API-Schlüssel aus `matcher keys create`"}},
        },
    }
