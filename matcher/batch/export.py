"""Exports staff can open: CSV, XLSX and JSON, the format chosen by the file extension.

* **CSV**: UTF-8 with BOM (Excel recognises the encoding), ``,`` by default;
  ``delimiter=";"`` for German Excel, which then also gets decimal commas.
* **XLSX** (openpyxl): the table on the first sheet with a bold, frozen,
  filterable header; a second sheet with the constraint report (invitations) or
  the advisors' load and the blockages (assignments).
* **JSON**: the whole result (``as_dict``), explanations included.

Columns: list, rank, name, type, city, score, German reasons, why chosen (or,
for assignments, the request and the alternates), id, then the calibrated strength
(„passt gut“, „passt teilweise“, „schwache Übereinstimmung“) and confidence (empty
without a calibration; :mod:`matcher.engine.confidence`). Contact data (person,
e-mail, phone, website, address) is personal: it is written only with
``include_contact=True``.

Text cells that a spreadsheet would read as a formula (starting with ``=``,
``+``, ``-``, ``@``) are written as text: a quote is prefixed in CSV, XLSX
cells are typed as strings.

Tables are built from a result's dict form (``as_dict``), so a result read back
from the store (a batch job's) exports exactly like one just computed;
:func:`render` gives the file as bytes (for HTTP), :func:`export` writes it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matcher.batch.assignment_types import AssignmentResult
from matcher.batch.invitation_types import InvitationList
from matcher.domain.formatting import decimal
from matcher.domain.labels import ADVISOR_GROUP, INVITEE_TYPE_LABELS, UNTYPED_GROUP
from matcher.domain.messages import alternatives, quoted
from matcher.domain.schema import KINDS
from matcher.domain.spreadsheets import append_text_row
from matcher.errors import ValidationError

__all__ = ["EXPORT_FORMATS", "CONTACT_COLUMNS", "export", "render", "invitation_table", "assignment_table",
           "write_table", "without_contact", "with_contacts", "entity_ids"]

EXPORT_FORMATS = (".csv", ".xlsx", ".json")
CONTACT_COLUMNS = ["Ansprechperson", "E-Mail", "Telefon", "Website", "Adresse"]
INVITATION_HEADER = ["Liste", "Rang", "Name", "Typ", "Ort", "Score", "Begründung", "Auswahl", "ID", "Passung",
                     "Konfidenz (%)"]
ASSIGNMENT_HEADER = ["Anfrage", "Ort der Anfrage", "Wahl", "Name", "Typ", "Ort", "Score", "Begründung",
                     "Alternativen", "ID", "Passung", "Konfidenz (%)"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CONTACT_FIELDS = ("person", "email", "phone", "website", "address")

Result = InvitationList | AssignmentResult | Mapping[str, Any]


def without_contact(data: Any) -> Any:
    """``data`` (a result's dict form, or any JSON value) with every ``contact`` entry removed."""
    if isinstance(data, Mapping):
        return {k: without_contact(v) for k, v in data.items() if k != "contact"}
    if isinstance(data, list):
        return [without_contact(v) for v in data]
    return data


def with_contacts(data: Any, contacts: Mapping[str, Mapping[str, Any]]) -> Any:
    """``data`` with each entity record (a dict with ``id``, ``kind`` and ``name``) given its contact
    data from ``contacts`` (entity id → contact): results are stored without contact data, and
    staff reads add the catalog's current one."""
    if isinstance(data, Mapping):
        out = {k: with_contacts(v, contacts) for k, v in data.items() if k != "contact"}
        if data.get("kind") in KINDS and "id" in data and "name" in data and data["id"] in contacts:
            out["contact"] = dict(contacts[data["id"]])
        return out
    if isinstance(data, list):
        return [with_contacts(v, contacts) for v in data]
    return data


def entity_ids(data: Any) -> set[str]:
    """The ids of every entity record in ``data`` (see :func:`with_contacts`)."""
    found: set[str] = set()
    if isinstance(data, Mapping):
        if data.get("kind") in KINDS and "id" in data and "name" in data:
            found.add(str(data["id"]))
        for v in data.values():
            found |= entity_ids(v)
    elif isinstance(data, list):
        for v in data:
            found |= entity_ids(v)
    return found


def _as_dict(result: Result, include_contact: bool) -> Mapping[str, Any]:
    if isinstance(result, (InvitationList, AssignmentResult)):
        return result.as_dict(include_contact)
    return result if include_contact else without_contact(result)


def _is_invitations(data: Mapping[str, Any]) -> bool:
    if "invitees" in data:
        return True
    if "assignments" in data:
        return False
    raise ValidationError("Unbekannte Ergebnisform: weder Einladungsliste noch Zuordnung", [{"field": "result"}])


def _contact(entity: Mapping[str, Any] | None) -> list[str]:
    c = (entity or {}).get("contact") or {}
    return [c.get(f) or "" for f in CONTACT_FIELDS]


def _type_label(entity: Mapping[str, Any]) -> str:
    if entity.get("kind") == "advisor":
        return INVITEE_TYPE_LABELS[ADVISOR_GROUP]
    return INVITEE_TYPE_LABELS.get(entity.get("org_type") or UNTYPED_GROUP, INVITEE_TYPE_LABELS[UNTYPED_GROUP])


def _reasons(explanation: Mapping[str, Any] | None) -> str:
    return "; ".join((explanation or {}).get("reasons") or [])


def _strength(result: Mapping[str, Any]) -> list[Any]:
    """The calibrated strength („passt gut“ …) and confidence in percent of a place; empty without a calibration."""
    confidence = result.get("confidence")
    return [result.get("strength_label") or "", "" if confidence is None else round(100 * confidence)]


def invitation_table(result: InvitationList | Mapping[str, Any],
                     include_contact: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of an invitation list (the object or its ``as_dict``): the invitees, then the waitlist."""
    data = _as_dict(result, include_contact)
    header = INVITATION_HEADER + (CONTACT_COLUMNS if include_contact else [])

    def row(kind: str, p: Mapping[str, Any]) -> list[Any]:
        e = p["entity"]
        out = [kind, p["rank"], p["name"], _type_label(e), p.get("city") or "", p["score"],
               _reasons(p.get("explanation")), "; ".join(p.get("why") or []), p["id"], *_strength(p)]
        return out + (_contact(e) if include_contact else [])

    rows = [row("Einladung", p) for p in data["invitees"]] + [row("Warteliste", p) for p in data["waitlist"]]
    return header, rows


def _alternate(alt: Mapping[str, Any]) -> str:
    free = "" if alt.get("free") is None else f", frei: {alt['free']}"
    return f"{alt['name']} ({alt['id']}, {decimal(alt['score'])}{free})"


def assignment_table(result: AssignmentResult | Mapping[str, Any],
                     include_contact: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of an assignment (the object or its ``as_dict``): one row per request,
    blocked requests with the reason."""
    data = _as_dict(result, include_contact)
    header = ASSIGNMENT_HEADER + (CONTACT_COLUMNS if include_contact else [])
    rows = []
    for a in data["assignments"]:
        req = a["request"]
        where = req.get("city") or req.get("municipality") or (
            f"{req['lat']}, {req['lon']}" if req.get("lat") is not None else "")
        alternates = "; ".join(_alternate(alt) for alt in a.get("alternates") or [])
        e = a.get("advisor")
        if e is None:
            row = [req["id"], where, "", "", "", "", "", a.get("blocked") or "", alternates, "", "", ""]
            rows.append(row + ([""] * len(CONTACT_COLUMNS) if include_contact else []))
            continue
        row = [req["id"], where, a["choice_rank"], e["name"], _type_label(e), e.get("city") or "", a["score"],
               _reasons(a.get("explanation")), alternates, e["id"], *_strength(a)]
        rows.append(row + (_contact(e) if include_contact else []))
    return header, rows


def _details(data: Mapping[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    """The second sheet: constraint report, or load and blockages."""
    if _is_invitations(data):
        header = ["Vorgabe", "eingehalten", "aufgehoben", "gefordert", "erreicht", "es fehlen", "Hinweis"]
        rows = [[c["label"], "ja" if c["held"] else "nein", "ja" if c["relaxed"] else "nein", c["required"],
                 c["achieved"], c["shortfall"], c["message"]] for c in data["constraints"]]
        return "Vorgaben", header, rows
    header = ["ID", "zugeordnet", "Kapazität", "Blockade", "Anfragen", "Abhilfe"]
    rows = [[adv_id, u["assigned"], "unbegrenzt" if u["capacity"] is None else u["capacity"], "", "", ""]
            for adv_id, u in data["load"].items()]
    rows += [["", "", "", b["message"], ", ".join(b["requests"]), " oder ".join(b["relaxations"])]
             for b in data["blocked"]]
    return "Auslastung", header, rows


def _csv_cell(value: Any, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return decimal(value, 4) if decimal_comma else f"{value:.4f}"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _check_delimiter(delimiter: str) -> None:
    if delimiter not in (",", ";"):
        raise ValidationError(f"Ungültiges Trennzeichen {quoted(delimiter)}; erlaubt: „,“ oder „;“",
                              [{"field": "delimiter", "value": delimiter}])


def _write_csv(fh: Any, header: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str) -> None:
    writer = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(v, delimiter == ";") for v in row])


def write_table(header: Sequence[str], rows: Sequence[Sequence[Any]], path: str | Path, delimiter: str = ",",
                sheet: str = "Tabelle", details: tuple[str, list[str], list[list[Any]]] | None = None) -> Path:
    """Write a table as ``.csv`` or ``.xlsx`` (by extension); ``details`` adds a second XLSX sheet.

    Raises:
        ValidationError: another extension, or a delimiter other than ``,`` / ``;``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    _check_delimiter(delimiter)
    if suffix == ".csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            _write_csv(fh, header, rows, delimiter)
        return path
    if suffix == ".xlsx":
        _write_xlsx(path, [(sheet, list(header), list(rows)), *([details] if details else [])])
        return path
    raise ValidationError(f"Unbekanntes Format {quoted(suffix) if suffix else '(ohne Endung)'}: "
                          "„.csv“ oder „.xlsx“ angeben",
                          [{"field": "out", "value": str(path)}])


def _write_xlsx(target: Any, sheets: list[tuple[str, list[str], list[list[Any]]]]) -> None:
    """Write the sheets to ``target`` (a path or a binary file object)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title[:31])
        ws.append(header)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            append_text_row(ws, [None if v == "" else v for v in row])
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str):
                    cell.alignment = Alignment(wrap_text=len(cell.value) > 60, vertical="top")
                elif isinstance(cell.value, float):
                    cell.number_format = "0.00"
        ws.freeze_panes = "A2"
        if rows:
            ws.auto_filter.ref = ws.dimensions
        for j, name in enumerate(header, start=1):
            longest = max([len(str(name)), *(len(str(r[j - 1])) for r in rows[:200] if j - 1 < len(r))])
            ws.column_dimensions[get_column_letter(j)].width = min(max(10, longest + 2), 60)
    wb.save(target)


def _tables(data: Mapping[str, Any], include_contact: bool) -> tuple[str, list[str], list[list[Any]]]:
    if _is_invitations(data):
        return ("Einladungen", *invitation_table(data, include_contact))
    return ("Zuordnung", *assignment_table(data, include_contact))


def render(result: Result, fmt: str, include_contact: bool = False, delimiter: str = ",") -> bytes:
    """The export of ``result`` (an object or its ``as_dict``) as bytes; ``fmt`` is ``csv``, ``xlsx`` or ``json``.

    Contact data is written only with ``include_contact=True`` (and only where the result holds it).

    Raises:
        ValidationError: an unknown format or delimiter.
    """
    fmt = fmt.lower().lstrip(".")
    if f".{fmt}" not in EXPORT_FORMATS:
        raise ValidationError(f"Unbekanntes Exportformat {quoted(fmt) if fmt else '(leer)'}; erlaubt: "
                              f"{alternatives(f.lstrip('.') for f in EXPORT_FORMATS)}",
                              [{"field": "format", "value": fmt}])
    _check_delimiter(delimiter)
    data = _as_dict(result, include_contact)
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    sheet, header, rows = _tables(data, include_contact)
    if fmt == "csv":
        text = io.StringIO(newline="")
        _write_csv(text, header, rows, delimiter)
        return "\ufeff".encode("utf-8") + text.getvalue().encode("utf-8")   # with BOM: Excel reads UTF-8
    out = io.BytesIO()
    _write_xlsx(out, [(sheet, header, rows), _details(data)])
    return out.getvalue()


def export(result: Result, path: str | Path, include_contact: bool = False, delimiter: str = ",") -> Path:
    """Write ``result`` (an object or its ``as_dict``) to ``path``; the extension (``.csv``, ``.xlsx``,
    ``.json``) chooses the format.

    Contact data is written only with ``include_contact=True``.

    Raises:
        ValidationError: an unknown extension (the message lists the formats).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValidationError(f"Unbekanntes Exportformat {quoted(suffix) if suffix else '(ohne Endung)'}; "
                              f"erlaubt: {alternatives(EXPORT_FORMATS)}",
                              [{"field": "out", "value": str(path)}])
    path.write_bytes(render(result, suffix, include_contact, delimiter))
    return path
