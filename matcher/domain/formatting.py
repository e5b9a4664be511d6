"""Numbers and dates the German way, for every text a person reads.

One definition each, so that a score reads „0,83“ on the command line, in an
export, in a reason and in the landscape report alike. Machine formats (JSON,
CSV with ``,`` as delimiter) keep the decimal point and ISO dates.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["decimal", "thousands", "german_date", "capitalised"]


def decimal(x: float, places: int | None = 2) -> str:
    """``x`` with a decimal comma: ``places`` digits after it, or as short as it goes with ``None``.

    Example:
        >>> decimal(0.8312), decimal(40.0, 0), decimal(2.5, None), decimal(30.0, None)
        ('0,83', '40', '2,5', '30')
    """
    text = f"{x:g}" if places is None else f"{x:.{places}f}"
    return text.replace(".", ",")


def thousands(n: int) -> str:
    """An integer with German thousands separators: ``5000`` → ``"5.000"``."""
    return f"{n:,}".replace(",", ".")


def german_date(day: dt.date) -> str:
    """``TT.MM.JJJJ``, e.g. ``14.03.2025``."""
    return day.strftime("%d.%m.%Y")


def capitalised(text: str) -> str:
    """``text`` with its first letter upper case, for a heading or a sentence start ("kommunale Stelle"
    → "Kommunale Stelle"); unlike ``str.capitalize`` the rest stays as it is."""
    return text[:1].upper() + text[1:]
