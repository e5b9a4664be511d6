"""Commands ``matcher landscape`` (the report) and ``matcher landscape-calibrate`` (its threshold).

Examples::

    matcher landscape --city Köln --radius-km 30 --out var/koeln.html
    matcher landscape --city "Kreis Siegen-Wittgenstein" --out var/siegen.xlsx
    matcher landscape-calibrate --judged tests/data/fields_judged.csv --write
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click

from .errors import ValidationError

__all__ = ["landscape", "landscape_calibrate"]


def _fitted_matcher(catalog_file: str, model: str | None):
    from .embedding import CachedEmbedder, SQLiteVectorCache, make_embedder
    from .ranking import Matcher
    from .schema import load_catalog
    from .settings import cache_file, model_spec, threads

    embedder = CachedEmbedder(make_embedder(model or model_spec(), threads=threads()), SQLiteVectorCache(cache_file()))
    return Matcher(embedder, progress=True).fit(load_catalog(catalog_file))


def read_contacted(path: str | Path) -> set[tuple[str, str]]:
    """Pairs of ids already in contact: a CSV or TSV file with two id columns (a header row is skipped).

    Raises:
        ValidationError: a row does not have two ids.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    pairs, bad = set(), []
    for lineno, row in enumerate(csv.reader(text.splitlines(), dialect=dialect), start=1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or (lineno == 1 and cells[0].lower() in ("a", "id_a", "from", "von")):
            continue
        if len(cells) != 2:
            bad.append({"file": str(path), "line": lineno, "message": "erwartet zwei ids"})
            continue
        pairs.add((cells[0], cells[1]))
    if bad:
        raise ValidationError(f"{path}: {len(bad)} fehlerhafte Zeile(n)", bad)
    return pairs


_catalog_option = click.option("--catalog", "catalog_file", default="fixtures/catalog.jsonl", show_default=True,
                               type=click.Path(exists=True, dir_okay=False), help="Katalog (JSON Lines oder JSON-Liste).")
_fields_option = click.option("--fields", "fields_file", default=None, type=click.Path(exists=True, dir_okay=False),
                              help="Handlungsfelder (Standard: fixtures/fields_of_action.json).")
_model_option = click.option("--model", default=None, help="Embedding-Modell (Standard: MATCHER_MODEL oder e5+use).")


@click.command("landscape")
@click.option("--city", required=True, help="Stadt, Kreis oder Region in NRW, z. B. Köln, \"Kreis Kleve\", Münsterland.")
@click.option("--radius-km", type=click.FloatRange(0, 500, min_open=True), default=None,
              help="Auch Akteure in diesem Umkreis (km) um den Ort einbeziehen.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Ausgabedatei: .html, .xlsx oder .json.")
@click.option("--contacted", "contacted_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="CSV/TSV mit bereits kontaktierten Paaren (zwei ids je Zeile); nie als fehlende Verbindung vorgeschlagen.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Höchstens so viele Verbindungen.")
@_catalog_option
@_fields_option
@_model_option
def landscape(city: str, radius_km: float | None, out: str, contacted_file: str | None, limit: int, catalog_file: str,
              fields_file: str | None, model: str | None) -> None:
    """Landschaftsbericht: wer in welchem Handlungsfeld arbeitet und welche Verbindungen fehlen."""
    from .fields_of_action import FieldClassifier, load_fields
    from .landscape import build_landscape
    from .landscape_report import FORMATS, write_report

    if Path(out).suffix.lower() not in FORMATS:
        raise click.BadParameter("bitte eine Datei mit .html, .xlsx oder .json angeben", param_hint="--out")
    contacted = read_contacted(contacted_file) if contacted_file else set()
    m = _fitted_matcher(catalog_file, model)
    classifier = FieldClassifier(load_fields(fields_file)).fit(m)
    result = build_landscape(m, classifier, city, radius_km=radius_km, contacted=contacted, limit=limit)
    path = write_report(result, out)
    uncovered = len(result.uncovered_fields)
    click.echo(f"{result.area.title}: {len(result.actors)} Akteure, {len(result.links)} fehlende Verbindungen, "
               f"{uncovered} Handlungsfeld(er) ohne Akteur → {path}")


@click.command("landscape-calibrate")
@click.option("--judged", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Beurteilte Zuordnungen (CSV: id, name, fields, note).")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 50))
@click.option("--write", "write", is_flag=True, help="Die Schwellenwerte für dieses Modell in die Handlungsfelder-Datei schreiben.")
@click.option("--json", "as_json", is_flag=True, help="Ergebnis als JSON ausgeben.")
@_catalog_option
@_fields_option
@_model_option
def landscape_calibrate(judged: str, folds: int, write: bool, as_json: bool, catalog_file: str, fields_file: str | None,
                        model: str | None) -> None:
    """Schwellenwert der Zuordnung kalibrieren; Präzision und Trefferquote per Kreuzvalidierung."""
    from .field_calibration import calibrate, load_judged_fields
    from .fields_of_action import DEFAULT_FIELDS_FILE, load_fields, save_thresholds

    fields = load_fields(fields_file)
    m = _fitted_matcher(catalog_file, model)
    result = calibrate(m, load_judged_fields(judged, fields), fields, folds=folds)
    if write:
        save_thresholds(fields_file or DEFAULT_FIELDS_FILE, result.model_id, result.thresholds)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"Modell: {result.model_id}")
    click.echo(f"{result.actors} beurteilte Akteure, {result.labels} Zuordnungen, {folds}-fach kreuzvalidiert")
    click.echo(f"Schwellenwerte: mit Themen {result.thresholds.with_topics:.4f}, ohne Themen {result.thresholds.without_topics:.4f}"
               + (" (gespeichert)" if write else ""))
    click.echo(f"{'Variante':<16} {'Präzision':>9} {'Recall':>7} {'TP':>4} {'FP':>4} {'FN':>4}")
    for name, row in result.cv.items():
        click.echo(f"{name:<16} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['tp']:>4} {row['fp']:>4} {row['fn']:>4}")
