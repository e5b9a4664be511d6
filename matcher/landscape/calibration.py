"""Calibrating and measuring the assignment of actors to fields of action.

The judged file (``tests/data/fields_judged.csv``) lists organisations with
their correct fields, each label defended in a note. :func:`calibrate` picks
the sentence thresholds on all of it and measures the assignment with k-fold
cross-validation over actors, so that no figure is computed on the actors the
threshold was chosen on. ``matcher landscape-calibrate`` runs it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.domain.loading import read_text
from matcher.domain.messages import alternatives, quoted
from matcher.engine.fields import FieldClassifier, FieldsOfAction, Thresholds, load_fields
from matcher.errors import CatalogError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["Calibration", "load_judged_fields", "precision_recall", "best_threshold", "cross_validate", "calibrate"]


def load_judged_fields(path: str | Path, fields: FieldsOfAction) -> dict[str, frozenset[str]]:
    """Read a judged file (CSV: ``id``, ``name``, ``fields`` separated by ``;``, ``note``).

    Raises:
        CatalogError: the file cannot be read, or a row lacks a note, names an unknown field, or
            repeats an id (every problem is listed).
    """
    path = Path(path)
    known = set(fields.ids)
    judged: dict[str, frozenset[str]] = {}
    details = []
    for lineno, row in enumerate(csv.DictReader(io.StringIO(read_text(path), newline="")), start=2):
        where = {"file": str(path), "line": lineno}
        labels = frozenset(x.strip() for x in (row.get("fields") or "").split(";") if x.strip())
        if unknown := sorted(labels - known):
            details.append({**where, "field": "fields",
                            "message": f"unbekannte Handlungsfelder {alternatives(unknown, 'und')}"})
        if not (row.get("note") or "").strip():
            details.append({**where, "field": "note", "message": "jede Einordnung braucht eine Begründung"})
        if row["id"] in judged:
            details.append({**where, "field": "id", "message": f"doppelte id {quoted(row['id'])}"})
        judged[row["id"]] = labels
    if details:
        raise CatalogError(f"{path}: {len(details)} fehlerhafte Angabe(n)", details)
    return judged


def precision_recall(predicted: np.ndarray, gold: np.ndarray) -> tuple[float, float, int, int, int]:
    """Micro precision and recall over all (actor, field) decisions, with TP, FP, FN."""
    predicted, gold = np.asarray(predicted, bool), np.asarray(gold, bool)
    tp, fp, fn = int((predicted & gold).sum()), int((predicted & ~gold).sum()), int((~predicted & gold).sum())
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0), tp, fp, fn


def best_threshold(scores: np.ndarray, explicit: np.ndarray, gold: np.ndarray) -> float:
    """The threshold on ``scores`` that maximises micro F1 of ``explicit | scores >= t`` against ``gold``.

    Candidates are midpoints between neighbouring observed scores (and one
    above the maximum, i.e. "sentences alone never assign"); of equal F1 the
    higher threshold wins.
    """
    values = np.unique(scores[~explicit & np.isfinite(scores)])
    if values.size == 0:
        return float("inf")
    candidates = np.concatenate([(values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    best_t, best_f = float(candidates[-1]), -1.0
    for t in candidates:
        p, r, *_ = precision_recall(explicit | (scores >= t), gold)
        f = 2 * p * r / (p + r) if p + r else 0.0
        if f >= best_f:
            best_t, best_f = float(t), f
    return best_t


def cross_validate(scores: np.ndarray, explicit: np.ndarray, gold: np.ndarray, folds: int = 5,
                   seed: int = 0) -> dict[str, Any]:
    """K-fold cross-validation of the threshold: calibrate on k−1 folds of actors, predict the held-out fold.

    Returns pooled precision and recall over all held-out predictions, the
    threshold of each fold and the fold assignment of each row.
    """
    n = scores.shape[0]
    if not 2 <= folds <= n:
        raise ValidationError(f"folds muss zwischen 2 und {n} liegen, nicht {folds}")
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    predicted = np.zeros_like(gold, dtype=bool)
    thresholds = []
    for k in range(folds):
        test = fold_of == k
        t = best_threshold(scores[~test], explicit[~test], gold[~test])
        thresholds.append(t)
        predicted[test] = explicit[test] | (scores[test] >= t)
    p, r, tp, fp, fn = precision_recall(predicted, gold)
    return {"precision": p, "recall": r, "tp": tp, "fp": fp, "fn": fn, "thresholds": thresholds,
            "folds": folds, "seed": seed, "fold_of": fold_of.tolist(), "predicted": predicted}


@dataclass
class Calibration:
    """Result of :func:`calibrate`: thresholds for all judged actors and their cross-validated quality."""

    model_id: str
    thresholds: Thresholds
    folds: int
    actors: int
    labels: int
    cv: dict[str, dict[str, float]]  # scenario -> precision, recall, tp, fp, fn

    def as_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "thresholds": asdict(self.thresholds), "folds": self.folds,
                "actors": self.actors, "labels": self.labels, "cv": self.cv}


def calibrate(matcher: Matcher, judged: Mapping[str, frozenset[str]], fields: FieldsOfAction | None = None,
              folds: int = 5, seed: int = 0) -> Calibration:
    """Calibrate the sentence thresholds on judged actors and measure them honestly.

    The thresholds reported for use maximise F1 on *all* judged actors; the
    quality figures come from ``folds``-fold cross-validation over actors
    (each actor is predicted with a threshold calibrated without it).
    Scenarios measured:

    ``assignment``      the method as used: topics, actor types and sentences (``with_topics``)
    ``without_topics``  the same actors with their topics hidden: actor types and sentences
                        (``without_topics``) — a catalog imported without topics
    ``sentences_only``  pure zero-shot: sentences alone
    ``explicit_only``   topics and actor types alone (no threshold, not cross-validated)

    Raises:
        UnknownEntityError: a judged id is not in the catalog.
    """
    fields = fields or load_fields()
    for entity_id in judged:
        matcher.entity(entity_id)
    fc = FieldClassifier(fields, thresholds=Thresholds(0.0, 0.0)).fit(matcher)
    ids = list(judged)
    scores = fc.score_matrix(ids)
    explicit, actor_only = fc.explicit_matrix(ids), fc.explicit_matrix(ids, topics=False)
    gold = np.array([[f in judged[i] for f in fields.ids] for i in ids], dtype=bool)
    keys = ("precision", "recall", "tp", "fp", "fn")
    cv = {}
    for name, evidence in (("assignment", explicit), ("without_topics", actor_only),
                           ("sentences_only", np.zeros_like(explicit))):
        result = cross_validate(scores, evidence, gold, folds, seed)
        cv[name] = {k: result[k] for k in keys} | {"fold_thresholds": result["thresholds"]}
    cv["explicit_only"] = dict(zip(keys, precision_recall(explicit, gold)))
    thresholds = Thresholds(best_threshold(scores, explicit, gold), best_threshold(scores, actor_only, gold))
    return Calibration(matcher.model_id, thresholds, folds, len(ids), int(gold.sum()), cv)
