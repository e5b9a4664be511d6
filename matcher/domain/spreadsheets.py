"""Spreadsheet cells that stay text: what every XLSX export of the project writes with.

A name that starts with ``=``, ``+``, ``-`` or ``@`` would be read as a formula
(formula injection), and control characters make openpyxl refuse the whole sheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["append_text_row"]


def append_text_row(ws: Any, values: Sequence[Any]) -> None:
    """Append a row to an openpyxl sheet with every string kept as plain text.

    Control characters that a worksheet cannot hold (openpyxl refuses them:
    a name with a bell or escape character would break the whole export) are
    dropped, and no string becomes a formula, whatever it starts with.
    """
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    ws.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in values])
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"  # never a formula
