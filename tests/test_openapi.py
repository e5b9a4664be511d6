"""``/openapi.json``: valid OpenAPI 3.1, every route listed, responses match their documented schemas."""

from __future__ import annotations

import re

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from service.auth import ACCESS


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").json


def test_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_route_and_method_is_documented(app, spec):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)   # <converter:name> → {name}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"].get(path, {}), f"{method} {path} missing from /openapi.json"


def test_every_operation_documents_its_errors_and_the_role_its_rule_names(spec):
    """The document states each route's rule; tests/test_reliability_access.py walks the URL map and
    checks that the routes admit exactly those callers."""
    rules = {endpoint.replace(".", "_"): rule for endpoint, rule in ACCESS.items()}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert "4XX" in op["responses"] and "5XX" in op["responses"], (method, path)
            assert "security" in op and op["x-required-role"] == rules[op["operationId"]].role, (method, path)


def _validator(spec, name):
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return OAS31Validator(schema)


def test_responses_match_their_documented_schemas(client, api_keys, spec):
    editor = {"Authorization": api_keys["editor"]}
    calls = [
        (client.post("/v1/recommendations/advisors", headers=editor, json={"text": "Fairer Handel", "k": 3}),
         "RecommendationOut"),
        (client.post("/v1/recommendations/invitees", headers=editor, json={"event": "evt-102", "k": 3}),
         "RecommendationOut"),
        (client.get("/v1/entities?limit=3", headers=editor), "EntityPage"),
        (client.get("/v1/entities/evt-101", headers=editor), "EntityOut"),
        (client.get("/readyz"), "ReadyOut"),
        (client.get("/v1/entities/nope", headers=editor), "ErrorOut"),
        (client.post("/v1/recommendations/advisors", json={"text": "x"}), "ErrorOut"),
    ]
    for response, model in calls:
        errors = sorted(_validator(spec, model).iter_errors(response.json), key=str)
        assert not errors, (model, [e.message for e in errors[:3]])


def test_request_models_reject_what_the_document_says_they_reject(spec):
    advisors = spec["components"]["schemas"]["AdvisorsRequest"]
    assert advisors["additionalProperties"] is False
    assert advisors["properties"]["k"]["maximum"] == 100
