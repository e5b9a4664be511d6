"""The ``matcher`` command: one group, its commands in modules by concern.

``engine`` (rank, evaluate, calibrate) · ``store`` (info, db, load, keys, vectors) · ``batch`` (invite, assign) ·
``landscape`` (landscape, landscape-calibrate) · ``learning`` (ranker-cv) · ``ranker`` (train, ranker);
``common`` holds what they share (catalog source, store, fitted engine), ``german`` click's words in German.

Errors are printed as one German message (no traceback): exit status 2 for bad
input or another library error, 3 for an infeasible batch problem.
"""

from __future__ import annotations

import sys

import click

from matcher.cli import german
from matcher.cli.batch import assign, invite
from matcher.cli.common import EXIT_ERROR, EXIT_INFEASIBLE, error_text
from matcher.cli.engine import calibrate, evaluate, rank
from matcher.cli.landscape import landscape, landscape_calibrate
from matcher.cli.learning import ranker_cv
from matcher.cli.ranker import ranker, train
from matcher.cli.store import db, info, keys, load, vectors
from matcher.errors import MatcherError

__all__ = ["cli", "main", "EXIT_ERROR", "EXIT_INFEASIBLE"]


@german.group()
@click.version_option(package_name="matcher", message="%(prog)s, Version %(version)s",
                      help="Version anzeigen und beenden.")
def cli() -> None:
    """Matchmaking für Migration und Entwicklung auf kommunaler Ebene.

    Die Befehle lesen dieselbe Datenbank wie der Server (siehe `matcher info`);
    `--catalog DATEI` liest stattdessen eine Katalogdatei.
    """


for _command in (rank, evaluate, calibrate, train, ranker, info, db, load, keys, vectors, invite, assign, landscape,
                 landscape_calibrate, ranker_cv):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, print errors in German without a traceback."""
    try:
        cli.main(args=argv, prog_name="matcher", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Abgebrochen.", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        click.echo(german.usage_message(exc), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"Fehler: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except MatcherError as exc:
        click.echo(error_text(exc), err=True)
        sys.exit(EXIT_ERROR)
