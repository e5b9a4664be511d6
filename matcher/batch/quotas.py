"""Per-key limits on batch jobs: unfinished jobs at a time, and texts to encode per hour.

A job belongs to the API key that made it (``jobs.key_id``). The limits are
counted in the store, so every process and replica on one database counts
the same jobs. The text budget counts what a job would actually encode: its
distinct request texts without those whose vectors the serving process's
embedder already holds (an invitation list encodes none: the event's profile is
in the catalog; a job process keeps a cache of its own, which is not consulted,
so there the count errs on the safe side).
No Flask here: :class:`QuotaExceededError` carries the seconds after which
the same request would fit (``retry_after``); the service answers 429 with it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matcher.domain.formatting import thousands
from matcher.errors import ConflictError, ValidationError
from matcher.store.db import now as utc_now
from matcher.store.job_store import JobStore

__all__ = ["KeyQuota", "QuotaExceededError", "JobTooLargeError", "distinct_texts", "check_key_quota", "WINDOW"]

WINDOW = dt.timedelta(hours=1)      # the text budget's window
PENDING_RETRY_SECONDS = 30          # a pending job usually ends within this; then a place is free again


class QuotaExceededError(ConflictError):
    """The key has used its allowance; the same request fits again after ``retry_after`` seconds."""

    code = "quota_exceeded"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None, retry_after: int = 60):
        super().__init__(message, details)
        self.retry_after = retry_after


class JobTooLargeError(ValidationError):
    """One job alone would encode more texts than a key may in an hour: it never fits; split it."""

    code = "job_too_large"


@dataclass(frozen=True)
class KeyQuota:
    """The limits of one key: ``max_pending`` unfinished jobs, ``texts_per_hour`` texts encoded
    (None or 0: no limit)."""

    max_pending: int | None = 3
    texts_per_hour: int | None = 2000


def distinct_texts(kind: str, params: dict[str, Any]) -> list[str]:
    """The distinct non-empty request texts a job of ``kind`` encodes (an invitation list: none)."""
    if kind != "assignments":
        return []
    texts = (r.text if hasattr(r, "text") else (r.get("text") or "") for r in params.get("requests") or ())
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def check_key_quota(jobs: JobStore, quota: KeyQuota, key_id: str, texts: int,
                    now: dt.datetime | None = None) -> None:
    """Raise unless the key ``key_id`` may start one more job that encodes ``texts`` texts.

    Raises:
        QuotaExceededError: the key holds ``max_pending`` unfinished jobs, or the texts of its jobs in
            the last hour plus ``texts`` exceed ``texts_per_hour`` (``retry_after``: when they would fit).
        JobTooLargeError: ``texts`` alone exceed ``texts_per_hour``.
    """
    limit = quota.texts_per_hour
    if limit and texts > limit:
        raise JobTooLargeError(
            f"Der Auftrag würde {thousands(texts)} verschiedene Texte kodieren; erlaubt sind {thousands(limit)} "
            "je Schlüssel und Stunde. Bitte die Anfragen auf mehrere Aufträge aufteilen.",
            [{"field": "requests", "texts": texts, "limit": limit}])
    if quota.max_pending:
        pending = jobs.pending_of_key(key_id)
        if pending >= quota.max_pending:
            raise QuotaExceededError(
                f"Mit diesem Schlüssel laufen schon {pending} Aufträge (erlaubt: {quota.max_pending} gleichzeitig). "
                "Bitte warten, bis einer fertig ist, und den Auftrag dann erneut senden.",
                [{"quota": "pending_jobs", "pending": pending, "limit": quota.max_pending,
                  "retry_after_seconds": PENDING_RETRY_SECONDS}], retry_after=PENDING_RETRY_SECONDS)
    if not limit or texts == 0:
        return
    now = now or utc_now()
    spent: Sequence[tuple[dt.datetime, int]] = jobs.texts_of_key(key_id, now - WINDOW)
    used = sum(n for _, n in spent)
    if used + texts <= limit:
        return
    freed, wait = 0, WINDOW.total_seconds()
    for at, n in spent:            # oldest first: when enough of them have left the window
        freed += n
        if used - freed + texts <= limit:
            wait = (at + WINDOW - now).total_seconds()
            break
    retry_after = max(1, math.ceil(wait))
    raise QuotaExceededError(
        f"Mit diesem Schlüssel wurden in der letzten Stunde schon {thousands(used)} Texte kodiert; dieser Auftrag "
        f"bräuchte {thousands(texts)} weitere (erlaubt: {thousands(limit)} je Stunde). Bitte in "
        f"{retry_after} Sekunden erneut senden oder einen kleineren Auftrag senden.",
        [{"quota": "texts_per_hour", "used": used, "requested": texts, "limit": limit,
          "retry_after_seconds": retry_after}], retry_after=retry_after)
