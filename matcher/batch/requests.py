"""Municipality requests for advisors, and reading a batch of them from a file.

A request is what a municipality asks the advisor pool for: a need in free
text, a place, the languages the advice must be given in, and advisors it must
not get (conflicts of interest). Files are JSON Lines (or a JSON list) or CSV,
read all or nothing like catalogs: one bad line and nothing is loaded, the
error lists every bad line with its field and a German message.

CSV follows the catalog conventions: one header row with the field names,
``;``, ``,`` or tab as delimiter (detected from the header), list fields
(``languages``, ``conflicts``) separated by ``|``, an empty cell means "not
given", ``lat``/``lon`` accept a decimal comma.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from matcher.domain.catalog_io import csv_records
from matcher.domain.loading import Record, read_text, validate_records
from matcher.domain.messages import json_error_reason
from matcher.domain.schema import (
    HAS_TEXT,
    LAT_LON_TOGETHER,
    MAX_LIST,
    MAX_SHORT,
    EntityId,
    LangCode,
    Latitude,
    Longitude,
    LongText,
    Query,
    schema_rules,
)
from matcher.errors import CatalogError

__all__ = ["AdvisorRequest", "load_requests", "REQUEST_COLUMNS"]

REQUEST_COLUMNS = {"id": False, "text": False, "city": False, "lat": False, "lon": False,
                   "languages": True, "municipality": False, "conflicts": True}


class AdvisorRequest(BaseModel):
    """One municipality's request for an advisor.

    ``languages`` are *required*: only advisors who speak all of them are
    eligible. ``municipality`` is the asking municipality's catalog id (its
    profile then counts like a ``from`` query, and its place is used when the
    request names none). ``conflicts`` lists advisor ids that must not be
    assigned to this request.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=schema_rules(
        {"anyOf": [{"required": ["text"], "properties": {"text": HAS_TEXT}},
                   {"required": ["municipality"], "properties": {"municipality": {"type": "string"}}}]},
        LAT_LON_TOGETHER))

    id: EntityId
    text: LongText = ""
    city: Annotated[str, StringConstraints(max_length=MAX_SHORT)] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    languages: Annotated[list[LangCode], Field(max_length=MAX_LIST)] = []
    municipality: EntityId | None = None
    conflicts: Annotated[list[EntityId], Field(max_length=500)] = []

    @model_validator(mode="after")
    def _text_or_municipality(self) -> AdvisorRequest:
        if not self.text and not self.municipality:
            raise ValueError("Bitte einen Text (text) oder die anfragende Kommune (municipality) angeben")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat und lon müssen zusammen angegeben werden")
        self.languages = list(dict.fromkeys(self.languages))
        self.conflicts = list(dict.fromkeys(self.conflicts))
        return self

    def query(self) -> Query:
        """The engine query of this request (task ``advisors``; languages as a soft signal too)."""
        return Query.model_validate({"id": self.id, "task": "advisors", "text": self.text or None,
                                     "from": self.municipality, "city": self.city, "lat": self.lat,
                                     "lon": self.lon, "languages": self.languages})


def load_requests(path: str | Path) -> list[AdvisorRequest]:
    """Read requests from ``.csv`` (rules above) or JSON Lines / a JSON list (any other extension).

    Raises:
        CatalogError: the file cannot be read or any line is bad (nothing is returned);
            ``details`` hold ``file``, ``line``, ``field`` and ``message`` per problem.
    """
    path = Path(path)
    text = read_text(path)
    records = _csv_records(text) if path.suffix.lower() == ".csv" else _json_records(text)
    requests, details = validate_records(records, AdvisorRequest.model_validate, file=str(path))
    if details:
        raise CatalogError(f"{path}: {len(details)} fehlerhafte Angabe(n); nichts wurde geladen", details)
    if not requests:
        raise CatalogError(f"{path} enthält keine Anfragen",
                           [{"file": str(path), "field": "(Datei)", "message": "leer"}])
    return requests


def _json_records(text: str) -> Iterator[Record]:
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield exc.lineno, None, f"ungültiges JSON (Spalte {exc.colno}): {json_error_reason(exc)}"
            return
        for i, rec in enumerate(data, start=1):
            yield i, rec, None if isinstance(rec, dict) else "jeder Eintrag muss ein JSON-Objekt {…} sein"
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            yield lineno, None, f"ungültiges JSON (Spalte {exc.colno}): {json_error_reason(exc)}"
            continue
        yield lineno, rec, None if isinstance(rec, dict) else "jede Zeile muss ein JSON-Objekt {…} sein"


def _csv_records(text: str) -> Iterator[Record]:
    return csv_records(text, REQUEST_COLUMNS)
