"""Calibrated confidence: the probability that a result is *relevant*, and what the answer says about it.

Relevant means what the judged data sets call a good fit: judged grade ≥ 2 (``../shared/eval/FORMAT.md``;
grades 3 and 2). :class:`ConfidenceModel` maps a result's fused score and its margins (the gap to the
query's best candidate, the rank, each signal's contribution) and absolute evidence (the embedding
similarity of need and profile, the need's length; :func:`evidence`) to that probability: a logistic model
over those features (Platt scaling generalised to several inputs), fitted on judged queries by
``matcher calibrate`` (:mod:`matcher.evaluation.confidence`) and stored as a small JSON artifact
(:func:`matcher.settings.confidence_file`). The artifact names the embedding model and the fusion
weights it was fitted for; for any other engine, or without the file, there is no confidence and
the answer says so (:func:`load_confidence` returns the reason).

:func:`assess` is a function of a result list that any task can call: it takes each result's score,
rank and contributions and the best candidate score of the query, and returns each result's confidence
and strength („passt gut“, „passt teilweise“, „schwache Übereinstimmung“) and whether nothing fits —
no result clears the bar of „passt teilweise“ — with German suggestions what to change.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from matcher.domain.schema import Query
from matcher.engine.context import QueryContext
from matcher.engine.index import CatalogIndex
from matcher.engine.ranker import HAND, Ranker
from matcher.engine.weights import SIGNALS, Weights
from matcher.errors import CatalogError
from matcher.text.lexical import compound_collision, modifier_phrases, word_tokens

__all__ = ["FEATURES", "EVIDENCE", "FALSE_FRIEND", "STRENGTHS", "Strength", "StrengthBars", "BARS",
           "ConfidenceModel", "Assessment", "ResultConfidence", "evidence", "score_ranks", "features", "assess",
           "unassessed", "strength_label",
           "weights_fingerprint", "fusion_fingerprint", "artifact_key", "load_confidence", "ARTIFACT_VERSION"]

ARTIFACT_VERSION = 1
# the margins of a result beside its fused score; each signal's weighted contribution; and absolute evidence
# (the signals are z-scored within a query, so they rank well but cannot tell that even the best fits badly)
MARGINS = ("score", "gap", "log_rank")
# (the need's similarity to the whole profile is left out: collinear with the best passage, it swung the fit
# between the two and marked a fit that rests on one passage of a broad profile weak)
EVIDENCE = ("e_cos_passage", "e_need_words")
# a gate, not an input of the logistic part: a result that meets the need only through a false friend
# (signals.false_friends: "Freiwilligendienst" for "Freiwillige Feuerwehr") is calibrated apart, at the rate
# such results were relevant in the judged data (issue 17: false friends do not carry a result alone)
FALSE_FRIEND = "e_false_friend"
FEATURES = (*MARGINS, *(f"c_{s}" for s in SIGNALS), *EVIDENCE, FALSE_FRIEND)

Strength = Literal["good", "partial", "weak"]
STRENGTHS: tuple[Strength, ...] = ("good", "partial", "weak")
_LABELS = {
    "de": {"good": "passt gut", "partial": "passt teilweise", "weak": "schwache Übereinstimmung"},
    "en": {"good": "good fit", "partial": "partial fit", "weak": "weak match"},
}


@dataclass(frozen=True)
class StrengthBars:
    """Probabilities of relevance from which a result is labelled „passt gut“ / „passt teilweise“;
    below ``partial`` it is a weak match, and when no result reaches ``partial`` nothing fits.

    Fixed in advance, not tuned on the judged data: „passt gut“ is a better-than-even chance of a
    good fit (grade ≥ 2), „schwach“ less than one in three."""

    good: float = 0.5
    partial: float = 0.3

    def strength(self, p: float) -> Strength:
        return "good" if p >= self.good else "partial" if p >= self.partial else "weak"


BARS = StrengthBars()


def strength_label(strength: Strength, lang: str = "de") -> str:
    """The label a person reads: „passt gut“, „passt teilweise“, „schwache Übereinstimmung“ (English for ``en``)."""
    return _LABELS.get(lang, _LABELS["de"])[strength]


def weights_fingerprint(weights: Weights) -> str:
    """A short hash of the fusion weights and the signals: a calibration is only valid for the scores it saw."""
    text = json.dumps({"signals": list(SIGNALS), "weights": weights.as_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evidence(index: CatalogIndex, ctx: QueryContext, i: int, contributions: Mapping[str, float]) -> dict[str, float]:
    """What the confidence reads of catalog row ``i`` for the query ``ctx`` beside its score: each signal's
    contribution (``c_<signal>``) and the absolute evidence — the embedding similarity of the need (or the
    asker's profile) to its best passage (the whole profile where it has none), the length of the need
    in words, and whether the profile meets a phrase of the need only through a false friend
    (:data:`FALSE_FRIEND`)."""
    out = {f"c_{s}": float(v) for s, v in contributions.items()}
    out["e_need_words"] = math.log1p(len(ctx.need.split()))
    phrases = modifier_phrases(ctx.query.text or "")
    if phrases:   # the words the false-friend signal reads (CatalogIndex.words), of this one profile
        words = frozenset(word_tokens(index.lexical_text(i)))
        out[FALSE_FRIEND] = float(compound_collision(phrases, words))
    vec = ctx.main_vector(index)
    if vec is None:   # nothing to compare (a query always has a text or an asker; kept safe for other callers)
        return out
    span = index.passage_range(i)
    passages = index.passage_unique_vecs[index.passage_map[span.start : span.stop]] @ vec if len(span) else None
    out["e_cos_passage"] = float(passages.max()) if passages is not None and passages.size \
        else float(index.profile_vecs[i] @ vec)
    return out


def score_ranks(candidates: np.ndarray, scores: Sequence[float]) -> tuple[list[int], float]:
    """Each of ``scores``' rank among the candidates' fused scores ``candidates`` (1 = best; a tie shares the
    better rank) and the best candidate score: what :func:`features` reads, whatever order a list shows."""
    candidates = np.asarray(candidates, dtype=np.float64)
    candidates = candidates[np.isfinite(candidates)]
    if not candidates.size:
        return [1] * len(scores), max(scores, default=0.0)
    return [1 + int((candidates > s).sum()) for s in scores], float(candidates.max())


def features(scores: Sequence[float], ranks: Sequence[int], best: float,
             evidence_rows: Sequence[Mapping[str, float]], names: Sequence[str] = FEATURES) -> np.ndarray:
    """The feature rows of results of one query (``names`` columns; what a row's evidence lacks counts 0).

    ``best``: the best fused score among the query's candidates (the gap is measured to it);
    ``ranks`` start at 1; ``evidence_rows``: :func:`evidence` of each result.
    """
    x = np.zeros((len(scores), len(names)), dtype=np.float64)
    for r, (s, k, e) in enumerate(zip(scores, ranks, evidence_rows)):
        values = {"score": s, "gap": s - best, "log_rank": math.log(k)}
        x[r] = [values[n] if n in values else float(e.get(n, 0.0)) for n in names]
    return x


@dataclass
class ConfidenceModel:
    """A fitted logistic map from features to the probability of relevance (grade ≥ 2), standardised inputs.

    ``predict`` is the fitted model's own formula, ``sigmoid(((x − mean) / scale) · coef + intercept)``,
    so the artifact is plain JSON, not a pickle. Where a row is a false friend (:data:`FALSE_FRIEND` among
    ``features``, coefficient 0), the probability is ``false_friend_rate`` instead: the share of such results
    judged relevant, smoothed towards the share of all results judged relevant (two results' worth of it);
    ``None``: no gate (an artifact from before it)."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    model_id: str
    weights: str                                   # weights_fingerprint of the engine it was fitted for
    bars: StrengthBars = BARS
    fitted_on: dict[str, Any] = field(default_factory=dict)   # data sets, queries, results, cross-validated ECE
    false_friend_rate: float | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of relevance for feature rows ``x`` (columns ``self.features``)."""
        x = np.asarray(x, dtype=np.float64)
        z = ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef)
        p = 1.0 / (1.0 + np.exp(-(z + self.intercept)))
        if self.false_friend_rate is not None and FALSE_FRIEND in self.features:
            p = np.where(x[:, self.features.index(FALSE_FRIEND)] > 0, self.false_friend_rate, p)
        return p

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path, key: str | None = None) -> Path:
        """Write this calibration into the artifact at ``path``, beside those of other embedding models (and
        rankers) there; ``key``: its entry (default the model id: the hand weights' calibration; a learned
        ranker's is :func:`artifact_key`)."""
        path = Path(path)
        data: dict[str, Any] = {"version": ARTIFACT_VERSION, "relevant": "judged grade >= 2", "models": {}}
        if path.is_file():
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("version") == ARTIFACT_VERSION:
                data["models"] = old.get("models", {})
        data["models"][key or self.model_id] = self.as_dict()
        data["models"] = dict(sorted(data["models"].items()))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceModel:
        """Raises: KeyError, TypeError or ValueError on a malformed entry (see :func:`load_confidence`)."""
        values = dict(data)
        values["bars"] = StrengthBars(**values.get("bars", {}))
        model = cls(**values)
        if not (len(model.features) == len(model.mean) == len(model.scale) == len(model.coef)):
            raise ValueError("lengths differ")
        return model


@dataclass(frozen=True)
class ResultConfidence:
    """One result's confidence (``None``: no calibration for this engine) and strength."""

    confidence: float | None
    strength: Strength | None
    label: str | None

    @property
    def content_fit(self) -> bool | None:
        """Whether a reason may be worded as a content fit (``None``: not known, no calibration)."""
        return None if self.strength is None else self.strength != "weak"


@dataclass(frozen=True)
class Assessment:
    """What the answer says about its results as a whole."""

    calibrated: bool
    nothing_fits: bool | None             # None: not calibrated, so not known
    message: str | None                   # German (or English): nothing fits, or no confidence available
    suggestions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_TEXT = {
    "de": {
        "nothing": "Keiner der Vorschläge passt gut zu Ihrem Anliegen. Unten stehen die nächstliegenden, "
                   "als schwache Übereinstimmung markiert.",
        "uncalibrated": "Für dieses Modell gibt es keine kalibrierte Einschätzung, wie gut die Vorschläge passen "
                        "(`matcher calibrate` erstellt sie).",
        "more_words": "Beschreiben Sie das Anliegen ausführlicher: Thema, Zielgruppe und was entstehen soll.",
        "other_words": "Versuchen Sie andere Worte, z. B. die Fachbegriffe des Themas statt allgemeiner Begriffe.",
        "wider_area": "Wählen Sie ein größeres Gebiet oder lassen Sie den Ort weg.",
        "fewer_languages": "Verlangen Sie weniger Sprachen oder lassen Sie „alle Sprachen“ weg.",
        "more_types": "Lassen Sie weitere Arten von Akteuren zu.",
        "other_asker": "Ergänzen Sie die Beschreibung der suchenden Organisation oder Veranstaltung.",
    },
    "en": {
        "nothing": "None of the suggestions fits your need well. The closest ones are listed below, marked as "
                   "weak matches.",
        "uncalibrated": "There is no calibrated estimate of how well the suggestions fit for this model "
                        "(`matcher calibrate` makes one).",
        "more_words": "Describe the need in more detail: topic, target group and what should come of it.",
        "other_words": "Try other words, e.g. the topic's technical terms instead of general ones.",
        "wider_area": "Choose a wider area or leave out the place.",
        "fewer_languages": "Ask for fewer languages, or do not require all of them.",
        "more_types": "Allow more kinds of actors.",
        "other_asker": "Add to the description of the asking organisation or event.",
    },
}
SHORT_NEED_WORDS = 6   # a need shorter than this says too little to match on


def _suggestions(query: Query | None, lang: str) -> list[str]:
    """What to change when nothing fits, by what the query holds."""
    t = _TEXT[lang]
    if query is None:
        return [t["other_words"]]
    out = []
    words = len((query.text or "").split())
    if query.text and words < SHORT_NEED_WORDS:
        out.append(t["more_words"])
    if query.text:
        out.append(t["other_words"])
    elif query.from_:
        out.append(t["other_asker"])
    if query.city or query.lat is not None or query.from_:
        out.append(t["wider_area"])
    if query.languages:
        out.append(t["fewer_languages"])
    if query.org_types:
        out.append(t["more_types"])
    return out


def unassessed(n: int, lang: str = "de") -> tuple[list[ResultConfidence], Assessment]:
    """The answer without a calibration: no confidence per result, and the message that says so."""
    lang = lang if lang in _TEXT else "de"
    return [ResultConfidence(None, None, None)] * n, Assessment(False, None, _TEXT[lang]["uncalibrated"])


def assess(model: ConfidenceModel | None, scores: Sequence[float], ranks: Sequence[int], best: float,
           evidence_rows: Sequence[Mapping[str, float]], query: Query | None = None,
           lang: str = "de") -> tuple[list[ResultConfidence], Assessment]:
    """Each result's confidence and strength, and whether nothing fits (with suggestions what to change).

    The results are those of one query, in any order and any number (a top k, an invitation list);
    ``ranks`` are their ranks by fused score among all candidates (from 1), ``best`` the best fused
    score among the candidates, ``evidence_rows`` each result's :func:`evidence`. ``model`` ``None``:
    :func:`unassessed`. Nothing fits when no result reaches the bar of „passt teilweise“ (an empty
    list: nothing fits either).
    """
    if model is None:
        return unassessed(len(scores), lang)
    lang = lang if lang in _TEXT else "de"
    p = model.predict(features(scores, ranks, best, evidence_rows, model.features)) if len(scores) else np.zeros(0)
    results = []
    for value in p:
        s = model.bars.strength(float(value))
        results.append(ResultConfidence(round(float(value), 4), s, strength_label(s, lang)))
    if any(r.strength != "weak" for r in results):
        return results, Assessment(True, False, None)
    return results, Assessment(True, True, _TEXT[lang]["nothing"], _suggestions(query, lang))


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> dict[str, ConfidenceModel]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("version") != ARTIFACT_VERSION:
        raise ValueError(f"version {data.get('version')!r}, expected {ARTIFACT_VERSION}")
    return {m: ConfidenceModel.from_dict(entry) for m, entry in data["models"].items()}


def fusion_fingerprint(weights: Weights, ranker: Ranker | None = None) -> str:
    """What a calibration is keyed by besides the embedding model: :func:`weights_fingerprint` for the hand
    weights, and for a learned ranker the hash of the weights (they shape the signals) and its version."""
    if ranker is None or ranker.version == HAND.version:
        return weights_fingerprint(weights)
    text = json.dumps({"weights": weights_fingerprint(weights), "ranker": ranker.version}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def artifact_key(model_id: str, ranker: Ranker | None = None) -> str:
    """The artifact's entry for an engine: the embedding model id for the hand weights, ``model@ranker`` for a
    learned ranker (so that calibrating one never replaces the hand weights' calibration)."""
    return model_id if ranker is None or ranker.version == HAND.version else f"{model_id}@{ranker.version}"


def load_confidence(model_id: str, weights: Weights, path: str | Path | None = None,
                    ranker: Ranker | None = None) -> tuple[ConfidenceModel | None, str]:
    """The calibration for an engine (embedding ``model_id``, fusion ``weights``, ``ranker``: default the
    hand weights) and why not, if there is none. A learned ranker scores on its own scale, so it has a
    calibration only when one was fitted for it; without, its answers carry no confidence and say so.

    ``path``: the artifact (default :func:`matcher.settings.confidence_file`), which holds one calibration
    per embedding model. Returns ``(model, "")``, or ``(None, reason)`` when the file is missing or holds
    none for this model or these weights (the answer then carries no confidence and says so).

    Raises:
        CatalogError: the file exists but is not a confidence artifact.
    """
    from matcher.settings import confidence_file

    path = Path(path) if path is not None else confidence_file()
    if not path.is_file():
        return None, f"no confidence artifact at {path}"
    try:
        models = _read(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CatalogError(f"{path} ist keine gültige Konfidenz-Kalibrierung ({type(exc).__name__}: {exc}); "
                           "bitte mit `matcher calibrate` neu erstellen", [{"file": str(path)}]) from None
    if artifact_key(model_id, ranker) != model_id and artifact_key(model_id, ranker) not in models:
        return None, (f"{path} holds no calibration for the ranker {ranker.version} of {model_id} (answers carry no "
                      "confidence until `matcher calibrate --ranker` is run with it)")
    model = models.get(artifact_key(model_id, ranker))
    if model is None:
        return None, f"{path} holds no calibration for the model {model_id} (only {', '.join(models) or 'none'})"
    if model.weights != fusion_fingerprint(weights, ranker):
        return None, f"{path} was fitted for other fusion weights of {model_id} (run `matcher calibrate` again)"
    return model, ""
