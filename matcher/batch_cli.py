"""Command line for the batch jobs: ``matcher invite`` and ``matcher assign``.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from .assignment import DEFAULT_ALTERNATES
from .errors import InfeasibleError, MatcherError
from .invitations import DEFAULT_MMR_LAMBDA, ExposurePolicy

__all__ = ["invite", "assign", "EXIT_ERROR", "EXIT_INFEASIBLE"]

EXIT_ERROR = 2
EXIT_INFEASIBLE = 3


def _num(x: float) -> str:
    return f"{x:.2f}".replace(".", ",")


@contextmanager
def _progress_bar(title: str) -> Iterator[Callable[[float, str], None]]:
    """A tqdm bar on stderr in percent; its label follows the library's stage."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=title, unit="%", file=sys.stderr, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")

    def update(fraction: float, stage: str) -> None:
        bar.set_description_str(f"{title} – {stage}", refresh=False)
        bar.update(max(0, round(100 * fraction) - bar.n))

    try:
        yield update
    finally:
        bar.close()


def _fail(exc: MatcherError) -> None:
    click.echo(f"Fehler: {exc}", err=True)
    sys.exit(EXIT_ERROR)


def _matcher(catalog_file: str, model: str | None):
    from .cli import _build_matcher  # here, not at import: cli.py registers these commands
    from .schema import load_catalog

    return _build_matcher(load_catalog(catalog_file), model, progress=True)


@click.command()
@click.option("--event", "event_id", required=True, help="Id der Veranstaltung, z. B. evt-113.")
@click.option("--size", required=True, type=click.IntRange(1, 100_000), help="Plätze auf der Liste.")
@click.option("--quota", "quotas", multiple=True, metavar="TYP:WERT",
              help="Quote je Typ, wiederholbar: migrant_organisation:0.4 (mind. 40 %), institution:<=2 (höchstens 2).")
@click.option("--max-per-city", type=click.IntRange(1), default=None, help="Höchstens so viele aus einer Stadt.")
@click.option("--waitlist", type=click.IntRange(0, 100_000), default=0, show_default=True, help="Länge der Warteliste.")
@click.option("--lambda", "mmr_lambda", type=click.FloatRange(0.0, 1.0), default=DEFAULT_MMR_LAMBDA, show_default=True,
              help="MMR-Gewicht: 1 = nur Relevanz, kleiner = mehr Vielfalt.")
@click.option("--history", "history_file", type=click.Path(exists=True, dir_okay=False),
              help="Einladungshistorie (CSV oder JSONL: entity_id, event_id, date).")
@click.option("--exposure-penalty", type=click.FloatRange(0.0), default=ExposurePolicy.penalty, show_default=True,
              help="Abschlag je Einladung zu einer anderen Veranstaltung im Zeitfenster.")
@click.option("--exposure-days", type=click.IntRange(1), default=ExposurePolicy.window_days, show_default=True,
              help="Zeitfenster der Einladungshistorie in Tagen.")
@click.option("--include-advisors", is_flag=True, help="Auch Beraterinnen und Berater einladen.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Stichtag (Standard: heute).")
@click.option("--catalog", "catalog_file", default="fixtures/catalog.jsonl", show_default=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Datei: .xlsx, .csv oder .json.")
@click.option("--include-contact", is_flag=True,
              help="Kontaktdaten mit exportieren (nur für berechtigte Mitarbeitende).")
@click.option("--delimiter", type=click.Choice([",", ";"]), default=",", show_default=True,
              help="CSV-Trennzeichen; „;“ für deutsches Excel (dann Dezimalkomma).")
@click.option("--strict", is_flag=True, help=f"Exit {EXIT_INFEASIBLE}, wenn eine Vorgabe aufgehoben werden musste.")
@click.option("--model", default=None, help="Embedding-Modell (Standard: MATCHER_MODEL bzw. Voreinstellung).")
def invite(event_id: str, size: int, quotas: tuple[str, ...], max_per_city: int | None, waitlist: int,
           mmr_lambda: float, history_file: str | None, exposure_penalty: float, exposure_days: int,
           include_advisors: bool, as_of: dt.datetime | None, catalog_file: str, out: str | None,
           include_contact: bool, delimiter: str, strict: bool, model: str | None) -> None:
    """Einladungsliste für eine Veranstaltung: Quoten, Vielfalt, Ausgleich, Warteliste."""
    from .export import export
    from .invitations import invitation_list, read_history

    try:
        history = read_history(history_file) if history_file else []
        m = _matcher(catalog_file, model)
        with _progress_bar("Einladungsliste") as progress:
            result = invitation_list(
                m, event_id, size, quotas=quotas, max_per_city=max_per_city, mmr_lambda=mmr_lambda,
                exposure=ExposurePolicy(exposure_penalty, exposure_days), history=history, waitlist=waitlist,
                include_kinds=("organisation", "advisor") if include_advisors else ("organisation",),
                as_of=as_of.date() if as_of else None, progress=progress)
        if out:
            export(result, out, include_contact=include_contact, delimiter=delimiter)
    except MatcherError as exc:
        _fail(exc)
    click.echo(f"Einladungsliste für „{result.event.name}“ ({result.event.id}): "
               f"{len(result.invitees)} von {result.candidates} Kandidaten")
    for p in [*result.invitees, *result.waitlist]:
        label = "" if p in result.invitees else "W"
        click.echo(f"{label}{p.rank:>3}. {p.entity.name} ({p.entity.id}, {p.group}, {p.entity.city or '–'})  "
                   f"{_num(p.score)}  – {'; '.join(p.why)}")
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


@click.command()
@click.option("--requests", "requests_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Anfragen der Kommunen: JSONL oder CSV "
                   "(id, text, city, lat, lon, languages, municipality, conflicts).")
@click.option("--catalog", "catalog_file", default="fixtures/catalog.jsonl", show_default=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Datei: .xlsx, .csv oder .json.")
@click.option("--alternates", type=click.IntRange(0, 50), default=DEFAULT_ALTERNATES, show_default=True,
              help="Weitere passende Berater/innen je Anfrage.")
@click.option("--allow-partial", is_flag=True,
              help="Ist keine vollständige Zuordnung möglich, die beste teilweise ausgeben (statt Abbruch).")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Stichtag (Standard: heute).")
@click.option("--include-contact", is_flag=True,
              help="Kontaktdaten mit exportieren (nur für berechtigte Mitarbeitende).")
@click.option("--delimiter", type=click.Choice([",", ";"]), default=",", show_default=True,
              help="CSV-Trennzeichen; „;“ für deutsches Excel (dann Dezimalkomma).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Prozesse für das Bewerten der Anfragen (z. B. 2 auf zwei Kernen).")
@click.option("--model", default=None, help="Embedding-Modell (Standard: MATCHER_MODEL bzw. Voreinstellung).")
def assign(requests_file: str, catalog_file: str, out: str | None, alternates: int, allow_partial: bool,
           as_of: dt.datetime | None, include_contact: bool, delimiter: str, workers: int, model: str | None) -> None:
    """Optimale Zuordnung von Beratungsanfragen zu Berater/innen mit Kapazitäten."""
    from .advisor_requests import load_requests
    from .assignment import assign_advisors
    from .export import export

    try:
        requests = load_requests(requests_file)
        m = _matcher(catalog_file, model)
        with _progress_bar("Zuordnung") as progress:
            result = assign_advisors(m, requests, k_alternates=alternates, allow_partial=allow_partial,
                                     as_of=as_of.date() if as_of else None, workers=workers, progress=progress)
        if out:
            export(result, out, include_contact=include_contact, delimiter=delimiter)
    except InfeasibleError as exc:
        click.echo(f"Keine Zuordnung: {exc.message}", err=True)
        sys.exit(EXIT_INFEASIBLE)
    except MatcherError as exc:
        _fail(exc)
    served = sum(a.advisor is not None for a in result.assignments)
    click.echo(f"{served} von {len(result.assignments)} Anfragen zugeordnet; Gesamtscore {_num(result.total_score)}"
               f" ({'optimal, durch Dualitätszertifikat belegt' if result.optimal else 'nicht als optimal belegt'})")
    if not out or len(result.assignments) <= 50:
        for a in result.assignments:
            if a.advisor is None:
                click.echo(f"  {a.request.id}: – ({a.blocked})")
            else:
                click.echo(f"  {a.request.id}: {a.advisor.name} ({a.advisor.id}), Wahl {a.choice_rank} von "
                           f"{a.eligible}, {_num(a.score)}")
    for b in result.blocked:
        click.echo(f"Blockiert: {b.message}", err=True)
    if out:
        click.echo(f"Geschrieben: {out}")
