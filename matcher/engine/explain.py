"""Explanations: why an entity was suggested, in numbers and in 1–3 short
German sentences (English on request)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.text.intent import LANGUAGE_NAMES_DE
from matcher.domain.schema import Advisor, Event, Organisation

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["Explanation", "explain", "ORG_TYPE_LABELS"]

ORG_TYPE_LABELS = {
    "de": {"migrant_organisation": "Migrantenorganisation", "civil_society": "zivilgesellschaftliche Gruppe",
           "municipal_office": "kommunale Stelle", "institution": "Einrichtung"},
    "en": {"migrant_organisation": "migrant organisation", "civil_society": "civil-society group",
           "municipal_office": "municipal office", "institution": "institution"},
}
_ORG_TYPE_PLURAL_DE = {"migrant_organisation": "Migrantenorganisationen", "civil_society": "zivilgesellschaftliche Gruppen",
                       "municipal_office": "kommunale Stellen", "institution": "Einrichtungen"}
_LANG_EN = {"de": "German", "en": "English", "fr": "French", "es": "Spanish", "tr": "Turkish", "ar": "Arabic",
            "pt": "Portuguese", "ru": "Russian", "uk": "Ukrainian", "pl": "Polish", "fa": "Persian", "ku": "Kurdish"}

_TEXT = {
    "de": {
        "topic_advisor": "Erfahrung mit dem Thema „{t}“",
        "topic_organisation": "Arbeitet zum Thema „{t}“",
        "topic_event": "Thema: „{t}“",
        "topic_other": "Thema: „{t}“",
        "passage": "Passt inhaltlich: „{p}“",
        "passage_weak": "Am ehesten passend: „{p}“",
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
    if lang == "en":
        return _LANG_EN.get(code, code)
    return LANGUAGE_NAMES_DE.get(code, code)


def _join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + _TEXT[lang]["and"] + items[-1]


def _best_topics(matcher: "Matcher", i: int, ctx: dict) -> list[str]:
    """The entity's topics that best match the need, by character n-gram similarity."""
    rows = matcher.topic_rows_[i]
    if not rows:
        return []
    if "topic_sims" not in ctx:  # every topic of the catalog against the need, once per query
        ctx["topic_sims"] = np.asarray((matcher.topic_vecs_ @ ctx["need_vectors"][0].T).todense()).ravel()
    sims = ctx["topic_sims"][rows]
    topics = matcher.entities_[i].topics
    return [topics[j] for j in np.argsort(-sims, kind="stable") if sims[j] >= 0.12][:2]


def explain(matcher: "Matcher", i: int, contrib: dict[str, np.ndarray], ctx: dict, lang: str = "de") -> Explanation:
    """Build the explanation of entity ``i`` from the signals of one query."""
    lang = lang if lang in _TEXT else "de"
    T = _TEXT[lang]
    e = matcher.entities_[i]
    query, asker = ctx["query"], ctx["asker"]
    need = ctx["need"]
    contributions = {s: round(float(v[i]), 4) for s, v in contrib.items() if float(v[i]) != 0.0}
    passage = matcher.passage_texts_[matcher.best_passage(i, ctx["main_vec"])] if matcher.passage_texts_ else None
    if need:
        terms = matcher.lexical_.matched_terms(need, i, query_vec=ctx["need_vectors"][1])
        topics = _best_topics(matcher, i, ctx)
    else:
        terms, topics = [], []
    shared = [c for c in ctx["languages"] if c in matcher.languages_[i]]
    dist = ctx["distance_km"][i]
    dist = None if np.isnan(dist) else round(float(dist), 1)

    reasons: list[str] = []
    kind_key = {"advisor": "topic_advisor", "organisation": "topic_organisation", "event": "topic_event"}.get(e.kind, "topic_other")
    if topics:
        reasons.append(T[kind_key].format(t=topics[0]))
    elif passage:
        strong = contributions.get("dense", 0.0) >= 0.5  # clearly above the average candidate
        reasons.append(T["passage" if strong else "passage_weak"].format(p=_shorten(passage)))
    if shared:
        reasons.append(T["speaks"].format(langs=_join([_lang_name(c, lang) for c in shared], lang)))
    raw = ctx["raw"]
    if isinstance(e, Advisor) and raw["region"][i] > 0:
        places = [p for p in [ctx["origin"], *ctx["mentioned"]] if p is not None]
        area = next((a for a in e.regions for p in places if matcher.gazetteer_.covers(a, p)), None)
        if area:
            reasons.append(T["region"].format(area=area))
    elif dist is not None and (raw["proximity"][i] > 0.2 or ctx["intent"].near):
        if dist < 3:
            reasons.append(T["here"].format(city=e.city or ""))
        elif dist <= 120:
            reasons.append(T["km"].format(km=int(round(dist))))
    if raw["type_fit"][i] > 0:
        if isinstance(e, Event) and e.target_groups:
            groups = [_ORG_TYPE_PLURAL_DE[g] if lang == "de" else ORG_TYPE_LABELS["en"][g] + "s" for g in e.target_groups]
            reasons.append(T["event_for"].format(groups=_join(groups, lang)))
        elif isinstance(e, Organisation) and e.org_type:
            label = ORG_TYPE_LABELS[lang][e.org_type]
            key = "in_group" if query.task == "invitations" and isinstance(asker, Event) else "type"
            reasons.append(T[key].format(label=label[0].upper() + label[1:]))
    if raw["time_fit"][i] > 0 and isinstance(e, Event) and e.date:
        reasons.append(T["when"].format(date=e.date.strftime("%d.%m.%Y")))
    if not reasons:
        reasons.append(T["passage"].format(p=_shorten(passage or e.description or e.name)))
    return Explanation(
        contributions=contributions,
        reasons=reasons[:3],
        matched_terms=terms,
        matched_topics=topics,
        shared_languages=shared,
        distance_km=dist,
        best_passage=passage,
    )
