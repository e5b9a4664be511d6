"""The values of an invitation list: what a caller asks for (:class:`Quota`,
:class:`ExposurePolicy`, past :class:`InvitationRecord` s) and what it gets back
(:class:`InvitationList` of :class:`Invitee` s, one :class:`ConstraintReport` per
quota or limit). :func:`matcher.batch.invitations.invitation_list` builds them.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from matcher.domain.formatting import decimal
from matcher.domain.invitations import INVITABLE_KINDS, InvitationRecord
from matcher.domain.labels import ADVISOR_GROUP, GROUP_LABELS, UNTYPED_GROUP
from matcher.domain.messages import quoted
from matcher.domain.schema import ORG_TYPES, Event
from matcher.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.explain import Explanation
    from matcher.engine.matcher import Entity

__all__ = [
    "DEFAULT_MMR_LAMBDA",
    "DEFAULT_EXPOSURE",
    "INVITABLE_KINDS",
    "ADVISOR_GROUP",
    "UNTYPED_GROUP",
    "GROUPS",
    "Quota",
    "ExposurePolicy",
    "InvitationRecord",
    "Invitee",
    "ConstraintReport",
    "InvitationList",
]

DEFAULT_MMR_LAMBDA = 0.7
GROUPS = (*ORG_TYPES, UNTYPED_GROUP, ADVISOR_GROUP)  # the selection's groups, in a fixed order
_QUOTA_RE = re.compile(
    r"^\s*(?P<group>[a-z_]+)\s*:\s*(?P<op>>=|<=|≥|≤)?\s*(?P<value>\d+(?:[.,]\d+)?)\s*(?P<pct>%)?\s*$")


@dataclass(frozen=True)
class Quota:
    """A bound on how many invitees of one group (``org_type``, or ``advisor``) the list holds.

    ``unit="share"``: ``value`` is a fraction of the list size; ``"count"``: a number of places.
    Minimum shares round up, maximum shares round down (40 % of 12 → at least 5).
    """

    group: str
    bound: Literal["min", "max"]
    value: float
    unit: Literal["share", "count"]

    @classmethod
    def parse(cls, spec: str) -> Quota:
        """Read ``TYPE:VALUE`` with an optional ``>=`` (default) or ``<=``.

        A value with a decimal point or ``%`` is a share (``0.4``, ``40%``), an
        integer a count (``5``).

        Example:
            >>> Quota.parse("migrant_organisation:0.4")
            Quota(group='migrant_organisation', bound='min', value=0.4, unit='share')
            >>> Quota.parse("institution:<=2").bound
            'max'
        """
        m = _QUOTA_RE.match(spec or "")
        if not m:
            raise ValidationError(
                f"Quote {quoted(spec)} nicht lesbar: TYP:WERT angeben, z. B. „migrant_organisation:0.4“ (Anteil), "
                "„migrant_organisation:40%“ oder „institution:<=2“ (Anzahl)", [{"field": "quota", "value": spec}])
        value_text = m.group("value").replace(",", ".")
        share = bool(m.group("pct")) or "." in value_text
        value = float(value_text) / (100.0 if m.group("pct") else 1.0)
        if share and not 0.0 <= value <= 1.0:
            raise ValidationError(f"Quote {quoted(spec)}: ein Anteil liegt zwischen 0 und 1 (bzw. 0 % und 100 %)",
                                  [{"field": "quota", "value": spec}])
        bound = "max" if m.group("op") in ("<=", "≤") else "min"
        return cls(m.group("group"), bound, value, "share" if share else "count")

    def places(self, size: int) -> int:
        """The bound in places for a list of ``size``."""
        if self.unit == "count":
            return int(self.value)
        exact = self.value * size
        return math.ceil(exact - 1e-9) if self.bound == "min" else math.floor(exact + 1e-9)

    def label(self) -> str:
        """German, e.g. „mindestens 40 % Migrantenorganisationen“."""
        word = "mindestens" if self.bound == "min" else "höchstens"
        amount = f"{decimal(self.value * 100, 0)} %" if self.unit == "share" else str(int(self.value))
        return f"{word} {amount} {GROUP_LABELS.get(self.group, self.group)}"


@dataclass(frozen=True)
class ExposurePolicy:
    """Penalty for organisations invited often: ``penalty`` fused-score points for every
    invitation to another event dated within ``window_days`` before the reference date
    (or after it: invitations already sent for coming events count too)."""

    penalty: float = 0.5
    window_days: int = 365


DEFAULT_EXPOSURE = ExposurePolicy()  # frozen, so one shared instance is a safe default argument


@dataclass
class Invitee:
    """One place on the list (or the waitlist)."""

    rank: int
    entity: Entity
    score: float              # the engine's fused score for this event
    explanation: Explanation  # the engine's explanation (contributions, reasons)
    why: list[str]            # why the selection chose it here (German)
    group: str
    relevance_rank: int       # its rank by score alone
    recent_invitations: int = 0
    exposure_penalty: float = 0.0
    redundancy: float = 0.0   # largest similarity to those chosen before it (MMR)
    confidence: float | None = None      # calibrated probability of a good fit (matcher.engine.confidence)
    strength: str | None = None          # good, partial, weak
    strength_label: str | None = None    # „passt gut“, „passt teilweise“, „schwache Übereinstimmung“

    @property
    def entity_id(self) -> str:
        return self.entity.id

    def as_dict(self, include_contact: bool = False) -> dict[str, Any]:
        exclude = None if include_contact else {"contact"}
        return {"rank": self.rank, "id": self.entity.id, "name": self.entity.name, "kind": self.entity.kind,
                "group": self.group, "city": self.entity.city, "score": round(self.score, 4),
                "relevance_rank": self.relevance_rank, "why": self.why,
                "recent_invitations": self.recent_invitations, "exposure_penalty": round(self.exposure_penalty, 4),
                "redundancy": round(self.redundancy, 4), "confidence": self.confidence, "strength": self.strength,
                "strength_label": self.strength_label, "explanation": self.explanation.as_dict(),
                "entity": self.entity.model_dump(mode="json", exclude=exclude, exclude_none=True)}


@dataclass
class ConstraintReport:
    """How one constraint fared: required, achieved, and whether it held or had to be dropped."""

    constraint: Literal["quota", "max_per_city", "size"]
    label: str
    held: bool
    relaxed: bool
    required: int
    achieved: int
    shortfall: int = 0
    group: str | None = None
    bound: Literal["min", "max"] | None = None
    available: int | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InvitationList:
    """The answer: invitees, waitlist, and one report per constraint."""

    event: Event
    size: int
    invitees: list[Invitee]
    waitlist: list[Invitee]
    constraints: list[ConstraintReport]
    candidates: int
    settings: dict[str, Any] = field(default_factory=dict)
    model_id: str = ""
    waitlist_constraints: list[ConstraintReport] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        """True when no constraint had to be dropped."""
        return not any(c.relaxed for c in self.constraints)

    def as_dict(self, include_contact: bool = False) -> dict[str, Any]:
        return {"event": {"id": self.event.id, "name": self.event.name, "date": str(self.event.date or "")},
                "size": self.size, "candidates": self.candidates, "model": self.model_id, "feasible": self.feasible,
                "settings": self.settings, "constraints": [c.as_dict() for c in self.constraints],
                "waitlist_constraints": [c.as_dict() for c in self.waitlist_constraints],
                "invitees": [i.as_dict(include_contact) for i in self.invitees],
                "waitlist": [i.as_dict(include_contact) for i in self.waitlist]}
