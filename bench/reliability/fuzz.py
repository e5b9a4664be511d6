"""Contract fuzzing: schemathesis generates requests from ``/openapi.json`` and sends them to the real app.

Every operation of the document is fuzzed as every caller — no key, a forged
key, and a real ``reader``, ``editor`` and ``admin`` key — with schema-valid
(positive) and schema-invalid (negative) data. Each response is held to every
check schemathesis has (:data:`CHECK_NAMES`, what ``st run --checks all`` runs):
no 5xx; status code, content type, headers and body as documented;
schema-invalid data refused and schema-valid data accepted (with the one
exception :mod:`bench.reliability.st_hooks` states); auth not ignored. And to
one of ours: every error (4xx) has the one error shape
``{"error": {"code", "message", "details"}}`` and the headers its status
promises (``WWW-Authenticate``, ``Allow``, ``Retry-After``).

The checks that need a whole run — the coverage phase's missing headers and
unlisted methods, the stateful phase's use after free — run in the real
command line (:mod:`bench.reliability.schemathesis_cli`); here they see no
such cases.

Nothing is raised on a failure: :func:`fuzz_app` counts and collects them (one
example per kind of failure), so a run always reports its full figures.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FuzzFailure", "FuzzReport", "error_shape_problem", "fuzz_app", "ROLES", "CHECK_NAMES", "all_checks"]

ROLES = ("anonymous", "forged", "reader", "editor", "admin")
FORGED_KEY = "Bearer mk_deadbeef_erfundenerSchluesselDerNichtPasst"
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_STATUS_HEADERS = {401: "WWW-Authenticate", 405: "Allow", 429: "Retry-After", 503: "Retry-After"}


@dataclass(frozen=True)
class FuzzFailure:
    """One kind of failure (check, operation, status) with the first request that showed it."""

    kind: str            # server_error | schema_violation | error_shape
    check: str
    operation: str
    role: str
    status: int
    message: str
    request: str         # curl command or a short description

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FuzzReport:
    """What a fuzzing run sent and found."""

    requests: int = 0
    operations: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    error_shape_violations: int = 0
    statuses: Counter = field(default_factory=Counter)
    by_role: Counter = field(default_factory=Counter)
    by_operation: dict[str, Counter] = field(default_factory=dict)
    failures: dict[tuple[str, str, int], FuzzFailure] = field(default_factory=dict)
    by_check: Counter = field(default_factory=Counter)
    semantic_refusals: int = 0

    @property
    def failure_count(self) -> int:
        """Failures of any check (ours included)."""
        return self.server_errors + self.schema_violations + self.error_shape_violations

    def add_failure(self, failure: FuzzFailure) -> None:
        self.by_check[failure.check] += 1
        if failure.kind == "server_error":
            self.server_errors += 1
        elif failure.kind == "schema_violation":
            self.schema_violations += 1
        else:
            self.error_shape_violations += 1
        self.failures.setdefault((failure.check, failure.operation, failure.status), failure)

    def figures(self) -> dict[str, Any]:
        return {"requests": self.requests, "operations": self.operations, "server_errors": self.server_errors,
                "schema_violations": self.schema_violations, "error_shape_violations": self.error_shape_violations,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "requests_by_role": dict(self.by_role),
                "checks": [*CHECK_NAMES, "error_shape"], "failures": self.failure_count, "cases": self.requests,
                "roles": list(self.by_role), "failures_by_check": dict(self.by_check),
                "semantic_refusals": self.semantic_refusals,
                "statuses_by_operation": {op: {str(k): v for k, v in sorted(c.items())}
                                          for op, c in sorted(self.by_operation.items())},
                "distinct_failures": [f.as_dict() for f in self.failures.values()][:50]}


def error_shape_problem(status: int, content_type: str | None, body: bytes, headers: Mapping[str, str]) -> str | None:
    """Why an error response does not have the one error shape (``None``: it has it, or it is no error)."""
    if status < 400:
        return None
    if not (content_type or "").startswith("application/json"):
        return f"error answered as {content_type!r}, not JSON"
    try:
        data = json.loads(body)
    except ValueError:
        return "error body is not JSON"
    if not isinstance(data, dict) or set(data) != {"error"} or not isinstance(data["error"], dict):
        return f"error body is not {{'error': {{...}}}}: {str(data)[:120]}"
    error = data["error"]
    if set(error) != {"code", "message", "details"}:
        return f"error has the keys {sorted(error)}, not code/message/details"
    if not isinstance(error["code"], str) or not _CODE.match(error["code"]):
        return f"error code {error['code']!r} is not a stable identifier"
    if not isinstance(error["message"], str) or len(error["message"].strip()) < 10:
        return f"error message {error['message']!r} does not tell a person what to do"
    if "Traceback" in error["message"] or 'File "' in error["message"]:
        return "error message holds a stack trace"
    if not isinstance(error["details"], list) or not all(isinstance(d, dict) for d in error["details"]):
        return "error details are not a list of objects"
    needed = _STATUS_HEADERS.get(status)
    if needed and needed.lower() not in {k.lower() for k in headers}:
        return f"{status} without a {needed} header"
    return None


CHECK_NAMES = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
               "positive_data_acceptance", "missing_required_header", "unsupported_method", "allow_header_conformance",
               "use_after_free", "ensure_resource_availability", "ignored_auth", "object_level_authorization")


def all_checks() -> list[Callable[..., Any]]:
    """Every check in schemathesis' registry (``--checks all``); fails if the registry and CHECK_NAMES differ."""
    from schemathesis.checks import CHECKS, load_all_checks

    from . import st_hooks  # noqa: F401  (registers the filter of semantic refusals)

    load_all_checks()
    names = CHECKS.get_all_names()
    if tuple(names) != CHECK_NAMES:
        raise RuntimeError(f"schemathesis' checks changed: {names}; update CHECK_NAMES")
    return CHECKS.get_all()


def _describe(case: Any, headers: dict[str, str]) -> str:
    try:
        return case.as_curl_command(headers=headers)[:1500]
    except Exception:  # a description is best effort; the failure itself is already counted
        return f"{case.method} {case.formatted_path}"


@dataclass
class KnownIds:
    """Ids that exist in the app, so that schema-valid cases also reach past "unknown id".

    Random strings almost never name a catalog entry, a recommendation or a
    job; half of the schema-valid cases have their id fields replaced by ids
    drawn from here (the catalog at the start, recommendations and jobs as
    the run creates them).
    """

    by_kind: dict[str, list[str]]
    cities: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    recommendations: dict[str, list[str]] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)

    BODY_KINDS = {"municipality": "municipality", "organisation": "organisation", "event": "event"}

    @classmethod
    def of_app(cls, app: Any) -> KnownIds:
        if "matcher" not in app.extensions:
            return cls({})                      # not the matcher service (the harness's own canary app)
        store = app.extensions["matcher"].store
        entities = [e for kind in ("advisor", "organisation", "event", "municipality")
                    for e in store.list_entities(kind, limit=500)[0]]
        by_kind: dict[str, list[str]] = {}
        for e in entities:
            by_kind.setdefault(e.kind, []).append(e.id)
        return cls(by_kind, cities=sorted({e.city for e in entities if e.city}),
                   topics=sorted({t for e in entities for t in e.topics}))

    def substitute(self, case: Any, rnd: Any) -> None:
        """Replace id fields of ``case`` (in place) by known ids of the right kind."""
        params = dict(case.path_parameters or {})
        if "entity_id" in params:
            params["entity_id"] = rnd.choice([i for ids in self.by_kind.values() for i in ids])
        if "job_id" in params and self.jobs:
            params["job_id"] = rnd.choice(self.jobs)
        case.path_parameters = params
        query = dict(case.query or {})
        if isinstance(query.get("city"), str) and self.cities:
            query["city"] = rnd.choice(self.cities)
        if isinstance(query.get("topic"), str) and self.topics:
            query["topic"] = rnd.choice(self.topics)
        case.query = query
        body = case.body
        if not isinstance(body, dict):
            return
        body = dict(body)
        for name, kind in self.BODY_KINDS.items():
            if isinstance(body.get(name), str) and self.by_kind.get(kind):
                body[name] = rnd.choice(self.by_kind[kind])
        if isinstance(body.get("city"), str) and self.cities:
            body["city"] = rnd.choice(self.cities)
        if isinstance(body.get("recommendation_id"), str) and self.recommendations:
            rec = rnd.choice(sorted(self.recommendations))
            body["recommendation_id"] = rec
            if isinstance(body.get("entity_id"), str) and self.recommendations[rec]:
                body["entity_id"] = rnd.choice(self.recommendations[rec])
        case.body = body

    def learn(self, response: Any) -> None:
        """Remember recommendation and job ids from a successful response."""
        if response.status_code not in (200, 202) or b'"id"' not in response.content[:200]:
            return
        try:
            data = json.loads(response.content)
        except ValueError:
            return
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return
        if data["id"].startswith("rec_") and isinstance(data.get("results"), list):
            self.recommendations[data["id"]] = [r["entity"]["id"] for r in data["results"]][:20]
        elif data["id"].startswith("job_") and data["id"] not in self.jobs:
            self.jobs.append(data["id"])


def fuzz_app(app: Any, keys: Mapping[str, str], examples: int, *,
             operations: Callable[[str], bool] | None = None,
             on_response: Callable[[Any, Any], None] | None = None) -> FuzzReport:
    """Fuzz every operation of ``app``'s ``/openapi.json`` as every role in ``keys``.

    Args:
        app: the Flask app (called in-process through its WSGI interface).
        keys: role → ``Authorization`` header value of a real key (``"Bearer mk_…"``); the roles
            ``anonymous`` (no header) and ``forged`` (a made-up key) are always fuzzed too.
        examples: generated cases per operation, role and generation mode.
        operations: optional filter on operation labels (``"POST /v1/entities"``).
        on_response: called with (case, response) after each request (for tests that watch the traffic).

    Returns:
        the :class:`FuzzReport`; nothing is raised for failures found.
    """
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.core.failures import Failure, FailureGroup, ServerError

    from . import st_hooks

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    checks = all_checks()
    refusals_before = sum(st_hooks.SEMANTIC_REFUSALS.values())
    report = FuzzReport()
    known = KnownIds.of_app(app)
    run_settings = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                            suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
                            report_multiple_bugs=False)

    def send(operation: Any, role: str, key: str | None, case: Any, rnd: Any) -> None:
        headers = dict(case.headers or {})
        if role == "anonymous":
            headers.pop("Authorization", None)
        elif role == "forged" and "Authorization" not in headers:
            headers["Authorization"] = FORGED_KEY    # else: the generator's own made-up value
        case.headers = headers
        if case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE and rnd.random() < 0.5:
            known.substitute(case, rnd)              # only valid cases: a negative case must stay negative
        extra = {"Authorization": key} if key else {}
        response = case.call(headers=extra)
        report.requests += 1
        report.by_role[role] += 1
        report.statuses[response.status_code] += 1
        report.by_operation.setdefault(operation.label, Counter())[response.status_code] += 1
        known.learn(response)
        if on_response is not None:
            on_response(case, response)
        sent = {**headers, **extra}
        try:
            case.validate_response(response, checks=checks, headers=sent)
        except (FailureGroup, Failure) as exc:
            for failure in exc.exceptions if isinstance(exc, FailureGroup) else (exc,):
                kind = "server_error" if isinstance(failure, ServerError) else "schema_violation"
                report.add_failure(FuzzFailure(
                    kind=kind, check=type(failure).__name__, operation=operation.label, role=role,
                    status=response.status_code, message=f"{failure.title}: {response.content[:300]!r}"[:400],
                    request=_describe(case, sent)))
        flat = _flat_headers(response.headers)
        problem = error_shape_problem(response.status_code, flat.get("content-type"), response.content, flat)
        if problem:
            report.add_failure(FuzzFailure(
                kind="error_shape", check="error_shape", operation=operation.label, role=role,
                status=response.status_code, message=problem, request=_describe(case, sent)))

    roles = {"anonymous": None, "forged": None, **keys}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operations is not None and not operations(operation.label):
            continue
        report.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # one run per operation and mode, the role drawn with the case; a real key is fixed,
            # so that negative cases are negative in what they send
            strategy = st.one_of([
                st.tuples(st.just(role),
                          operation.as_strategy(generation_mode=mode, headers={"Authorization": key} if key else None),
                          st.randoms(use_true_random=False))
                for role, key in roles.items()])
            test = settings(run_settings, max_examples=examples * len(roles))(
                given(drawn=strategy)(_one_case(send, operation, roles)))
            try:
                test()
            except Unsatisfiable:
                pass  # no schema-invalid input exists for an operation without parameters
    report.semantic_refusals = sum(st_hooks.SEMANTIC_REFUSALS.values()) - refusals_before
    return report


def _one_case(send: Callable[..., None], operation: Any,
              roles: Mapping[str, str | None]) -> Callable[[tuple[str, Any, Any]], None]:
    """The test function for @given (a closure: @given refuses partials and defaults)."""
    def test(drawn: tuple[str, Any, Any]) -> None:
        role, case, rnd = drawn
        send(operation, role, roles[role], case, rnd)

    return test


def _flat_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """schemathesis keeps lower-case names with a list of values; one value per name is enough here."""
    return {k.lower(): (v[0] if isinstance(v, list) and v else str(v)) for k, v in headers.items()}
