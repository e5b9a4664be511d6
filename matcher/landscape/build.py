"""The landscape of a city, district or region: who works in which field of action,
and which promising links between actors are missing.

:func:`build_landscape` is what the command line and the service call; its
result turns into JSON with :meth:`Landscape.as_dict`.

Coverage
    Actors are the catalog's organisations and municipalities in the area
    (a municipality counts as a municipal actor). Each is assigned to fields of
    action by :class:`~matcher.engine.fields.FieldClassifier`; the matrix is
    fields × actor types, each cell with its count and its actors.

Missing links
    Pairs of actors in the area that complement each other and do not know
    each other yet: :mod:`matcher.landscape.links`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.domain.formatting import capitalised, decimal
from matcher.domain.labels import ORG_TYPE_PLURALS_DE
from matcher.domain.messages import alternatives, did_you_mean, quoted
from matcher.domain.schema import ORG_TYPES
from matcher.engine.fields import Actor, FieldClassifier
from matcher.errors import NotFittedError, ValidationError
from matcher.landscape.funding import FundingDeadline, funding_deadlines
from matcher.landscape.links import LINK_TYPES, LinkWeights, MissingLink, find_missing_links
from matcher.text.gazetteer import Place, haversine_km

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher

__all__ = ["ACTOR_TYPES", "ACTOR_TYPE_HEADINGS", "Area", "Landscape", "resolve_area", "build_landscape"]

ACTOR_TYPES = ORG_TYPES  # the landscape's columns: the organisation types (a municipality counts as municipal_office)
# column headings: the plurals, capitalised
ACTOR_TYPE_HEADINGS = {t: capitalised(ORG_TYPE_PLURALS_DE[t]) for t in ACTOR_TYPES}
@dataclass(frozen=True)
class Area:
    """The area a landscape covers: a municipality, district, region or NRW, optionally with a radius."""

    name: str
    kind: str
    lat: float | None
    lon: float | None
    radius_km: float | None = None

    @property
    def title(self) -> str:
        """German title, e.g. "Köln und 30 km Umkreis"."""
        if self.radius_km:
            return f"{self.name} und {decimal(self.radius_km, None)} km Umkreis"
        return self.name

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "title": self.title}


@dataclass
class Landscape:
    """Coverage matrix and missing links of one area. ``as_dict()`` is JSON-ready."""

    area: Area
    generated: dt.date
    model_id: str
    fields: list[tuple[str, str]]          # (id, label) in file order
    actors: list[Actor]
    links: list[MissingLink]
    excluded: dict[str, int]               # pairs left out, by reason
    link_weights: LinkWeights = field(default_factory=LinkWeights)
    funding: list[FundingDeadline] = field(default_factory=list)   # programme deadlines in the next 6 months

    def cell(self, field_id: str, kind: str) -> list[Actor]:
        """Actors of one type that work in one field."""
        return [a for a in self.actors if a.actor_type == kind and any(f.field_id == field_id for f in a.fields)]

    def counts(self) -> np.ndarray:
        """The coverage matrix: fields × actor types (in ``ACTOR_TYPES`` order)."""
        return np.array([[len(self.cell(fid, t)) for t in ACTOR_TYPES] for fid, _ in self.fields], dtype=np.int64)

    @property
    def unassigned(self) -> list[Actor]:
        return [a for a in self.actors if not a.fields]

    @property
    def uncovered_fields(self) -> list[str]:
        counts = self.counts().sum(axis=1)
        return [label for (_, label), c in zip(self.fields, counts) if c == 0]

    def as_dict(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "area": self.area.as_dict(),
            "generated": self.generated.isoformat(),
            "model": self.model_id,
            "fields": [{"id": fid, "label": label} for fid, label in self.fields],
            "actor_types": [{"id": t, "label": ACTOR_TYPE_HEADINGS[t]} for t in ACTOR_TYPES],
            "coverage": [
                {"field": fid, "label": label, "total": int(counts[r].sum()),
                 "by_type": {t: {"count": int(counts[r, c]),
                                 "actors": [{"id": a.id, "name": a.name} for a in self.cell(fid, t)]}
                             for c, t in enumerate(ACTOR_TYPES)}}
                for r, (fid, label) in enumerate(self.fields)
            ],
            "uncovered_fields": self.uncovered_fields,
            "unassigned_actors": [{"id": a.id, "name": a.name} for a in self.unassigned],
            "actors": [a.as_dict() for a in self.actors],
            "missing_links": [link.as_dict() for link in self.links],
            "excluded_pairs": self.excluded,
            "link_weights": asdict(self.link_weights),
            "funding_deadlines": [f.as_dict() for f in self.funding],
        }


def resolve_area(matcher: Matcher, name: str, radius_km: float | None = None) -> Area:
    """Resolve a place name (municipality, district, region or "NRW") with the matcher's gazetteer.

    Raises:
        ValidationError: the name is not a place in NRW, or the radius is not positive.
    """
    if radius_km is not None and not (0 < radius_km <= 500):
        raise ValidationError("Der Umkreis muss zwischen 0 und 500 km liegen",
                              [{"field": "radius_km", "value": radius_km}])
    place = matcher.gazetteer_.resolve(name)
    if place is None or place.kind not in ("municipality", "district", "region", "state"):
        suggestions = matcher.gazetteer_.suggest(name, n=3)
        raise ValidationError(" ".join(filter(None, [
            f"Unbekannter Ort {quoted(name)}: bitte eine Stadt, einen Kreis oder eine Region in NRW angeben.",
            did_you_mean(suggestions)])), [{"field": "city", "value": name, "suggestions": suggestions}])
    return Area(place.name, place.kind, place.lat, place.lon, radius_km)


def _inside(area: Area, place: Place | None) -> bool:
    if place is None:
        return False
    if area.kind == "state":
        return "NRW" in place.regions
    if area.kind == "region":
        return area.name in place.regions
    if area.kind == "district":
        return place.district == area.name
    return place.name == area.name


def _members(matcher: Matcher, classifier: FieldClassifier, area: Area) -> list[int]:
    out = []
    for i in classifier.actors_:
        place = matcher.index_.places[i]
        inside = _inside(area, place)
        if not inside and area.radius_km and area.lat is not None and place is not None and place.lat is not None:
            inside = float(haversine_km(area.lat, area.lon, place.lat, place.lon)) <= area.radius_km
        if inside:
            out.append(i)
    return out


def build_landscape(matcher: Matcher, classifier: FieldClassifier, city: str, radius_km: float | None = None,
                    contacted: Collection[tuple[str, str]] = (), limit: int | None = 20,
                    link_types: Sequence[str] = LINK_TYPES, weights: LinkWeights | None = None,
                    today: dt.date | None = None) -> Landscape:
    """Coverage of the fields of action and the missing links for one area.

    Args:
        matcher: the fitted engine (its vectors, places and countries are reused; nothing is re-encoded).
        classifier: a :class:`FieldClassifier` fitted on the same matcher (fit it once per catalog).
        city: a municipality, district ("Kreis Kleve"), region ("Münsterland") or "NRW".
        radius_km: also include actors within this distance of the place's centre point.
        contacted: pairs of ids recorded as already in contact (e.g. "contacted" feedback); never suggested.
        limit: number of missing links to return, best first (``None``: all).
        link_types: actor types that links are made between (pairs must be of different types).
        weights: complementarity weights and pair rules.
        today: date printed on the report (default: today).

    Raises:
        ValidationError: unknown place, bad radius, or a classifier fitted on another matcher.
        NotFittedError: the classifier is not fitted.

    Example:
        >>> ls = build_landscape(m, FieldClassifier().fit(m), "Münster", contacted={("org-135", "org-154")})
        >>> link = ls.links[0]
        >>> link.a.name, link.b.name, link.reasons[0]
        ('Raízes – Brasilianischer Kulturverein Münster e.V.', 'Klimagerechtigkeit jetzt! Münster e.V.',
         'Beide arbeiten im Handlungsfeld „Klimaschutz und Klimagerechtigkeit“')
    """
    if not hasattr(classifier, "assignments_"):
        raise NotFittedError("FieldClassifier is not fitted: call fit(matcher) first")
    if classifier.matcher_ is not matcher:
        raise ValidationError("Der FieldClassifier wurde auf einem anderen Matcher angepasst")
    if unknown := sorted(set(link_types) - set(ACTOR_TYPES)):
        raise ValidationError(f"Unbekannte Akteurstypen {alternatives(unknown, 'und')}; erlaubt: "
                              f"{alternatives(ACTOR_TYPES)}", [{"field": "link_types", "value": unknown}])
    weights = weights or LinkWeights()
    area = resolve_area(matcher, city, radius_km)
    members = _members(matcher, classifier, area)
    links, excluded = find_missing_links(matcher, classifier, members, contacted, link_types, weights)
    fields = [(f.id, f.label) for f in classifier.fields_.fields]
    actors = [classifier.actor(matcher.entities_[i].id) for i in members]
    today = today or dt.date.today()
    return Landscape(area, today, matcher.model_id, fields, actors,
                     links if limit is None else links[:limit], excluded, weights, funding_deadlines(matcher, today))
