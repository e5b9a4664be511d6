"""Training the learned ranker: pairwise logistic regression on feature differences, coefficients ≥ 0.

Training data are *pairs* of candidates of one query, ``i`` preferred to ``j``, each with a weight:

* from judged sets (``../shared/eval/FORMAT.md``): every candidate of a query against every one judged
  lower (unlisted = grade 0), weighted by the difference of their gains 2^grade − 1 and normalised so that
  every query weighs the same;
* from feedback (:mod:`matcher.learning.feedback`): each result staff took up against the other candidates
  of that request (the declined ones, and a sample of the rest), weighted by the inverse of the propensity
  of the rank it was shown at — the unbiased pairwise objective of Joachims et al. (WSDM 2017).

The model is P(i ≻ j) = σ(β · (x_i − x_j)) over :data:`~matcher.engine.ranker.FEATURES`, one per task,
fitted by L-BFGS-B (scipy) with the bounds β ≥ 0 — the monotonicity the meaning demands: more of a signal
never lowers a candidate — and an L2 penalty that pulls β towards the hand weights up to scale
(‖β − a·w_hand‖², a ≥ 0 free), so that with little data the learned ranker *is* the hand ranking and it moves
away only as far as the data carry it. Features are scaled by their spread in the pairs before the penalty.

:func:`cross_validate` compares it with the hand weights on judged sets, folded by query
(``GroupKFold``), through the product's own ranking path (:func:`matcher.evaluation.judged.evaluate`);
:func:`train_ranker` fits on everything given and keeps the learned model only for the tasks where it won.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.model_selection import GroupKFold

from matcher.domain.schema import Query
from matcher.engine.matcher import Matcher
from matcher.engine.ranker import FEATURES, HAND, LinearRanker, Ranker, features, hand_coefficients
from matcher.engine.scoring import score_contexts
from matcher.engine.weights import TASK_KIND, TASK_KINDS, Weights
from matcher.evaluation.judged import Dataset, evaluate, has_fit, judged_municipalities, matcher_ranker
from matcher.learning.feedback import FeedbackEvent, Impression, Propensities, estimate_propensities, impressions

__all__ = ["L2", "PairSet", "QueryFeatures", "cross_validate", "feedback_pairs", "fit_coefficients",
           "judged_features", "judged_pairs", "train_ranker"]

L2 = 0.03             # strength of the pull towards the hand weights (in units of the mean pair loss)
NEGATIVES = 30        # candidates sampled per click as the other side of its pairs (besides the declined ones)
FOLDS = 5


@dataclass
class QueryFeatures:
    """One query's candidates: their features (candidates × features) and hand scores; grades when judged."""

    task: str
    group: str                     # the query's identity in cross-validation (set and query id)
    ids: list[str]                 # entity ids of the candidates
    x: np.ndarray                  # float32, candidates × FEATURES
    grades: np.ndarray | None = None


@dataclass
class PairSet:
    """Pairs ``i ≻ j`` as feature differences x_i − x_j, with weights, tasks and query groups."""

    diff: np.ndarray = field(default_factory=lambda: np.zeros((0, len(FEATURES)), dtype=np.float32))
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    task: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __len__(self) -> int:
        return len(self.weight)

    @classmethod
    def concat(cls, parts: Iterable[PairSet]) -> PairSet:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls()
        return cls(np.concatenate([p.diff for p in parts]), np.concatenate([p.weight for p in parts]),
                   np.concatenate([p.task for p in parts]), np.concatenate([p.group for p in parts]))

    def where(self, keep: np.ndarray) -> PairSet:
        return PairSet(self.diff[keep], self.weight[keep], self.task[keep], self.group[keep])


def _query_features(scores: Any) -> tuple[list[int], np.ndarray]:
    """The candidate columns of one query's :class:`~matcher.engine.matcher.QueryScores` and their features."""
    cols = np.flatnonzero(scores.mask)
    feats = features({s: v[None, :] for s, v in scores.raw.items()}, scores.mask[None, :])
    return cols.tolist(), np.stack([feats[f][0, cols] for f in FEATURES], axis=1)


def _as_judged(dataset: Dataset) -> list[Query]:
    """The queries of a judged set as :func:`~matcher.evaluation.judged.evaluate` runs them."""
    with_municipalities = judged_municipalities(dataset)
    out = []
    for i, q in enumerate(dataset.queries):
        q = q if q.id else q.model_copy(update={"id": f"q{i + 1}"})
        if q.task in ("partners", "invitations") and not q.kinds and q.task not in with_municipalities:
            q = q.model_copy(update={"kinds": ["organisation"]})
        out.append(q)
    return out


def judged_features(matcher: Matcher, dataset: Dataset, as_of: dt.date | None = None) -> list[QueryFeatures]:
    """The candidates' features and grades of every judged query with a fit (``matcher`` fitted on the set's
    catalog)."""
    out = []
    for q in _as_judged(dataset):
        grades = dataset.qrels.get(q.id, {})
        if not has_fit(grades):
            continue
        scores = matcher.score(q, as_of=as_of)
        cols, x = _query_features(scores)
        ids = [matcher.index_.entities[scores.block.rows.start + c].id for c in cols]
        out.append(QueryFeatures(q.task, f"{dataset.path.name}/{q.id}", ids, x,
                                 np.array([grades.get(e, 0) for e in ids], dtype=np.float64)))
    return out


def judged_pairs(queries: Sequence[QueryFeatures]) -> PairSet:
    """Every candidate against every one judged lower, weighted by the gain difference; each query weighs 1."""
    parts = []
    for qf in queries:
        gain = 2.0 ** qf.grades - 1.0
        i, j = np.nonzero(gain[:, None] > gain[None, :])
        if not len(i):
            continue
        w = gain[i] - gain[j]
        parts.append(PairSet(qf.x[i] - qf.x[j], w / w.sum(), np.full(len(i), qf.task, dtype=object),
                             np.full(len(i), qf.group, dtype=object)))
    return PairSet.concat(parts)


def feedback_pairs(matcher: Matcher, events: Iterable[FeedbackEvent], propensities: Propensities | None = None,
                   *, corrected: bool = True, negatives: int = NEGATIVES, seed: int = 0,
                   imps: Sequence[Impression] | None = None) -> tuple[PairSet, Propensities]:
    """Pairs from feedback, scored by ``matcher`` (fitted on the catalog the feedback was given on).

    Each result taken up (accepted, contacted) is preferred to every declined result of its recommendation
    and to ``negatives`` other candidates of the request drawn at random (weighted up to stand for all
    of them). ``corrected``: each click's pairs are weighted by 1 / θ(rank shown) — the propensities given,
    or estimated from these events (:func:`~matcher.learning.feedback.estimate_propensities`); otherwise 1
    (naive click learning). Requests are scored once each, in batches; results no longer in the catalog are
    left out. Returns the pairs and the propensities used."""
    imps = list(imps) if imps is not None else impressions(events)
    if propensities is None:
        propensities = estimate_propensities(imps) if corrected else Propensities.prior()
    rng = np.random.default_rng(seed)
    by_key: dict[str, list[Impression]] = {}
    for imp in imps:
        if imp.clicked:
            by_key.setdefault(imp.key, []).append(imp)
    parts = []
    for task, requests in _by_task(by_key).items():
        for key, (cols_ids, x) in _score_requests(matcher, task, requests).items():
            position = {e: n for n, e in enumerate(cols_ids)}
            for imp in by_key[key]:
                parts.append(_click_pairs(imp, position, x, propensities if corrected else None, negatives, rng))
    return PairSet.concat(parts), propensities


def _by_task(by_key: dict[str, list[Impression]]) -> dict[str, dict[str, Impression]]:
    out: dict[str, dict[str, Impression]] = {}
    for key, imps in by_key.items():
        out.setdefault(imps[0].task, {})[key] = imps[0]
    return out


def _score_requests(matcher: Matcher, task: str, requests: dict[str, Impression],
                    chunk: int = 256) -> dict[str, tuple[list[str], np.ndarray]]:
    """Each request's candidate ids and features, the requests of one task read and scored in batches."""
    out = {}
    keys = list(requests)
    block = matcher.index_.block_of(TASK_KINDS.get(task) or (TASK_KIND[task],))
    ids = [e.id for e in matcher.index_.entities[block.rows.start : block.rows.stop]]
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        queries, kept = [], []
        for key in part:
            try:
                queries.append(Query.model_validate({**requests[key].query, "task": task}))
                kept.append(key)
            except ValueError:
                continue   # a request the schema no longer reads
        if not queries:
            continue
        contexts = matcher.contexts(queries, as_of=None)
        scores = score_contexts(matcher.index_, contexts, block, matcher.weights_, HAND)
        feats = features(scores.raw, scores.mask)
        for r, key in enumerate(kept):
            cols = np.flatnonzero(scores.mask[r])
            out[key] = ([ids[c] for c in cols], np.stack([feats[f][r, cols] for f in FEATURES], axis=1))
    return out


def _click_pairs(imp: Impression, position: dict[str, int], x: np.ndarray, propensities: Propensities | None,
                 negatives: int, rng: np.random.Generator) -> PairSet:
    clicked = [position[e] for e in imp.clicked if e in position]
    if not clicked:
        return PairSet()
    declined = [position[e] for e in imp.declined if e in position]
    others = np.setdiff1d(np.arange(len(x)), clicked + declined)
    rows_i, rows_j, w = [], [], []
    for e in imp.clicked:
        if e not in position:
            continue
        i = position[e]
        base = 1.0 if propensities is None else float(propensities.weight(imp.ranks[e]))
        sample = rng.choice(others, size=min(negatives, len(others)), replace=False) if len(others) else others
        for j in declined:
            rows_i.append(i), rows_j.append(j), w.append(base)
        for j in sample:
            rows_i.append(i), rows_j.append(int(j)), w.append(base * len(others) / len(sample))
    if not rows_i:
        return PairSet()
    ii, jj = np.array(rows_i), np.array(rows_j)
    weight = np.array(w) / max(len(x) - 1, 1)   # a click stands for "preferred to the request's other candidates"
    return PairSet(x[ii] - x[jj], weight, np.full(len(ii), imp.task, dtype=object),
                   np.full(len(ii), imp.key, dtype=object))


def fit_coefficients(pairs: PairSet, weights: Weights | None = None, l2: float = L2) -> np.ndarray:
    """β ≥ 0 over :data:`FEATURES` minimising the weighted pairwise logistic loss plus
    ``l2``/2 · ‖s ⊙ (β − a·w_hand)‖² (s: each feature's spread in the pairs; a ≥ 0 fitted too), scaled back
    so that ‖s ⊙ β‖ = ‖s ⊙ w_hand‖ (the learned scores stay on the hand scores' scale)."""
    hand = hand_coefficients(weights or Weights())
    d = pairs.diff.astype(np.float64)
    w = pairs.weight / pairs.weight.sum()
    spread = np.sqrt(w @ d**2) + 1e-9
    z = d / spread
    h = hand * spread
    n = len(FEATURES)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, a = theta[:n], theta[n]
        margin = z @ beta
        loss = w @ np.logaddexp(0.0, -margin)
        resid = beta - a * h
        p = np.exp(-np.logaddexp(0.0, margin))   # σ(−margin)
        grad_beta = -(z.T @ (w * p)) + l2 * resid
        return float(loss + 0.5 * l2 * resid @ resid), np.append(grad_beta, -l2 * h @ resid)

    start = np.append(h, 1.0)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * (n + 1),
                      options={"maxiter": 500})
    beta = np.maximum(result.x[:n], 0.0)
    norm = np.linalg.norm(beta)
    beta = beta * (np.linalg.norm(h) / norm) if norm > 0 else h
    return beta / spread


def _fit(pairs: PairSet, weights: Weights, l2: float) -> dict[str, np.ndarray]:
    return {t: fit_coefficients(pairs.where(pairs.task == t), weights, l2) for t in sorted(set(pairs.task))}


def cross_validate(matchers: Sequence[tuple[Matcher, Dataset]], *, folds: int = FOLDS, l2: float = L2,
                   feedback: PairSet | None = None, as_of: dt.date | None = None) -> dict[str, dict[str, float]]:
    """nDCG@10 of the learned ranker and the hand weights per task, cross-validated by query.

    ``matchers``: each judged set with a matcher fitted on its catalog. Within each task the judged queries
    (of all sets) are split into ``folds`` groups (``GroupKFold``); a model trained on the other folds' pairs
    (plus ``feedback`` pairs, if any) ranks each held-out query through the product's path (the matcher's
    ``rank`` with that ranker, as ``matcher evaluate`` does), the hand weights rank it too. Returns, per task,
    ``learned``, ``hand``, their difference ``delta`` and ``queries``."""
    data = [(m, ds, judged_features(m, ds, as_of)) for m, ds in matchers]
    all_queries = [qf for _, _, qfs in data for qf in qfs]
    pairs = judged_pairs(all_queries)
    weights = matchers[0][0].weights_
    hand_scores = _per_query(data, lambda qf: HAND, as_of)
    learned_for: dict[str, Ranker] = {}
    for task in sorted({qf.task for qf in all_queries}):
        groups = [qf.group for qf in all_queries if qf.task == task]
        n_splits = min(folds, len(groups))
        if n_splits < 2:
            continue
        for train_idx, test_idx in GroupKFold(n_splits).split(groups, groups=groups):
            train = {groups[i] for i in train_idx}
            keep = (pairs.task == task) & np.isin(pairs.group, list(train))
            fold_pairs = pairs.where(keep)
            if feedback is not None:
                fold_pairs = PairSet.concat([fold_pairs, feedback.where(feedback.task == task)])
            ranker = LinearRanker({task: fit_coefficients(fold_pairs, weights, l2)}, version="cv")
            for i in test_idx:
                learned_for[groups[i]] = ranker
    learned_scores = _per_query(data, lambda qf: learned_for.get(qf.group, HAND), as_of)
    out = {}
    for task in sorted({qf.task for qf in all_queries}):
        gs = [qf.group for qf in all_queries if qf.task == task and qf.group in learned_for]
        if not gs:
            continue
        learned = float(np.mean([learned_scores[g] for g in gs]))
        hand = float(np.mean([hand_scores[g] for g in gs]))
        out[task] = {"learned": learned, "hand": hand, "delta": learned - hand, "queries": len(gs)}
    return out


def _per_query(data: Sequence[tuple[Matcher, Dataset, list[QueryFeatures]]], ranker_of: Any,
               as_of: dt.date | None) -> dict[str, float]:
    """nDCG@10 of each judged query ranked by the matcher with the ranker ``ranker_of(query)`` gives."""
    out = {}
    for m, ds, qfs in data:
        previous = m.ranker_
        by_ranker: dict[int, tuple[Ranker, list[QueryFeatures]]] = {}
        for qf in qfs:
            r = ranker_of(qf)
            by_ranker.setdefault(id(r), (r, []))[1].append(qf)
        try:
            for ranker, group in by_ranker.values():
                m.use_ranker(ranker)
                wanted = {qf.group.split("/", 1)[1] for qf in group}
                subset = Dataset(ds.catalog, [q for q in _as_judged(ds) if q.id in wanted], ds.qrels, ds.path)
                report = evaluate(matcher_ranker(m, as_of), subset)
                out.update({f"{ds.path.name}/{q}": row["ndcg@10"] for q, row in report.per_query.items()})
        finally:
            m.use_ranker(previous)
    return out


def train_ranker(matcher: Matcher, *, judged: Dataset | Sequence[Dataset] | None = None,
                 feedback: Sequence[FeedbackEvent] | None = None, propensities: Propensities | None = None,
                 l2: float = L2, folds: int = FOLDS, tasks: Iterable[str] | None = None,
                 as_of: dt.date | None = None) -> tuple[LinearRanker, dict[str, Any]]:
    """Train a learned ranker on judged sets and/or feedback; return it and what the training measured.

    ``judged``: judged sets (each ranked by a matcher fitted on its own catalog with ``matcher``'s embedder and
    weights). ``feedback``: events on ``matcher``'s catalog, turned into inverse-propensity-weighted pairs
    (``propensities`` given, or estimated from the events by intervention harvesting). With judged data, the
    learned model is kept only for the tasks where it beats the hand weights in query-level
    cross-validation (:func:`cross_validate`); ``tasks`` overrides that choice (e.g. with feedback alone).

    The metrics: ``cv`` (per task: learned, hand, delta, queries), ``tasks`` (those the ranker scores),
    ``judged_queries``, ``pairs``, ``feedback_events``, ``recommendations``, ``window`` (first and last
    feedback time), ``propensities``, ``seconds``.
    """
    started = time.monotonic()
    datasets = [judged] if isinstance(judged, Dataset) else list(judged or [])
    matchers = [(_fitted_like(matcher, ds), ds) for ds in datasets]
    events = list(feedback or [])
    metrics: dict[str, Any] = {"feedback_events": len(events)}
    parts = []
    fb = PairSet()
    if events:
        imps = impressions(events)
        fb, used = feedback_pairs(matcher, events, propensities, imps=imps)
        parts.append(fb)
        metrics |= {"recommendations": len(imps), "propensities": used.as_dict(),
                    "window": [min(e.created_at for e in events).isoformat(),
                               max(e.created_at for e in events).isoformat()]}
    if matchers:
        qfs = [qf for m, ds in matchers for qf in judged_features(m, ds, as_of)]
        parts.append(judged_pairs(qfs))
        metrics["judged_queries"] = len(qfs)
        metrics["cv"] = cross_validate(matchers, folds=folds, l2=l2, feedback=fb if len(fb) else None, as_of=as_of)
    pairs = PairSet.concat(parts)
    chosen = set(tasks) if tasks is not None else (
        {t for t, row in metrics["cv"].items() if row["delta"] > 0} if matchers else set(pairs.task))
    coefficients = {t: c for t, c in _fit(pairs, matcher.weights_, l2).items() if t in chosen}
    metrics |= {"pairs": len(pairs), "tasks": sorted(coefficients), "l2": l2,
                "seconds": round(time.monotonic() - started, 2)}
    info = {k: metrics[k] for k in ("tasks", "cv", "window", "pairs", "judged_queries", "feedback_events")
            if k in metrics}
    return LinearRanker(coefficients, info=info), metrics


def _fitted_like(matcher: Matcher, dataset: Dataset) -> Matcher:
    """A matcher with ``matcher``'s embedder and weights, fitted on a judged set's catalog."""
    return Matcher(matcher.embedder, gazetteer=matcher.gazetteer, weights=matcher.weights_,
                   confidence=matcher.confidence).fit(dataset.catalog)
