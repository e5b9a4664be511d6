"""Fusion: the signals of read queries, weighted and summed, for one kind's candidates.

:func:`score_contexts` is the one scoring path: :meth:`Matcher.score
<matcher.engine.matcher.Matcher.score>` calls it for one query, the batch score
matrix (:mod:`matcher.batch.score_matrix`) for blocks of requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.engine.context import QueryContext
from matcher.engine.index import CatalogIndex, KindBlock
from matcher.engine.ranker import HAND, Ranker
from matcher.engine.signals import candidate_masks, distance_km, raw_signals
from matcher.engine.weights import Weights

__all__ = ["BlockScores", "ScoreRow", "fuse", "score_contexts"]


@dataclass(frozen=True)
class ScoreRow:
    """What the scores say about one candidate for one query (what an explanation reads)."""

    contributions: dict[str, float]   # weight × signal, per signal
    raw: dict[str, float]             # the signals themselves
    distance_km: float                # NaN: unknown


@dataclass(frozen=True)
class BlockScores:
    """Scores of queries (rows) × the candidates of one kind (columns: the rows of ``block``).

    ``total`` is the fused score, ``-inf`` outside a query's candidates; ``raw`` and
    ``contributions`` hold each signal and its weighted share."""

    block: KindBlock
    raw: dict[str, np.ndarray]
    contributions: dict[str, np.ndarray]
    total: np.ndarray
    mask: np.ndarray
    distance_km: np.ndarray

    def column(self, i: int) -> int:
        """The column of catalog row ``i`` (which must be in the block)."""
        return i - self.block.rows.start

    def row(self, r: int, i: int) -> ScoreRow:
        """Query ``r``'s scores of catalog row ``i``."""
        c = self.column(i)
        return ScoreRow({s: float(v[r, c]) for s, v in self.contributions.items()},
                        {s: float(v[r, c]) for s, v in self.raw.items()}, float(self.distance_km[r, c]))


def fuse(raw: dict[str, np.ndarray], weights: Weights, mask: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each signal's weighted contribution and their sum (float64; ``-inf`` outside ``mask``): the hand
    weights' fusion (:data:`~matcher.engine.ranker.HAND`)."""
    return HAND.fuse(raw, weights, mask)


def score_contexts(index: CatalogIndex, contexts: Sequence[QueryContext], block: KindBlock,
                   weights: Weights, ranker: Ranker | None = None) -> BlockScores:
    """Score read queries against one kind's candidates: masks, every signal, fusion by ``ranker``
    (default: the hand weights)."""
    masks = candidate_masks(index, contexts, block)
    raw = raw_signals(index, contexts, block, masks, weights)
    contributions, total = (ranker or HAND).fuse(raw, weights, masks, tasks=[c.task for c in contexts])
    return BlockScores(block, raw, contributions, total, masks, distance_km(index, contexts, block))
