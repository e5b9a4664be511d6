"""Feedback as training data: what staff did with the results they were shown, and how likely they were to
look at each rank at all.

A :class:`FeedbackEvent` is one logged fact about one result of one recommendation: it was shown (at a rank),
or staff accepted it („passt“), contacted it, or declined it („passt nicht“). People look at rank 1 far more
often than at rank 8, so a click says "relevant *and* looked at": learning from clicks as they are teaches a
model its own past order. The position-based click model separates the two — P(click at rank k) =
θ_k · P(relevant) — and weighting each click by 1 / θ_k (inverse propensity scoring, Joachims et al. 2017)
makes the expected pairwise training loss that of full-information relevance labels.

The examination probabilities θ_k are estimated from the logs themselves by **intervention harvesting**
(Agarwal et al., WSDM 2019): the same result for the same request is shown at different ranks over time —
every new ranker version, every catalog change reorders lists — and how its click rate moves with its rank
measures θ. :func:`estimate_propensities` fits the position-based model by expectation–maximisation
(Wang et al., WSDM 2018) on the (request, result) pairs seen at more than one rank; it costs users nothing,
since nobody is shown a worse order on purpose. Where the logs hold too few such pairs (right after launch, one
ranker version only), the estimate falls back to a stated prior and says so (``Propensities.source``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["CLICKS", "OUTCOMES", "FeedbackEvent", "Impression", "Propensities", "estimate_propensities",
           "impressions", "request_key"]

Outcome = Literal["accepted", "declined", "contacted", "shown"]
OUTCOMES: tuple[str, ...] = ("accepted", "declined", "contacted", "shown")
CLICKS = frozenset({"accepted", "contacted"})   # a result staff took up: the positive feedback


@dataclass(frozen=True)
class FeedbackEvent:
    """One logged fact about one result of one recommendation.

    ``query`` is the request as stored (the dict the API received, with ``task``); ``rank`` the 1-based rank
    the result was shown at; ``asker`` the id of the asking entity, if any."""

    recommendation_id: str
    task: str
    query: Mapping[str, Any]
    asker: str | None
    entity_id: str
    outcome: Outcome
    rank: int
    created_at: dt.datetime


def request_key(task: str, query: Mapping[str, Any]) -> str:
    """A stable key of a request: the same need asked again (by anyone) is the same request."""
    text = json.dumps({"task": task, **{k: v for k, v in query.items() if k not in ("k", "lang")}},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class Impression:
    """One recommendation as staff saw it: the results shown with their ranks, and what they did."""

    recommendation_id: str
    task: str
    query: Mapping[str, Any]
    key: str
    created_at: dt.datetime
    ranks: dict[str, int] = field(default_factory=dict)   # entity id → rank shown (1-based)
    clicked: set[str] = field(default_factory=set)
    declined: set[str] = field(default_factory=set)


def impressions(events: Iterable[FeedbackEvent]) -> list[Impression]:
    """Group events by recommendation (in order of first appearance). A result with feedback but no
    ``shown`` event counts as shown at the rank its feedback names."""
    out: dict[str, Impression] = {}
    for e in events:
        imp = out.get(e.recommendation_id)
        if imp is None:
            imp = out[e.recommendation_id] = Impression(e.recommendation_id, e.task, e.query,
                                                        request_key(e.task, e.query), e.created_at)
        imp.ranks.setdefault(e.entity_id, int(e.rank))
        if e.outcome in CLICKS:
            imp.clicked.add(e.entity_id)
        elif e.outcome == "declined":
            imp.declined.add(e.entity_id)
    for imp in out.values():
        imp.clicked -= imp.declined   # a „passt nicht“ after a contact is the last word
    return list(out.values())


@dataclass(frozen=True)
class Propensities:
    """Examination probabilities by rank, relative to rank 1 (θ_1 = 1), and where they come from."""

    theta: np.ndarray          # theta[k - 1]: rank k
    source: str                # "harvested" (estimated from the logs) or "prior"
    pairs: int = 0             # (request, result) pairs seen at more than one rank that the estimate used
    clip: float = 0.05         # the smallest θ a weight divides by (bounds the variance of rare deep clicks)

    def at(self, rank: int | np.ndarray) -> np.ndarray:
        """θ at 1-based ``rank`` (beyond the estimated ranks: the last one)."""
        k = np.clip(np.asarray(rank, dtype=np.int64), 1, len(self.theta)) - 1
        return self.theta[k]

    def weight(self, rank: int | np.ndarray) -> np.ndarray:
        """The inverse-propensity weight of a click at ``rank``: 1 / max(θ, clip)."""
        return 1.0 / np.maximum(self.at(rank), self.clip)

    def as_dict(self) -> dict[str, Any]:
        return {"theta": [round(float(t), 4) for t in self.theta], "source": self.source, "pairs": self.pairs,
                "clip": self.clip}

    @classmethod
    def prior(cls, max_rank: int = 10, eta: float = 1.0) -> Propensities:
        """θ_k = 1 / k^eta: the usual shape of position bias, for when the logs cannot tell yet."""
        return cls(1.0 / np.arange(1, max_rank + 1, dtype=np.float64) ** eta, "prior")


def estimate_propensities(impressions_: Sequence[Impression], max_rank: int = 10, min_pairs: int = 20,
                          iterations: int = 200, prior: Propensities | None = None) -> Propensities:
    """θ_k by intervention harvesting: the position-based click model (click = examined at rank k with
    probability θ_k, and relevant with a probability of its own per request and result) fitted by EM on the
    (request, result) pairs shown at two or more different ranks; returned relative to rank 1.

    Ranks above ``max_rank`` are pooled into ``max_rank``. With fewer than ``min_pairs`` such pairs, or a rank
    that none of them was shown at, the missing ranks keep ``prior`` (default :meth:`Propensities.prior`).
    """
    prior = prior or Propensities.prior(max_rank)
    seen: dict[tuple[str, str], set[int]] = {}
    for imp in impressions_:
        for e, r in imp.ranks.items():
            seen.setdefault((imp.key, e), set()).add(min(r, max_rank))
    moved = {pair: i for i, pair in enumerate(p for p, ranks in seen.items() if len(ranks) > 1)}
    if len(moved) < min_pairs:
        return prior
    pair_idx, rank_idx, click = [], [], []
    for imp in impressions_:
        for e, r in imp.ranks.items():
            i = moved.get((imp.key, e))
            if i is not None and e not in imp.declined:
                pair_idx.append(i)
                rank_idx.append(min(r, max_rank) - 1)
                click.append(e in imp.clicked)
    q, k, c = np.array(pair_idx), np.array(rank_idx), np.array(click, dtype=np.float64)
    n_rank = np.bincount(k, minlength=max_rank).astype(np.float64)
    n_pair = np.bincount(q, minlength=len(moved)).astype(np.float64)
    theta, gamma = prior.theta[:max_rank].copy(), np.full(len(moved), 0.5)
    for _ in range(iterations):
        t, g = theta[k], gamma[q]
        no_click = np.maximum(1.0 - t * g, 1e-12)
        examined = c + (1 - c) * t * (1 - g) / no_click      # P(examined | observation)
        relevant = c + (1 - c) * (1 - t) * g / no_click      # P(relevant | observation)
        new_theta = np.divide(np.bincount(k, examined, minlength=max_rank), n_rank, out=theta.copy(),
                              where=n_rank > 0)
        gamma = np.clip(np.divide(np.bincount(q, relevant, minlength=len(moved)), n_pair, out=gamma.copy(),
                                  where=n_pair > 0), 1e-6, 1 - 1e-6)
        converged = np.max(np.abs(new_theta - theta)) < 1e-7
        theta = np.clip(new_theta, 1e-6, 1.0)
        if converged:
            break
    theta = theta / theta[0] if theta[0] > 0 else prior.theta[:max_rank].copy()
    theta = np.where(n_rank > 0, theta, prior.theta[:max_rank])
    return Propensities(np.minimum(theta, 1.0), "harvested", len(moved), prior.clip)
