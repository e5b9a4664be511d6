"""The engine's tuning constants in one place: fusion weights and the shapes of the signals.

Defaults were chosen on the shared dev set (``matcher evaluate --data ../shared/eval/dev``,
the model card has the ablation); ``matcher evaluate --weights FILE`` overrides any of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from matcher.domain.messages import alternatives, quoted
from matcher.errors import ValidationError

__all__ = ["SIGNALS", "TASK_KIND", "TASK_KINDS", "Weights"]

# every signal, in the order the fusion adds them (see matcher.engine.signals)
SIGNALS = ("dense", "lexical", "domain", "proximity", "region", "language", "country", "type_fit", "time_fit",
           "capacity")
# the kind of entity each task ranks first (FORMAT.md's kind; the judged sets judge these)
TASK_KIND = {"advisors": "advisor", "partners": "organisation", "events": "event", "invitations": "organisation",
             "programmes": "programme"}
# every kind a task ranks, where more than TASK_KIND's: a municipality is a partner and an invitee too (issue 17)
TASK_KINDS = {"advisors": ("advisor",), "partners": ("organisation", "municipality"), "events": ("event",),
              "invitations": ("organisation", "municipality")}


@dataclass(frozen=True)
class Weights:
    """Fusion weights (one per signal) and the parameters that shape the signals."""

    # fusion: the fused score is the sum of weight × signal
    dense: float = 1.0
    lexical: float = 0.1
    domain: float = 0.1
    proximity: float = 3.0
    region: float = 0.5
    language: float = 3.0
    country: float = 4.0
    type_fit: float = 3.0
    time_fit: float = 1.5
    capacity: float = 0.2
    # dense: how the need and the asker's profile meet a profile
    passage_share: float = 0.4        # best passage vs whole profile
    from_share: float = 0.2           # asker's own profile vs the need text, when both are given
    event_from_share: float = 0.65    # the same for an invitation list: the asking event's own description
    # proximity
    distance_scale_km: float = 40.0   # e-folding distance of nearness
    named_share: float = 0.6          # places the need names vs the asker's own location
    implicit_proximity: float = 0.3   # weight of nearness when the need does not mention place
    event_proximity: float = 0.7      # the same for event searches: the asker travels to the venue itself
    invitation_proximity: float = 0.3  # the same for invitation lists: the invitee travels to the venue
    partner_proximity: float = 0.5    # the same for partner searches: partners meet and work together
    # partners: the mix of actor types takes a fitting candidate of a missing type within this distance
    mix_radius_km: float = 30.0
    # region: an advisor who serves a town also serves places this close to it
    town_radius_km: float = 15.0
    # country: strength of the link between the countries a need names and a candidate's
    country_same: float = 1.0         # the same country
    country_region: float = 0.5       # only a world region links them ("Ostafrika" ~ Kenya)
    country_continent: float = 0.2    # only the continent
    # type_fit
    event_open_to_all: float = 0.5    # an event that names no target group
    related_type: float = 0.5         # a migrant organisation at an event for civil society
    untyped_asker: float = 0.5        # an asker whose type the catalog does not say
    asked_share: float = 0.5          # for events: the types a need asks for vs whether the asker may attend

    def without(self, signal: str) -> Weights:
        """A copy with one signal switched off (for ablations)."""
        if signal not in SIGNALS:
            raise ValidationError(f"Unbekanntes Signal {quoted(signal)}; erlaubt: {alternatives(SIGNALS)}",
                                  [{"field": "signal", "value": signal}])
        return replace(self, **{signal: 0.0})

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Weights:
        """Weights from a mapping of names to numbers (unknown names are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValidationError(f"Unbekannte Gewichte {alternatives(unknown, 'und')}; erlaubt: "
                                  f"{alternatives(sorted(names))}", [{"field": "weights", "value": u} for u in unknown])
        return cls(**{k: float(v) for k, v in values.items()})
