"""The hard rules of a funding programme, checked one by one against a project idea, each reported in German.

A rule is ``ok`` (✓ met), ``fail`` (✗ excludes the programme), ``check`` (? the request does not say: the
applicant must check it) or ``info`` (a fact to know, such as the next deadline). Only ``fail`` excludes:
a fact the request leaves open never does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from matcher.domain.formatting import decimal, german_date, thousands
from matcher.domain.labels import APPLICANT_TYPE_PLURALS_DE, PARTNER_KIND_LABELS_DE
from matcher.domain.messages import listed
from matcher.domain.schema import APPLICANT_TYPES, Programme, ProjectFacts
from matcher.programmes.deadlines import NextRound, in_weeks, next_round
from matcher.text.countries import country_name_de

__all__ = ["ASSOCIATION_TYPES", "SYMBOLS", "Rule", "check_programme", "eligible", "excluding"]

Status = Literal["ok", "fail", "check", "info"]
SYMBOLS = {"ok": "✓", "fail": "✗", "check": "?", "info": "•"}
# applicant types that are associations (the conditions on registration and age apply to them)
ASSOCIATION_TYPES = ("migrant_organisation", "eine_welt_group", "association")


@dataclass(frozen=True)
class Rule:
    """One rule of a programme, checked: ``code`` names it (``applicant_type``, ``own_share``, …)."""

    code: str
    status: Status
    message: str

    @property
    def line(self) -> str:
        """The rule as a checklist line: „✓ Migrantenorganisationen sind antragsberechtigt“."""
        return f"{SYMBOLS[self.status]} {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.code, "status": self.status, "message": self.message, "line": self.line}


def _euro(amount: int) -> str:
    return f"{thousands(amount)} €"


def _percent(value: float) -> str:
    return f"{decimal(value, None)} %"


def _years(n: int) -> str:
    return f"{n} Jahr" if n == 1 else f"{n} Jahren"


def _types(types: list[str]) -> str:
    names = [APPLICANT_TYPE_PLURALS_DE[t] for t in APPLICANT_TYPES if t in types]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} und {names[-1]}"


def _applicant(p: Programme, f: ProjectFacts) -> list[Rule]:
    allowed = p.eligibility.applicant_types
    if f.applicant_type is None:
        return [Rule("applicant_type", "check", f"Antragsberechtigt sind {_types(allowed)}")]
    who = APPLICANT_TYPE_PLURALS_DE[f.applicant_type]
    if f.applicant_type in allowed:
        return [Rule("applicant_type", "ok", f"{who} sind antragsberechtigt")]
    return [Rule("applicant_type", "fail", f"{who} sind nicht antragsberechtigt (nur {_types(allowed)})")]


def _association(p: Programme, f: ProjectFacts) -> list[Rule]:
    """Registration and age of an association (not asked of municipalities)."""
    e = p.eligibility
    if f.applicant_type is not None and f.applicant_type not in ASSOCIATION_TYPES:
        return []
    if not any(t in ASSOCIATION_TYPES for t in e.applicant_types):
        return []
    rules = []
    if e.registered_association:
        if f.registered is None:
            rules.append(Rule("registered", "check", "Nur eingetragene, gemeinnützige Vereine (e. V.): bitte prüfen"))
        elif f.registered:
            rules.append(Rule("registered", "ok", "Eingetragener, gemeinnütziger Verein"))
        else:
            rules.append(Rule("registered", "fail", "Nur eingetragene, gemeinnützige Vereine (e. V.) sind "
                                                    "antragsberechtigt"))
    if e.min_years:
        if f.years is None:
            rules.append(Rule("years", "check", f"Der Verein muss seit mindestens {_years(e.min_years)} bestehen"))
        elif f.years >= e.min_years:
            rules.append(Rule("years", "ok", f"Verein besteht seit {_years(f.years)} (verlangt: mindestens "
                                             f"{_years(e.min_years)})"))
        else:
            rules.append(Rule("years", "fail", f"Der Verein muss seit mindestens {_years(e.min_years)} bestehen, "
                                               f"Ihrer besteht seit {_years(f.years)}"))
    return rules


def _seat(p: Programme, in_nrw: bool | None, place_name: str | None) -> list[Rule]:
    if not p.eligibility.seat_in_nrw:
        return []
    if in_nrw is None:
        return [Rule("seat", "check", "Nur Antragstellende mit Sitz in NRW")]
    if in_nrw:
        return [Rule("seat", "ok", f"Sitz in NRW ({place_name})" if place_name else "Sitz in NRW")]
    return [Rule("seat", "fail", "Nur Antragstellende mit Sitz in NRW")]


def _countries(codes: list[str]) -> str:
    return listed([country_name_de(c) for c in codes], limit=4)


def _place(p: Programme, f: ProjectFacts) -> list[Rule]:
    where = p.place
    country = f.partner_country
    name = country_name_de(country) if country else None
    rules = []
    if f.abroad is False:
        if not where.germany:
            rules.append(Rule("place", "fail", "Gefördert werden nur Projekte im Ausland, nicht in Deutschland"))
        else:
            rules.append(Rule("place", "ok", "Projekte in NRW sind förderfähig" if where.nrw_only
                              else "Projekte in Deutschland sind förderfähig"))
        return rules
    if f.abroad and not where.abroad:
        return [Rule("place", "fail", "Gefördert wird nur Arbeit in Deutschland, keine Projekte im Ausland")]
    if f.abroad is None and not where.abroad:
        return [Rule("place", "check", "Gefördert wird nur Arbeit in Deutschland")]
    if f.abroad is None and not where.germany:
        rules.append(Rule("place", "check", "Gefördert werden nur Projekte im Ausland"))
    # the project (also) takes place abroad, or may
    if where.countries:
        if country is None:
            rules.append(Rule("country", "check",
                              f"Im Ausland nur in bestimmten Ländern: {_countries(where.countries)}"))
        elif country in where.countries:
            rules.append(Rule("country", "ok", f"Projekte in {name} sind förderfähig"))
        elif f.abroad or not where.germany:
            rules.append(Rule("country", "fail", f"{name} gehört nicht zu den Förderländern "
                                                 f"({_countries(where.countries)})"))
        else:
            rules.append(Rule("country", "check", f"Im Ausland nur in bestimmten Ländern, nicht in {name}"))
    elif f.abroad:
        rules.append(Rule("place", "ok", f"Projekte in {name} sind förderfähig" if name
                          else "Projekte im Ausland sind förderfähig"))
    return rules


def _amount(p: Programme, f: ProjectFacts) -> list[Rule]:
    lo, hi = p.min_amount, p.max_amount
    if lo is None and hi is None:
        return []
    span = (f"{_euro(lo)} bis {_euro(hi)}" if lo is not None and hi is not None
            else f"ab {_euro(lo)}" if lo is not None else f"bis {_euro(hi)}")  # type: ignore[arg-type]
    if f.amount is None:
        return [Rule("amount", "info", f"Fördersumme {span} je Projekt")]
    if lo is not None and f.amount < lo:
        return [Rule("amount", "fail", f"Mindestens {_euro(lo)} je Projekt, Sie planen {_euro(f.amount)}")]
    if hi is not None and f.amount > hi:
        return [Rule("amount", "fail", f"Höchstens {_euro(hi)} je Projekt, Sie planen {_euro(f.amount)}")]
    return [Rule("amount", "ok", f"{_euro(f.amount)} liegen im Rahmen ({span})")]


def _own_share(p: Programme, f: ProjectFacts) -> list[Rule]:
    need = p.own_share
    if need is None:
        return []
    if need == 0:
        return [Rule("own_share", "ok", "Kein Eigenanteil nötig")]
    if f.own_share is None:
        return [Rule("own_share", "check", f"Eigenanteil {_percent(need)} der Gesamtkosten")]
    if f.own_share + 1e-9 < need:
        return [Rule("own_share", "fail",
                     f"Eigenanteil {_percent(need)}, Ihr Budget sieht {_percent(f.own_share)} vor")]
    return [Rule("own_share", "ok", f"Eigenanteil {_percent(need)}: Ihr Budget sieht {_percent(f.own_share)} vor")]


def _duration(p: Programme, f: ProjectFacts) -> list[Rule]:
    lo, hi = p.min_months, p.max_months
    if f.months is None or (lo is None and hi is None):
        return []
    if lo is not None and f.months < lo:
        return [Rule("duration", "fail", f"Laufzeit mindestens {lo} Monate, Sie planen {f.months}")]
    if hi is not None and f.months > hi:
        return [Rule("duration", "fail", f"Laufzeit höchstens {hi} Monate, Sie planen {f.months}")]
    return [Rule("duration", "ok", f"Laufzeit von {f.months} Monaten ist förderfähig")]


def _deadline(p: Programme, f: ProjectFacts, today: dt.date, nxt: NextRound) -> list[Rule]:
    d = p.deadlines
    if d.rolling:
        lead = d.lead_weeks
        when = f" (spätestens {lead} Wochen vor Projektbeginn)" if lead else ""
        if lead and f.start is not None and (f.start - today).days < lead * 7:
            left = max((f.start - today).days, 0) // 7
            return [Rule("deadline", "fail", f"Anträge spätestens {lead} Wochen vor Projektbeginn; bis zu Ihrem "
                                             f"Beginn am {german_date(f.start)} sind es {left} Wochen")]
        return [Rule("deadline", "ok", f"Anträge laufend möglich{when}")]
    if nxt.date is None:
        last = f": die letzte Frist war am {german_date(nxt.last)}" if nxt.last else ""
        return [Rule("deadline", "fail", f"Keine offene Antragsrunde{last}")]
    rule = Rule("deadline", "info", f"Nächste Frist: {german_date(nxt.date)} — {in_weeks(nxt.date, today)}"
                + (" (nächste Runde)" if nxt.rolled else ""))
    if f.start is not None and nxt.date > f.start:
        return [rule, Rule("start", "fail", f"Die nächste Frist ({german_date(nxt.date)}) liegt nach Ihrem "
                                            f"Projektbeginn am {german_date(f.start)}; gefördert wird nur, was nach "
                                            "dem Antrag beginnt")]
    return [rule]


def _partners(p: Programme) -> list[Rule]:
    return [Rule("partner", "check", f"Erforderlich: {r.description or PARTNER_KIND_LABELS_DE[r.kind]}")
            for r in p.required_partners]


def check_programme(programme: Programme, facts: ProjectFacts | None, today: dt.date, in_nrw: bool | None = None,
                    place_name: str | None = None) -> list[Rule]:
    """Every rule of ``programme`` against ``facts`` on the day ``today``: who may apply, where, how much,
    own contribution, duration, deadline and the partners it requires, in that order.

    ``in_nrw``: whether the applicant sits in NRW (``None``: not known); ``place_name`` names the place.
    """
    f = facts or ProjectFacts()
    return [*_applicant(programme, f), *_association(programme, f), *_seat(programme, in_nrw, place_name),
            *_place(programme, f), *_amount(programme, f), *_own_share(programme, f), *_duration(programme, f),
            *_deadline(programme, f, today, next_round(programme.deadlines, today)), *_partners(programme)]


def excluding(rules: list[Rule]) -> list[Rule]:
    """The rules that exclude the programme."""
    return [r for r in rules if r.status == "fail"]


def eligible(rules: list[Rule]) -> bool:
    """No rule excludes the programme."""
    return not excluding(rules)
