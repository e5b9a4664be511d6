"""Reading record files all or nothing: every bad line reported, nothing returned on any.

A catalog, a batch of requests or a query file is read into records first
(``(line number, record, problem)`` from a JSON Lines, JSON or CSV reader);
:func:`validate_records` then checks every record rather than stopping at the
first bad one, so that the person fixing the file sees every problem at once,
and the caller rejects the whole file when there is any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError as PydanticValidationError

from matcher.domain.messages import quoted, validation_details
from matcher.errors import CatalogError

__all__ = ["Record", "read_text", "reject_json_constant", "validate_records"]

T = TypeVar("T")
# (line number, the record as read or None, why the line could not be read or None)
Record = tuple[int, Any, str | None]


def read_text(path: Path, what: str = "Datei") -> str:
    """The text of a UTF-8 file (a byte order mark is dropped).

    Raises:
        CatalogError: the file cannot be read, or is not UTF-8 (the message names the line);
            ``what`` names the file in it ("Datei", "Einladungshistorie").
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{what} {path} kann nicht gelesen werden: {exc.strerror}", [{"file": str(path)}]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CatalogError(f"{what} {path} ist nicht UTF-8-kodiert (Zeile {line}); bitte als UTF-8 speichern",
                           [{"file": str(path), "line": line, "message": "kein UTF-8"}]) from None


def reject_json_constant(name: str) -> Any:
    """``parse_constant`` for :func:`json.loads`: ``NaN`` and ``Infinity`` are no numbers in our files."""
    raise ValueError(f"{name} ist keine gültige Zahl")


def validate_records(records: Iterable[Record], parse: Callable[[Any], T], *, unique_ids: bool = True,
                     **where: Any) -> tuple[list[T], list[dict[str, Any]]]:
    """Parse every record with ``parse`` (a pydantic validation), collecting the problems of all of them.

    Args:
        records: ``(line, record, problem)``; a record with a problem is reported, not parsed.
        parse: turns a record into an item; raises pydantic's ``ValidationError`` for a bad one.
        unique_ids: report an item whose ``id`` an earlier line already had.
        where: what each problem names besides its line, e.g. ``file="catalog.jsonl"``.

    Returns:
        The items of the good records, and one detail (``line``, ``field``, German ``message``)
        per problem. The caller returns nothing when there is any: all or nothing.
    """
    items: list[T] = []
    details: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for lineno, rec, problem in records:
        at = {**where, "line": lineno}
        if problem:
            details.append({**at, "field": "(Zeile)", "message": problem})
            continue
        try:
            item = parse(rec)
        except PydanticValidationError as exc:
            details.extend(validation_details(exc, **at))
            continue
        if unique_ids:
            item_id = item.id  # type: ignore[attr-defined]
            if item_id in seen:
                details.append({**at, "field": "id",
                                "message": f"doppelte id {quoted(item_id)} (schon in Zeile {seen[item_id]})"})
                continue
            seen[item_id] = lineno
        items.append(item)
    return items, details
