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

This module builds the list; the parts live beside it:
:mod:`~matcher.batch.invitation_types` (quotas, exposure policy, the result types),
:mod:`~matcher.batch.invitation_history` (reading past invitations),
:mod:`~matcher.batch.invitation_constraints` (bounds and their relaxation),
:mod:`~matcher.batch.invitation_reasons` (why each invitee was chosen) and
:mod:`~matcher.batch.selection` (the selection algorithm itself).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.batch.invitation_constraints import final_counts, fit_constraints, place_bounds
from matcher.batch.invitation_history import read_history, recent_invitations
from matcher.batch.invitation_reasons import WhyContext, waitlist_why
from matcher.batch.invitation_types import (
    ADVISOR_GROUP,
    DEFAULT_EXPOSURE,
    DEFAULT_MMR_LAMBDA,
    GROUPS,
    INVITABLE_KINDS,
    UNTYPED_GROUP,
    ConstraintReport,
    ExposurePolicy,
    InvitationList,
    InvitationRecord,
    Invitee,
    Quota,
)
from matcher.batch.selection import Pick, select
from matcher.domain.labels import KIND_LABELS
from matcher.domain.messages import alternatives, quoted
from matcher.domain.schema import ORG_TYPES, Event, Query
from matcher.engine.confidence import assess, evidence
from matcher.engine.explain import explain, topic_similarities
from matcher.engine.fields import FieldClassifier
from matcher.engine.index import CatalogIndex, actor_type
from matcher.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher, QueryScores

# the entry point of invitation lists; it also offers the value types and the history reader
# its callers pass in, so that one import serves a caller
__all__ = [
    "DEFAULT_MMR_LAMBDA",
    "DEFAULT_EXPOSURE",
    "INVITABLE_KINDS",
    "ConstraintReport",
    "ExposurePolicy",
    "InvitationList",
    "check_invitation_request",
    "InvitationRecord",
    "Invitee",
    "Quota",
    "invitation_list",
    "out_of_field",
    "read_history",
    "recent_invitations",
    "replacement_for",
]

Progress = Callable[[float, str], None]


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


def _score_candidates(matcher: Matcher, event: Event, include_kinds: Sequence[str], as_of: dt.date | None,
                      reach_km: float | None = None
                      ) -> tuple[np.ndarray, np.ndarray, list[QueryScores], np.ndarray]:
    """(candidate catalog rows ascending, their scores, the scores of each query asked, query per candidate)."""
    parts = []
    actors = [k for k in ("organisation", "municipality") if k in include_kinds]
    if actors:
        # organisations alone: municipalities join where the event asks for municipal actors (the engine's
        # rule); "municipality" named: always
        kinds = actors if "municipality" in actors else []
        parts.append(matcher.score(Query(task="invitations", from_=event.id, kinds=kinds, reach_km=reach_km),
                                   as_of=as_of))
    if "advisor" in include_kinds:
        announcement = f"{event.name}. {event.description}".strip()
        q = Query.model_validate({"task": "advisors", "text": announcement, "city": event.city,
                                  "lat": event.lat, "lon": event.lon})
        parts.append(matcher.score(q, as_of=as_of))
    total = np.full(len(matcher.entities_), -np.inf)
    which = np.full(len(matcher.entities_), -1, dtype=np.int64)
    for k, part in enumerate(parts):
        rows = part.block.rows
        total[rows] = np.where(part.mask, part.total, total[rows])
        which[part.candidates] = k
    cand = np.flatnonzero(which >= 0)
    return cand, total[cand], parts, which[cand]


def _catalog_columns(matcher: Matcher) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per catalog entity its group (index into ``GROUPS``) and city (index into the sorted city
    list, -1 for none); computed once per fitted catalog (kept on its index), not per list."""

    def build(index: CatalogIndex) -> tuple[np.ndarray, np.ndarray, list[str]]:
        ents = index.entities
        position = {g: k for k, g in enumerate(GROUPS)}
        groups = np.array([position[ADVISOR_GROUP if e.kind == "advisor" else index.org_type[i] or UNTYPED_GROUP]
                           for i, e in enumerate(ents)], dtype=np.int64)
        city_list = sorted({e.city for e in ents if e.city})
        city_pos = {c: k for k, c in enumerate(city_list)}
        cities = np.array([city_pos[e.city] if e.city else -1 for e in ents], dtype=np.int64)
        return groups, cities, city_list

    return matcher.index_.derived("invitation_columns", build)


def out_of_field(matcher: Matcher) -> np.ndarray:
    """Per catalog entity: an actor that works in none of the fields of action (a sports club with no
    development-policy work, an IT firm), by the landscape's classifier; computed once per fitted catalog.
    All False when no threshold is calibrated for the matcher's model (nothing to judge by)."""

    def build(index: CatalogIndex) -> np.ndarray:
        try:
            classifier = FieldClassifier().fit(matcher)
        except ValidationError:
            return np.zeros(len(index.entities), dtype=bool)
        return np.array([actor_type(e) is not None and not classifier.assignments(e.id) for e in index.entities],
                        dtype=bool)

    return matcher.index_.derived("out_of_field", build)


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
                    exposure: ExposurePolicy = DEFAULT_EXPOSURE, history: Iterable[Any] = (), waitlist: int = 0,
                    include_kinds: Sequence[str] = ("organisation",), as_of: dt.date | None = None,
                    lang: str = "de", progress: Progress | None = None,
                    reach_km: float | None = None) -> InvitationList:
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
        include_kinds: ``"organisation"`` (all actor types, municipal offices included; municipalities too
            where the event asks for municipal actors), ``"municipality"`` (always) and/or ``"advisor"``.
        as_of: reference date for the engine and the exposure window (default: today).
        lang: language of the reasons (``"de"`` or ``"en"``; the selection reasons are German).
        progress: called with (fraction done, German stage label).
        reach_km: invite only candidates this close to the venue (default: the event's ``reach_km``;
            neither: no limit). Candidates without a known place stay in.

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
    if reach_km is not None and not 0 < reach_km <= 1000:
        raise ValidationError("Die Reichweite (reach_km) liegt zwischen 0 und 1000 km",
                              [{"field": "reach_km", "value": reach_km}])
    cand, scores, parts, part_of = _score_candidates(matcher, event, include_kinds, as_of, reach_km)
    if cand.size == 0:
        raise ValidationError("Keine Kandidaten für diese Veranstaltung im Katalog",
                              [{"field": "event", "value": event_id}])

    ref_date = as_of or dt.date.today()
    counts = recent_invitations(history, event.id, ref_date, exposure.window_days)
    recent_all = np.zeros(len(matcher.entities_), dtype=np.int64)
    for entity_id, k in counts.items():
        if entity_id in matcher.index_.row:
            recent_all[matcher.index_.row[entity_id]] = k
    recent = recent_all[cand]
    penalty = exposure.penalty * recent
    relevance = scores - penalty
    # actors of no field of action come after every actor of the field: a quota that asks for their type
    # can still take them when no one else of that type is left
    outside = out_of_field(matcher)[cand]
    if outside.any():
        relevance = np.where(outside, relevance - (np.ptp(relevance) + 1.0), relevance)

    group_codes, city_codes, city_list = _catalog_columns(matcher)
    group_list = list(GROUPS)
    groups = group_codes[cand]
    group_names = [GROUPS[g] for g in groups]
    cities = city_codes[cand]

    report(0.3, "Auswahl")
    size_eff = min(size, int(cand.size))
    active, reports = fit_constraints(quotas, max_per_city, size, size_eff, groups, cities, group_list, len(city_list))
    vectors = {"vectors": matcher.index_.profile_vecs, "vector_rows": cand, "mmr_lambda": mmr_lambda}
    lower, upper = place_bounds(active["quotas"], group_list, size_eff)
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
        kept, waitlist_reports = fit_constraints(scaled, active["max_per_city"], length, length, groups[~on_list],
                                                  cities[~on_list], group_list, len(city_list))
        w_lower, w_upper = place_bounds(kept["quotas"], group_list, length)
        more = select(relevance, length, groups=groups, cities=cities, lower=w_lower, upper=w_upper,
                      city_cap=kept["max_per_city"], exclude=on_list, chosen_before=np.flatnonzero(on_list),
                      progress=lambda f: report(0.8 + 0.1 * f, "Warteliste"), **vectors)

    report(0.9, "Begründen")
    order = np.lexsort((np.arange(cand.size), -scores))
    relevance_rank = np.empty(cand.size, dtype=np.int64)
    relevance_rank[order] = np.arange(1, cand.size + 1)
    context = WhyContext(group_list, groups, city_list, cities, active["max_per_city"], active["quotas"], size_eff,
                          scores, relevance, recent, exposure, mmr_lambda)
    taken = np.zeros(cand.size, dtype=bool)
    topic_sims = [topic_similarities(matcher.index_, part.context) for part in parts]  # once per query asked
    picks = [*chosen, *more]
    rows = [parts[int(part_of[pick.index])].at(int(cand[pick.index])) for pick in picks]
    # the confidence of each place, from its fused score and its rank by score among all candidates
    confidence, _ = assess(matcher.confidence_, [float(scores[pick.index]) for pick in picks],
                           [int(relevance_rank[pick.index]) for pick in picks], float(scores.max()),
                           [evidence(matcher.index_, parts[int(part_of[pick.index])].context, int(cand[pick.index]),
                                     row.contributions) for pick, row in zip(picks, rows)], lang=lang)
    people = []
    for rank, (pick, row, c) in enumerate(zip(picks, rows, confidence), start=1):
        listed = rank <= len(chosen)
        i = int(cand[pick.index])
        k = int(part_of[pick.index])
        part = parts[k]
        people.append(Invitee(
            rank=rank if listed else rank - len(chosen), entity=matcher.entities_[i], score=float(scores[pick.index]),
            explanation=explain(matcher.index_, i, row, part.context, lang=lang, topic_sims=topic_sims[k],
                                content_fit=c.content_fit),
            confidence=c.confidence, strength=c.strength, strength_label=c.label,
            why=context.why(pick, taken) if listed else waitlist_why(rank - len(chosen), pick, context),
            group=group_names[pick.index], relevance_rank=int(relevance_rank[pick.index]),
            recent_invitations=int(recent[pick.index]), exposure_penalty=float(penalty[pick.index]),
            redundancy=pick.redundancy))
        taken[pick.index] = True
    invitees, waiting = people[: len(chosen)], people[len(chosen):]
    final_counts(reports, invitees, max_per_city)
    final_counts(waitlist_reports, waiting, max_per_city)
    report(1.0, "Fertig")
    settings = {"quotas": [q.label() for q in quotas], "max_per_city": max_per_city, "mmr_lambda": mmr_lambda,
                "exposure": asdict(exposure), "history_entries": sum(counts.values()), "waitlist": waitlist,
                "include_kinds": list(include_kinds), "as_of": str(ref_date),
                "reach_km": reach_km if reach_km is not None else event.reach_km,
                "out_of_field": int(outside.sum())}
    return InvitationList(event, size, invitees, waiting, reports, int(cand.size), settings, matcher.model_id,
                          waitlist_reports)


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
