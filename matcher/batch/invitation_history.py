"""Past invitations: reading a history file, and counting each actor's recent invitations
for the exposure penalty of :class:`~matcher.batch.invitation_types.ExposurePolicy`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from matcher.batch.invitation_types import InvitationRecord
from matcher.domain.loading import read_text
from matcher.errors import CatalogError, ValidationError

__all__ = ["read_history", "recent_invitations"]


def _entries(history: Iterable[Any]) -> Iterator[tuple[str, str, dt.date]]:
    """(entity_id, event_id, date) of each history entry; a bad entry is a ValidationError."""
    for i, h in enumerate(history):
        if isinstance(h, InvitationRecord):
            yield h.entity_id, h.event_id, h.date
            continue
        try:
            entity_id, event_id, date = h
            if type(date) is not dt.date:  # the common case costs one check
                if isinstance(date, str):
                    date = dt.date.fromisoformat(date)
                elif isinstance(date, dt.datetime):
                    date = date.date()
                elif not isinstance(date, dt.date):
                    raise TypeError
        except (TypeError, ValueError):
            raise ValidationError("Einladungshistorie: jeder Eintrag braucht entity_id, event_id und ein Datum "
                                  "(JJJJ-MM-TT)",
                                  [{"field": "history", "index": i, "value": str(h)[:80]}]) from None
        yield entity_id, event_id, date


def read_history(path: str | Path) -> list[InvitationRecord]:
    """Read an invitation history: CSV with the columns ``entity_id``, ``event_id``, ``date``
    (``;``, ``,`` or tab; dates ``JJJJ-MM-TT``), or JSON Lines with those keys.

    Raises:
        CatalogError: unreadable file or bad lines (nothing is returned).
    """
    path = Path(path)
    text = read_text(path, "Einladungshistorie")
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        first = text.split("\n", 1)[0]
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=max([";", ",", "\t"], key=first.count))
        rows = [(k, dict(r)) for k, r in enumerate(reader, start=2)]
    else:
        for k, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((k, json.loads(line)))
                except json.JSONDecodeError:
                    rows.append((k, {}))
    out, details = [], []
    for line, rec in rows:
        try:
            out.append(InvitationRecord(str(rec["entity_id"]).strip(), str(rec["event_id"]).strip(),
                                        dt.date.fromisoformat(str(rec["date"]).strip())))
        except (KeyError, TypeError, ValueError, AttributeError):
            details.append({"file": str(path), "line": line,
                            "message": "entity_id, event_id und date (JJJJ-MM-TT) erwartet"})
    if details:
        raise CatalogError(f"{path}: {len(details)} fehlerhafte Zeile(n) in der Einladungshistorie", details)
    return out


def recent_invitations(history: Iterable[Any], event_id: str, as_of: dt.date, window_days: int) -> Counter[str]:
    """Invitations per entity to *other* events within ``window_days`` of ``as_of`` (one per event)."""
    lo = as_of - dt.timedelta(days=window_days)
    seen = {(str(who), str(what)) for who, what, date in _entries(history) if date >= lo and str(what) != event_id}
    return Counter(who for who, _ in seen)
