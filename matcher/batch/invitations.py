"""Invitation lists for an event: relevance, quotas, diversity, exposure, a waitlist.

The engine scores every organisation for the event (``Query(task="invitations",
from=event)``; with ``include_kinds=("organisation", "advisor")`` advisors too,
scored for the event's announcement). Then :func:`matcher.batch.selection.select`
picks ``size`` invitees:

* **quotas** per actor type (:class:`Quota`: at least / at most a share or a
  count, e.g. ``migrant_organisation:0.4`` = at least 40 %) and a maximum per
  city, held exactly: a candidate is taken only if the list can still be
  completed within every bound;
* **diversity** by maximal marginal relevance with weight λ (1 = pure relevance);
* **exposure control**: an organisation invited to other events recently loses
  ``penalty`` fused-score points per such invitation (:class:`ExposurePolicy`),
  so that new actors get a chance;
* a **waitlist** of the next ``waitlist`` candidates in the same order, chosen
  so that it keeps the list's proportions on its own (share quotas at its
  length, count quotas as their share of the list, the same city limit);
  :func:`replacement_for` names the first of them who keeps every bound when
  an invitee declines.

When the bounds admit no list (too few candidates of a type, limits that leave
too few places), the report says which constraint fails and by how much, and the
list is built without it. Without quotas, city limit, exposure penalty and with
λ = 1 the list is exactly the engine's top ``size`` (``Matcher.rank``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from matcher.errors import CatalogError, ValidationError
from matcher.engine.explain import Explanation, explain
from matcher.domain.messages import KIND_LABELS, alternatives, quoted
from matcher.domain.schema import ORG_TYPES, Event, Query
from matcher.batch.selection import UNLIMITED, Pick, completion_feasible, max_flow, select

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Entity, Matcher

__all__ = [
    "DEFAULT_MMR_LAMBDA",
    "INVITABLE_KINDS",
    "ConstraintReport",
    "ExposurePolicy",
    "InvitationList",
    "check_invitation_request",
    "InvitationRecord",
    "Invitee",
    "Quota",
    "invitation_list",
    "read_history",
    "recent_invitations",
    "replacement_for",
]

DEFAULT_MMR_LAMBDA = 0.7
INVITABLE_KINDS = ("organisation", "advisor")
ADVISOR_GROUP = "advisor"
UNTYPED_GROUP = "ohne_typ"
GROUP_LABELS = {"migrant_organisation": "Migrantenorganisationen", "civil_society": "zivilgesellschaftliche Gruppen",
                "municipal_office": "kommunale Stellen", "institution": "Einrichtungen",
                ADVISOR_GROUP: "Beraterinnen und Berater", UNTYPED_GROUP: "Organisationen ohne Typangabe"}
_QUOTA_RE = re.compile(
    r"^\s*(?P<group>[a-z_]+)\s*:\s*(?P<op>>=|<=|≥|≤)?\s*(?P<value>\d+(?:[.,]\d+)?)\s*(?P<pct>%)?\s*$")

Progress = Callable[[float, str], None]


def _num(x: float, digits: int = 2) -> str:
    """A number the German way (decimal comma)."""
    return f"{x:.{digits}f}".replace(".", ",")


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
    def parse(cls, spec: str) -> "Quota":
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
        amount = f"{_num(self.value * 100, 0)} %" if self.unit == "share" else str(int(self.value))
        return f"{word} {amount} {GROUP_LABELS.get(self.group, self.group)}"


@dataclass(frozen=True)
class ExposurePolicy:
    """Penalty for organisations invited often: ``penalty`` fused-score points for every
    invitation to another event dated within ``window_days`` before the reference date
    (or after it: invitations already sent for coming events count too)."""

    penalty: float = 0.5
    window_days: int = 365


@dataclass(frozen=True)
class InvitationRecord:
    """One past invitation: who was invited to which event, when."""

    entity_id: str
    event_id: str
    date: dt.date


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

    @property
    def entity_id(self) -> str:
        return self.entity.id

    def as_dict(self, include_contact: bool = False) -> dict[str, Any]:
        exclude = None if include_contact else {"contact"}
        return {"rank": self.rank, "id": self.entity.id, "name": self.entity.name, "kind": self.entity.kind,
                "group": self.group, "city": self.entity.city, "score": round(self.score, 4),
                "relevance_rank": self.relevance_rank, "why": self.why,
                "recent_invitations": self.recent_invitations, "exposure_penalty": round(self.exposure_penalty, 4),
                "redundancy": round(self.redundancy, 4), "explanation": self.explanation.as_dict(),
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


def _entries(history: Iterable[Any]) -> Iterator[tuple[str, str, dt.date]]:
    """(entity_id, event_id, date) of each history entry; a bad entry is a ValidationError."""
    for i, h in enumerate(history):
        if isinstance(h, InvitationRecord):
            yield h.entity_id, h.event_id, h.date
            continue
        try:
            entity_id, event_id, date = h
            if type(date) is not dt.date:  # the common case costs one check
                if isinstance(date, str):
                    date = dt.date.fromisoformat(date)
                elif isinstance(date, dt.datetime):
                    date = date.date()
                elif not isinstance(date, dt.date):
                    raise TypeError
        except (TypeError, ValueError):
            raise ValidationError("Einladungshistorie: jeder Eintrag braucht entity_id, event_id und ein Datum "
                                  "(JJJJ-MM-TT)",
                                  [{"field": "history", "index": i, "value": str(h)[:80]}]) from None
        yield entity_id, event_id, date


def read_history(path: str | Path) -> list[InvitationRecord]:
    """Read an invitation history: CSV with the columns ``entity_id``, ``event_id``, ``date``
    (``;``, ``,`` or tab; dates ``JJJJ-MM-TT``), or JSON Lines with those keys.

    Raises:
        CatalogError: unreadable file or bad lines (nothing is returned).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise CatalogError(f"Einladungshistorie {path} kann nicht gelesen werden: {exc.strerror}",
                           [{"file": str(path)}]) from None
    except UnicodeDecodeError:
        raise CatalogError(f"Einladungshistorie {path} ist nicht UTF-8-kodiert; bitte als UTF-8 speichern",
                           [{"file": str(path)}]) from None
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        first = text.split("\n", 1)[0]
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=max([";", ",", "\t"], key=first.count))
        rows = [(k, dict(r)) for k, r in enumerate(reader, start=2)]
    else:
        for k, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((k, json.loads(line)))
                except json.JSONDecodeError:
                    rows.append((k, {}))
    out, details = [], []
    for line, rec in rows:
        try:
            out.append(InvitationRecord(str(rec["entity_id"]).strip(), str(rec["event_id"]).strip(),
                                        dt.date.fromisoformat(str(rec["date"]).strip())))
        except (KeyError, TypeError, ValueError, AttributeError):
            details.append({"file": str(path), "line": line,
                            "message": "entity_id, event_id und date (JJJJ-MM-TT) erwartet"})
    if details:
        raise CatalogError(f"{path}: {len(details)} fehlerhafte Zeile(n) in der Einladungshistorie", details)
    return out


def recent_invitations(history: Iterable[Any], event_id: str, as_of: dt.date, window_days: int) -> Counter[str]:
    """Invitations per entity to *other* events within ``window_days`` of ``as_of`` (one per event)."""
    lo = as_of - dt.timedelta(days=window_days)
    seen = {(str(who), str(what)) for who, what, date in _entries(history) if date >= lo and str(what) != event_id}
    return Counter(who for who, _ in seen)


def _check_arguments(size: int, waitlist: int, mmr_lambda: float, max_per_city: int | None,
                     include_kinds: Sequence[str], quotas: Sequence[Quota]) -> None:
    problems = []
    if size < 1:
        problems.append({"field": "size", "message": "mindestens 1"})
    if waitlist < 0:
        problems.append({"field": "waitlist", "message": "nicht negativ"})
    if not 0.0 <= mmr_lambda <= 1.0:
        problems.append({"field": "mmr_lambda", "message": "zwischen 0 und 1"})
    if max_per_city is not None and max_per_city < 1:
        problems.append({"field": "max_per_city", "message": "mindestens 1"})
    unknown_kinds = [k for k in include_kinds if k not in INVITABLE_KINDS]
    if unknown_kinds or not include_kinds:
        problems.append({"field": "include_kinds", "message": f"erlaubt: {alternatives(INVITABLE_KINDS)}"})
    groups = (*ORG_TYPES, ADVISOR_GROUP) if ADVISOR_GROUP in include_kinds else ORG_TYPES
    for q in quotas:
        if q.group not in groups:
            problems.append({"field": "quota", "value": q.group,
                             "message": f"unbekannter Typ {quoted(q.group)}; erlaubt: {alternatives(groups)}"})
    if problems:
        raise ValidationError("Ungültige Angaben für die Einladungsliste", problems)


def _score_candidates(matcher: Matcher, event: Event, include_kinds: Sequence[str],
                      as_of: dt.date | None) -> tuple[np.ndarray, np.ndarray, list[tuple[dict, dict]], np.ndarray]:
    """(candidate catalog indices ascending, their scores, the (contrib, ctx) pairs, context index per candidate)."""
    parts = []
    if "organisation" in include_kinds:
        parts.append(matcher.score(Query.model_validate({"task": "invitations", "from": event.id}), as_of=as_of))
    if "advisor" in include_kinds:
        announcement = f"{event.name}. {event.description}".strip()
        q = Query.model_validate({"task": "advisors", "text": announcement, "city": event.city,
                                  "lat": event.lat, "lon": event.lon})
        parts.append(matcher.score(q, as_of=as_of))
    total = np.full(len(matcher.entities_), -np.inf)
    which = np.full(len(matcher.entities_), -1, dtype=np.int64)
    for k, (scores, _, ctx) in enumerate(parts):
        total = np.where(ctx["mask"], scores, total)
        which[ctx["mask"]] = k
    cand = np.flatnonzero(which >= 0)
    return cand, total[cand], [(contrib, ctx) for _, contrib, ctx in parts], which[cand]


GROUPS = (*ORG_TYPES, UNTYPED_GROUP, ADVISOR_GROUP)  # the selection's groups, in a fixed order
_COLUMNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _catalog_columns(matcher: Matcher) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per catalog entity its group (index into ``GROUPS``) and city (index into the sorted city
    list, -1 for none); computed once per fitted catalog, not per list."""
    cached = _COLUMNS.get(matcher)
    if cached is None or cached[0] is not matcher.entities_:
        ents = matcher.entities_
        position = {g: k for k, g in enumerate(GROUPS)}
        groups = np.array([position[ADVISOR_GROUP if e.kind == "advisor" else getattr(e, "org_type", None)
                                    or UNTYPED_GROUP] for e in ents], dtype=np.int64)
        city_list = sorted({e.city for e in ents if e.city})
        city_pos = {c: k for k, c in enumerate(city_list)}
        cities = np.array([city_pos[e.city] if e.city else -1 for e in ents], dtype=np.int64)
        cached = (ents, groups, cities, city_list)
        _COLUMNS[matcher] = cached
    return cached[1], cached[2], cached[3]


def check_invitation_request(matcher: Matcher, event_id: str, size: int, *, quotas: Sequence[Quota | str] = (),
                             max_per_city: int | None = None, mmr_lambda: float = DEFAULT_MMR_LAMBDA,
                             waitlist: int = 0, include_kinds: Sequence[str] = ("organisation",)
                             ) -> tuple[Event, list[Quota]]:
    """The cheap checks of :func:`invitation_list`, without scoring: the event and the parsed quotas.

    A batch job runs them when it is submitted, so bad input is answered at once.

    Raises:
        UnknownEntityError: no such event. ValidationError: not an event, an unreadable
            quota, an unknown actor type, or an argument out of range.
    """
    parsed = [q if isinstance(q, Quota) else Quota.parse(q) for q in quotas]
    _check_arguments(size, waitlist, mmr_lambda, max_per_city, include_kinds, parsed)
    event = matcher.entity(event_id)
    if not isinstance(event, Event):
        raise ValidationError(f"{quoted(event_id)} ist keine Veranstaltung "
                              f"(Art: {KIND_LABELS.get(event.kind, event.kind)})",
                              [{"field": "event", "value": event_id}])
    return event, parsed


def invitation_list(matcher: Matcher, event_id: str, size: int, *, quotas: Sequence[Quota | str] = (),
                    max_per_city: int | None = None, mmr_lambda: float = DEFAULT_MMR_LAMBDA,
                    exposure: ExposurePolicy = ExposurePolicy(), history: Iterable[Any] = (), waitlist: int = 0,
                    include_kinds: Sequence[str] = ("organisation",), as_of: dt.date | None = None,
                    lang: str = "de", progress: Progress | None = None) -> InvitationList:
    """Choose ``size`` invitees for event ``event_id`` under quotas, diversity and exposure control.

    Args:
        matcher: a fitted :class:`~matcher.engine.matcher.Matcher`.
        event_id: the event's catalog id.
        size: places on the list.
        quotas: :class:`Quota` objects or their text form (``"migrant_organisation:0.4"``).
        max_per_city: most invitees from one city (``None``: no limit).
        mmr_lambda: λ of maximal marginal relevance; 1 = by relevance only.
        exposure: the penalty for recent invitations (applies only with a ``history``).
        history: past invitations, :class:`InvitationRecord` or ``(entity_id, event_id, date)`` tuples.
        waitlist: how many to put on the waitlist.
        include_kinds: ``"organisation"`` (all actor types, municipal offices included) and/or ``"advisor"``.
        as_of: reference date for the engine and the exposure window (default: today).
        lang: language of the reasons (``"de"`` or ``"en"``; the selection reasons are German).
        progress: called with (fraction done, German stage label).

    Returns:
        :class:`InvitationList`; ``constraints`` report every quota and limit, and
        ``feasible`` is False when one had to be dropped.

    Raises:
        UnknownEntityError: no such event. ValidationError: not an event, or bad arguments.

    Example:
        >>> result = invitation_list(m, "evt-113", 12, quotas=["migrant_organisation:0.4"], max_per_city=2)
        >>> [c.held for c in result.constraints]
        [True, True]
    """
    report = progress or (lambda fraction, stage: None)
    event, quotas = check_invitation_request(matcher, event_id, size, quotas=quotas, max_per_city=max_per_city,
                                             mmr_lambda=mmr_lambda, waitlist=waitlist, include_kinds=include_kinds)
    report(0.0, "Kandidaten bewerten")
    cand, scores, parts, part_of = _score_candidates(matcher, event, include_kinds, as_of)
    if cand.size == 0:
        raise ValidationError("Keine Kandidaten für diese Veranstaltung im Katalog",
                              [{"field": "event", "value": event_id}])

    ref_date = as_of or dt.date.today()
    counts = recent_invitations(history, event.id, ref_date, exposure.window_days)
    recent_all = np.zeros(len(matcher.entities_), dtype=np.int64)
    for entity_id, k in counts.items():
        if entity_id in matcher.index_:
            recent_all[matcher.index_[entity_id]] = k
    recent = recent_all[cand]
    penalty = exposure.penalty * recent
    relevance = scores - penalty

    group_codes, city_codes, city_list = _catalog_columns(matcher)
    group_list = list(GROUPS)
    groups = group_codes[cand]
    group_names = [GROUPS[g] for g in groups]
    cities = city_codes[cand]

    report(0.3, "Auswahl")
    size_eff = min(size, int(cand.size))
    active, reports = _fit_constraints(quotas, max_per_city, size, size_eff, groups, cities, group_list, len(city_list))
    vectors = {"vectors": matcher.profile_vecs_, "vector_rows": cand, "mmr_lambda": mmr_lambda}
    lower, upper = _bounds(active["quotas"], group_list, size_eff)
    chosen = select(relevance, size_eff, groups=groups, cities=cities, lower=lower, upper=upper,
                    city_cap=active["max_per_city"], progress=lambda f: report(0.3 + 0.5 * f, "Auswahl"), **vectors)
    # the waitlist keeps the list's proportions on its own (so a decline can be replaced within the
    # quotas): share quotas at its length, count quotas as their share of the list, the same city limit
    on_list = np.zeros(cand.size, dtype=bool)
    on_list[[p.index for p in chosen]] = True
    more: list[Pick] = []
    waitlist_reports: list[ConstraintReport] = []
    rest = int((~on_list).sum())
    if waitlist and rest:
        length = min(waitlist, rest)
        scaled = [q if q.unit == "share" else Quota(q.group, q.bound, min(q.value / size_eff, 1.0), "share")
                  for q in active["quotas"]]
        kept, waitlist_reports = _fit_constraints(scaled, active["max_per_city"], length, length, groups[~on_list],
                                                  cities[~on_list], group_list, len(city_list))
        w_lower, w_upper = _bounds(kept["quotas"], group_list, length)
        more = select(relevance, length, groups=groups, cities=cities, lower=w_lower, upper=w_upper,
                      city_cap=kept["max_per_city"], exclude=on_list, chosen_before=np.flatnonzero(on_list),
                      progress=lambda f: report(0.8 + 0.1 * f, "Warteliste"), **vectors)

    report(0.9, "Begründen")
    order = np.lexsort((np.arange(cand.size), -scores))
    relevance_rank = np.empty(cand.size, dtype=np.int64)
    relevance_rank[order] = np.arange(1, cand.size + 1)
    context = _WhyContext(group_list, groups, city_list, cities, active["max_per_city"], active["quotas"], size_eff,
                          scores, relevance, recent, exposure, mmr_lambda)
    taken = np.zeros(cand.size, dtype=bool)
    people = []
    for rank, pick in enumerate([*chosen, *more], start=1):
        listed = rank <= len(chosen)
        i = int(cand[pick.index])
        contrib, ctx = parts[int(part_of[pick.index])]
        people.append(Invitee(
            rank=rank if listed else rank - len(chosen), entity=matcher.entities_[i], score=float(scores[pick.index]),
            explanation=explain(matcher, i, contrib, ctx, lang=lang),
            why=context.why(pick, taken) if listed else _waitlist_why(rank - len(chosen), pick, context),
            group=group_names[pick.index], relevance_rank=int(relevance_rank[pick.index]),
            recent_invitations=int(recent[pick.index]), exposure_penalty=float(penalty[pick.index]),
            redundancy=pick.redundancy))
        taken[pick.index] = True
    invitees, waiting = people[: len(chosen)], people[len(chosen):]
    _final_counts(reports, invitees, max_per_city)
    _final_counts(waitlist_reports, waiting, max_per_city)
    report(1.0, "Fertig")
    settings = {"quotas": [q.label() for q in quotas], "max_per_city": max_per_city, "mmr_lambda": mmr_lambda,
                "exposure": asdict(exposure), "history_entries": sum(counts.values()), "waitlist": waitlist,
                "include_kinds": list(include_kinds), "as_of": str(ref_date)}
    return InvitationList(event, size, invitees, waiting, reports, int(cand.size), settings, matcher.model_id,
                          waitlist_reports)


# ---------------------------------------------------------------- constraints
def _bounds(quotas: list[Quota], group_list: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the least and most places the quotas allow on a list of ``size``."""
    lower = np.zeros(len(group_list), dtype=np.int64)
    upper = np.full(len(group_list), UNLIMITED, dtype=np.int64)
    for q in quotas:
        g = group_list.index(q.group)
        if q.bound == "min":
            lower[g] = max(lower[g], q.places(size))
        else:
            upper[g] = min(upper[g], q.places(size))
    return lower, upper


def _fit_constraints(quotas: list[Quota], max_per_city: int | None, size: int, size_eff: int, groups: np.ndarray,
                     cities: np.ndarray, group_list: list[str], n_cities: int) -> tuple[dict, list[ConstraintReport]]:
    """Drop the constraints that admit no list, report each one.

    Order: a minimum quota that cannot be met even alone (too few candidates of
    its type, given the city limit) is dropped; then, if the maxima and the city
    limit leave too few places, the city limit and then maximum quotas; then, if
    minima still clash (their sum exceeds the list, or with the city limit),
    the largest minimum first.
    """
    n_groups = len(group_list)
    avail = np.zeros((n_groups, n_cities + 1), dtype=np.int64)
    np.add.at(avail, (groups, np.where(cities < 0, n_cities, cities)), 1)
    available = avail.sum(axis=1)
    reports: list[ConstraintReport] = []
    if size_eff < size:
        reports.append(ConstraintReport(
            "size", f"{size} Plätze", held=False, relaxed=True, required=size, achieved=size_eff,
            shortfall=size - size_eff,
            message=f"Nur {size_eff} Kandidaten im Katalog: die Liste hat {size_eff} statt {size} Plätze."))

    def room(cap: int | None) -> np.ndarray:
        r = np.full(n_cities + 1, size_eff, dtype=np.int64)
        if cap is not None:
            r[:-1] = min(cap, size_eff)
        return r

    def ok(qs: list[Quota], cap: int | None) -> bool:
        lower, upper = _bounds(qs, group_list, size_eff)
        return completion_feasible(avail, lower, upper, room(cap), size_eff)

    keep = list(quotas)
    cap = max_per_city
    dropped: dict[int, tuple[int, str]] = {}  # quota position -> (shortfall, message)
    city_note = f", höchstens {cap} pro Stadt" if cap is not None else ""
    for pos, q in enumerate(quotas):  # minima that cannot be met even alone
        if q.bound != "min":
            continue
        g = group_list.index(q.group)
        only = np.zeros(n_groups, dtype=np.int64)
        only[g] = size_eff
        reachable = max_flow(avail, only, room(cap))
        need = q.places(size_eff)
        if need > reachable:
            dropped[pos] = (need - reachable, f"Quote „{q.label()}“ nicht erfüllbar: gefordert {need} von {size_eff} "
                            f"Plätzen, möglich sind nur {reachable} ({int(available[g])} Kandidaten{city_note}); "
                            f"es fehlen {need - reachable}. Die Liste wurde ohne diese Quote gebildet.")
    keep = [q for pos, q in enumerate(quotas) if pos not in dropped]
    city_report = None
    maxima = [q for q in keep if q.bound == "max"]
    if not ok(maxima, cap):
        if cap is not None and not ok([], cap):
            places = max_flow(avail, np.full(n_groups, size_eff), room(cap))
            city_report = (size_eff - places, f"Höchstens {cap} pro Stadt lässt nur {places} von {size_eff} Plätzen zu "
                           f"({int((avail[:, :-1].sum(axis=0) > 0).sum())} Städte); es fehlen {size_eff - places}. "
                           "Die Liste wurde ohne diese Grenze gebildet.")
            cap = None
        for q in maxima:
            if ok([m for m in keep if m.bound == "max"], cap):
                break
            pos = quotas.index(q)
            dropped[pos] = (0, f"Quote „{q.label()}“ lässt zusammen mit den übrigen Vorgaben keine Liste mit "
                               f"{size_eff} Plätzen zu. Die Liste wurde ohne diese Quote gebildet.")
            keep.remove(q)
    for q in sorted([q for q in keep if q.bound == "min"], key=lambda q: -q.places(size_eff)):
        if ok(keep, cap):
            break
        dropped[quotas.index(q)] = (0, f"Quote „{q.label()}“ ist zusammen mit den übrigen Vorgaben nicht erfüllbar "
                                       "(die Mindestanteile übersteigen zusammen die Liste oder kollidieren mit der "
                                       "Höchstzahl pro Stadt). Die Liste wurde ohne diese Quote gebildet.")
        keep.remove(q)
    if not ok(keep, cap) and cap is not None:  # only the city limit is left to blame
        places = max_flow(avail, np.full(n_groups, size_eff), room(cap))
        city_report = (max(size_eff - places, 0), f"Höchstens {cap} pro Stadt ist mit den Quoten nicht vereinbar. "
                                                  "Die Liste wurde ohne diese Grenze gebildet.")
        cap = None

    for pos, q in enumerate(quotas):
        g = group_list.index(q.group)
        shortfall, message = dropped.get(pos, (0, ""))
        reports.append(ConstraintReport("quota", q.label(), held=False, relaxed=pos in dropped,
                                        required=q.places(size_eff), achieved=0, shortfall=shortfall,
                                        group=q.group, bound=q.bound, available=int(available[g]), message=message))
    if max_per_city is not None:
        shortfall, message = city_report or (0, "")
        reports.append(ConstraintReport("max_per_city", f"höchstens {max_per_city} pro Stadt", held=False,
                                        relaxed=city_report is not None, required=max_per_city, achieved=0,
                                        shortfall=shortfall, message=message))
    return {"quotas": keep, "max_per_city": cap}, reports


def _final_counts(reports: list[ConstraintReport], invitees: list[Invitee], max_per_city: int | None) -> None:
    """Fill in what the finished list achieved, and whether each constraint holds on it."""
    by_group = Counter(i.group for i in invitees)
    by_city = Counter(i.entity.city for i in invitees if i.entity.city)
    n = len(invitees)
    for r in reports:
        if r.constraint == "quota":
            r.achieved = by_group.get(r.group, 0)
            r.held = r.achieved >= r.required if r.bound == "min" else r.achieved <= r.required
            if not r.message:
                share = f" ({_num(100 * r.achieved / n, 0)} %)" if n else ""
                r.message = (f"erfüllt: {r.achieved} von {n}{share}" if r.held
                             else f"nicht erfüllt: {r.achieved} von {n}")
        elif r.constraint == "max_per_city":
            r.achieved = max(by_city.values(), default=0)
            r.held = r.achieved <= (max_per_city or 0)
            if not r.message:
                top = ", ".join(f"{c} {k}" for c, k in by_city.most_common(3))
                r.message = f"erfüllt: höchstens {r.achieved} aus einer Stadt ({top})"


# ---------------------------------------------------------------- reasons
@dataclass
class _WhyContext:
    group_list: list[str]
    groups: np.ndarray
    city_list: list[str]
    cities: np.ndarray
    city_cap: int | None
    quotas: list[Quota]
    size: int
    scores: np.ndarray
    relevance: np.ndarray
    recent: np.ndarray
    exposure: ExposurePolicy
    mmr_lambda: float
    reported: set[int] = field(default_factory=set)  # displaced candidates already named once

    def why(self, pick: Pick, taken: np.ndarray) -> list[str]:
        """Why the selection put ``pick`` here, in one to three German sentences."""
        i = pick.index
        out: list[str] = []
        open_scores = np.where(taken, -np.inf, self.scores)
        if int(np.argmax(open_scores)) == i:
            out.append("Höchste Relevanz unter den noch offenen Kandidaten")
        if pick.passed_over is not None and pick.blocked_by is not None and pick.passed_over not in self.reported:
            self.reported.add(pick.passed_over)
            out.append(self._forced(pick))
        if self.mmr_lambda < 1.0 and pick.best_relevance is not None and pick.best_relevance != i \
                and pick.passed_over is None:
            out.append(f"Mehr Vielfalt: unterscheidet sich von den bisher Gewählten "
                       f"(größte Ähnlichkeit {_num(pick.redundancy)})")
        if self.exposure.penalty > 0 and self.recent.any():
            overtaken = (~taken) & (self.scores > self.scores[i]) & (self.relevance < self.relevance[i]) \
                & (self.recent > self.recent[i])
            if overtaken.any():
                out.append(f"Vorrang vor {int(overtaken.sum())} häufiger eingeladenen Kandidaten "
                           f"(Ausgleich der Einladungshäufigkeit, {self.exposure.window_days} Tage)")
            elif self.recent[i]:
                out.append(f"In den letzten {self.exposure.window_days} Tagen {int(self.recent[i])}-mal eingeladen "
                           f"(Abschlag {_num(self.exposure.penalty * self.recent[i])})")
        if not out:
            out.append("Nächstbester Kandidat nach Relevanz" if self.mmr_lambda >= 1.0
                       else "Nächstbester Kandidat nach Relevanz und Vielfalt")
        return out[:3]

    def _forced(self, pick: Pick) -> str:
        j = pick.passed_over
        if pick.blocked_by == "city_max":
            return f"Nachgerückt: aus {self.city_list[self.cities[j]]} ist die Höchstzahl ({self.city_cap}) erreicht"
        if pick.blocked_by == "group_max":
            group = self.group_list[int(self.groups[j])]
            q = next((q for q in self.quotas if q.group == group and q.bound == "max"), None)
            return f"Nachgerückt: Höchstquote „{q.label() if q else GROUP_LABELS.get(group, group)}“ ist ausgeschöpft"
        open_groups = [self.group_list[g] for g in pick.open_lower]
        q = next((q for q in self.quotas if q.bound == "min" and q.group in open_groups), None)
        if q is not None:
            return f"Für die Quote „{q.label()}“ aufgenommen"
        return "Aufgenommen, damit alle Vorgaben erfüllbar bleiben"


def _waitlist_why(number: int, pick: Pick, context: _WhyContext) -> list[str]:
    out = [f"Nachrücker Nr. {number}"]
    if pick.passed_over is not None and pick.blocked_by == "reserve":
        q = next((q for q in context.quotas if q.bound == "min" and q.group in
                  [context.group_list[g] for g in pick.open_lower]), None)
        if q is not None:
            out.append(f"Hält die Quote „{q.label()}“ auch auf der Warteliste")
    return out


def replacement_for(result: InvitationList, declined_id: str) -> Invitee | None:
    """The first waitlist entry who can take the place of ``declined_id`` keeping every
    quota and the city limit that held on the list (None if nobody can)."""
    invitees = [i for i in result.invitees if i.entity_id != declined_id]
    if len(invitees) == len(result.invitees):
        raise ValidationError(f"{quoted(declined_id)} steht nicht auf der Einladungsliste",
                              [{"field": "id", "value": declined_id}])
    held = [c for c in result.constraints if c.held and not c.relaxed]
    for candidate in result.waitlist:
        trial = [*invitees, candidate]
        by_group = Counter(i.group for i in trial)
        by_city = Counter(i.entity.city for i in trial if i.entity.city)
        fine = True
        for c in held:
            if c.constraint == "quota":
                got = by_group.get(c.group, 0)
                fine &= got >= c.required if c.bound == "min" else got <= c.required
            elif c.constraint == "max_per_city":
                fine &= max(by_city.values(), default=0) <= c.required
        if fine:
            return candidate
    return None
