"""Profiles of the four entity kinds, the query, and loading them from files.

The fields are exactly those of the shared judged-data format (``FORMAT.md``)
plus what the product needs beyond it: contact data (personal, shown only to
staff), several evidence texts per profile (an advisor's past engagements, an
organisation's projects) and recorded partnerships.

Unknown fields are rejected by name; a file with one bad line is rejected as a
whole, with the file, line and field of every problem.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from matcher.domain.loading import Record, read_text, reject_json_constant, validate_records
from matcher.domain.messages import json_error_reason, validation_details
from matcher.errors import CatalogError, ValidationError

__all__ = [
    "KINDS",
    "ORG_TYPES",
    "TASKS",
    "Contact",
    "Advisor",
    "Organisation",
    "Event",
    "Municipality",
    "Entity",
    "Query",
    "parse_entity",
    "load_catalog",
    "load_queries",
    "load_qrels",
    "pydantic_details",
]

KINDS = ("advisor", "organisation", "event", "municipality")
ORG_TYPES = ("migrant_organisation", "civil_society", "municipal_office", "institution")
TASKS = ("advisors", "partners", "events", "invitations")

MAX_TEXT = 5000          # one description / need text
MAX_SHORT = 200          # names, cities, topics
MAX_LIST = 50            # topics, languages, regions, ...

EntityId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"),
]
# Blanks as pydantic strips them (Unicode White_Space, which Rust's and Python's regex `\s` also mean, but a
# JSON Schema validator's ECMA `\s` does not quite: it lacks U+0085 and has U+FEFF). Patterns the document shows
# spell the class out, so that the document and the server read every string the same way.
WS = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# a character that stripping leaves: "not only blanks", where the server strips a string and wants it non-empty
NOT_BLANK = rf"[^{WS}]"
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SHORT,
                                             pattern=NOT_BLANK)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TEXT)]
# the JSON schema states what is accepted (any case, surrounding blanks); validation then normalises
def _code(pattern: str, case: str) -> Any:
    """A code with blanks around it, in any case: normalised; anything else is left for the pattern to refuse."""
    exact = re.compile(rf"[{WS}]*({pattern})[{WS}]*")

    def normalise(value: Any) -> Any:
        found = exact.fullmatch(value) if isinstance(value, str) else None
        return getattr(found.group(1), case)() if found else value
    return BeforeValidator(normalise)


# the JSON schema states what is accepted (any case, surrounding blanks); validation then normalises
LangCode = Annotated[str, _code("[A-Za-z]{2,3}", "lower"), StringConstraints(pattern=r"^[a-z]{2,3}$"),
                     WithJsonSchema({"type": "string", "pattern": rf"^[{WS}]*[A-Za-z]{{2,3}}[{WS}]*$"})]
CountryCode = Annotated[str, _code("[A-Za-z]{2}", "upper"), StringConstraints(pattern=r"^[A-Z]{2}$"),
                        WithJsonSchema({"type": "string", "pattern": rf"^[{WS}]*[A-Za-z]{{2}}[{WS}]*$"})]
OrgType = Literal["migrant_organisation", "civil_society", "municipal_office", "institution"]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` (what the JSON schema's ``format: date`` says): no Unix seconds, no ``0``, no times."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value} ist kein Kalenderdatum") from None
    raise ValueError("Datum im Format JJJJ-MM-TT erwartet, z. B. 2025-03-14")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


# Cross-field rules as JSON Schema (OpenAPI 3.1), so the document says what the validators below enforce.
# ``properties`` only constrains keys that are present: "absent or null" is {"type": "null"} under properties.
LAT_LON_TOGETHER: dict[str, Any] = {"anyOf": [
    {"properties": {"lat": {"type": "null"}, "lon": {"type": "null"}}},
    {"required": ["lat", "lon"], "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}},
]}
HAS_TEXT = {"type": "string", "pattern": NOT_BLANK}   # a string that is not empty once blanks are stripped


def schema_rules(*rules: dict[str, Any]) -> dict[str, Any]:
    """``json_schema_extra`` for a model with these cross-field rules (all must hold)."""
    return rules[0] if len(rules) == 1 else {"allOf": list(rules)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)


# blanks around it are stripped; none inside
EMAIL_PATTERN = rf"^[{WS}]*[^@{WS}]+@[^@{WS}]+\.[^@{WS}]+[{WS}]*$"


class Contact(_Strict):
    """Personal contact data. Shown only to staff (editor/admin keys), never ranked on."""

    person: Annotated[str, StringConstraints(max_length=MAX_SHORT)] | None = None
    email: Annotated[str, StringConstraints(max_length=MAX_SHORT, pattern=EMAIL_PATTERN)] | None = None
    phone: Annotated[str, StringConstraints(max_length=60)] | None = None
    website: Annotated[str, StringConstraints(max_length=MAX_SHORT)] | None = None
    address: Annotated[str, StringConstraints(max_length=MAX_SHORT)] | None = None


class _EntityBase(_Strict):
    id: EntityId
    name: ShortText
    description: LongText = ""
    city: Annotated[str, StringConstraints(max_length=MAX_SHORT)] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    topics: Annotated[list[ShortText], Field(max_length=MAX_LIST)] = []
    languages: Annotated[list[LangCode], Field(max_length=MAX_LIST)] = []
    # product fields beyond FORMAT.md
    evidence: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=NOT_BLANK)]], Field(max_length=30)
    ] = []
    contact: Contact | None = None
    partners: Annotated[list[EntityId], Field(max_length=500)] = []

    model_config = ConfigDict(json_schema_extra=LAT_LON_TOGETHER)

    @model_validator(mode="after")
    def _lat_lon_together(self) -> _EntityBase:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat und lon müssen zusammen angegeben werden")
        return self

    @field_validator("languages", "topics")
    @classmethod
    def _dedupe(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))

    def texts(self) -> list[str]:
        """The profile's free texts: description first, then evidence."""
        return [t for t in [self.description, *self.evidence] if t]


class Advisor(_EntityBase):
    kind: Literal["advisor"]
    regions: Annotated[list[ShortText], Field(max_length=MAX_LIST)] = []
    capacity: Annotated[int, Field(ge=0, le=1000)] | None = None


class Organisation(_EntityBase):
    kind: Literal["organisation"]
    org_type: OrgType | None = None
    scope: Literal["local", "regional", "international"] | None = None
    partner_countries: Annotated[list[CountryCode], Field(max_length=MAX_LIST)] = []


class Event(_EntityBase):
    kind: Literal["event"]
    date: IsoDate | None = None
    target_groups: Annotated[list[OrgType], Field(max_length=4)] = []
    capacity: Annotated[int, Field(ge=0, le=1_000_000)] | None = None


class Municipality(_EntityBase):
    kind: Literal["municipality"]


Entity = Annotated[Advisor | Organisation | Event | Municipality, Field(discriminator="kind")]
_ENTITY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Entity)


class Query(_Strict):
    """One request to the engine, in the shape of FORMAT.md's queries.jsonl.

    ``from`` is spelled ``from_`` in Python (a keyword) and ``from`` in JSON.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    id: Annotated[str, StringConstraints(max_length=MAX_SHORT)] | None = None
    task: Literal["advisors", "partners", "events", "invitations"]
    text: LongText | None = None
    from_: EntityId | None = Field(default=None, alias="from")
    city: Annotated[str, StringConstraints(max_length=MAX_SHORT)] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    languages: Annotated[list[LangCode], Field(max_length=MAX_LIST)] = []
    # product options beyond FORMAT.md
    require_languages: bool = False
    as_of: IsoDate | None = None
    org_types: Annotated[list[OrgType], Field(max_length=4)] = []

    @model_validator(mode="after")
    def _has_text_or_from(self) -> Query:
        if not (self.text and self.text.strip()) and not self.from_:
            raise ValueError("Bitte einen Text (text) oder eine anfragende Stelle (from) angeben")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat und lon müssen zusammen angegeben werden")
        return self


def pydantic_details(exc: PydanticValidationError, **where: Any) -> list[dict[str, Any]]:
    """Turn a pydantic error into our ``details`` list: field path and German message
    (:func:`matcher.domain.messages.validation_details`; ``(Eintrag)`` names the record as a whole)."""
    return validation_details(exc, **where)


def parse_entity(record: Any) -> Advisor | Organisation | Event | Municipality:
    """Validate one entity record (a dict) and return the typed profile.

    Raises:
        ValidationError: with one detail per bad field.
    """
    try:
        return _ENTITY_ADAPTER.validate_python(record)
    except PydanticValidationError as exc:
        raise ValidationError("Ungültiger Eintrag", pydantic_details(exc)) from None


def _read_records(path: Path) -> Iterator[Record]:
    """The records of a JSON Lines file or a JSON list, with the problem of each line that is not JSON."""
    text = read_text(path)
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield exc.lineno, None, f"ungültiges JSON (Spalte {exc.colno}): {json_error_reason(exc)}"
            return
        if not isinstance(data, list):
            yield 1, None, "eine JSON-Datei muss eine Liste von Einträgen enthalten"
            return
        for i, rec in enumerate(data, start=1):
            yield i, rec, None
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line, parse_constant=reject_json_constant), None
        except (json.JSONDecodeError, ValueError) as exc:
            yield lineno, None, f"ungültiges JSON: {json_error_reason(exc)}"


def load_catalog(path: str | Path) -> list[Advisor | Organisation | Event | Municipality]:
    """Load a catalog (JSON Lines, or a JSON list) of entities.

    All or nothing: if any line is bad, nothing is returned and
    :class:`CatalogError` lists every bad line with file, line and field.
    """
    path = Path(path)
    entities, details = validate_records(_read_records(path), _ENTITY_ADAPTER.validate_python, file=str(path))
    if details:
        raise CatalogError(f"{path}: {len(details)} fehlerhafte Angabe(n); nichts wurde geladen", details)
    return entities


def load_queries(path: str | Path) -> list[Query]:
    """Load queries.jsonl (all or nothing, like :func:`load_catalog`)."""
    path = Path(path)
    queries, details = validate_records(_read_records(path), Query.model_validate, unique_ids=False, file=str(path))
    if details:
        raise CatalogError(f"{path}: {len(details)} fehlerhafte Angabe(n); nichts wurde geladen", details)
    return queries


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Load qrels.tsv: ``query_id<TAB>entity_id<TAB>grade[<TAB>note]`` → {query: {entity: grade}}.

    The optional 4th column is a free-text note defending the judgement (our own judged sets carry
    one, FORMAT.md's three columns stay valid); it is read past, not returned.
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    details = []
    lines = read_text(path).splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) not in (3, 4):
            details.append({"file": str(path), "line": lineno, "field": "(Zeile)",
                            "message": f"erwartet 3 oder 4 Tab-getrennte Spalten (query_id, entity_id, grade, "
                                       f"optional eine Notiz), gefunden {len(parts)}"})
            continue
        try:
            grade = int(parts[2])
        except ValueError:
            details.append({"file": str(path), "line": lineno, "field": "grade", "message": "keine ganze Zahl"})
            continue
        qrels.setdefault(parts[0].strip(), {})[parts[1].strip()] = grade
    if details:
        raise CatalogError(f"{path}: {len(details)} fehlerhafte Zeile(n); nichts wurde geladen", details)
    return qrels
