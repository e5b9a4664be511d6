"""``matcher landscape`` (the report) and ``matcher landscape-calibrate`` (its threshold).

Examples::

    matcher landscape --city Köln --radius-km 30 --out koeln.html
    matcher landscape --city "Kreis Siegen-Wittgenstein" --out siegen.xlsx
    matcher landscape-calibrate --judged tests/data/fields_judged.csv --catalog fixtures/catalog.jsonl --write
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click

from matcher.cli import german
from matcher.cli.common import catalog_option, database_option, fitted_matcher, model_option

__all__ = ["landscape", "landscape_calibrate", "read_contacted"]

_fields_option = german.option("--fields", "fields_file", default=None, type=german.ExistingFile(), metavar="DATEI",
                               help="Handlungsfelder (Standard: MATCHER_FIELDS_FILE bzw. die mitgelieferten).")


def read_contacted(path: str | Path) -> set[tuple[str, str]]:
    """Pairs of ids already in contact: a CSV or TSV file with two id columns (a header row is skipped).

    Raises:
        ValidationError: a row does not have two ids.
    """
    from matcher.errors import ValidationError

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


@german.command("landscape")
@german.option("--city", required=True, metavar="ORT",
               help="Stadt, Kreis oder Region in NRW, z. B. Köln, \"Kreis Kleve\", Münsterland.")
@german.option("--radius-km", type=german.FloatRange(0, 500, min_open=True), default=None,
               help="Auch Akteure in diesem Umkreis (km) um den Ort einbeziehen.")
@german.option("--out", "out", required=True, type=german.WritableFile(), metavar="DATEI",
               help="Ausgabedatei: .html, .xlsx oder .json.")
@german.option("--contacted", "contacted_file", default=None, type=german.ExistingFile(), metavar="DATEI",
               help="CSV/TSV mit bereits kontaktierten Paaren (zwei ids je Zeile); nie als fehlende Verbindung "
                    "vorgeschlagen. Ohne Angabe: die in der Datenbank als „kontaktiert“ gemeldeten Paare.")
@german.option("--limit", default=20, show_default=True, type=german.IntRange(1, 1000),
               help="Höchstens so viele Verbindungen.")
@_fields_option
@catalog_option
@database_option
@model_option
def landscape(city: str, radius_km: float | None, out: str, contacted_file: str | None, limit: int,
              fields_file: str | None, catalog_file: str | None, url: str | None, model: str | None) -> None:
    """Landschaftsbericht: wer in welchem Handlungsfeld arbeitet und welche Verbindungen fehlen."""
    from matcher.cli.common import open_store
    from matcher.engine.fields import FieldClassifier, load_fields
    from matcher.landscape.build import build_landscape
    from matcher.landscape.report import FORMATS, write_report

    if Path(out).suffix.lower() not in FORMATS:
        raise click.BadParameter("bitte eine Datei mit .html, .xlsx oder .json angeben", param_hint="„--out“")
    m = fitted_matcher(catalog_file, url, model)
    if contacted_file:
        contacted = read_contacted(contacted_file)
    elif catalog_file is None:  # what staff reported as contacted, as the server's report reads it
        contacted = open_store(url).contacted_pairs()
    else:
        contacted = set()
    classifier = FieldClassifier(load_fields(fields_file)).fit(m)
    result = build_landscape(m, classifier, city, radius_km=radius_km, contacted=contacted, limit=limit)
    path = write_report(result, out)
    uncovered = len(result.uncovered_fields)
    click.echo(f"{result.area.title}: {len(result.actors)} Akteure, {len(result.links)} fehlende Verbindungen, "
               f"{uncovered} Handlungsfeld(er) ohne Akteur → {path}")


@german.command("landscape-calibrate")
@german.option("--judged", required=True, type=german.ExistingFile(), metavar="DATEI",
               help="Beurteilte Zuordnungen (CSV: id, name, fields, note), z. B. tests/data/fields_judged.csv.")
@german.option("--folds", default=5, show_default=True, type=german.IntRange(2, 50), help="Teile der Kreuzvalidierung.")
@german.option("--write", "write", is_flag=True,
               help="Die Schwellenwerte für dieses Modell in die Handlungsfelder-Datei schreiben.")
@german.option("--json", "as_json", is_flag=True, help="Ergebnis als JSON ausgeben.")
@_fields_option
@catalog_option
@database_option
@model_option
def landscape_calibrate(judged: str, folds: int, write: bool, as_json: bool, fields_file: str | None,
                        catalog_file: str | None, url: str | None, model: str | None) -> None:
    """Schwellenwert der Zuordnung kalibrieren; Präzision und Trefferquote per Kreuzvalidierung."""
    from matcher.engine.fields import load_fields, save_thresholds
    from matcher.landscape.calibration import calibrate, load_judged_fields
    from matcher.settings import fields_file as configured_fields_file

    fields = load_fields(fields_file)
    m = fitted_matcher(catalog_file, url, model)
    result = calibrate(m, load_judged_fields(judged, fields), fields, folds=folds)
    if write:
        save_thresholds(fields_file or configured_fields_file(), result.model_id, result.thresholds)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"Modell: {result.model_id}")
    click.echo(f"{result.actors} beurteilte Akteure, {result.labels} Zuordnungen, {folds}-fach kreuzvalidiert")
    click.echo(f"Schwellenwerte: mit Themen {result.thresholds.with_topics:.4f}, ohne Themen "
               f"{result.thresholds.without_topics:.4f}".replace(".", ",") + (" (gespeichert)" if write else ""))
    click.echo(f"{'Variante':<16} {'Präzision':>9} {'Recall':>7} {'TP':>4} {'FP':>4} {'FN':>4}")
    for name, row in result.cv.items():
        click.echo(f"{name:<16} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['tp']:>4} {row['fp']:>4} "
                   f"{row['fn']:>4}")
