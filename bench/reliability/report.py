"""Figures of the reliability run: recorded by the tests, gathered into one table and one JSON file.

A test calls :func:`record` with the figures of its part; when
``MATCHER_RELIABILITY_REPORT`` names a file (``python -m bench.reliability``
sets it), each call appends one JSON line to it, otherwise nothing happens —
so ``make test`` runs the same tests without writing anything.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["REPORT_ENV", "record", "read_records"]

REPORT_ENV = "MATCHER_RELIABILITY_REPORT"
_lock = threading.Lock()


def record(part: str, **figures: Any) -> None:
    """Record the figures of one part (fuzz, load, worker_kill, …) of the run; several calls add up in order."""
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    line = json.dumps({"part": part, **figures}, ensure_ascii=False, default=str)
    with _lock, open(target, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a run, in the order the tests wrote them."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
