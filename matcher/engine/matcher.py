"""The matching engine as an estimator: ``Matcher(embedder).fit(catalog)``, then ``rank`` and ``score``.

``fit`` builds the :class:`~matcher.engine.index.CatalogIndex` (``index_``); a query is read into a
:class:`~matcher.engine.context.QueryContext` (:func:`~matcher.engine.context.prepare_queries`), its
kind's candidates are scored by the signals of :mod:`matcher.engine.signals` and fused
(:func:`~matcher.engine.scoring.score_contexts`), the exact top k is taken and explained
(:mod:`matcher.engine.explain`). The batch score matrix calls the same functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from matcher.domain.schema import Query
from matcher.engine.confidence import (
    Assessment,
    ConfidenceModel,
    assess,
    evidence,
    load_confidence,
    score_ranks,
    unassessed,
)
from matcher.engine.context import QueryContext, prepare_queries
from matcher.engine.demotion import DECLINED_REASON, Decline, decline_penalties, need_vector, similar_need_threshold
from matcher.engine.embedding import Embedder
from matcher.engine.explain import Explanation, explain, topic_similarities
from matcher.engine.index import DOMAIN_TEXT, CatalogIndex, Entity, KindBlock
from matcher.engine.ranker import HAND, Ranker
from matcher.engine.scoring import BlockScores, ScoreRow, score_contexts
from matcher.engine.similarity import mixed_top_k, top_k
from matcher.engine.weights import SIGNALS, TASK_KIND, TASK_KINDS, Weights
from matcher.errors import NotFittedError
from matcher.text.gazetteer import Gazetteer, default_gazetteer
from matcher.text.intent import Intent

# the actor types a partner search mixes when it does not say which it seeks
MIX_GROUPS = ("migrant_organisation", "civil_society", "municipal_office")

__all__ = ["DOMAIN_TEXT", "MIX_GROUPS", "SIGNALS", "TASK_KIND", "TASK_KINDS", "Matcher", "QueryScores", "Ranking",
           "Result", "Weights"]


@dataclass
class Result:
    """One ranked entity with its fused score, explanation and calibrated confidence."""

    entity: Entity
    score: float
    rank: int
    explanation: Explanation
    confidence: float | None = None       # probability of relevance (grade ≥ 2); None: no calibration
    strength: str | None = None           # good, partial, weak (matcher.engine.confidence)
    strength_label: str | None = None     # „passt gut“, „passt teilweise“, „schwache Übereinstimmung“

    @property
    def entity_id(self) -> str:
        return self.entity.id


@dataclass
class Ranking:
    """The answer to one query."""

    query: Query
    results: list[Result]
    candidates: int
    model_id: str
    intent: Intent = field(default_factory=Intent)
    assessment: Assessment = field(default_factory=lambda: unassessed(0)[1])
    ranker: str = "hand"                  # the version of the ranker that fused the scores
    # the request text's vector as the engine encoded it (None: no text); the service keeps it with the
    # recommendation, for training (matcher.store.request_vectors)
    text_vector: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class QueryScores:
    """One query's scores of the candidates of its kind (the rows of ``block``)."""

    context: QueryContext
    block: KindBlock
    total: np.ndarray                     # fused, -inf outside the candidates
    contributions: dict[str, np.ndarray]  # weight × signal
    raw: dict[str, np.ndarray]            # the signals
    mask: np.ndarray                      # the candidates
    distance_km: np.ndarray

    @classmethod
    def of(cls, scores: BlockScores, r: int, context: QueryContext) -> QueryScores:
        """Row ``r`` of a block's scores."""
        return cls(context, scores.block, scores.total[r], {s: v[r] for s, v in scores.contributions.items()},
                   {s: v[r] for s, v in scores.raw.items()}, scores.mask[r], scores.distance_km[r])

    @property
    def rows(self) -> np.ndarray:
        """The catalog rows of the columns."""
        return np.arange(self.block.rows.start, self.block.rows.stop)

    @property
    def candidates(self) -> np.ndarray:
        """The catalog rows of the candidates."""
        return self.rows[self.mask]

    def at(self, i: int) -> ScoreRow:
        """The scores of catalog row ``i`` (an explanation's input)."""
        c = i - self.block.rows.start
        return ScoreRow({s: float(v[c]) for s, v in self.contributions.items()},
                        {s: float(v[c]) for s, v in self.raw.items()}, float(self.distance_km[c]))


class Matcher:
    """Hybrid matcher over a catalog.

    Follows scikit-learn's contract: ``__init__`` stores collaborators and options,
    ``fit(entities)`` encodes and indexes the catalog (``index_``), learned state ends in ``_``.

    Example:
        >>> m = Matcher(embedder).fit(entities)
        >>> ranking = m.rank(Query(task="advisors", text="Faire Beschaffung von Dienstkleidung", city="Essen"))
        >>> ranking.results[0].explanation.reasons
        ['Erfahrung mit fairer Beschaffung', '3 km entfernt']
    """

    def __init__(self, embedder: Embedder, gazetteer: Gazetteer | None = None, weights: Weights | None = None,
                 domain_text: str = DOMAIN_TEXT, progress: bool = False,
                 confidence: ConfidenceModel | str | Path | None = None, ranker: Ranker | None = None):
        self.embedder = embedder
        self.gazetteer = gazetteer
        self.weights = weights
        self.domain_text = domain_text
        self.progress = progress
        self.confidence = confidence
        self.ranker = ranker

    def fit(self, entities: Sequence[Entity], reuse: Matcher | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> Matcher:
        """Encode and index ``entities`` (only texts not in the embedder's cache are encoded).

        ``reuse``: a matcher fitted before on a similar catalog with the same embedder (the one
        serving until a few entities changed): what its index computed for unchanged texts is
        taken over; the result is the same as a fit from scratch. ``on_progress(done, total)``:
        see :class:`~matcher.engine.index.CatalogIndex`.

        The confidence calibration (``confidence_``) is the ``confidence`` given, or read from that
        artifact path, or (``None``) from :func:`matcher.settings.confidence_file`; when it holds none
        for this model, these weights and this ranker, ``confidence_`` is ``None`` and ``confidence_status_``
        says why. ``ranker_`` is the ``ranker`` given, or the hand weights (:data:`~matcher.engine.ranker.HAND`).

        Raises:
            ValidationError: two entities share an id.
            CatalogError: the confidence artifact is malformed.
        """
        self._settle(self.gazetteer or default_gazetteer())
        previous = reuse.index_ if reuse is not None and hasattr(reuse, "index_") else None
        self.index_ = CatalogIndex(entities, self.embedder, self.gazetteer_, self.domain_text, reuse=previous,
                                   on_progress=on_progress, progress_bar=self.progress)
        return self

    def use_index(self, index: CatalogIndex) -> Matcher:
        """Take ``index`` as the fitted index (one read from a file, see :mod:`matcher.engine.index_file`):
        the matcher is then as fitted on the catalog the index was built from with this embedder.

        Raises:
            ValueError: the index was built with another embedding model.
        """
        if index.model_id != self.embedder.model_id:
            raise ValueError(f"index of model {index.model_id}, matcher of {self.embedder.model_id}")
        self._settle(self.gazetteer or index.gazetteer or default_gazetteer())
        self.index_ = index
        return self

    def _settle(self, gazetteer: Gazetteer) -> None:
        """What a fit and a read index both settle besides the index: places, weights, ranker, the confidence."""
        self.gazetteer_ = gazetteer
        self.weights_ = self.weights or Weights()
        self._settle_ranker(self.ranker or HAND)

    def _settle_ranker(self, ranker: Ranker) -> None:
        if isinstance(self.confidence, ConfidenceModel):
            confidence, status = self.confidence, ""
        else:
            confidence, status = load_confidence(self.model_id, self.weights_, self.confidence, ranker)
        # one tuple assigned at once: a request running meanwhile reads either the old or the new state whole
        self._fusion = (ranker, confidence, status)

    @property
    def ranker_(self) -> Ranker:
        """The ranker that fuses the signals (:data:`~matcher.engine.ranker.HAND` unless another was given)."""
        return self._fusion[0]

    @property
    def confidence_(self) -> ConfidenceModel | None:
        """The confidence calibration for this model, weights and ranker (``None``: see ``confidence_status_``)."""
        return self._fusion[1]

    @confidence_.setter
    def confidence_(self, model: ConfidenceModel | None) -> None:
        self._fusion = (self._fusion[0], model, "" if model is not None else self._fusion[2])

    @property
    def confidence_status_(self) -> str:
        """Why there is no confidence ("" when there is one)."""
        return self._fusion[2]

    def use_ranker(self, ranker: Ranker) -> Matcher:
        """Fuse with ``ranker`` from now on (a fitted matcher; thread-safe: requests already scoring finish with
        the previous one), and read the confidence calibrated for it: a ranker the artifact holds no calibration
        for answers without confidence, and ``confidence_status_`` says so.

        Raises:
            NotFittedError: before ``fit``.
        """
        self._check()
        self._settle_ranker(ranker)
        return self

    def _check(self) -> None:
        if not hasattr(self, "index_"):
            raise NotFittedError("Matcher is not fitted: call fit(entities) first")

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def entities_(self) -> list[Entity]:
        """The catalog, grouped by kind (advisors, organisations, municipalities, events: `INDEX_ORDER`)."""
        self._check()
        return self.index_.entities

    def entity(self, entity_id: str) -> Entity:
        """An entity by id. Raises :class:`~matcher.errors.UnknownEntityError`."""
        self._check()
        return self.index_.entity(entity_id)

    def contexts(self, queries: Sequence[Query], as_of: dt.date | None = None) -> list[QueryContext]:
        """Read queries against the fitted catalog (see :func:`~matcher.engine.context.prepare_queries`)."""
        self._check()
        return prepare_queries(self.index_, queries, self.embedder, self.weights_, as_of)

    def score(self, query: Query, as_of: dt.date | None = None) -> QueryScores:
        """The fused score of every candidate of the query's kind, each signal and its contribution.

        Raises:
            UnknownEntityError: ``query.from_`` is not in the catalog.
            ValidationError: the asker is of the wrong kind for the task.
        """
        ctx = self.contexts([query], as_of)[0]
        block = self.index_.block_of(TASK_KINDS.get(query.task) or (TASK_KIND[query.task],))
        return self._score(ctx, block, self._fusion[0])

    def _score(self, ctx: QueryContext, block: KindBlock, ranker: Ranker) -> QueryScores:
        return QueryScores.of(score_contexts(self.index_, [ctx], block, self.weights_, ranker), 0, ctx)

    def _top(self, scores: QueryScores, k: int) -> np.ndarray:
        """The columns of the top ``k``. A partner search that does not say which actor types it seeks
        gets a mix: each of migrant organisations, Eine-Welt groups (civil society) and municipal
        actors that has a candidate fitting in content (dense above the candidates' average) within
        ``mix_radius_km`` is represented (:func:`~matcher.engine.similarity.mixed_top_k`)."""
        ctx, w = scores.context, self.weights_
        if ctx.task != "partners" or ctx.query.org_types or ctx.intent.org_types or k < len(MIX_GROUPS):
            return top_k(scores.total, k, scores.mask)
        groups = self.index_.org_type[scores.rows]
        eligible = (scores.raw["dense"] > 0) & (np.nan_to_num(scores.distance_km, nan=np.inf) <= w.mix_radius_km)
        return mixed_top_k(scores.total, k, scores.mask, groups, MIX_GROUPS, eligible)

    def need_vector(self, query: Query, as_of: dt.date | None = None) -> np.ndarray:
        """The unit vector of the query's need (:func:`~matcher.engine.demotion.need_vector`)."""
        return need_vector(self.index_, self.contexts([query], as_of)[0])

    def _lowered(self, scores: QueryScores, declines: Sequence[Decline]) -> tuple[QueryScores, set[str]]:
        """``scores`` with the candidates the asker declined on a similar need lowered
        (:mod:`matcher.engine.demotion`), and their ids."""
        penalties = decline_penalties(need_vector(self.index_, scores.context), declines,
                                      np.where(scores.mask, scores.total, -np.inf),
                                      similar_need_threshold(self.model_id))
        columns = [(self.index_.row[e] - scores.block.rows.start, a) for e, a in penalties.items()
                   if e in self.index_.row]
        columns = [(c, a) for c, a in columns if 0 <= c < scores.total.size and scores.mask[c]]
        if not columns:
            return scores, set()
        total = scores.total.copy()
        for c, amount in columns:
            total[c] -= amount
        return replace(scores, total=total), {e for e in penalties if e in self.index_.row}

    def rank(self, query: Query, k: int = 10, as_of: dt.date | None = None, lang: str = "de",
             declines: Sequence[Decline] = ()) -> Ranking:
        """Rank the catalog for ``query``; return the top ``k`` with explanations. ``declines``: the
        asker's „passt nicht“ for this task; a candidate declined on a similar need is lowered
        (:mod:`matcher.engine.demotion`).

        Raises:
            UnknownEntityError: ``query.from_`` is not in the catalog.
            ValidationError: the asker is of the wrong kind for the task.
        """
        ranker, confidence_model, _ = self._fusion   # one ranker and its calibration for the whole answer
        ctx = self.contexts([query], as_of)[0]
        scores = self._score(ctx, self.index_.block_of(TASK_KINDS.get(query.task) or (TASK_KIND[query.task],)), ranker)
        scores, lowered = self._lowered(scores, declines) if declines else (scores, set())
        best = self._top(scores, k) + scores.block.rows.start
        sims = topic_similarities(self.index_, ctx) if best.size else None
        rows = [scores.at(int(i)) for i in best]
        totals = [float(scores.total[i - scores.block.rows.start]) for i in best]
        ranks, best_score = score_ranks(scores.total[scores.mask], totals)
        confidence, assessment = assess(
            confidence_model, totals, ranks, best_score,
            [evidence(self.index_, ctx, int(i), r.contributions) for i, r in zip(best, rows)], query, lang)
        results = [Result(self.index_.entities[i], totals[r], r + 1,
                          explain(self.index_, int(i), rows[r], ctx, lang=lang, topic_sims=sims,
                                  content_fit=c.content_fit),
                          c.confidence, c.strength, c.label)
                   for r, (i, c) in enumerate(zip(best, confidence))]
        for r in results:
            if r.entity_id in lowered:
                r.explanation.reasons.append(DECLINED_REASON[lang])
        return Ranking(query, results, int(scores.mask.sum()), self.model_id, ctx.intent, assessment, ranker.version,
                       ctx.text_vector)
