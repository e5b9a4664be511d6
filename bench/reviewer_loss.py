"""The loss and easy/hard accuracies of the reviewer–paper gold standard (Stelmakh et al.), as
``../shared/benchmarks/reviewer-match/README.md`` ("Protocol") defines them.

Pure functions over plain mappings and numpy arrays; nothing here reads files.

* ``ratings``: ``{reviewer: {paper: rating}}`` — the expertise ratings (1–5, steps of 0.25);
* ``scores``: ``{reviewer: {paper: score}}`` — one algorithm on one profile version.

For one version the loss is ``Σ_r num_r / Σ_r den_r`` over every unordered pair of two papers a
reviewer rated: ``den += |e_p − e_q|``; ``num += w`` when the scores order the pair against the
ratings, ``w/2`` when the two scores are exactly equal. The reported value is the mean over the
versions; the 95 % interval bootstraps reviewers (the same samples for every version and every
algorithm, so that differences can be bootstrapped pairwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PairCounts", "pair_counts", "Summary", "summarise", "bootstrap_samples", "HARD_MIN", "EASY_LOW"]

HARD_MIN = 4.0   # hard pair: both ratings ≥ 4
EASY_LOW = 2.0   # easy pair: the higher rating ≥ 4 and the lower ≤ 2


@dataclass(frozen=True)
class PairCounts:
    """Per-reviewer sums of one algorithm on one version (arrays in the order of ``reviewers``)."""

    reviewers: tuple[str, ...]
    numerator: np.ndarray       # weighted disagreements (ties count half)
    denominator: np.ndarray     # total weight |e_p − e_q|
    easy_correct: np.ndarray    # easy pairs strictly ordered as the ratings are
    easy_total: np.ndarray
    hard_correct: np.ndarray
    hard_total: np.ndarray

    @property
    def loss(self) -> float:
        return float(self.numerator.sum() / self.denominator.sum())

    @property
    def easy_accuracy(self) -> float:
        return float(self.easy_correct.sum() / self.easy_total.sum())

    @property
    def hard_accuracy(self) -> float:
        return float(self.hard_correct.sum() / self.hard_total.sum())


def pair_counts(ratings: Mapping[str, Mapping[str, float]], scores: Mapping[str, Mapping[str, float]],
                reviewers: Sequence[str] | None = None) -> PairCounts:
    """Count the weighted pairwise errors of ``scores`` against ``ratings``, reviewer by reviewer.

    Raises:
        KeyError: a rated (reviewer, paper) pair has no score.
    """
    order = tuple(reviewers if reviewers is not None else ratings)
    cols = {name: np.zeros(len(order)) for name in ("num", "den", "ec", "et", "hc", "ht")}
    for i, r in enumerate(order):
        items = list(ratings[r].items())
        for a in range(len(items)):
            for b in range(a + 1, len(items)):
                (p, ep), (q, eq) = items[a], items[b]
                w = abs(ep - eq)
                if w == 0:
                    continue
                sp, sq = float(scores[r][p]), float(scores[r][q])
                agree = (sp - sq) * (ep - eq) > 0        # strictly the same order as the ratings
                cols["den"][i] += w
                if sp == sq:
                    cols["num"][i] += w / 2
                elif not agree:
                    cols["num"][i] += w
                high, low = max(ep, eq), min(ep, eq)
                if low >= HARD_MIN:
                    cols["ht"][i] += 1
                    cols["hc"][i] += agree
                elif high >= HARD_MIN and low <= EASY_LOW:
                    cols["et"][i] += 1
                    cols["ec"][i] += agree
    return PairCounts(order, cols["num"], cols["den"], cols["ec"], cols["et"], cols["hc"], cols["ht"])


def bootstrap_samples(n_reviewers: int, samples: int = 1000, seed: int = 0) -> np.ndarray:
    """``(samples, n_reviewers)`` counts: how often each reviewer is drawn in each resample (with
    replacement, ``n_reviewers`` draws). Seeded, so every algorithm and version shares them."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_reviewers, size=(samples, n_reviewers))
    return np.stack([np.bincount(row, minlength=n_reviewers) for row in draws]).astype(np.float64)


@dataclass(frozen=True)
class Summary:
    """Mean over versions and bootstrap distribution of one algorithm."""

    loss: float
    easy: float
    hard: float
    loss_samples: np.ndarray   # (samples,) — mean over versions of each resample's loss
    easy_samples: np.ndarray
    hard_samples: np.ndarray

    def ci(self, what: str = "loss") -> tuple[float, float]:
        values = getattr(self, f"{what}_samples")
        lo, hi = np.percentile(values, [2.5, 97.5])
        return float(lo), float(hi)

    def delta(self, other: Summary) -> tuple[float, float, float]:
        """``self − other`` in loss with the paired 95 % bootstrap interval."""
        diff = self.loss_samples - other.loss_samples
        lo, hi = np.percentile(diff, [2.5, 97.5])
        return self.loss - other.loss, float(lo), float(hi)


def summarise(versions: Sequence[PairCounts], counts: np.ndarray) -> Summary:
    """Average ``versions`` (one :class:`PairCounts` per profile version, same reviewer order) and
    bootstrap them with the resample ``counts`` of :func:`bootstrap_samples`."""
    def ratio(num: str, den: str) -> tuple[float, np.ndarray]:
        point = float(np.mean([getattr(v, num).sum() / getattr(v, den).sum() for v in versions]))
        boot = np.mean([(counts @ getattr(v, num)) / (counts @ getattr(v, den)) for v in versions], axis=0)
        return point, boot

    loss, loss_b = ratio("numerator", "denominator")
    easy, easy_b = ratio("easy_correct", "easy_total")
    hard, hard_b = ratio("hard_correct", "hard_total")
    return Summary(loss, easy, hard, loss_b, easy_b, hard_b)
