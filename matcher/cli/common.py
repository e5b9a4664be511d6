"""What the commands share: where the catalog comes from, the store, the fitted engine, progress.

One data source: every command reads the store the server reads
(``MATCHER_DATABASE_URL``, else ``<data dir>/matcher.db``, see
:mod:`matcher.settings`); ``--catalog FILE`` reads a catalog file instead.
Either way the vectors live in the store's one vector cache, so a text the
server (or an earlier command) encoded is never encoded again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from matcher.cli import german
from matcher.domain.formatting import decimal  # the commands' German numbers, imported from here
from matcher.errors import MatcherError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from matcher.engine.matcher import Matcher
    from matcher.engine.ranker import Ranker
    from matcher.store import Store
    from matcher.text.gazetteer import Gazetteer, Place

__all__ = [
    "EXIT_ERROR", "EXIT_INFEASIBLE", "catalog_option", "database_option", "model_option", "open_store",
    "fitted_matcher", "require_place", "progress_bar", "fail", "error_text", "decimal",
]

EXIT_ERROR = 2
EXIT_INFEASIBLE = 3

catalog_option = german.option(
    "--catalog", "catalog_file", default=None, type=german.ExistingFile(), metavar="DATEI",
    help="Katalog aus dieser Datei (JSON Lines, JSON-Liste oder CSV) statt aus der Datenbank.")
database_option = german.option(
    "--database", "url", default=None, metavar="URL",
    help="Datenbank-URL (Standard: MATCHER_DATABASE_URL bzw. matcher.db im Datenordner, siehe `matcher info`).")
model_option = german.option(
    "--model", default=None, metavar="MODELL",
    help="Embedding-Modell (Standard: MATCHER_MODEL bzw. e5+use).")


def open_store(url: str | None = None, *, create: bool = False) -> Store:
    """The store at ``url`` (default: the configured one), migrated to the newest schema.

    ``create``: an SQLite file that was never set up is set up now (the vector
    cache of a ``--catalog`` run needs it); anything else must be migrated with
    ``matcher db upgrade`` first.

    Raises:
        StoreError: the database is unreachable or not at the newest revision.
    """
    from matcher.store import Store

    store = Store(url)
    if create and store.dialect == "sqlite" and store.schema_revision() is None:
        store.upgrade()
        click.echo(f"Datenbank angelegt: {store.location}", err=True)
    store.check_schema()
    return store


def _load_weights(weights_file: str | None) -> Any:
    if not weights_file:
        return None
    from matcher.domain.messages import json_error_reason
    from matcher.engine.matcher import Weights

    try:
        values = json.loads(Path(weights_file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"Die Gewichte-Datei „{weights_file}“ kann nicht gelesen werden: {exc.strerror}",
                              [{"file": weights_file}]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = json_error_reason(exc) if isinstance(exc, json.JSONDecodeError) else "kein UTF-8"
        raise ValidationError(f"Die Gewichte-Datei „{weights_file}“ ist kein gültiges JSON: {reason}",
                              [{"file": weights_file}]) from None
    return Weights.from_mapping(values)


def fitted_matcher(catalog_file: str | None, url: str | None, model: str | None, *,
                   catalog: Sequence[Any] | None = None, weights_file: str | None = None,
                   serving_ranker: bool = False) -> Matcher:
    """The engine fitted on the store's catalog, or on ``catalog_file`` / ``catalog`` if given.

    ``serving_ranker``: rank with the ranker the store's servers serve (its active version, else the
    shipped default; :mod:`matcher.live.rankers`), so a command answers as the API does; otherwise (the
    measuring commands) with the hand weights unless told otherwise.

    Raises:
        StoreError: the store is not set up; ValidationError: the store's catalog is empty.
        CatalogError: the catalog file is bad (every bad line listed).
    """
    from matcher.domain.catalog_io import read_catalog_file
    from matcher.engine.embedding import make_embedder
    from matcher.engine.matcher import Matcher
    from matcher.live import StoreBackedEmbedder
    from matcher.settings import model_spec, threads

    from_file = catalog is not None or catalog_file is not None
    store = open_store(url, create=from_file)
    if catalog is None and catalog_file is not None:
        catalog = read_catalog_file(catalog_file)
    if catalog is None:
        _, catalog = store.snapshot()
        if not catalog:
            raise ValidationError(f"Der Katalog in {store.location} ist leer: zuerst `matcher load DATEI` ausführen "
                                  "oder `--catalog DATEI` angeben")
    embedder = StoreBackedEmbedder(make_embedder(model or model_spec(), threads=threads()), store)
    matcher = Matcher(embedder, weights=_load_weights(weights_file), progress=sys.stderr.isatty(),
                      ranker=_serving_ranker(store) if serving_ranker else None)
    with embedder.persisting():  # catalog vectors go to the store's cache, as the server's do
        return matcher.fit(catalog)


def _serving_ranker(store: Store) -> Ranker:
    """The ranker the store's servers serve; the hand weights, with a note, if it cannot be read."""
    from matcher.engine.ranker import HAND
    from matcher.live.rankers import ranker_of

    active = store.rankers.active()
    try:
        return ranker_of(store, active.version)
    except MatcherError as exc:
        click.echo(f"Hinweis: die Rangfolge {active.version} ist nicht lesbar ({exc.message}); es gelten die "
                   "Handgewichte.", err=True)
        return HAND


def require_place(gazetteer: Gazetteer, name: str, option_name: str = "--city") -> Place:
    """The place ``name`` names; an unknown one is an error that suggests the nearest known name.

    Raises:
        ValidationError: the gazetteer does not know the place, or it lies outside Germany.
    """
    place = gazetteer.resolve(name)
    if place is not None and place.country == "DE":
        return place
    from matcher.domain.messages import did_you_mean

    suggestions = gazetteer.suggest(name)
    hint = did_you_mean(suggestions)
    raise ValidationError(f"Unbekannter Ort „{name}“ ({option_name}): bitte eine Stadt, einen Kreis oder eine "
                          f"Region in NRW angeben. {hint}".rstrip(),
                          [{"field": option_name, "value": name, "suggestions": suggestions}])


@contextmanager
def progress_bar(title: str) -> Iterator[Callable[[float, str], None]]:
    """A tqdm bar on stderr in percent; its label follows the library's stage."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=title, unit="%", file=sys.stderr, leave=False, disable=not sys.stderr.isatty(),
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")

    def update(fraction: float, stage: str) -> None:
        bar.set_description_str(f"{title} – {stage}", refresh=False)
        bar.update(max(0, round(100 * fraction) - bar.n))

    try:
        yield update
    finally:
        bar.close()


_DETAIL_LABELS = {"file": "Datei", "line": "Zeile", "field": "Feld", "value": "Wert"}
_DETAILS_SHOWN = 20


def error_text(exc: MatcherError) -> str:
    """A library error for the terminal: its message, then one line per detail („Datei …, Zeile 3, Feld id: …“)."""
    lines = [f"Fehler: {exc.message}"]
    for d in exc.details[:_DETAILS_SHOWN]:
        where = ", ".join(f"{_DETAIL_LABELS[k]} {d[k]}" for k in _DETAIL_LABELS if d.get(k) not in (None, ""))
        message = d.get("message")
        if where or message:
            lines.append("  – " + ": ".join(str(p) for p in (where, message) if p))
    if len(exc.details) > _DETAILS_SHOWN:
        lines.append(f"  … und {len(exc.details) - _DETAILS_SHOWN} weitere")
    return "\n".join(lines)


def fail(exc: MatcherError, code: int = EXIT_ERROR) -> None:
    """Print a library error as one readable message (no traceback) and exit."""
    click.echo(error_text(exc), err=True)
    sys.exit(code)

