"""Contract fuzzing with schemathesis: every operation of /openapi.json, as every kind of caller, answers
without 5xx, as documented, and every error in the one error shape (see bench/reliability/fuzz.py)."""

from __future__ import annotations

import json

import pytest
from flask import Flask, jsonify, request

from bench.reliability.fuzz import error_shape_problem, fuzz_app
from bench.reliability.report import record
from bench.reliability.sizes import current


@pytest.fixture
def fuzz_target(make_app, tmp_path):
    """An app of its own (fuzzing writes, deletes and starts jobs), one key per role."""
    app = make_app(f"sqlite:///{tmp_path / 'fuzz.db'}")
    store = app.extensions["matcher"].store
    keys = {role: f"Bearer {store.create_key(role, f'fuzz {role}')[1]}" for role in ("reader", "editor", "admin")}
    return app, keys


@pytest.mark.slow
def test_every_operation_as_every_caller_answers_as_documented(fuzz_target):
    app, keys = fuzz_target
    report = fuzz_app(app, keys, current().fuzz_examples)
    figures = report.figures()
    record("fuzz", **figures)
    paths = app.test_client().get("/openapi.json").json["paths"]
    documented = sum(len(ops) for path, ops in paths.items() if path != "/openapi.json")  # schemathesis skips it
    assert report.operations == documented, "an operation of the document was not fuzzed"
    assert set(report.by_role) == {"anonymous", "forged", "reader", "editor", "admin"}
    failures = json.dumps(figures["distinct_failures"], indent=1, ensure_ascii=False)
    assert report.server_errors == 0, failures
    assert report.schema_violations == 0, failures
    assert report.error_shape_violations == 0, failures
    assert {s for s in report.statuses if 200 <= s < 300}, "nothing succeeded: the fuzzing reached no view"


def _canary() -> Flask:
    """A small app that breaks every property once, to show the harness finds each kind of failure."""
    app = Flask("canary")
    doc = {"openapi": "3.1.0", "info": {"title": "canary", "version": "1"}, "paths": {
        "/boom": {"get": {"parameters": [{"name": "n", "in": "query", "required": True,
                                          "schema": {"type": "integer", "minimum": 0, "maximum": 9}}],
                          "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                              "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}},
                                        "4XX": {"description": "error"}}}},
        "/wrong": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}}}}},
        "/shapeless": {"get": {"responses": {"404": {"description": "not found"}}}}}}

    @app.get("/openapi.json")
    def openapi():
        return jsonify(doc)

    @app.get("/boom")
    def boom():
        n = request.args.get("n", "")
        return jsonify({"n": int(n)}) if n.isdigit() and int(n) < 5 else ("kaputt", 500)

    @app.get("/wrong")
    def wrong():
        return jsonify({"n": "keine Zahl"})

    @app.get("/shapeless")
    def shapeless():
        return jsonify({"fehler": "nicht gefunden"}), 404

    return app


def test_the_fuzzer_finds_server_errors_schema_violations_and_shapeless_errors():
    report = fuzz_app(_canary(), {}, 10)
    assert report.server_errors > 0 and report.schema_violations > 0 and report.error_shape_violations > 0, \
        report.figures()
    checks = {f.check for f in report.failures.values()}
    assert {"ServerError", "JsonSchemaError", "error_shape"} <= checks, checks


SHAPES = {
    "the one shape": (404, "application/json", {"error": {"code": "not_found", "message": "Diese id gibt es nicht.",
                                                           "details": []}}, None),
    "HTML error page": (404, "text/html", "<h1>Not Found</h1>", "not JSON"),
    "no error key": (400, "application/json", {"message": "kaputt"}, "not {'error'"),
    "extra keys": (400, "application/json", {"error": {"code": "x", "message": "eine lange Nachricht",
                                                       "details": [], "trace": "…"}}, "keys"),
    "code not an identifier": (400, "application/json", {"error": {"code": "Bad Request!", "message": "eine lange "
                                                                   "Nachricht", "details": []}}, "identifier"),
    "details not a list": (422, "application/json", {"error": {"code": "x", "message": "eine lange Nachricht",
                                                               "details": "k"}}, "details"),
    "401 without WWW-Authenticate": (401, "application/json", {"error": {"code": "unauthorized", "message": "Schlüssel "
                                                                         "fehlt hier", "details": []}}, "WWW-Auth"),
}


@pytest.mark.parametrize("case", SHAPES.values(), ids=SHAPES.keys())
def test_the_error_shape_check_has_teeth(case):
    status, content_type, body, problem = case
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    found = error_shape_problem(status, content_type, raw, {})
    assert (found is None) if problem is None else (found is not None and problem in found), found
