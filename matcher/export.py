"""Exports staff can open: CSV, XLSX and JSON, the format chosen by the file extension.

* **CSV**: UTF-8 with BOM (Excel recognises the encoding), ``,`` by default;
  ``delimiter=";"`` for German Excel, which then also gets decimal commas.
* **XLSX** (openpyxl): the table on the first sheet with a bold, frozen,
  filterable header; a second sheet with the constraint report (invitations) or
  the advisors' load and the blockages (assignments).
* **JSON**: the whole result (``as_dict``), explanations included.

Columns: list, rank, name, type, city, score, German reasons, why chosen (or,
for assignments, the request and the alternates), id. Contact data (person,
e-mail, phone, website, address) is personal: it is written only with
``include_contact=True``.

Text cells that a spreadsheet would read as a formula (starting with ``=``,
``+``, ``-``, ``@``) are written as text: a quote is prefixed in CSV, XLSX
cells are typed as strings.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .assignment import AssignmentResult
from .errors import ValidationError
from .explain import ORG_TYPE_LABELS
from .invitations import InvitationList, Invitee

__all__ = ["EXPORT_FORMATS", "CONTACT_COLUMNS", "export", "invitation_table", "assignment_table", "write_table"]

EXPORT_FORMATS = (".csv", ".xlsx", ".json")
CONTACT_COLUMNS = ["Ansprechperson", "E-Mail", "Telefon", "Website", "Adresse"]
INVITATION_HEADER = ["Liste", "Rang", "Name", "Typ", "Ort", "Score", "Begründung", "Auswahl", "ID"]
ASSIGNMENT_HEADER = ["Anfrage", "Ort der Anfrage", "Wahl", "Name", "Typ", "Ort", "Score", "Begründung",
                     "Alternativen", "ID"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _de(x: float) -> str:
    """A score in running German text (decimal comma)."""
    return f"{x:.2f}".replace(".", ",")


def _contact(entity: Any) -> list[str]:
    c = getattr(entity, "contact", None)
    if c is None:
        return [""] * len(CONTACT_COLUMNS)
    return [c.person or "", c.email or "", c.phone or "", c.website or "", c.address or ""]


def _type_label(entity: Any) -> str:
    if entity.kind == "advisor":
        return "Beratung"
    org_type = getattr(entity, "org_type", None)
    return ORG_TYPE_LABELS["de"].get(org_type, "Organisation") if org_type else "Organisation"


def invitation_table(result: InvitationList, include_contact: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of an invitation list: the invitees, then the waitlist."""
    header = INVITATION_HEADER + (CONTACT_COLUMNS if include_contact else [])

    def row(kind: str, p: Invitee) -> list[Any]:
        e = p.entity
        out = [kind, p.rank, e.name, _type_label(e), e.city or "", round(p.score, 4),
               "; ".join(p.explanation.reasons), "; ".join(p.why), e.id]
        return out + (_contact(e) if include_contact else [])

    rows = [row("Einladung", p) for p in result.invitees] + [row("Warteliste", p) for p in result.waitlist]
    return header, rows


def assignment_table(result: AssignmentResult, include_contact: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of an assignment: one row per request, blocked requests with the reason."""
    header = ASSIGNMENT_HEADER + (CONTACT_COLUMNS if include_contact else [])
    rows = []
    for a in result.assignments:
        req = a.request
        where = req.city or req.municipality or (f"{req.lat}, {req.lon}" if req.lat is not None else "")
        alternates = "; ".join(f"{alt.advisor.name} ({alt.advisor.id}, {_de(alt.score)}"
                               f"{'' if alt.free is None else f', frei: {alt.free}'})" for alt in a.alternates)
        if a.advisor is None:
            row = [req.id, where, "", "", "", "", "", a.blocked or "", alternates, ""]
            rows.append(row + ([""] * len(CONTACT_COLUMNS) if include_contact else []))
            continue
        e = a.advisor
        reasons = "; ".join(a.explanation.reasons) if a.explanation else ""
        row = [req.id, where, a.choice_rank, e.name, _type_label(e), e.city or "", round(a.score, 4), reasons,
               alternates, e.id]
        rows.append(row + (_contact(e) if include_contact else []))
    return header, rows


def _details(result: InvitationList | AssignmentResult) -> tuple[str, list[str], list[list[Any]]]:
    """The second sheet: constraint report, or load and blockages."""
    if isinstance(result, InvitationList):
        header = ["Vorgabe", "eingehalten", "aufgehoben", "gefordert", "erreicht", "es fehlen", "Hinweis"]
        rows = [[c.label, "ja" if c.held else "nein", "ja" if c.relaxed else "nein", c.required, c.achieved,
                 c.shortfall, c.message] for c in result.constraints]
        return "Vorgaben", header, rows
    header = ["ID", "zugeordnet", "Kapazität", "Blockade", "Anfragen", "Abhilfe"]
    rows = [[adv_id, used, "unbegrenzt" if cap is None else cap, "", "", ""]
            for adv_id, (used, cap) in result.load.items()]
    rows += [["", "", "", b.message, ", ".join(b.requests), " oder ".join(b.relaxations)] for b in result.blocked]
    return "Auslastung", header, rows


def _csv_cell(value: Any, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.4f}"
        return text.replace(".", ",") if decimal_comma else text
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_table(header: Sequence[str], rows: Sequence[Sequence[Any]], path: str | Path, delimiter: str = ",",
                sheet: str = "Tabelle", details: tuple[str, list[str], list[list[Any]]] | None = None) -> Path:
    """Write a table as ``.csv`` or ``.xlsx`` (by extension); ``details`` adds a second XLSX sheet.

    Raises:
        ValidationError: another extension, or a delimiter other than ``,`` / ``;``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if delimiter not in (",", ";"):
        raise ValidationError("Trennzeichen: „,“ oder „;“", [{"field": "delimiter", "value": delimiter}])
    if suffix == ".csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
            writer.writerow(header)
            for row in rows:
                writer.writerow([_csv_cell(v, delimiter == ";") for v in row])
        return path
    if suffix == ".xlsx":
        _write_xlsx(path, [(sheet, list(header), list(rows)), *([details] if details else [])])
        return path
    raise ValidationError(f"Unbekanntes Format {suffix or '(ohne Endung)'}: .csv oder .xlsx angeben",
                          [{"field": "out", "value": str(path)}])


def _write_xlsx(path: Path, sheets: list[tuple[str, list[str], list[list[Any]]]]) -> None:
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
            ws.append([None if v == "" else v for v in row])
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # never a formula, whatever the text starts with
                    cell.alignment = Alignment(wrap_text=len(cell.value) > 60, vertical="top")
                elif isinstance(cell.value, float):
                    cell.number_format = "0.00"
        ws.freeze_panes = "A2"
        if rows:
            ws.auto_filter.ref = ws.dimensions
        for j, name in enumerate(header, start=1):
            longest = max([len(str(name)), *(len(str(r[j - 1])) for r in rows[:200] if j - 1 < len(r))])
            ws.column_dimensions[get_column_letter(j)].width = min(max(10, longest + 2), 60)
    wb.save(path)


def export(result: InvitationList | AssignmentResult, path: str | Path, include_contact: bool = False,
           delimiter: str = ",") -> Path:
    """Write ``result`` to ``path``; the extension (``.csv``, ``.xlsx``, ``.json``) chooses the format.

    Contact data is written only with ``include_contact=True``.

    Raises:
        ValidationError: an unknown extension (the message lists the formats).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValidationError(f"Unbekanntes Exportformat {suffix or '(ohne Endung)'}: {', '.join(EXPORT_FORMATS)}",
                              [{"field": "out", "value": str(path)}])
    if suffix == ".json":
        path.write_text(json.dumps(result.as_dict(include_contact), ensure_ascii=False, indent=2, default=str),
                        encoding="utf-8")
        return path
    if isinstance(result, InvitationList):
        header, rows = invitation_table(result, include_contact)
        sheet = "Einladungen"
    else:
        header, rows = assignment_table(result, include_contact)
        sheet = "Zuordnung"
    return write_table(header, rows, path, delimiter=delimiter, sheet=sheet, details=_details(result))

