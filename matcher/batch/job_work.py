"""The work of one job: its progress writes, its arguments, the library call that computes its result.

Shared by the job threads of a serving process and the job process
(:mod:`matcher.batch.runner`, :mod:`matcher.batch.job_process`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from matcher.batch.assignment import DEFAULT_ALTERNATES, assign_advisors
from matcher.batch.invitations import DEFAULT_MMR_LAMBDA, ExposurePolicy, invitation_list
from matcher.batch.requests import AdvisorRequest
from matcher.errors import ConflictError, MatcherError
from matcher.evaluation.judged import Dataset, load_dataset
from matcher.live.rankers import train_version
from matcher.store import Store
from matcher.store.job_store import JobStore

__all__ = ["ProgressWriter", "compute", "invitation_args", "judged_sets"]

log = logging.getLogger(__name__)


class ProgressWriter:
    """The library's progress callback → the job row, at most every ``interval`` seconds (and at
    every new stage); never backwards, and below 100 until the job is done."""

    def __init__(self, jobs: JobStore, job_id: str, owner: str, interval: float = 0.2):
        self.jobs, self.job_id, self.owner, self.interval = jobs, job_id, owner, interval
        self.percent, self.stage, self.written_at = 0.0, None, 0.0

    def __call__(self, fraction: float, stage: str) -> None:
        percent = max(self.percent, min(99.0, round(100.0 * float(fraction), 1)))
        now = time.monotonic()
        if stage == self.stage and (percent <= self.percent or now - self.written_at < self.interval):
            return
        self.percent, self.stage, self.written_at = percent, stage, now
        try:
            self.jobs.report_progress(self.job_id, self.owner, percent, stage)
        except MatcherError as exc:  # a lost progress write is no reason to give the job up
            log.warning("progress of %s not written: %s", self.job_id, exc)


def invitation_args(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`~matcher.batch.invitations.invitation_list` from a job's parameters."""
    as_of = params.get("as_of")
    defaults = ExposurePolicy()
    return {"event_id": params["event"], "size": int(params["size"]), "quotas": list(params.get("quotas") or ()),
            "max_per_city": params.get("max_per_city"),
            "mmr_lambda": float(params.get("mmr_lambda", DEFAULT_MMR_LAMBDA)),
            "waitlist": int(params.get("waitlist") or 0),
            "include_kinds": ("organisation", *(("municipality",) if params.get("include_municipalities") else ()),
                              *(("advisor",) if params.get("include_advisors") else ())),
            "reach_km": params.get("reach_km"),
            "as_of": dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of,
            "exposure": ExposurePolicy(float(params.get("exposure_penalty", defaults.penalty)),
                                       int(params.get("exposure_days", defaults.window_days)))}


def judged_sets(params: dict[str, Any]) -> list[Dataset]:
    """The judged sets a ranker job gates with (the server's ``RANKER_JUDGED_DATA``).

    Raises:
        ConflictError: none are set up. CatalogError: one cannot be read.
    """
    paths = list(params.get("data") or ())
    if not paths:
        raise ConflictError("Für das Training sind keine bewerteten Datensätze eingerichtet (Einstellung "
                            "MATCHER_RANKER_JUDGED_DATA): ohne sie wird keine neue Version geprüft",
                            [{"setting": "RANKER_JUDGED_DATA"}])
    return [load_dataset(p) for p in paths]


def compute(store: Store, kind: str, params: dict[str, Any], matcher: Any,
            progress: Callable[[float, str], None]) -> dict[str, Any]:
    """The result of a job of ``kind`` with ``params`` on ``matcher`` (the library's work; invitation lists
    read the invitation history in ``store``; a ranker job trains, gates and maybe activates a version)."""
    if kind == "ranker":
        until = dt.datetime.now(dt.UTC)
        return train_version(store, matcher, judged_sets(params), until=until,
                             since=until - dt.timedelta(days=int(params.get("days") or 90)),
                             activate=bool(params.get("activate", True)), hand_tasks=tuple(params.get("hand") or ()),
                             progress=progress).as_dict()
    if kind == "invitations":
        args = invitation_args(params)
        since = (args["as_of"] or dt.date.today()) - dt.timedelta(days=args["exposure"].window_days)
        history = store.invitations.history(since=since)
        return invitation_list(matcher, **args, history=history, progress=progress).as_dict()
    requests = [r if isinstance(r, AdvisorRequest) else AdvisorRequest.model_validate(r)
                for r in params["requests"]]
    as_of = params.get("as_of")
    return assign_advisors(
        matcher, requests, k_alternates=int(params.get("alternates", DEFAULT_ALTERNATES)),
        allow_partial=bool(params.get("allow_partial", False)), capacities=params.get("capacities"),
        as_of=dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of, progress=progress).as_dict()
