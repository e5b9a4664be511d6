"""Ranker commands: ``matcher train`` and ``matcher ranker list|activate|rollback`` (see docs/ranker.md)."""

from __future__ import annotations

import datetime as dt
import json

import click

from matcher.cli import german
from matcher.cli.common import database_option, decimal, fitted_matcher, model_option, open_store, progress_bar
from matcher.engine.weights import TASK_KIND

__all__ = ["ranker", "train"]


@german.command()
@database_option
@model_option
@german.option("--data", "data_dirs", required=True, multiple=True, type=german.ExistingFolder(), metavar="ORDNER",
               help="Bewerteter Datensatz, auf dem die neue Version die aktive schlagen muss (mehrfach möglich), "
                    "z. B. --data ../shared/eval/dev --data eval/trust.")
@german.option("--days", default=90, show_default=True, type=german.IntRange(1, 3650),
               help="Rückmeldungen der letzten so vielen Tage.")
@german.option("--no-activate", is_flag=True, help="Nur trainieren und prüfen, nicht aktivieren.")
@german.option("--hand", "hand_tasks", multiple=True, type=german.Choice(sorted(TASK_KIND)), metavar="AUFGABE",
               help="Für diese Aufgabe in der neuen Version die Handgewichte behalten, was immer das Training "
                    "ergibt (wiederholbar), z. B. wenn das gelernte Modell einen entworfenen Fall bricht.")
@german.option("--json", "as_json", is_flag=True, help="Ergebnis als JSON.")
def train(url: str | None, model: str | None, data_dirs: tuple[str, ...], days: int, no_activate: bool,
          hand_tasks: tuple[str, ...], as_json: bool) -> None:
    """Eine neue Ranker-Version trainieren, prüfen und, wenn sie die aktive schlägt, aktivieren.

    Trainiert auf den bewerteten Datensätzen und den Rückmeldungen („passt“,
    „passt nicht“, „kontaktiert“) der letzten Tage, gewichtet nach der Position, an
    der ein Eintrag gezeigt wurde. Aktiv wird die Version nur, wenn sie die aktive auf
    den bewerteten Daten und in der kontrafaktischen Schätzung über die
    Rückmeldungen schlägt; gespeichert wird sie in jedem Fall.
    """
    from matcher.evaluation.judged import load_dataset
    from matcher.live.rankers import train_version

    judged = [load_dataset(d) for d in data_dirs]
    matcher = fitted_matcher(None, url, model)
    store = open_store(url)
    until = dt.datetime.now(dt.UTC)
    with progress_bar("Training") as update:
        report = train_version(store, matcher, judged, since=until - dt.timedelta(days=days), until=until,
                               activate=not no_activate, hand_tasks=hand_tasks, progress=update)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"Version {report.version}: {'aktiviert' if report.activated else 'nicht aktiviert'} "
               f"(aktiv: {report.active})")
    for reason in report.verdict.reasons:
        click.echo(f"  – {reason}")
    if hand_tasks:
        click.echo(f"  Handgewichte behalten für: {', '.join(sorted(hand_tasks))}")
    cv = report.metrics.get("cv") or {}
    for task, row in sorted(cv.items()):
        click.echo(f"  {task}: nDCG@10 gelernt {decimal(row['learned'], 3)}, Handgewichte {decimal(row['hand'], 3)} "
                   f"(Kreuzvalidierung, {row['queries']} Anfragen)")


@german.group()
def ranker() -> None:
    """Ranker-Versionen: auflisten, aktivieren, zur vorherigen zurückkehren."""


@ranker.command("list")
@database_option
def ranker_list(url: str | None) -> None:
    """Gespeicherte Versionen (neueste zuerst): Name, angelegt, Commit, Prüfung, aktiv (*)."""
    from matcher.engine.ranker import shipped_ranker
    from matcher.store import DEFAULT_VERSION, HAND_VERSION

    store = open_store(url)
    active = store.rankers.active()
    shipped = shipped_ranker()
    click.echo(f"{'*' if active.version == DEFAULT_VERSION else ' '} {DEFAULT_VERSION}\t(mitgeliefertes Modell "
               f"{shipped.version}; aktiv, solange keine Version aktiviert wurde)")
    click.echo(f"{'*' if active.version == HAND_VERSION else ' '} {HAND_VERSION}\t(von Hand gesetzte Gewichte)")
    for v in store.rankers.all():
        gate = (v.metrics.get("gate") or {}).get("passed")
        click.echo(f"{'*' if v.version == active.version else ' '} {v.version}\t"
                   f"{v.created_at.isoformat(timespec='seconds')}\t{v.commit[:12]}\t"
                   f"{'Prüfung bestanden' if gate else 'Prüfung nicht bestanden'}")


@ranker.command("activate")
@database_option
@click.argument("version", metavar="VERSION")
def ranker_activate(url: str | None, version: str) -> None:
    """Eine gespeicherte Version aktivieren, die ihre Prüfung bestanden hat (oder „default“, „hand“)."""
    from matcher.live.rankers import activate

    a = activate(open_store(url), version)
    click.echo(f"Aktiv: {a.version}.")


@ranker.command("rollback")
@database_option
def ranker_rollback(url: str | None) -> None:
    """Zur vorher aktiven Version zurückkehren (jeder Server übernimmt sie mit der nächsten Anfrage)."""
    from matcher.live.rankers import rollback

    a = rollback(open_store(url))
    click.echo(f"Aktiv: {a.version}.")
