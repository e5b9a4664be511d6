"""``matcher invite`` (invitation list for an event) and ``matcher assign`` (advisors to requests).

Progress bars go to stderr, the summary to stdout, the file to ``--out``
(format from the extension: ``.xlsx``, ``.csv``, ``.json``).

Exit status: 0 done; 2 bad input or another library error; 3 the instance is
infeasible (``assign`` without ``--allow-partial``: requests cannot all be
served; ``invite --strict``: a constraint had to be dropped). The message names
the blocking constraint and the requests it blocks.
"""

from __future__ import annotations

import datetime as dt
import sys

import click

from matcher.batch.assignment import DEFAULT_ALTERNATES
from matcher.batch.invitation_types import DEFAULT_MMR_LAMBDA, ExposurePolicy
from matcher.cli import german
from matcher.cli.common import (
    EXIT_INFEASIBLE,
    catalog_option,
    database_option,
    fail,
    fitted_matcher,
    model_option,
    open_store,
    progress_bar,
)
from matcher.domain.formatting import decimal
from matcher.domain.labels import INVITEE_TYPE_LABELS, UNTYPED_GROUP
from matcher.errors import InfeasibleError, MatcherError

__all__ = ["invite", "assign"]

_out_option = german.option("--out", type=german.WritableFile(), metavar="DATEI",
                            help="Datei: .xlsx, .csv oder .json.")
_contact_option = german.option("--include-contact", is_flag=True,
                                help="Kontaktdaten mit exportieren (nur für berechtigte Mitarbeitende).")
_delimiter_option = german.option("--delimiter", type=german.Choice([",", ";"]), default=",", show_default=True,
                                  help="CSV-Trennzeichen; „;“ für deutsches Excel (dann Dezimalkomma).")
_as_of_option = german.option("--as-of", type=german.Date(), default=None, help="Stichtag (Standard: heute).")


@german.command()
@german.option("--event", "event_id", required=True, metavar="ID", help="Id der Veranstaltung, z. B. evt-113.")
@german.option("--size", required=True, type=german.IntRange(1, 100_000), help="Plätze auf der Liste.")
@german.option("--quota", "quotas", multiple=True, metavar="TYP:WERT",
               help="Quote je Typ, wiederholbar: migrant_organisation:0.4 (mind. 40 %), institution:<=2 "
                    "(höchstens 2). Typen: migrant_organisation, civil_society, municipal_office, institution, "
                    "advisor.")
@german.option("--max-per-city", type=german.IntRange(1), default=None, help="Höchstens so viele aus einer Stadt.")
@german.option("--waitlist", type=german.IntRange(0, 100_000), default=0, show_default=True,
               help="Länge der Warteliste.")
@german.option("--lambda", "mmr_lambda", type=german.FloatRange(0.0, 1.0), default=DEFAULT_MMR_LAMBDA,
               show_default=True, help="MMR-Gewicht: 1 = nur Relevanz, kleiner = mehr Vielfalt.")
@german.option("--history", "history_file", type=german.ExistingFile(), metavar="DATEI",
               help="Einladungshistorie aus dieser Datei (CSV oder JSONL: entity_id, event_id, date) statt der "
                    "in der Datenbank gespeicherten Einladungen.")
@german.option("--exposure-penalty", type=german.FloatRange(0.0), default=ExposurePolicy.penalty, show_default=True,
               help="Abschlag je Einladung zu einer anderen Veranstaltung im Zeitfenster.")
@german.option("--exposure-days", type=german.IntRange(1), default=ExposurePolicy.window_days, show_default=True,
               help="Zeitfenster der Einladungshistorie in Tagen.")
@german.option("--include-advisors", is_flag=True, help="Auch Beraterinnen und Berater einladen.")
@german.option("--include-municipalities", is_flag=True,
               help="Auch Kommunen einladen (sonst nur, wo die Veranstaltung kommunale Akteure sucht).")
@german.option("--reach-km", type=german.FloatRange(0.0, 1000.0, min_open=True), default=None, metavar="KM",
               help="Nur Eingeladene so nah am Veranstaltungsort (Standard: reach_km der Veranstaltung).")
@_as_of_option
@_out_option
@_contact_option
@_delimiter_option
@german.option("--strict", is_flag=True, help=f"Exit {EXIT_INFEASIBLE}, wenn eine Vorgabe aufgehoben werden musste.")
@catalog_option
@database_option
@model_option
def invite(event_id: str, size: int, quotas: tuple[str, ...], max_per_city: int | None, waitlist: int,
           mmr_lambda: float, history_file: str | None, exposure_penalty: float, exposure_days: int,
           include_advisors: bool, include_municipalities: bool, reach_km: float | None,
           as_of: dt.date | None, out: str | None, include_contact: bool, delimiter: str,
           strict: bool, catalog_file: str | None, url: str | None, model: str | None) -> None:
    """Einladungsliste für eine Veranstaltung: Quoten, Vielfalt, Ausgleich, Warteliste."""
    from matcher.batch.export import export
    from matcher.batch.invitation_history import read_history
    from matcher.batch.invitations import invitation_list

    exposure = ExposurePolicy(exposure_penalty, exposure_days)
    try:
        m = fitted_matcher(catalog_file, url, model, serving_ranker=True)
        if history_file:
            history = read_history(history_file)
        elif catalog_file is None:  # the store's recorded invitations, as the server's jobs read them
            since = (as_of or dt.date.today()) - dt.timedelta(days=exposure.window_days)
            history = open_store(url).invitations.history(since=since)
        else:
            history = []
        with progress_bar("Einladungsliste") as progress:
            result = invitation_list(
                m, event_id, size, quotas=quotas, max_per_city=max_per_city, mmr_lambda=mmr_lambda,
                exposure=exposure, history=history, waitlist=waitlist,
                include_kinds=("organisation", *(("municipality",) if include_municipalities else ()),
                               *(("advisor",) if include_advisors else ())),
                as_of=as_of, progress=progress, reach_km=reach_km)
        if out:
            export(result, out, include_contact=include_contact, delimiter=delimiter)
    except MatcherError as exc:
        fail(exc)
    click.echo(f"Einladungsliste für „{result.event.name}“ ({result.event.id}): "
               f"{len(result.invitees)} von {result.candidates} Kandidaten")
    for p in [*result.invitees, *result.waitlist]:
        label = "" if p in result.invitees else "W"
        group = INVITEE_TYPE_LABELS.get(p.group, INVITEE_TYPE_LABELS[UNTYPED_GROUP])
        click.echo(f"{label}{p.rank:>3}. {p.entity.name} ({p.entity.id}, {group}, {p.entity.city or '–'})  "
                   f"{decimal(p.score)}  – {'; '.join(p.why)}")
    click.echo("Vorgaben:")
    for c in result.constraints:
        mark = "✓" if c.held and not c.relaxed else "✗"
        click.echo(f"  {mark} {c.label}: {c.message}")
    if out:
        click.echo(f"Geschrieben: {out}")
    if not result.feasible:
        click.echo("Achtung: mindestens eine Vorgabe war nicht erfüllbar und wurde aufgehoben (siehe oben).", err=True)
        if strict:
            sys.exit(EXIT_INFEASIBLE)


@german.command()
@german.option("--requests", "requests_file", required=True, type=german.ExistingFile(), metavar="DATEI",
               help="Anfragen der Kommunen: JSONL oder CSV (id, text, city, lat, lon, languages, municipality, "
                    "conflicts), z. B. fixtures/anfragen.jsonl.")
@german.option("--alternates", type=german.IntRange(0, 50), default=DEFAULT_ALTERNATES, show_default=True,
               help="Weitere passende Berater/innen je Anfrage.")
@german.option("--allow-partial", is_flag=True,
               help="Ist keine vollständige Zuordnung möglich, die beste teilweise ausgeben (statt Abbruch).")
@_as_of_option
@_out_option
@_contact_option
@_delimiter_option
@german.option("--workers", type=german.IntRange(1, 64), default=1, show_default=True,
               help="Prozesse für das Bewerten der Anfragen (z. B. 2 auf zwei Kernen).")
@catalog_option
@database_option
@model_option
def assign(requests_file: str, alternates: int, allow_partial: bool, as_of: dt.date | None, out: str | None,
           include_contact: bool, delimiter: str, workers: int, catalog_file: str | None, url: str | None,
           model: str | None) -> None:
    """Optimale Zuordnung von Beratungsanfragen zu Berater/innen mit Kapazitäten."""
    from matcher.batch.assignment import assign_advisors
    from matcher.batch.export import export
    from matcher.batch.requests import load_requests

    try:
        requests = load_requests(requests_file)
        m = fitted_matcher(catalog_file, url, model, serving_ranker=True)
        with progress_bar("Zuordnung") as progress:
            result = assign_advisors(m, requests, k_alternates=alternates, allow_partial=allow_partial,
                                     as_of=as_of, workers=workers, progress=progress)
        if out:
            export(result, out, include_contact=include_contact, delimiter=delimiter)
    except InfeasibleError as exc:
        click.echo(f"Keine Zuordnung: {exc.message}", err=True)
        sys.exit(EXIT_INFEASIBLE)
    except MatcherError as exc:
        fail(exc)
    served = sum(a.advisor is not None for a in result.assignments)
    click.echo(f"{served} von {len(result.assignments)} Anfragen zugeordnet; Gesamtscore {decimal(result.total_score)}"
               f" ({'optimal, durch Dualitätszertifikat belegt' if result.optimal else 'nicht als optimal belegt'})")
    if not out or len(result.assignments) <= 50:
        for a in result.assignments:
            if a.advisor is None:
                click.echo(f"  {a.request.id}: – ({a.blocked})")
            else:
                click.echo(f"  {a.request.id}: {a.advisor.name} ({a.advisor.id}), Wahl {a.choice_rank} von "
                           f"{a.eligible}, {decimal(a.score)}")
    for b in result.blocked:
        click.echo(f"Blockiert: {b.message}", err=True)
    if out:
        click.echo(f"Geschrieben: {out}")
