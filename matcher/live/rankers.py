"""The learned ranker's lifecycle in the store: train a version, gate it, activate it, roll back.

:func:`train_version` trains a new version (:func:`matcher.learning.train_ranker`) on judged sets and on the
feedback the audit log holds for a window of time, stores it (payload, features, metrics, the window, the
commit of the code) and then :func:`gate` decides whether it serves: it must beat the serving ranker

* on the judged data — mean nDCG@10 over the judged queries with a fit, each set ranked on its own catalog
  through the product's ranking path (what ``matcher evaluate`` reports) — and
* on a counterfactual estimate over recent feedback — the inverse-propensity-scored DCG of the clicks
  („passt“, „kontaktiert“): each click counts 1/log2(1 + rank the ranker would give it; ties at their mean
  rank) (0 beyond rank 10),
  divided by the examination probability of the rank it was shown at (propensities harvested from the logs,
  :func:`matcher.learning.estimate_propensities`), averaged over the recommendations with feedback
  (Joachims et al. 2017; Agarwal et al. 2019). With fewer than :data:`MIN_CLICKS` clicks in the window there is
  nothing to estimate: the gate says so and decides on the judged data alone.

A version that does not beat the serving one is stored (with the gate's verdict) but never activated.
:func:`rollback` serves the previous version again. :class:`RankerFollower` keeps a process's matcher on the
serving version: it compares the activation id (read with the catalog version, one statement) before each use.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from matcher.domain.formatting import decimal
from matcher.domain.messages import quoted
from matcher.domain.schema import Query
from matcher.engine.context import QueryContext
from matcher.engine.matcher import Matcher
from matcher.engine.ranker import FEATURES, HAND, Ranker, ranker_from_dict, shipped_ranker
from matcher.engine.scoring import score_contexts
from matcher.engine.weights import TASK_KIND, TASK_KINDS
from matcher.errors import ConflictError, MatcherError
from matcher.evaluation.judged import Dataset, evaluate, matcher_ranker, reference_date
from matcher.learning import FeedbackEvent, estimate_propensities, impressions, train_ranker
from matcher.learning.feedback import CLICKS, Impression, Propensities
from matcher.learning.train import fitted_like
from matcher.store import DEFAULT_VERSION, HAND_VERSION, Activation, Store

__all__ = ["MIN_CLICKS", "RECENT_DAYS", "GateVerdict", "TrainReport", "activate", "code_commit", "consider",
           "feedback_events", "fit_judged", "gate", "ips_dcg", "judged_ndcg", "ranker_of", "rollback", "train_version"]

log = logging.getLogger(__name__)

MIN_CLICKS = 20        # clicks in the window from which the counterfactual estimate decides too
RECENT_DAYS = 90       # the default window of feedback: the last 90 days
TOLERANCE = 1e-6       # "beats": by more than this (a version equal to the serving one does not)


@dataclass
class GateVerdict:
    """Whether a candidate beats the serving ranker, with the figures (German ``reasons``)."""

    passed: bool
    judged: dict[str, float]                  # candidate, active: mean nDCG@10
    ips: dict[str, Any] | None                # candidate, active: IPS-DCG; clicks, recommendations, propensities
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "judged": self.judged, "ips": self.ips, "reasons": self.reasons}


@dataclass
class TrainReport:
    """What :func:`train_version` did."""

    version: str
    activated: bool
    verdict: GateVerdict
    metrics: dict[str, Any]
    active: str                               # the version serving afterwards

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "activated": self.activated, "active": self.active,
                "gate": self.verdict.as_dict(), "metrics": self.metrics}


def code_commit() -> str:
    """The git commit of the code (when it runs from a checkout), else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        if len(out) == 40:
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"matcher {package_version('matcher')}"
    except PackageNotFoundError:
        return "unbekannt"


def ranker_of(store: Store, version: str) -> Ranker:
    """The ranker of a stored version (``"hand"``: the hand weights; ``"default"``: the shipped default,
    :func:`~matcher.engine.ranker.shipped_ranker`).

    Raises:
        UnknownEntityError: no such version. ValidationError: its payload is for other features.
    """
    if version == HAND_VERSION:
        return HAND
    if version == DEFAULT_VERSION:
        return shipped_ranker()
    return ranker_from_dict(store.rankers.get(version).payload)


def feedback_events(store: Store, since: dt.datetime | None = None,
                    until: dt.datetime | None = None) -> list[FeedbackEvent]:
    """The audit log's feedback in [``since``, ``until``) as training events."""
    return [FeedbackEvent(**e) for e in store.audit.feedback_events(since, until)]


# ----------------------------------------------------------------------------- the two comparisons
def judged_ndcg(matchers: Sequence[tuple[Matcher, Dataset]], ranker: Ranker) -> float:
    """Mean nDCG@10 of ``ranker`` over the judged queries with a fit of all sets (each matcher fitted on its
    set's catalog; its own ranker is restored afterwards)."""
    rows = []
    for m, ds in matchers:
        previous = m.ranker_
        try:
            m.use_ranker(ranker)
            report = evaluate(matcher_ranker(m, as_of=reference_date(ds)), ds)
        finally:
            m.use_ranker(previous)
        no_fit = {q for ids in report.no_fit.values() for q in ids}
        rows += [row["ndcg@10"] for q, row in report.per_query.items() if q not in no_fit]
    return float(np.mean(rows)) if rows else 0.0


def ips_dcg(matcher: Matcher, ranker: Ranker, events: Sequence[FeedbackEvent],
            propensities: Propensities | None = None, chunk: int = 256,
            contexts: dict[str, QueryContext | None] | None = None) -> dict[str, Any]:
    """The inverse-propensity-scored DCG@10 of ``ranker`` over the clicks in ``events`` (see the module).

    Returns ``value`` (mean over the recommendations with a click), ``clicks``, ``recommendations`` and the
    propensities used. Recommendations whose request cannot be read again (an asker deleted since) are left out.
    Each distinct request is read against the catalog once, ``chunk`` at a time, and scored once for all the
    recommendations it got; ``contexts`` (request key → context, None: unreadable) is read and filled, so that
    the gate's two calls read each request once.
    """
    theta = propensities or estimate_propensities(impressions(events))
    contexts = contexts if contexts is not None else {}
    by_key: dict[str, list[Impression]] = {}
    for imp in impressions(events):
        if imp.clicked:
            by_key.setdefault(imp.key, []).append(imp)
    _read_requests(matcher, [imps[0] for key, imps in by_key.items() if key not in contexts], contexts, chunk)
    by_task: dict[str, list[tuple[QueryContext, list[Impression]]]] = {}
    for key, imps in by_key.items():
        ctx = contexts[key]
        if ctx is not None:
            by_task.setdefault(imps[0].task, []).append((ctx, imps))
    total, used, clicks = 0.0, 0, 0
    index = matcher.index_
    for task, items in by_task.items():
        block = index.block_of(TASK_KINDS.get(task) or (TASK_KIND[task],))
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            scores = score_contexts(index, [c for c, _ in part], block, matcher.weights_, ranker=ranker).total
            for row_scores, (_, imps) in zip(scores, part):
                for imp in imps:
                    gain = 0.0
                    for entity in imp.clicked:
                        row = index.row.get(entity)
                        if row is None or not block.rows.start <= row < block.rows.stop:
                            continue
                        s = row_scores[row - block.rows.start]
                        if not np.isfinite(s):
                            continue
                        # ties: the expected rank under a random order among them (a constant ranker earns no
                        # credit)
                        rank = 1 + int(np.sum(row_scores > s)) + (int(np.sum(row_scores == s)) - 1) / 2
                        if rank <= 10:
                            gain += float(theta.weight(imp.ranks[entity])) / float(np.log2(1 + rank))
                        clicks += 1
                    total += gain
                    used += 1
    return {"value": total / used if used else 0.0, "clicks": clicks, "recommendations": used,
            "propensities": theta.as_dict()}


def _read_requests(matcher: Matcher, imps: Sequence[Impression], out: dict[str, QueryContext | None],
                   chunk: int) -> None:
    """Each impression's request read against the catalog (its vector from the cache or the store, else
    encoded), into ``out`` by request key; None for one that cannot be read again. Batches of ``chunk``; a batch
    that fails (an asker deleted since) is read one request at a time."""
    queries: list[tuple[str, Query]] = []
    for imp in imps:
        try:
            queries.append((imp.key, Query.model_validate(dict(imp.query))))
        except ValueError:
            out[imp.key] = None
    for start in range(0, len(queries), chunk):
        part = queries[start:start + chunk]
        try:
            for (key, _), ctx in zip(part, matcher.contexts([q for _, q in part], as_of=None)):
                out[key] = ctx
        except MatcherError:
            for key, q in part:
                try:
                    out[key] = matcher.contexts([q], as_of=None)[0]
                except MatcherError:
                    out[key] = None


def gate(matcher: Matcher, candidate: Ranker, active: Ranker, judged: Sequence[tuple[Matcher, Dataset]],
         events: Sequence[FeedbackEvent]) -> GateVerdict:
    """Whether ``candidate`` beats ``active`` on the judged data and on the counterfactual estimate over
    ``events`` (see the module; with fewer than :data:`MIN_CLICKS` clicks, on the judged data alone)."""
    reasons = []
    if judged:
        scores = {"candidate": judged_ndcg(judged, candidate), "active": judged_ndcg(judged, active)}
        judged_ok = scores["candidate"] > scores["active"] + TOLERANCE
        reasons.append(f"Bewertete Daten: nDCG@10 {decimal(scores['candidate'], 4)} gegenüber "
                       f"{decimal(scores['active'], 4)} der aktiven Version – "
                       f"{'besser' if judged_ok else 'nicht besser'}")
    else:
        scores, judged_ok = {}, False
        reasons.append("Keine bewerteten Daten angegeben: ohne sie wird keine Version aktiviert")
    clicked = sum(1 for e in events if e.outcome in CLICKS)
    ips = None
    ips_ok = True
    if clicked >= MIN_CLICKS:
        propensities = estimate_propensities(impressions(events))
        read: dict[str, QueryContext | None] = {}   # each request read once for both
        cand = ips_dcg(matcher, candidate, events, propensities, contexts=read)
        act = ips_dcg(matcher, active, events, propensities, contexts=read)
        ips = {"candidate": cand["value"], "active": act["value"], "clicks": cand["clicks"],
               "recommendations": cand["recommendations"], "propensities": cand["propensities"]}
        ips_ok = cand["value"] > act["value"] + TOLERANCE
        reasons.append(f"Rückmeldungen (IPS-geschätzter DCG, {cand['clicks']} Klicks): {decimal(cand['value'], 4)} "
                       f"gegenüber {decimal(act['value'], 4)} – {'besser' if ips_ok else 'nicht besser'}")
    else:
        reasons.append(f"Zu wenige Rückmeldungen für eine kontrafaktische Schätzung ({clicked} Klicks, mindestens "
                       f"{MIN_CLICKS}): entschieden wird nach den bewerteten Daten")
    return GateVerdict(judged_ok and ips_ok, scores, ips, reasons)


# ----------------------------------------------------------------------------- train, activate, roll back
def train_version(store: Store, matcher: Matcher, judged: Sequence[Dataset], *, since: dt.datetime | None = None,
                  until: dt.datetime | None = None, activate: bool = True, hand_tasks: Sequence[str] = (),
                  progress: Callable[[float, str], None] | None = None) -> TrainReport:
    """Train a new version on ``judged`` and the feedback of [``since``, ``until``) (default: the last
    :data:`RECENT_DAYS` days), store it, and activate it if it passes the :func:`gate` (and ``activate``).
    ``hand_tasks``: tasks that keep the hand weights in the new version whatever the training found (each
    task's model is fitted on its own pairs: dropping one leaves the others as they are).

    ``matcher``: fitted on the store's catalog (the feedback's requests are read against it).
    ``progress(fraction, German stage)`` is told where it is.
    """
    def say(fraction: float, stage: str) -> None:
        if progress is not None:
            progress(fraction, stage)

    until = until or dt.datetime.now(dt.UTC)
    since = since or until - dt.timedelta(days=RECENT_DAYS)
    say(0.0, "Rückmeldungen lesen")
    events = feedback_events(store, since, until)
    say(0.05, "Modell trainieren")
    fitted = fit_judged(matcher, judged)   # once, for the training and the gate
    ranker, metrics = train_ranker(matcher, judged=fitted or None, feedback=events or None)
    if hand_tasks:
        ranker = ranker.with_hand(hand_tasks)
        metrics["tasks"] = list(ranker.tasks)
    say(0.6, "Mit der aktiven Version vergleichen")
    report = consider(store, matcher, ranker, metrics, fitted, events, since=since, until=until,
                      activate=activate)
    say(1.0, "fertig")
    return report


def fit_judged(matcher: Matcher, judged: Sequence[Dataset]) -> list[tuple[Matcher, Dataset]]:
    """Each judged set with a matcher like ``matcher`` (embedder, places, weights) fitted on its catalog."""
    return [(fitted_like(matcher, ds), ds) for ds in judged]


def consider(store: Store, matcher: Matcher, ranker: Ranker, metrics: dict[str, Any],
             judged: Sequence[tuple[Matcher, Dataset]], events: Sequence[FeedbackEvent], *,
             since: dt.datetime | None = None, until: dt.datetime | None = None, activate: bool = True) -> TrainReport:
    """Store a trained ``ranker`` with its ``metrics`` and the :func:`gate`'s verdict against the serving version,
    and activate it if it passed (and ``activate``). A version already stored keeps its row (new metrics)."""
    active = store.rankers.active()
    verdict = gate(matcher, ranker, ranker_of(store, active.version), judged, events)
    metrics = {**_plain(metrics), "gate": verdict.as_dict(), "judged_sets": [str(ds.path) for _, ds in judged],
               "against": active.version}
    version = ranker.version
    if version in {v.version for v in store.rankers.all()}:
        store.rankers.update_metrics(version, metrics)
    else:
        store.rankers.add(version, _plain(ranker.to_dict()), features=list(FEATURES), metrics=metrics,
                          commit=code_commit(),
                          window_start=since, window_end=until)
    activated = False
    if verdict.passed and activate and version != active.version:
        store.rankers.activate(version, "trained")
        activated = True
    log.info("ranker %s trained: %s", version, "activated" if activated else "not activated")
    return TrainReport(version, activated, verdict, metrics, store.rankers.active().version)


def activate(store: Store, version: str) -> Activation:
    """Serve a stored version again that passed its gate when it was trained, the shipped default or the hand
    weights.

    Raises:
        UnknownEntityError: no such version. ConflictError: it did not pass its gate (it never serves).
    """
    if version not in (HAND_VERSION, DEFAULT_VERSION):
        stored = store.rankers.get(version)
        if not (stored.metrics.get("gate") or {}).get("passed"):
            raise ConflictError(f"Die Ranker-Version {quoted(version)} hat die Prüfung gegen die damals aktive "
                                "Version nicht bestanden und wird nicht aktiviert",
                                [{"field": "version", "value": version}])
    return store.rankers.activate(version, "activated")


def rollback(store: Store) -> Activation:
    """Serve the version that served before the current one (:meth:`RankerVersions.rollback`)."""
    return store.rankers.rollback()


def _plain(value: Any) -> Any:
    """``value`` with numpy numbers and arrays as JSON-serialisable Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
