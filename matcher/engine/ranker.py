"""Rankers: how a query's signals become one score per candidate.

:data:`HAND` is the engine's hand-weighted sum (:func:`matcher.engine.scoring.fuse`), the cold start
and the fallback. :class:`LinearRanker` is a learned one (:mod:`matcher.learning.train` fits it): per
task, a linear model over :data:`FEATURES` — each signal, the per-query z-score of each structured
signal, and three interactions of content fit with nearness, country and actor type — whose
coefficients are all ≥ 0, so that more of any signal never lowers a candidate (closer is never worse,
a spoken requested language never hurts). A task without learned coefficients is scored by the hand
weights, so a learned ranker changes only the tasks where it beat them.

Both return what :func:`~matcher.engine.scoring.fuse` returns: each signal's contribution (a learned
feature's term is attributed to the signal it comes from; an interaction half to each of its two) and
the total, ``-inf`` outside the candidates. A ranker is a small JSON payload (:meth:`Ranker.to_dict`,
:func:`ranker_from_dict`), which the store keeps per version.

:func:`shipped_ranker` is the default the package ships (``matcher/domain/data/ranker.json``, made by
``make ranker``: trained on the judged sets, learned only for the tasks where it beat the hand weights in
query-level cross-validation); it serves while the store has activated no version.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from matcher.engine.similarity import zscore_rows
from matcher.engine.weights import SIGNALS, Weights
from matcher.errors import ValidationError

__all__ = ["FEATURES", "FEATURE_SIGNALS", "HAND", "HandRanker", "LinearRanker", "Ranker", "features",
           "hand_coefficients", "ranker_from_dict", "shipped_ranker"]

log = logging.getLogger(__name__)

# the structured signals (the text signals dense, lexical and domain are z-scored per query already)
_STRUCTURED = ("proximity", "region", "language", "country", "type_fit", "time_fit", "capacity")
# content fit (the positive part of dense) times nearness, country and actor type: the hand sum adds them
# independently, so a near candidate of the right type outranks a distant one that fits in content; these let
# a learned model say "near counts more when the content fits". Products of non-negative factors with a
# coefficient ≥ 0 keep every signal monotone.
_INTERACTIONS = (("dense", "proximity"), ("dense", "country"), ("dense", "type_fit"))
FEATURES: tuple[str, ...] = (*SIGNALS, *(f"z_{s}" for s in _STRUCTURED), *(f"{a}*{b}" for a, b in _INTERACTIONS))
# the signals each feature is attributed to in an explanation
FEATURE_SIGNALS: dict[str, tuple[str, ...]] = {
    **{s: (s,) for s in SIGNALS}, **{f"z_{s}": (s,) for s in _STRUCTURED},
    **{f"{a}*{b}": (a, b) for a, b in _INTERACTIONS}}


def features(raw: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """The learned rankers' features of the signals ``raw`` (queries × candidates), float32; z-scores are
    taken per query over its candidates ``mask`` (0 elsewhere, and where a signal does not vary)."""
    out = {s: np.asarray(raw[s], dtype=np.float32) for s in SIGNALS}
    for s in _STRUCTURED:
        out[f"z_{s}"] = zscore_rows(out[s], mask)
    content = np.maximum(out["dense"], 0.0)
    for a, b in _INTERACTIONS:
        out[f"{a}*{b}"] = content * out[b]
    return out


def hand_coefficients(weights: Weights) -> np.ndarray:
    """The hand weights as coefficients over :data:`FEATURES` (0 on the z-scores and interactions)."""
    return np.array([getattr(weights, f) if f in SIGNALS else 0.0 for f in FEATURES], dtype=np.float64)


@runtime_checkable
class Ranker(Protocol):
    """Fuses a kind block's signals into scores (the contract of :func:`matcher.engine.scoring.fuse`)."""

    version: str

    def fuse(self, raw: dict[str, np.ndarray], weights: Weights, mask: np.ndarray, *,
             tasks: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Each signal's contribution and the total (float64, ``-inf`` outside ``mask``); rows are queries
        (``tasks``: each row's task, when known), columns the candidates of one kind."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable payload that :func:`ranker_from_dict` reads back."""
        ...


@dataclass(frozen=True)
class HandRanker:
    """The hand weights: weight × signal, summed (what :func:`matcher.engine.scoring.fuse` does)."""

    version: str = "hand"

    def fuse(self, raw: dict[str, np.ndarray], weights: Weights, mask: np.ndarray, *,
             tasks: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        contributions = {s: np.float32(getattr(weights, s)) * raw[s].astype(np.float32, copy=False) for s in SIGNALS}
        total = np.sum([contributions[s] for s in SIGNALS], axis=0).astype(np.float64)
        total[~mask] = -np.inf
        return contributions, total

    def to_dict(self) -> dict[str, Any]:
        return {"type": "hand", "version": self.version, "features": list(SIGNALS), "coefficients": {}}


HAND = HandRanker()


@dataclass(frozen=True)
class LinearRanker:
    """A learned linear ranker: per task, coefficients (all ≥ 0) over :data:`FEATURES`; tasks it has no
    coefficients for are scored by the hand weights.

    ``coefficients``: task → one coefficient per feature, in :data:`FEATURES` order. ``info``: what the
    training says about the model (metrics, data), kept in the payload. ``version``: given, or a hash of the
    coefficients (``lin-…``)."""

    coefficients: Mapping[str, Sequence[float]]
    version: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        coefficients = {t: np.asarray(c, dtype=np.float64) for t, c in self.coefficients.items()}
        for task, c in coefficients.items():
            if c.shape != (len(FEATURES),) or not np.all(np.isfinite(c)):
                raise ValidationError(f"Rangfolge-Modell für „{task}“: {len(FEATURES)} endliche Koeffizienten erwartet",
                                      [{"field": "coefficients", "task": task}])
            if np.any(c < 0):
                raise ValidationError(f"Rangfolge-Modell für „{task}“: negative Koeffizienten sind nicht erlaubt "
                                      "(mehr eines Signals darf nie schaden)",
                                      [{"field": "coefficients", "task": task}])
        object.__setattr__(self, "coefficients", coefficients)
        if not self.version:
            text = json.dumps({t: np.round(c, 6).tolist() for t, c in sorted(coefficients.items())})
            object.__setattr__(self, "version", "lin-" + hashlib.sha256(text.encode()).hexdigest()[:10])

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this ranker scores itself (the others fall back to the hand weights)."""
        return tuple(sorted(self.coefficients))

    def with_hand(self, tasks: Sequence[str]) -> LinearRanker:
        """This ranker with the hand weights for ``tasks`` whatever the training found (each task's
        coefficients are fitted on its own pairs: dropping one leaves the others as they are)."""
        kept = {t: c for t, c in self.coefficients.items() if t not in tasks}
        return LinearRanker(kept, info={**self.info, "tasks": sorted(kept), "hand_by_choice": sorted(tasks)})

    def fuse(self, raw: dict[str, np.ndarray], weights: Weights, mask: np.ndarray, *,
             tasks: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        contributions, total = HAND.fuse(raw, weights, mask)
        if tasks is None or not self.coefficients:
            return contributions, total
        rows_of: dict[str, list[int]] = {}
        for r, task in enumerate(tasks):
            if task in self.coefficients:
                rows_of.setdefault(task, []).append(r)
        if not rows_of:
            return contributions, total
        contributions = {s: np.array(v, dtype=np.float32) for s, v in contributions.items()}
        for task, rows in rows_of.items():
            sub = rows if len(rows) < mask.shape[0] else slice(None)
            learned, t = _linear(self.coefficients[task], {s: raw[s][sub] for s in SIGNALS}, mask[sub])
            for s in SIGNALS:
                contributions[s][sub] = learned[s]
            total[sub] = t
        return contributions, total

    def to_dict(self) -> dict[str, Any]:
        return {"type": "linear", "version": self.version, "features": list(FEATURES),
                "coefficients": {t: [float(x) for x in c] for t, c in sorted(self.coefficients.items())},
                "info": dict(self.info)}


def _linear(coef: np.ndarray, raw: Mapping[str, np.ndarray], mask: np.ndarray) -> tuple[
        dict[str, np.ndarray], np.ndarray]:
    """One task's learned contributions per signal and total (``-inf`` outside ``mask``)."""
    feats = features(raw, mask)
    contributions = {s: np.zeros(mask.shape, dtype=np.float32) for s in SIGNALS}
    for f, c in zip(FEATURES, coef):
        if c == 0.0:
            continue
        term = np.float32(c) * feats[f]
        owners = FEATURE_SIGNALS[f]
        for s in owners:
            contributions[s] += term / np.float32(len(owners))
    total = np.sum([contributions[s] for s in SIGNALS], axis=0).astype(np.float64)
    total[~mask] = -np.inf
    return contributions, total


def ranker_from_dict(payload: Mapping[str, Any]) -> Ranker:
    """The ranker a :meth:`Ranker.to_dict` payload describes.

    Raises:
        ValidationError: an unknown type, other features than this engine's, or bad coefficients.
    """
    kind = payload.get("type")
    if kind == "hand":
        return HAND if payload.get("version", "hand") == "hand" else HandRanker(str(payload["version"]))
    if kind != "linear":
        raise ValidationError(f"Unbekannte Art von Rangfolge-Modell „{kind}“; erlaubt: „hand“ oder „linear“",
                              [{"field": "type", "value": kind}])
    if list(payload.get("features", ())) != list(FEATURES):
        raise ValidationError("Das Rangfolge-Modell wurde für andere Merkmale trainiert; bitte neu trainieren",
                              [{"field": "features"}])
    return LinearRanker(dict(payload.get("coefficients", {})), str(payload.get("version", "")),
                        dict(payload.get("info", {})))


def shipped_ranker(path: str | Path | None = None) -> Ranker:
    """The shipped default ranker: the file ``path`` (default :func:`matcher.settings.ranker_file`), or the hand
    weights when there is none or it was trained for other features (logged: ``make ranker`` rebuilds it)."""
    from matcher.settings import ranker_file

    return _read_shipped(str(Path(path) if path is not None else ranker_file()))


@functools.lru_cache(maxsize=4)
def _read_shipped(path: str) -> Ranker:
    if not Path(path).is_file():
        return HAND
    try:
        return ranker_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        log.warning("the shipped ranker %s cannot be read (%s); the hand weights serve", path, exc)
        return HAND
