"""Reading catalog uploads (JSON Lines or CSV) into validated entities, all or nothing.

A bulk import is either accepted as a whole or rejected as a whole with a
report naming every bad line, its field and a German message saying what to
change (the person fixing it works in a spreadsheet, not in Python).

CSV conventions (one header row; ``;``, ``,`` or tab as delimiter, detected
from the header):

* column names are the catalog fields (``id``, ``kind``, ``name``, ``city``, …);
  contact data goes in ``contact.person``, ``contact.email``, ``contact.phone``,
  ``contact.website``, ``contact.address``;
* list fields (``topics``, ``languages``, ``regions``, …) separate their
  values with ``|``, e.g. ``de|tr|ar``;
* an empty cell means "not given"; ``lat``/``lon`` accept a decimal comma.
"""

from __future__ import annotations

import csv
import io
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from matcher.domain.loading import Record, reject_json_constant, validate_records
from matcher.domain.messages import alternatives, json_error_reason, quoted
from matcher.domain.schema import Advisor, Contact, Entity, Event, Municipality, Organisation, load_catalog
from matcher.errors import CatalogError

__all__ = ["FORMATS", "parse_catalog", "read_catalog_file", "csv_columns", "csv_records"]

FORMATS = ("jsonl", "csv")
MAX_REPORTED = 100  # details listed in one error; the message gives the total
_MODELS = (Advisor, Organisation, Event, Municipality)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Entity)
_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return False


def csv_columns() -> dict[str, bool]:
    """Every column a catalog CSV may have → whether it holds a ``|``-separated list."""
    cols: dict[str, bool] = {}
    for model in _MODELS:
        for name, field in model.model_fields.items():
            if name != "contact":
                cols[name] = _is_list(field.annotation)
    for name in Contact.model_fields:
        cols[f"contact.{name}"] = False
    return cols


def parse_catalog(data: bytes, fmt: Literal["jsonl", "csv"], source: str = "Upload") -> list[Entity]:
    """Validate an upload and return its entities, or raise :class:`CatalogError` listing every bad line.

    Raises:
        CatalogError: nothing is returned if any line is bad; ``details`` hold
            ``line``, ``field`` and ``message`` for each problem.
    """
    if fmt not in FORMATS:
        raise CatalogError(f"Unbekanntes Format {quoted(fmt)}; erlaubt: {alternatives(FORMATS)}", [{"field": "format"}])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CatalogError(f"{source} ist nicht UTF-8-kodiert (Zeile {line}); bitte als UTF-8 speichern",
                           [{"line": line, "field": "(Zeile)", "message": "kein UTF-8"}]) from None
    records = _jsonl_records(text) if fmt == "jsonl" else _csv_records(text)
    entities, details = validate_records(records, _ADAPTER.validate_python)
    if details:
        lines = len({d["line"] for d in details})
        more = f" (die ersten {MAX_REPORTED} Fehler sind aufgeführt)" if len(details) > MAX_REPORTED else ""
        raise CatalogError(f"{source}: {lines} fehlerhafte Zeile(n), zuerst Zeile {details[0]['line']}; "
                           f"nichts wurde importiert{more}", details[:MAX_REPORTED])
    if not entities:
        raise CatalogError(f"{source} enthält keine Einträge", [{"line": 1, "field": "(Datei)", "message": "leer"}])
    return entities


def read_catalog_file(path: str | Path) -> list[Entity]:
    """Load a catalog file: ``.csv`` by the CSV rules above, anything else as JSON Lines / JSON list."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return load_catalog(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"Datei {path} kann nicht gelesen werden: {exc.strerror}", [{"file": str(path)}]) from None
    return parse_catalog(data, "csv", source=str(path))


def _jsonl_records(text: str) -> typing.Iterator[Record]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line, parse_constant=reject_json_constant)
        except json.JSONDecodeError as exc:
            yield lineno, None, f"ungültiges JSON (Spalte {exc.colno}): {json_error_reason(exc)}"
            continue
        except RecursionError:
            yield lineno, None, "JSON zu tief verschachtelt"
            continue
        except ValueError as exc:
            yield lineno, None, f"ungültiges JSON: {exc}"
            continue
        if not isinstance(rec, dict):
            yield lineno, None, "jede Zeile muss ein JSON-Objekt {…} sein"
            continue
        yield lineno, rec, None


def _csv_records(text: str) -> typing.Iterator[Record]:
    return csv_records(text, csv_columns(), required=("kind",))


def csv_records(text: str, columns: typing.Mapping[str, bool],
                required: tuple[str, ...] = ()) -> typing.Iterator[Record]:
    """``(line number, record, problem)`` for each row of a CSV ``text`` whose header names
    ``columns`` (name → whether the cell is a ``|``-separated list). The delimiter is guessed from
    the header (``;``, ``,`` or tab); empty cells are left out, decimal commas in ``lat``/``lon``
    read as points, and a dotted column (``contact.email``) fills a nested mapping."""
    first = text.split("\n", 1)[0]
    delimiter = max([";", ",", "\t"], key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error:
        yield 1, None, "Kopfzeile nicht lesbar; ist ein Anführungszeichen nicht geschlossen?"
        return
    unknown = [h for h in header if h not in columns]
    missing = [c for c in required if c not in header]
    if unknown or len(set(header)) != len(header) or missing:
        problem = (f"unbekannte Spalte(n): {alternatives(unknown, 'und')}" if unknown
                   else f"Spalte „{missing[0]}“ fehlt" if missing else "doppelte Spaltennamen")
        yield 1, None, f"{problem}; erlaubt sind: {', '.join(columns)}"
        return
    previous_end = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:  # a cell over csv's field limit, a quote never closed: the rest is unreadable
            yield previous_end + 1, None, ("CSV ab hier nicht lesbar: ist ein Feld länger als "
                                           f"{csv.field_size_limit()} Zeichen oder ein Anführungszeichen nicht "
                                           "geschlossen?")
            return
        lineno, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield lineno, None, f"{len(row)} Spalten statt {len(header)} (Trennzeichen „{delimiter}“)"
            continue
        rec: dict[str, Any] = {}
        for name, cell in zip(header, row):
            cell = cell.strip()
            if not cell:
                continue
            if columns[name]:
                value: Any = [v.strip() for v in cell.split("|") if v.strip()]
            elif name in ("lat", "lon") and _DECIMAL_COMMA.match(cell):
                value = cell.replace(",", ".")
            else:
                value = cell
            if "." in name:
                outer, inner = name.split(".", 1)
                rec.setdefault(outer, {})[inner] = value
            else:
                rec[name] = value
        yield lineno, rec, None
