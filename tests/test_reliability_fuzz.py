"""Contract fuzzing with schemathesis: every operation of /openapi.json, as every kind of caller, answers
without 5xx, as documented, and every error in the one error shape (see bench/reliability/fuzz.py)."""

from __future__ import annotations

import json

import pytest
from flask import Flask, jsonify, request

from bench.reliability.fuzz import error_shape_problem, fuzz_app
from bench.reliability.report import record
from bench.reliability.schemathesis_cli import run_cli
from bench.reliability.sizes import current, is_full
from conftest import ServerProcess, free_port

CLI_EXAMPLES = 5 if is_full() else 1      # st run --max-examples, per operation, phase and caller
CLI_ROLES = ("anonymous", "forged", "reader", "editor", "admin") if is_full() else ("editor",)


@pytest.fixture
def fuzz_target(make_app, tmp_path):
    """An app of its own (fuzzing writes, deletes and starts jobs), one key per role."""
    app = make_app(f"sqlite:///{tmp_path / 'fuzz.db'}")
    store = app.extensions["matcher"].store
    keys = {role: f"Bearer {store.create_key(role, f'fuzz {role}')[1]}" for role in ("reader", "editor", "admin")}
    return app, keys


@pytest.mark.slow
def test_every_operation_as_every_caller_answers_as_documented(fuzz_target, make_app, tmp_path):
    app, keys = fuzz_target
    report = fuzz_app(app, keys, current().fuzz_examples)
    # and without keys on a server whose config opens recommendations and feedback (the demo): its document
    # says so, and the open routes must answer as documented to a caller without a key
    demo = make_app(f"sqlite:///{tmp_path / 'open.db'}", OPEN_RECOMMENDATIONS=True, OPEN_FEEDBACK=True)
    open_report = fuzz_app(demo, {}, max(1, current().fuzz_examples // 3))
    figures = report.figures()
    figures.update(requests=report.requests + open_report.requests, cases=report.requests + open_report.requests,
                   failures=report.failure_count + open_report.failure_count,
                   semantic_refusals=report.semantic_refusals + open_report.semantic_refusals,
                   roles=[*figures["roles"], "anonymous and forged on an open server"],
                   open_server=open_report.figures())
    record("fuzz", **figures)
    open_failures = json.dumps(open_report.figures()["distinct_failures"], indent=1, ensure_ascii=False)
    assert open_report.failure_count == 0, open_failures
    assert open_report.by_operation["GET /v1/entities"][200] > 0, open_report.by_operation["GET /v1/entities"]
    paths = app.test_client().get("/openapi.json").json["paths"]
    documented = sum(len(ops) for path, ops in paths.items() if path != "/openapi.json")  # schemathesis skips it
    assert report.operations == documented, "an operation of the document was not fuzzed"
    assert set(report.by_role) == {"anonymous", "forged", "reader", "editor", "admin"}
    failures = json.dumps(figures["distinct_failures"], indent=1, ensure_ascii=False)
    assert report.server_errors == 0, failures
    assert report.schema_violations == 0, failures
    assert report.error_shape_violations == 0, failures
    assert report.failure_count == 0, failures
    assert {s for s in report.statuses if 200 <= s < 300}, "nothing succeeded: the fuzzing reached no view"


@pytest.mark.slow
def test_the_schemathesis_command_line_with_all_checks_finds_nothing_as_any_caller(tmp_path, seed_store):
    """The real `st run --checks all` (coverage, fuzzing and stateful phases) against a real gunicorn server,
    once per caller: no key, a made-up key, reader, editor, admin (make test: editor only; the in-process
    run covers every caller there)."""
    from matcher.store import Store

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    seed_store(url)
    store = Store(url)
    keys = {role: f"Bearer {store.create_key(role, f'st {role}')[1]}" for role in ("reader", "editor", "admin")}
    store.close()
    port = free_port()
    server = ServerProcess(f"http://127.0.0.1:{port}", url, tmp_path / "server.log").start()
    try:
        result = run_cli(server.url, keys, tmp_path / "st", max_examples=CLI_EXAMPLES, only=CLI_ROLES)
    finally:
        server.kill()
    roles = list(result["by_role"])
    record("schemathesis_cli", cases=result["cases"], failures=result["failures"], checks="all", roles=roles,
           errors=result["errors"], tool_errors=result["tool_errors"], semantic_refusals=result["semantic_refusals"],
           seconds=result["seconds"], max_examples=CLI_EXAMPLES, by_role=result["by_role"],
           distinct_failures=result["distinct_failures"][:30])
    assert roles == list(CLI_ROLES)
    found = json.dumps(result["distinct_failures"], indent=1, ensure_ascii=False)
    assert result["failures"] == 0 and result["errors"] == 0, found
    assert all(r["cases"] > 0 for r in result["by_role"].values()), result["by_role"]


JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}
N_PARAM = [{"name": "n", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": 9}}]


def _canary() -> Flask:
    """A small app that breaks every check it can be fuzzed for in-process, once each, to show the harness
    finds each kind of failure (the coverage and stateful checks need the command line's phases)."""
    app = Flask("canary")
    doc = {"openapi": "3.1.0", "info": {"title": "canary", "version": "1"}, "paths": {
        "/boom": {"get": {"parameters": N_PARAM,
                          "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                              "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}},
                                        "4XX": {"description": "error"}}}},
        "/wrong": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}}}}},
        "/shapeless": {"get": {"responses": {"404": {"description": "not found"}}}},
        "/teapot": {"get": {"responses": {"200": {"description": "ok", "content": JSON_OBJECT}}}},
        "/plain": {"get": {"responses": {"200": {"description": "ok", "content": JSON_OBJECT}}}},
        "/headers": {"get": {"responses": {"200": {"description": "ok", "content": JSON_OBJECT, "headers": {
            "X-Muss": {"required": True, "schema": {"type": "string"}}}}}}},
        "/lax": {"get": {"parameters": N_PARAM, "responses": {"200": {"description": "ok", "content": JSON_OBJECT},
                                                              "4XX": {"description": "error"}}}},
        "/picky": {"get": {"parameters": N_PARAM, "responses": {"200": {"description": "ok", "content": JSON_OBJECT},
                                                                "4XX": {"description": "error"}}}},
        "/secret": {"get": {"security": [{"bearerAuth": []}],
                            "responses": {"200": {"description": "ok", "content": JSON_OBJECT},
                                          "4XX": {"description": "error"}}}}},
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}}}

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

    @app.get("/teapot")
    def teapot():
        return jsonify({}), 201                           # a status the document does not list

    @app.get("/plain")
    def plain():
        return "ok", 200, {"Content-Type": "text/plain"}  # not the documented content type

    @app.get("/headers")
    def headers():
        return jsonify({})                                # without the required X-Muss

    @app.get("/lax")
    def lax():
        return jsonify({})                                # takes n=-1, n=AAA, no n at all

    @app.get("/picky")
    def picky():
        n = request.args.get("n", "")
        message = "Ungültige Angaben; siehe details" if n in ("1", "3", "5", "7", "9") else "Unbekannter Ort „0“"
        error = {"error": {"code": "validation_error", "message": message, "details": []}}
        return jsonify(error), 422                         # schema-valid n refused: by shape (odd), by meaning (even)

    @app.get("/secret")
    def secret():
        return jsonify({})                                # answers without a key too

    return app


def test_the_fuzzer_finds_a_failure_of_each_check_it_runs():
    report = fuzz_app(_canary(), {"reader": "Bearer mk_canary_schluessel"}, 10)
    assert report.server_errors > 0 and report.schema_violations > 0 and report.error_shape_violations > 0, \
        report.figures()
    checks = {f.check for f in report.failures.values()}
    expected = {"ServerError", "JsonSchemaError", "error_shape", "UndefinedStatusCode", "UndefinedContentType",
                "MissingHeaders", "AcceptedNegativeData", "RejectedPositiveData", "IgnoredAuth"}
    assert expected <= checks, expected - checks
    picky = [f for f in report.failures.values() if f.operation == "GET /picky" and f.check == "RejectedPositiveData"]
    assert picky and all("siehe details" in f.message for f in picky), picky   # a refusal by shape is a failure
    assert report.semantic_refusals > 0                # one by meaning is counted apart


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
