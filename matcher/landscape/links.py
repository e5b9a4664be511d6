"""Missing links: pairs of actors that would complement each other and do not know each other yet.

Candidates are pairs of actors of *different* types among migrant
organisations, Eine-Welt/civil-society groups and municipal actors, not
further apart than ``max_pair_km``, that have no recorded partnership
(``partners`` in the catalog, either direction), no recorded contact (the
``contacted`` pairs) and do not name each other in their profiles. Their
complementarity is a weighted sum (:class:`LinkWeights`) of

* shared fields of action (the same work from different positions),
* countries both are connected with,
* one asking for the other's type of actor in its own words
  ("suchen Kontakt zu Migrantenvereinen"; a sentence with a wish and a type of actor),
* profile similarity (cosine of the whole-profile vectors, centred on the
  catalog's average pair),
* nearness (``exp(−km / distance_scale_km)``).

Why not the engine's ``partners`` score: it z-scores per asking entity,
so scores of different askers are not comparable and a→b differs from b→a;
it knows nothing of the fields of action the report is organised by; and
its reasons are written for one asker. The signals here are symmetric, on
one scale for all pairs, and each one yields a German reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from matcher.domain.formatting import capitalised, decimal
from matcher.domain.labels import ORG_TYPE_LABELS_DE, ORG_TYPE_PLURALS_DATIVE_DE
from matcher.engine.fields import Actor, FieldAssignment, FieldClassifier, actor_type
from matcher.text.countries import country_name_de
from matcher.text.gazetteer import haversine_km
from matcher.text.intent import asked_types

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["LINK_TYPES", "LinkWeights", "MissingLink", "recorded_pairs", "find_missing_links"]

LINK_TYPES = ("migrant_organisation", "civil_society", "municipal_office")
# words of a name that say what kind of body it is, not which one
_GENERIC_NAME_WORDS = {
    "verein", "vereins", "stadt", "kreis", "kreises", "initiative", "netzwerk", "forum", "gemeinde", "freundeskreis",
    "arbeitskreis", "kommunales", "kommunale", "integrationszentrum", "deutsch", "association", "community", "union",
    "gemeinschaftszentrum", "kulturverein", "zentrale", "regionales", "büro", "amt", "stabsstelle", "weltladen",
}


@dataclass(frozen=True)
class LinkWeights:
    """Weights of the complementarity of a pair, and the pair rules. One place for all of them."""

    shared_field: float = 1.0      # per shared field of action ...
    max_shared_fields: int = 2     # ... counted up to this many
    country: float = 1.0           # at least one country both are connected with
    asks_for_type: float = 1.0     # one names the other's type of actor as wanted partner
    similarity: float = 1.0        # centred cosine of the profiles, in [−1, 1]
    proximity: float = 1.0         # exp(−km / distance_scale_km)
    distance_scale_km: float = 25.0
    max_pair_km: float = 40.0      # farther apart is not "nearby"
    min_score: float = 1.5         # below this a pair is not worth suggesting
    min_similarity_wish_only: float = 0.1  # a pair with nothing in common but a stated wish needs this much similarity


@dataclass
class MissingLink:
    """A promising pair of actors with no recorded partnership or contact."""

    a: Actor
    b: Actor
    score: float
    distance_km: float | None
    shared_fields: list[str]
    shared_countries: list[str]
    reasons: list[str]
    contributions: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        side = lambda x: {"id": x.id, "name": x.name, "actor_type": x.actor_type, "city": x.city}  # noqa: E731
        return {"a": side(self.a), "b": side(self.b), "score": round(self.score, 3),
                "distance_km": None if self.distance_km is None else round(self.distance_km, 1),
                "shared_fields": self.shared_fields, "shared_countries": self.shared_countries,
                "reasons": self.reasons, "contributions": {k: round(v, 3) for k, v in self.contributions.items()}}


def recorded_pairs(entities: Iterable[Any], contacted: Iterable[tuple[str, str]] = ()) -> dict[frozenset[str], str]:
    """Unordered pairs that already know each other: ``partners`` (either side) → "partners",
    contacted → "contacted"."""
    pairs: dict[frozenset[str], str] = {}
    for e in entities:
        for other in e.partners:
            pairs[frozenset((e.id, other))] = "partners"
    for a, b in contacted:
        pairs.setdefault(frozenset((a, b)), "contacted")
    return pairs


_WORD_RE = re.compile(r"[\wÄÖÜäöüß*]+(?:-[\wÄÖÜäöüß*]+)*")


def _profile_text(entity: Any) -> str:
    return " ".join([entity.description, *entity.evidence])


class _NameIndex:
    """Decides whether one actor's profile names another ("gemeinsam mit der Klimawerkstatt",
    "mit der Stadt Gelsenkirchen"): such pairs already know each other.

    An actor is recognised by its full name without legal form, by "Stadt <city>" for a
    municipality, and by the first distinctive word of its name ("Klimawerkstatt"): at least
    six letters, written as in the name, not its city, not a generic word, no word of another
    actor's name or of anyone's topics, and found in at most two other profiles (so that
    "Frauen", "Solidarité" or "Nachhaltigkeit" never count).
    """

    def __init__(self, entities: Sequence[Any]):
        self.texts = {e.id: _profile_text(e) for e in entities}
        self.words = {e.id: set(_WORD_RE.findall(t)) for e, t in zip(entities, self.texts.values())}
        self.name_words = {e.id: {w.casefold() for w in _WORD_RE.findall(e.name)} for e in entities}
        self.topic_words = {w.casefold() for e in entities for t in e.topics for w in _WORD_RE.findall(t)}

    def keys(self, entity: Any) -> tuple[list[str], str | None]:
        core = re.sub(r"\s+(e\.\s?V\.|eG|gGmbH|GmbH)\s*$", "", entity.name).strip()
        phrases = [core.casefold()]
        if entity.kind == "municipality" and entity.city:
            phrases.append(f"stadt {entity.city}".casefold())
        for word in _WORD_RE.findall(core):
            w = word.casefold()
            if len(word) < 6 or w in _GENERIC_NAME_WORDS or word == entity.city:
                continue
            common = w in self.topic_words or any(w in ns for i, ns in self.name_words.items() if i != entity.id)
            others = sum(word in ws for i, ws in self.words.items() if i != entity.id)
            return phrases, (word if not common and others <= 2 else None)
        return phrases, None

    def names(self, a: Any, b: Any) -> bool:
        """Does a's profile name b?"""
        phrases, word = self.keys(b)
        text = self.texts.get(a.id) or _profile_text(a)
        folded = text.casefold()
        if any(re.search(rf"(?<![\w-]){re.escape(p)}(?![\w])", folded) for p in phrases):
            return True
        return word is not None and word in (self.words.get(a.id) or set(_WORD_RE.findall(text)))


class _PairScorer:
    """Everything about pairs that is computed once per landscape."""

    def __init__(self, matcher: Matcher, classifier: FieldClassifier, weights: LinkWeights):
        self.m, self.fc, self.w = matcher, classifier, weights
        vecs = matcher.index_.profile_vecs[classifier.actors_]
        mean = vecs.mean(axis=0)
        self.baseline = float(mean @ mean)  # mean cosine over all ordered actor pairs (self-pairs included)
        self._wishes: dict[str, dict[str, str]] = {}

    def _asks(self, asker: Any, other: Any) -> list[tuple[Any, str, str]]:
        """``asker`` says it wants to work with actors of ``other``'s type — unless the sentence names
        another town ("mit der Stadt Essen" is no wish to work with Gelsenkirchen)."""
        kind = actor_type(other)
        if asker.id not in self._wishes:
            self._wishes[asker.id] = asked_types(asker.description)
        sentence = self._wishes[asker.id].get(kind)
        if sentence is None:
            return []
        towns = {p.name for p in self.m.gazetteer_.mentions(sentence) if p.kind == "municipality"}
        if towns and other.city not in towns:
            return []
        return [(asker, kind, sentence)]

    def score(self, i: int, j: int, fields_i: list[FieldAssignment],
              fields_j: list[FieldAssignment]) -> MissingLink | None:
        m, w = self.m, self.w
        ei, ej = m.entities_[i], m.entities_[j]
        pi, pj = m.index_.places[i], m.index_.places[j]
        km = None
        if pi is not None and pj is not None and None not in (pi.lat, pj.lat):
            km = float(haversine_km(pi.lat, pi.lon, pj.lat, pj.lon))
            if km > w.max_pair_km:
                return None
        labels_j = {a.field_id for a in fields_j}
        shared = [a for a in fields_i if a.field_id in labels_j]
        countries = sorted(m.index_.countries[i][0] & m.index_.countries[j][0])
        ti, tj = actor_type(ei), actor_type(ej)
        asks = self._asks(ei, ej) + self._asks(ej, ei)
        cos = float(m.index_.profile_vecs[i] @ m.index_.profile_vecs[j])
        similarity = (cos - self.baseline) / (1 - self.baseline)
        if not shared and not countries and not (asks and similarity >= w.min_similarity_wish_only):
            return None  # nothing in common to build on
        contributions = {
            "shared_fields": w.shared_field * min(len(shared), w.max_shared_fields),
            "countries": w.country * bool(countries),
            "asks_for_type": w.asks_for_type * bool(asks),
            "similarity": w.similarity * similarity,
            "proximity": w.proximity * (math.exp(-km / w.distance_scale_km) if km is not None else 0.0),
        }
        total = sum(contributions.values())
        if total < w.min_score:
            return None
        reasons = []
        if shared:
            reasons.append("Beide arbeiten im Handlungsfeld " + " und ".join(f"„{a.label}“" for a in shared[:2]))
        if countries:
            reasons.append("Gemeinsamer Länderbezug: " + ", ".join(country_name_de(c) for c in countries[:3]))
        for who, kind, sentence in asks[:1]:
            reasons.append(f"{who.name} sucht die Zusammenarbeit mit {ORG_TYPE_PLURALS_DATIVE_DE[kind]}: "
                           f"„{_short(sentence)}“")
        reasons.append(capitalised(f"{ORG_TYPE_LABELS_DE[ti]} und {ORG_TYPE_LABELS_DE[tj]} ergänzen sich"))
        if km is not None:
            reasons.append(f"Beide in {ei.city}" if km < 3 and ei.city == ej.city
                           else f"{decimal(round(km), None)} km voneinander entfernt")
        return MissingLink(self.fc.actor(ei.id), self.fc.actor(ej.id), total, km, [a.label for a in shared],
                           [country_name_de(c) for c in countries], reasons, contributions)


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def find_missing_links(matcher: Matcher, classifier: FieldClassifier, members: Sequence[int],
                       contacted: Collection[tuple[str, str]] = (), link_types: Sequence[str] = LINK_TYPES,
                       weights: LinkWeights | None = None) -> tuple[list[MissingLink], dict[str, int]]:
    """All missing links among ``members`` (entity indices of ``matcher``), best first, and how many
    pairs were left out because they already know each other (by reason)."""
    weights = weights or LinkWeights()
    recorded = recorded_pairs(matcher.entities_, contacted)
    excluded = {"partners": 0, "contacted": 0, "named_in_profile": 0}
    scorer = _PairScorer(matcher, classifier, weights)
    names = _NameIndex([matcher.entities_[i] for i in classifier.actors_])
    links: list[MissingLink] = []
    for x, i in enumerate(members):
        for j in members[x + 1:]:
            ei, ej = matcher.entities_[i], matcher.entities_[j]
            ti, tj = actor_type(ei), actor_type(ej)
            if ti == tj or ti not in link_types or tj not in link_types:
                continue
            if (why := recorded.get(frozenset((ei.id, ej.id)))) is not None:
                excluded[why] += 1
                continue
            if names.names(ei, ej) or names.names(ej, ei):
                excluded["named_in_profile"] += 1
                continue
            link = scorer.score(i, j, classifier.assignments_[ei.id], classifier.assignments_[ej.id])
            if link is not None:
                links.append(link)
    links.sort(key=lambda k: (-k.score, k.a.id, k.b.id))
    return links, excluded
