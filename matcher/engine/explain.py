"""Explanations: why an entity was suggested, in numbers and in 1–3 short
German sentences (English on request)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from matcher.domain.formatting import capitalised, german_date
from matcher.domain.labels import (
    LANGUAGE_NAMES_DE,
    LANGUAGE_NAMES_EN,
    ORG_TYPE_LABELS_DE,
    ORG_TYPE_LABELS_EN,
    ORG_TYPE_PLURALS_DE,
    ORG_TYPE_PLURALS_EN,
)
from matcher.domain.schema import Advisor, Event, Organisation
from matcher.engine.context import QueryContext
from matcher.engine.index import CatalogIndex
from matcher.engine.scoring import ScoreRow

__all__ = ["THRESHOLDS", "Explanation", "ExplanationThresholds", "explain", "topic_similarities"]


@dataclass(frozen=True)
class ExplanationThresholds:
    """When a reason is worth saying."""

    strong_dense: float = 0.5        # dense contribution from which a passage "fits" (clearly above the average)
    topic_similarity: float = 0.12   # n-gram similarity from which one of the entity's topics matches the need
    near_proximity: float = 0.2      # proximity from which the distance is a reason
    here_km: float = 3.0             # closer than this is "Vor Ort in …"
    far_km: float = 120.0            # farther than this is not worth mentioning


THRESHOLDS = ExplanationThresholds()

_ORG_TYPE_LABELS = {"de": ORG_TYPE_LABELS_DE, "en": ORG_TYPE_LABELS_EN}
_ORG_TYPE_PLURALS = {"de": ORG_TYPE_PLURALS_DE, "en": ORG_TYPE_PLURALS_EN}
_LANGUAGE_NAMES = {"de": LANGUAGE_NAMES_DE, "en": LANGUAGE_NAMES_EN}

_TEXT = {
    "de": {
        "topic_advisor": "Erfahrung mit dem Thema „{t}“",
        "topic_organisation": "Arbeitet zum Thema „{t}“",
        "topic_event": "Thema: „{t}“",
        "topic_other": "Thema: „{t}“",
        "passage": "Passt inhaltlich: „{p}“",
        "passage_weak": "Am ehesten passend: „{p}“",
        "topic_weak": "Nächstliegendes Thema: „{t}“",
        "speaks": "Spricht {langs}",
        "here": "Vor Ort in {city}",
        "km": "{km} km entfernt",
        "region": "Berät in der Region {area}",
        "event_for": "Richtet sich an {groups}",
        "type": "{label}, wie gesucht",
        "in_group": "Gehört zur Zielgruppe ({label})",
        "when": "Termin am {date} – im gewünschten Zeitraum",
        "and": " und ",
    },
    "en": {
        "topic_advisor": "Experienced in “{t}”",
        "topic_organisation": "Works on “{t}”",
        "topic_event": "Topic: “{t}”",
        "topic_other": "Topic: “{t}”",
        "passage": "Fits the need: “{p}”",
        "passage_weak": "Closest passage: “{p}”",
        "topic_weak": "Closest topic: “{t}”",
        "speaks": "Speaks {langs}",
        "here": "Based in {city}",
        "km": "{km} km away",
        "region": "Advises in the region {area}",
        "event_for": "Open to {groups}",
        "type": "{label}, as requested",
        "in_group": "In the event's target group ({label})",
        "when": "Takes place on {date}, within the requested period",
        "and": " and ",
    },
}


@dataclass
class Explanation:
    """Why one entity was ranked where it was."""

    contributions: dict[str, float]
    reasons: list[str]
    matched_terms: list[str] = field(default_factory=list)
    matched_topics: list[str] = field(default_factory=list)
    shared_languages: list[str] = field(default_factory=list)
    distance_km: float | None = None
    best_passage: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (lists and the contributions copied); ``dataclasses.asdict``'s deep copy
        was a noticeable part of answering a request."""
        return {f.name: (type(v)(v) if isinstance(v := getattr(self, f.name), (list, dict)) else v)
                for f in fields(self)}


def _shorten(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:–-") + " …"


def _lang_name(code: str, lang: str) -> str:
    return _LANGUAGE_NAMES[lang].get(code, code)


def _join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + _TEXT[lang]["and"] + items[-1]


def topic_similarities(index: CatalogIndex, ctx: QueryContext) -> np.ndarray | None:
    """Every catalog topic's character n-gram similarity to the need (computed once per query, for all of
    its explanations); ``None`` without a need or topics."""
    if ctx.need_vectors is None or index.topic_vecs is None:
        return None
    return np.asarray((index.topic_vecs @ ctx.need_vectors.char_row().T).todense()).ravel()


def _best_topics(index: CatalogIndex, i: int, sims: np.ndarray | None, threshold: float) -> list[str]:
    """The entity's topics that best match the need, by character n-gram similarity."""
    rows = index.topic_rows[i]
    if not rows or sims is None:
        return []
    mine = sims[rows]
    topics = index.entities[i].topics
    return [topics[j] for j in np.argsort(-mine, kind="stable") if mine[j] >= threshold][:2]


def explain(index: CatalogIndex, i: int, scores: ScoreRow, ctx: QueryContext, lang: str = "de",
            topic_sims: np.ndarray | None = None, thresholds: ExplanationThresholds = THRESHOLDS,
            content_fit: bool | None = None) -> Explanation:
    """Why catalog row ``i`` was suggested for the query ``ctx``, from its ``scores``.

    ``topic_sims``: :func:`topic_similarities` of the query, when several results of one query are
    explained (computed here otherwise). ``content_fit``: ``False`` when the calibrated confidence
    (:mod:`matcher.engine.confidence`) calls the result a weak match — then no reason is worded as a
    content fit („Am ehesten passend …“, „Nächstliegendes Thema …“); ``None``: no calibration, the
    dense contribution alone decides. Reads the context; changes nothing.
    """
    lang = lang if lang in _TEXT else "de"
    T = _TEXT[lang]
    t = thresholds
    e = index.entities[i]
    query, asker, need = ctx.query, ctx.asker, ctx.need
    contributions = {s: round(v, 4) for s, v in scores.contributions.items() if v != 0.0}
    passage = index.passage_texts[index.best_passage(i, ctx.main_vector(index))] if index.passage_texts else None
    if need and ctx.need_vectors is not None:
        terms = index.lexical.matched_terms(need, i, query_vec=ctx.need_vectors.word_row())
        topics = _best_topics(index, i, topic_sims if topic_sims is not None else topic_similarities(index, ctx),
                              t.topic_similarity)
    else:
        terms, topics = [], []
    shared = [c for c in ctx.languages if c in index.languages[i]]
    dist = None if np.isnan(scores.distance_km) else round(scores.distance_km, 1)

    reasons: list[str] = []
    kind_key = {"advisor": "topic_advisor", "organisation": "topic_organisation", "event": "topic_event"}.get(
        e.kind, "topic_other")
    fits = content_fit is not False
    strong = fits and contributions.get("dense", 0.0) >= t.strong_dense
    if topics:
        reasons.append(T[kind_key if fits else "topic_weak"].format(t=topics[0]))
    elif passage:
        reasons.append(T["passage" if strong else "passage_weak"].format(p=_shorten(passage)))
    if shared:
        reasons.append(T["speaks"].format(langs=_join([_lang_name(c, lang) for c in shared], lang)))
    raw = scores.raw
    if isinstance(e, Advisor) and raw["region"] > 0:
        places = [p for p in [ctx.origin, *ctx.mentioned] if p is not None]
        area = next((a for a in e.regions for p in places if index.gazetteer.covers(a, p)), None)
        if area:
            reasons.append(T["region"].format(area=area))
    elif dist is not None and (raw["proximity"] > t.near_proximity or ctx.intent.near):
        if dist < t.here_km:
            reasons.append(T["here"].format(city=e.city or ""))
        elif dist <= t.far_km:
            reasons.append(T["km"].format(km=int(round(dist))))
    if raw["type_fit"] > 0:
        if isinstance(e, Event) and e.target_groups:
            groups = [_ORG_TYPE_PLURALS[lang][g] for g in e.target_groups]
            reasons.append(T["event_for"].format(groups=_join(groups, lang)))
        elif isinstance(e, Organisation) and e.org_type:
            key = "in_group" if query.task == "invitations" and isinstance(asker, Event) else "type"
            reasons.append(T[key].format(label=capitalised(_ORG_TYPE_LABELS[lang][e.org_type])))
    if raw["time_fit"] > 0 and isinstance(e, Event) and e.date:
        reasons.append(T["when"].format(date=german_date(e.date)))
    if not reasons:
        fallback = _shorten(passage or e.description or e.name)
        reasons.append(T["passage" if strong else "passage_weak"].format(p=fallback))
    return Explanation(
        contributions=contributions,
        reasons=reasons[:3],
        matched_terms=terms,
        matched_topics=topics,
        shared_languages=shared,
        distance_km=dist,
        best_passage=passage,
    )
