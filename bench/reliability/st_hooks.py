"""schemathesis hooks of the contract fuzzing (in-process and ``SCHEMATHESIS_HOOKS=bench.reliability.st_hooks``).

One rule, the only exception to "0 failures of any check": ``positive_data_acceptance`` wants
every schema-valid request accepted, but some rules are about what the data *means*, which no
JSON Schema can say — a place name the gazetteer does not know, an id that names an entry of
the wrong kind, a body id that differs from the address, an upload file whose lines are not
entries, an assignment that cannot be fulfilled. The service answers those 422 with a message
naming the rule (docs/api.md lists them). A 422 that comes from the request's *shape* — the
pydantic models' "Ungültige Angaben; siehe details" — is still a failure: the schema then
allows what the server refuses, which is exactly what the check is for.

Each dropped failure is counted (:data:`SEMANTIC_REFUSALS`, and one line per refusal in the
file named by ``MATCHER_ST_SEMANTIC_LOG``), so a run reports how many there were.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from typing import Any

import schemathesis

__all__ = ["SEMANTIC_REFUSALS", "SHAPE_MESSAGE", "is_semantic_refusal"]

SHAPE_MESSAGE = "Ungültige Angaben; siehe details"     # service/parsing.py, service/errors.py: the request's shape
SEMANTIC_LOG_ENV = "MATCHER_ST_SEMANTIC_LOG"
SEMANTIC_REFUSALS: Counter = Counter()                 # operation label → refusals dropped (this process)
_lock = threading.Lock()


def is_semantic_refusal(status: int, body: bytes) -> bool:
    """A 422 in the error shape whose message names a rule about meaning, not the request's shape."""
    if status != 422:
        return False
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"] != SHAPE_MESSAGE


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    from schemathesis.openapi.checks import RejectedPositiveData

    if not isinstance(failure, RejectedPositiveData) or not is_semantic_refusal(response.status_code,
                                                                                response.content):
        return True
    label = f"{case.method.upper()} {case.operation.path}"
    with _lock:
        SEMANTIC_REFUSALS[label] += 1
        target = os.environ.get(SEMANTIC_LOG_ENV)
        if target:
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"operation": label, "body": response.content[:300].decode(errors="replace")},
                                    ensure_ascii=False) + "\n")
    return False
