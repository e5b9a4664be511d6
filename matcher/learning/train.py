"""Training the learned ranker: pairwise logistic regression on feature differences, coefficients ≥ 0.

Training data are *pairs* of candidates of one query, ``i`` preferred to ``j``, each with a weight:

* from judged sets (``../shared/eval/FORMAT.md``): every candidate of a query against every one judged
  lower (unlisted = grade 0), weighted by the difference of their gains 2^grade − 1 and normalised so that
  every query weighs the same;
* from feedback (:mod:`matcher.learning.feedback`): each result staff took up against the other candidates
  of that request (the others shown and declined, and a sample of the rest), weighted by the inverse of the propensity
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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from matcher.domain.schema import Query
from matcher.engine.matcher import Matcher
from matcher.engine.ranker import FEATURES, HAND, LinearRanker, Ranker, features, hand_coefficients
from matcher.engine.scoring import score_contexts
from matcher.engine.similarity import top_k
from matcher.engine.weights import TASK_KIND, TASK_KINDS, Weights
from matcher.evaluation.judged import Dataset, evaluate, has_fit, judged_queries, matcher_ranker, reference_date
from matcher.evaluation.metrics import ndcg_at_k
from matcher.learning.feedback import FeedbackEvent, Impression, Propensities, estimate_propensities, impressions

__all__ = ["L2", "L2_GRID", "PairSet", "QueryFeatures", "cross_validate", "feedback_pairs", "fit_coefficients",
           "fit_ranker", "fitted_like", "judged_features", "judged_pairs", "reference_date", "select_l2",
           "train_ranker"]

L2 = 1.0   # pull towards the hand weights, in units of one judged query's (or one click's) loss
L2_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)   # chosen among by an inner cross-validation where judged queries allow
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


def judged_features(matcher: Matcher, dataset: Dataset, as_of: dt.date | None = None) -> list[QueryFeatures]:
    """The candidates' features and grades of every judged query with a fit (``matcher`` fitted on the set's
    catalog)."""
    out = []
    for q in judged_queries(dataset):
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
                   imps: Sequence[Impression] | None = None,
                   memo: dict[str, tuple[list[str], np.ndarray]] | None = None) -> tuple[PairSet, Propensities]:
    """Pairs from feedback, scored by ``matcher`` (fitted on the catalog the feedback was given on).

    Each result taken up (accepted, contacted) is preferred to every other result of its recommendation
    (shown or declined) and to ``negatives`` candidates not shown, drawn at random (weighted up to stand for
    all of them). ``corrected``: each click's pairs are weighted by 1 / θ(rank shown) — the propensities given,
    or estimated from these events (:func:`~matcher.learning.feedback.estimate_propensities`); otherwise 1
    (naive click learning). Requests are scored once each, in batches; results no longer in the catalog are
    left out. ``memo``: request key → candidates and features, read and filled (a caller that trains again
    on the same requests scores them once). Returns the pairs and the propensities used."""
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
        for key, (cols_ids, x) in _score_requests(matcher, task, requests, memo).items():
            position = {e: n for n, e in enumerate(cols_ids)}
            for imp in by_key[key]:
                parts.append(_click_pairs(imp, position, x, propensities if corrected else None, negatives, rng))
    pairs = PairSet.concat(parts)
    if len(pairs):   # self-normalised: the weights add up to the number of clicks, corrected or not
        clicks = sum(len(imp.clicked) for imps_ in by_key.values() for imp in imps_)
        pairs.weight *= clicks / pairs.weight.sum()
    return pairs, propensities


def _by_task(by_key: dict[str, list[Impression]]) -> dict[str, dict[str, Impression]]:
    out: dict[str, dict[str, Impression]] = {}
    for key, imps in by_key.items():
        out.setdefault(imps[0].task, {})[key] = imps[0]
    return out


# what a stored request may hold that a Query reads (the API's ``k``, ``lang`` and the like are left out)
_QUERY_KEYS = frozenset(name for name, f in Query.model_fields.items() for name in (name, f.alias) if name)


def _score_requests(matcher: Matcher, task: str, requests: dict[str, Impression],
                    memo: dict[str, tuple[list[str], np.ndarray]] | None = None,
                    chunk: int = 256) -> dict[str, tuple[list[str], np.ndarray]]:
    """Each request's candidate ids and features, the requests of one task read and scored in batches."""
    memo = memo if memo is not None else {}
    out = {key: memo[key] for key in requests if key in memo}
    keys = [key for key in requests if key not in memo]
    block = matcher.index_.block_of(TASK_KINDS.get(task) or (TASK_KIND[task],))
    ids = [e.id for e in matcher.index_.entities[block.rows.start : block.rows.stop]]
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        queries, kept = [], []
        for key in part:
            try:
                queries.append(Query.model_validate({k: v for k, v in requests[key].query.items() if k in _QUERY_KEYS}
                                                    | {"task": task}))
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
            out[key] = memo[key] = ([ids[c] for c in cols], np.stack([feats[f][r, cols] for f in FEATURES], axis=1))
    return out


def _click_pairs(imp: Impression, position: dict[str, int], x: np.ndarray, propensities: Propensities | None,
                 negatives: int, rng: np.random.Generator) -> PairSet:
    """A click's pairs: the clicked result against every declined one and every other result shown (weight 1
    each), and against ``negatives`` of the candidates not shown, drawn at random and weighted up to stand for
    all of them — each pair times the click's inverse propensity."""
    clicked = [position[e] for e in imp.clicked if e in position]
    if not clicked:
        return PairSet()
    declined = [position[e] for e in imp.declined if e in position]
    shown = [position[e] for e in imp.ranks if e in position]
    others_shown = np.setdiff1d(shown, clicked)
    unshown = np.setdiff1d(np.arange(len(x)), np.concatenate([shown, declined, clicked]).astype(np.int64))
    rows_i, rows_j, w = [], [], []
    for e in imp.clicked:
        if e not in position:
            continue
        i = position[e]
        base = 1.0 if propensities is None else float(propensities.weight(imp.ranks[e]))
        for j in np.union1d(others_shown, declined).astype(np.int64):
            rows_i.append(i), rows_j.append(int(j)), w.append(base)
        if len(unshown):
            sample = rng.choice(unshown, size=min(negatives, len(unshown)), replace=False)
            for j in sample:
                rows_i.append(i), rows_j.append(int(j)), w.append(base * len(unshown) / len(sample))
    if not rows_i:
        return PairSet()
    ii, jj = np.array(rows_i), np.array(rows_j)
    weight = np.array(w) / max(len(x) - 1, 1)   # a click stands for "preferred to the request's other candidates"
    return PairSet(x[ii] - x[jj], weight, np.full(len(ii), imp.task, dtype=object),
                   np.full(len(ii), imp.key, dtype=object))


def fit_coefficients(pairs: PairSet, weights: Weights | None = None, l2: float = L2) -> np.ndarray:
    """β ≥ 0 over :data:`FEATURES` minimising the weighted pairwise logistic loss (summed: the weights of one
    judged query's or one click's pairs add up to about 1, so more data weigh more against the pull) plus
    ``l2``/2 · ‖s ⊙ (β − a·w_hand)‖² (s: each feature's spread in the pairs; a ≥ 0 fitted too), scaled back
    so that ‖s ⊙ β‖ = ‖s ⊙ w_hand‖ (the learned scores stay on the hand scores' scale)."""
    hand = hand_coefficients(weights or Weights())
    d = pairs.diff.astype(np.float64)
    w = pairs.weight
    spread = np.sqrt((w / w.sum()) @ d**2) + 1e-9
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
    # one BLAS thread: the products here are small (pairs × a few dozen features) and many (thousands of
    # L-BFGS-B steps in a cross-validation); a second thread woken for each only waits for a core —
    # `matcher train` on the trust set took ~35 s of which ~30 in these fits on a busy 2-core machine, ~2 s so
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * (n + 1),
                          options={"maxiter": 500})
    beta = np.maximum(result.x[:n], 0.0)
    norm = np.linalg.norm(beta)
    beta = beta * (np.linalg.norm(h) / norm) if norm > 0 else h
    return beta / spread


def fit_ranker(pairs: PairSet, weights: Weights | None = None, *, l2: float = L2,
               tasks: Iterable[str] | None = None, info: dict[str, Any] | None = None) -> LinearRanker:
    """A :class:`~matcher.engine.ranker.LinearRanker` with one model per task of ``pairs`` (only ``tasks``, if
    given; the others stay with the hand weights)."""
    wanted = set(tasks) if tasks is not None else set(pairs.task)
    return LinearRanker({t: fit_coefficients(pairs.where(pairs.task == t), weights, l2)
                         for t in sorted(set(pairs.task) & wanted)}, info=info or {})


def _ndcg(qf: QueryFeatures, beta: np.ndarray, k: int = 10) -> float:
    best = top_k(qf.x @ beta, k)
    return ndcg_at_k([qf.ids[i] for i in best], dict(zip(qf.ids, qf.grades.tolist())), k)


def select_l2(queries: Sequence[QueryFeatures], weights: Weights | None = None, grid: Sequence[float] = L2_GRID,
              folds: int = 3, extra: PairSet | None = None) -> float:
    """The pull towards the hand weights that ranks held-out judged queries best (nDCG@10, an inner
    ``GroupKFold`` over ``queries``, which should be of one task; ties go to the stronger pull); :data:`L2`
    when there are too few queries to fold. ``extra``: pairs added to every training fold (feedback)."""
    groups = [qf.group for qf in queries]
    if len(set(groups)) < 2 * folds:
        return L2
    found: dict[float, list[float]] = {l2: [] for l2 in grid}
    for train_idx, test_idx in GroupKFold(folds).split(groups, groups=groups):
        pairs = judged_pairs([queries[i] for i in train_idx])
        if extra is not None:
            pairs = PairSet.concat([pairs, extra])
        for l2 in grid:
            beta = fit_coefficients(pairs, weights, l2)
            found[l2] += [_ndcg(queries[i], beta) for i in test_idx]
    return max(grid, key=lambda l2: (float(np.mean(found[l2])), l2))


def cross_validate(matchers: Sequence[tuple[Matcher, Dataset]], *, folds: int = FOLDS, l2: float | None = None,
                   feedback: PairSet | None = None, as_of: dt.date | None = None) -> dict[str, dict[str, float]]:
    """nDCG@10 of the learned ranker and the hand weights per task, cross-validated by query.

    ``matchers``: each judged set with a matcher fitted on its catalog. Within each task the judged queries
    (of all sets) are split into ``folds`` groups (``GroupKFold``); a model trained on the other folds' pairs
    (plus ``feedback`` pairs, if any) ranks each held-out query through the product's path (the matcher's
    ``rank`` with that ranker, as ``matcher evaluate`` does), the hand weights rank it too. ``l2`` ``None``: each
    fold chooses its pull by an inner cross-validation on its own training queries (:func:`select_l2`), so the
    held-out queries choose nothing. Returns, per task, ``learned``, ``hand``, their difference ``delta``,
    ``queries`` and the pulls the folds chose (``l2``)."""
    data = [(m, ds, judged_features(m, ds, as_of or reference_date(ds))) for m, ds in matchers]
    all_queries = [qf for _, _, qfs in data for qf in qfs]
    pairs = judged_pairs(all_queries)
    weights = matchers[0][0].weights_
    hand_scores = _per_query(data, lambda qf: HAND, as_of)
    learned_for: dict[str, Ranker] = {}
    chosen_l2: dict[str, list[float]] = {}
    for task in sorted({qf.task for qf in all_queries}):
        groups = [qf.group for qf in all_queries if qf.task == task]
        n_splits = min(folds, len(groups))
        if n_splits < 2:
            continue
        of_task = [qf for qf in all_queries if qf.task == task]
        extra = feedback.where(feedback.task == task) if feedback is not None else None
        for train_idx, test_idx in GroupKFold(n_splits).split(groups, groups=groups):
            train = {groups[i] for i in train_idx}
            keep = (pairs.task == task) & np.isin(pairs.group, list(train))
            fold_pairs = pairs.where(keep)
            if extra is not None:
                fold_pairs = PairSet.concat([fold_pairs, extra])
            chosen = l2 if l2 is not None else select_l2([qf for qf in of_task if qf.group in train], weights,
                                                         extra=extra)
            chosen_l2.setdefault(task, []).append(chosen)
            ranker = LinearRanker({task: fit_coefficients(fold_pairs, weights, chosen)}, version="cv")
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
        out[task] = {"learned": learned, "hand": hand, "delta": learned - hand, "queries": len(gs),
                     "l2": chosen_l2.get(task, [])}
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
                subset = replace(ds, queries=[q for q in judged_queries(ds) if q.id in wanted])
                report = evaluate(matcher_ranker(m, as_of or reference_date(ds)), subset)
                out.update({f"{ds.path.name}/{q}": row["ndcg@10"] for q, row in report.per_query.items()})
        finally:
            m.use_ranker(previous)
    return out


def train_ranker(matcher: Matcher, *, judged: Dataset | Sequence[Dataset | tuple[Matcher, Dataset]] | None = None,
                 feedback: Sequence[FeedbackEvent] | None = None, propensities: Propensities | None = None,
                 l2: float | None = None, folds: int = FOLDS, tasks: Iterable[str] | None = None,
                 as_of: dt.date | None = None) -> tuple[LinearRanker, dict[str, Any]]:
    """Train a learned ranker on judged sets and/or feedback; return it and what the training measured.

    ``judged``: judged sets (each ranked by a matcher fitted on its own catalog with ``matcher``'s embedder and
    weights, :func:`fitted_like`; a ``(matcher, set)`` pair brings its fitted matcher along). ``feedback``:
    events on ``matcher``'s catalog, turned into inverse-propensity-weighted pairs
    (``propensities`` given, or estimated from the events by intervention harvesting). With judged data, the
    learned model is kept only for the tasks where it beats the hand weights in query-level
    cross-validation (:func:`cross_validate`); ``tasks`` overrides that choice (e.g. with feedback alone).
    ``l2``: the pull towards the hand weights; ``None``: chosen per task by an inner cross-validation on the
    judged queries (:func:`select_l2`), or :data:`L2` without judged data.

    The metrics: ``cv`` (per task: learned, hand, delta, queries), ``tasks`` (those the ranker scores),
    ``judged_queries``, ``pairs``, ``feedback_events``, ``recommendations``, ``window`` (first and last
    feedback time), ``propensities``, ``seconds``.
    """
    started = time.monotonic()
    datasets = [judged] if isinstance(judged, Dataset) else list(judged or [])
    matchers = [j if isinstance(j, tuple) else (fitted_like(matcher, j), j) for j in datasets]
    events = list(feedback or [])
    metrics: dict[str, Any] = {"feedback_events": len(events)}
    parts = []
    fb = PairSet()
    qfs: list[QueryFeatures] = []
    if events:
        imps = impressions(events)
        fb, used = feedback_pairs(matcher, events, propensities, imps=imps)
        parts.append(fb)
        metrics |= {"recommendations": len(imps), "propensities": used.as_dict(),
                    "window": [min(e.created_at for e in events).isoformat(),
                               max(e.created_at for e in events).isoformat()]}
    if matchers:
        qfs = [qf for m, ds in matchers for qf in judged_features(m, ds, as_of or reference_date(ds))]
        parts.append(judged_pairs(qfs))
        metrics["judged_queries"] = len(qfs)
        metrics["cv"] = cross_validate(matchers, folds=folds, l2=l2, feedback=fb if len(fb) else None, as_of=as_of)
    pairs = PairSet.concat(parts)
    chosen = set(tasks) if tasks is not None else (
        {t for t, row in metrics["cv"].items() if row["delta"] > 0} if matchers else set(pairs.task))
    pulls = {t: l2 if l2 is not None else
             select_l2([qf for qf in qfs if qf.task == t], matcher.weights_,
                       extra=fb.where(fb.task == t) if len(fb) else None) if matchers else L2
             for t in sorted(set(pairs.task) & chosen)}
    ranker = LinearRanker({t: fit_coefficients(pairs.where(pairs.task == t), matcher.weights_, pull)
                           for t, pull in pulls.items()})
    metrics |= {"pairs": len(pairs), "tasks": list(ranker.tasks), "l2": pulls,
                "seconds": round(time.monotonic() - started, 2)}
    info = {k: metrics[k] for k in ("tasks", "cv", "window", "pairs", "judged_queries", "feedback_events")
            if k in metrics}
    return LinearRanker(ranker.coefficients, info=info), metrics


def fitted_like(matcher: Matcher, dataset: Dataset) -> Matcher:
    """A matcher with ``matcher``'s embedder and weights, fitted on a judged set's catalog."""
    return Matcher(matcher.embedder, gazetteer=matcher.gazetteer, weights=matcher.weights_,
                   confidence=matcher.confidence).fit(dataset.catalog)
