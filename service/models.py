"""Request and response models of the HTTP API (pydantic v2).

The same models validate requests, shape responses and generate
``/openapi.json``. Requests reject unknown fields by name; limits on text
length, list sizes and ``k`` live here.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator

from matcher.domain.messages import FieldRuleError
from matcher.domain.schema import (
    HAS_TEXT,
    LAT_LON_TOGETHER,
    MAX_LIST,
    MAX_SHORT,
    MAX_TEXT,
    NOT_BLANK,
    Entity,
    EntityId,
    IsoDate,
    LangCode,
    Latitude,
    Longitude,
    OrgType,
    Query,
    ShortText,
    schema_rules,
)
from matcher.store import OUTCOMES

MAX_K = 100          # results per recommendation
MAX_PAGE = 500       # entities per list page

K = Annotated[int, Field(ge=1, le=MAX_K, description=f"Anzahl der Ergebnisse (1–{MAX_K})")]
NeedText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TEXT),
                     Field(description=f"Der Bedarf in eigenen Worten (höchstens {MAX_TEXT} Zeichen)")]
City = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_SHORT)]
Languages = Annotated[list[LangCode],
                     Field(max_length=MAX_LIST, description='Sprachen (ISO 639-1), z. B. ["de", "tr"]')]
ReasonLanguage = Annotated[Literal["de", "en"], Field(description="Sprache der Begründungen")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _lat_lon_together(lat: float | None, lon: float | None) -> None:
    if (lat is None) != (lon is None):
        raise FieldRuleError("lat und lon müssen zusammen angegeben werden", "lon" if lon is None else "lat")


# ----------------------------------------------------------------------------- recommendations
class AdvisorsRequest(_Request):
    """Beraterinnen und Berater für den Bedarf einer Kommune."""

    model_config = ConfigDict(json_schema_extra=schema_rules(
        {"anyOf": [{"required": ["text"], "properties": {"text": HAS_TEXT}},
                   {"required": ["municipality"], "properties": {"municipality": {"type": "string"}}}]},
        LAT_LON_TOGETHER))

    text: NeedText | None = None
    municipality: EntityId | None = Field(default=None, description="id der anfragenden Kommune")
    city: City | None = Field(default=None, description="Ort der Anfrage, wenn keine Kommune angegeben ist: eine "
                                                     "Stadt, ein Kreis oder eine Region in NRW; ein unbekannter Ort "
                                                     "ist 422 (mit Vorschlägen)")
    lat: Latitude | None = None
    lon: Longitude | None = None
    languages: Languages = []
    require_languages: bool = Field(default=False, description="Nur Personen, die alle Sprachen sprechen")
    k: K = 10
    lang: ReasonLanguage = "de"

    @model_validator(mode="after")
    def _need_or_municipality(self) -> AdvisorsRequest:
        if not self.text and not self.municipality:
            raise FieldRuleError("Bitte den Bedarf (text) oder die anfragende Kommune (municipality) angeben", "text")
        _lat_lon_together(self.lat, self.lon)
        return self

    def to_query(self) -> Query:
        return Query(task="advisors", text=self.text, from_=self.municipality, city=self.city, lat=self.lat,
                     lon=self.lon, languages=self.languages, require_languages=self.require_languages)


class InlineProfile(_Request):
    """Ein Profil, das (noch) nicht im Katalog steht."""

    model_config = ConfigDict(json_schema_extra=schema_rules(
        {"anyOf": [{"required": ["description"], "properties": {"description": HAS_TEXT}},
                   {"required": ["topics"], "properties": {"topics": {"type": "array", "minItems": 1}}},
                   {"required": ["name"], "properties": {"name": {"type": "string"}}}]},
        LAT_LON_TOGETHER))

    name: ShortText | None = None
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TEXT)] = ""
    topics: Annotated[list[ShortText], Field(max_length=MAX_LIST)] = []
    languages: Languages = []
    city: City | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    org_type: OrgType | None = Field(default=None, description="Art des Akteurs (für Veranstaltungen: darf er "
                                                               "teilnehmen?)")

    @model_validator(mode="after")
    def _has_content(self) -> InlineProfile:
        if not (self.description or self.topics or self.name):
            raise FieldRuleError("Das Profil braucht eine Beschreibung, Themen oder einen Namen", "description")
        _lat_lon_together(self.lat, self.lon)
        return self

    def as_text(self) -> str:
        parts = [f"{self.name.rstrip('.')}." if self.name else "", self.description,
                 ("Themen: " + ", ".join(self.topics) + ".") if self.topics else ""]
        return " ".join(p for p in parts if p)


class PartnersRequest(_Request):
    """Partnerorganisationen für eine Organisation (aus dem Katalog oder als Profil)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["organisation"], "properties": {"organisation": {"type": "string"},
                                                      "profile": {"type": "null"}}},
        {"required": ["profile"], "properties": {"profile": {"type": "object"},
                                                 "organisation": {"type": "null"}}}]})

    organisation: EntityId | None = Field(default=None, description="id der suchenden Organisation")
    profile: InlineProfile | None = None
    text: NeedText | None = None
    org_types: Annotated[list[OrgType], Field(max_length=4, description="Nur diese Arten von Akteuren")] = []
    languages: Languages = []
    require_languages: bool = False
    k: K = 10
    lang: ReasonLanguage = "de"

    @model_validator(mode="after")
    def _one_asker(self) -> PartnersRequest:
        if (self.organisation is None) == (self.profile is None):
            raise FieldRuleError("Bitte genau eines angeben: organisation (id) oder profile", "organisation")
        return self

    def to_query(self) -> Query:
        p = self.profile
        # need and profile together may pass the query's limit: the rest adds nothing the engine reads
        # (the embedders see the first few hundred words), so it is cut rather than refused
        text = " ".join(t for t in [self.text, p.as_text() if p else None] if t)[:MAX_TEXT] or None
        return Query(task="partners", text=text, from_=self.organisation, city=p.city if p else None,
                     lat=p.lat if p else None, lon=p.lon if p else None,
                     languages=list(dict.fromkeys([*self.languages, *(p.languages if p else [])])),
                     require_languages=self.require_languages, org_types=self.org_types)


class EventsRequest(_Request):
    """Veranstaltungen für eine Organisation: aus dem Katalog (organisation), beschrieben (profile: Text, Ort,
    Art) oder nur mit einem Bedarf (text)."""

    model_config = ConfigDict(json_schema_extra=schema_rules(
        {"anyOf": [{"required": ["organisation"], "properties": {"organisation": {"type": "string"}}},
                   {"required": ["profile"], "properties": {"profile": {"type": "object"}}},
                   {"required": ["text"], "properties": {"text": HAS_TEXT}}]},
        {"not": {"required": ["organisation", "profile"],
                 "properties": {"organisation": {"type": "string"}, "profile": {"type": "object"}}}}))

    organisation: EntityId | None = Field(default=None, description="id der Organisation im Katalog")
    profile: InlineProfile | None = Field(default=None, description="Die Organisation, beschrieben statt aus dem "
                                                                    "Katalog")
    text: NeedText | None = None
    as_of: IsoDate | None = Field(default=None, description="Stichtag: frühere Termine entfallen (Standard: heute)")
    k: K = 10
    lang: ReasonLanguage = "de"

    @model_validator(mode="after")
    def _one_asker(self) -> EventsRequest:
        if self.organisation is not None and self.profile is not None:
            raise FieldRuleError("Bitte nur eines angeben: organisation (id) oder profile", "profile")
        if self.organisation is None and self.profile is None and not self.text:
            raise FieldRuleError("Bitte die Organisation (organisation), ihr Profil (profile) oder den Bedarf "
                                 "(text) angeben", "text")
        return self

    def to_query(self) -> Query:
        p = self.profile
        text = " ".join(t for t in [self.text, p.as_text() if p else None] if t)[:MAX_TEXT] or None
        return Query(task="events", text=text, from_=self.organisation, as_of=self.as_of,
                     city=p.city if p else None, lat=p.lat if p else None, lon=p.lon if p else None,
                     languages=list(p.languages) if p else [], asker_type=p.org_type if p else None)


class InviteesRequest(_Request):
    """Einzuladende Organisationen für eine Veranstaltung."""

    event: EntityId = Field(description="id der Veranstaltung")
    org_types: Annotated[list[OrgType], Field(max_length=4)] = []
    include_municipalities: bool = Field(default=False, description="Auch Kommunen (sonst nur, wo die "
                                                                    "Veranstaltung kommunale Akteure sucht)")
    reach_km: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = Field(
        default=None, description="Nur Kandidaten so nah am Veranstaltungsort (km; Standard: reach_km der "
                                  "Veranstaltung)")
    k: K = 10
    lang: ReasonLanguage = "de"

    def to_query(self) -> Query:
        return Query(task="invitations", from_=self.event, org_types=self.org_types, reach_km=self.reach_km,
                     kinds=["organisation", "municipality"] if self.include_municipalities else [])


class ExplanationOut(BaseModel):
    contributions: dict[str, float] = Field(description="Beitrag jedes Signals zur Punktzahl")
    reasons: list[str] = Field(description="1–3 kurze Begründungen")
    matched_terms: list[str] = []
    matched_topics: list[str] = []
    shared_languages: list[str] = []
    distance_km: float | None = None
    best_passage: str | None = None


class EntityOut(RootModel[Entity]):
    """Ein Katalogeintrag; ``contact`` nur für editor- und admin-Schlüssel."""


class ResultOut(BaseModel):
    rank: int
    score: float
    confidence: float | None = Field(default=None, ge=0, le=1, description=(
        "Kalibrierte Wahrscheinlichkeit, dass der Vorschlag passt (beurteilte Stufe ≥ 2 in den bewerteten "
        "Datensätzen); fehlt, wenn es für das Modell keine Kalibrierung gibt (siehe assessment)"))
    strength: Literal["good", "partial", "weak"] | None = Field(default=None, description=(
        "Stufe der Konfidenz: good (ab 0,5), partial (ab 0,3), weak (darunter)"))
    strength_label: str | None = Field(default=None, description=(
        "Die Stufe zum Lesen: „passt gut“, „passt teilweise“ oder „schwache Übereinstimmung“ (englisch bei lang=en)"))
    entity: Entity
    explanation: ExplanationOut


class AssessmentOut(BaseModel):
    """Was die Antwort über ihre Vorschläge insgesamt sagt."""

    calibrated: bool = Field(description="Ob es für das Modell eine Kalibrierung der Konfidenz gibt")
    nothing_fits: bool | None = Field(default=None, description=(
        "true: kein Vorschlag erreicht „passt teilweise“ – die nächstliegenden stehen trotzdem in results, als "
        "schwach markiert; fehlt ohne Kalibrierung"))
    message: str | None = Field(default=None, description=(
        "Hinweis zum Lesen: dass nichts gut passt, oder dass es keine kalibrierte Einschätzung gibt"))
    suggestions: list[str] = Field(default=[], description="Was an der Anfrage zu ändern wäre, wenn nichts passt")


class RecommendationOut(BaseModel):
    id: str = Field(description="Kennung dieser Empfehlung (für POST /v1/feedback)")
    task: Literal["advisors", "partners", "events", "invitations", "programmes"]
    model: str = Field(description="Embedding-Modell und Version des Rangfolge-Modells, die die Empfehlung "
                                   "berechnet haben („Modell/Version“; „hand“: die von Hand gesetzten Gewichte)")
    catalog_version: int
    candidates: int = Field(description="Wie viele Einträge in Frage kamen")
    created: dt.datetime
    assessment: AssessmentOut
    results: list[ResultOut]


# ----------------------------------------------------------------------------- catalog
class EntityListQuery(_Request):
    kind: Literal["advisor", "organisation", "event", "municipality", "programme"] | None = None
    city: City | None = None
    topic: ShortText | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0


class EntityPage(BaseModel):
    items: list[Entity]
    total: int
    limit: int
    offset: int


class DeleteQuery(_Request):
    erase: bool = Field(default=False, description="Auch Rückmeldungen löschen und das Protokoll anonymisieren "
                                                   "(DSGVO Art. 17; admin-Schlüssel)")


class ImportQuery(_Request):
    format: Literal["jsonl", "csv"] | None = Field(
        default=None, description="Format der Datei; sonst aus dem Content-Type (application/x-ndjson, text/csv)")


class ImportReportOut(BaseModel):
    imported: int
    created: int
    updated: int
    catalog_version: int


class ErasureReportOut(BaseModel):
    id: str
    erased: bool
    vectors: int = Field(description="gelöschte Vektoren")
    feedback: int = Field(description="gelöschte Rückmeldungen")
    audit_entries: int = Field(description="anonymisierte Protokolleinträge")
    request_vectors: int = Field(description="gelöschte Vektoren von Anfragetexten, die den Eintrag nannten")
    declines: int = Field(description="gelöschte „passt nicht“-Angaben (für und von dem Eintrag)")
    # --- erasure from jobs and files (issue 16)
    invitations: int = Field(description="gelöschte Einträge der Einladungshistorie")
    jobs_redacted: int = Field(description="Aufträge, in deren Parametern und Ergebnissen der Eintrag geschwärzt "
                                           "wurde („gelöschter Eintrag“)")
    jobs_stopped: int = Field(description="laufende oder wartende Aufträge, die abgebrochen wurden")
    checkpoint: Literal["complete", "blocked", "not_applicable"] = Field(
        description="SQLite: ob das Write-Ahead-Log in die Datenbank übernommen und geleert wurde (blocked: "
                    "Leser hielten es auf; es wird später nachgeholt); PostgreSQL: not_applicable, siehe "
                    "docs/operations.md „Erasure“")
    catalog_version: int


# ----------------------------------------------------------------------------- feedback
class FeedbackRequest(_Request):
    """Was aus einer empfohlenen Stelle geworden ist; ein wiederholter gleicher Eintrag wird nicht doppelt gezählt."""

    recommendation_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40,
                                                        pattern=NOT_BLANK)]
    entity_id: EntityId
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]


class FeedbackOut(BaseModel):
    """Die gespeicherte Rückmeldung (201 neu; 200: dieselbe Rückmeldung gab es schon, unverändert)."""

    id: int
    recommendation_id: str
    entity_id: str
    outcome: str


# ----------------------------------------------------------------------------- service
class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]
    catalog_version: int = Field(description="Katalogversion, auf der der Index steht")
    stored_catalog_version: int = Field(description="Katalogversion in der Datenbank")
    entities: int
    model: str
    schema_revision: str | None
    worker: int = Field(description="Prozessnummer des antwortenden Server-Prozesses (bei mehreren Workern: "
                                    "welcher bereit ist)")


class ErrorBody(BaseModel):
    code: str = Field(description="stabile Kennung, z. B. validation_error, not_found, unauthorized")
    message: str = Field(description="was zu ändern ist, auf Deutsch")
    details: list[dict[str, Any]] = Field(description="betroffene Felder, Zeilen oder Werte")


class ErrorOut(BaseModel):
    error: ErrorBody
