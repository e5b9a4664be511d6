"""Request and response models of ``POST /v1/recommendations/programmes`` (funding programmes, issue 20)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from matcher.domain.schema import HAS_TEXT, MAX_SHORT, EntityId, IsoDate, Programme, ProjectFacts, Query

from .models import ExplanationOut, K, NeedText, ReasonLanguage


class ProgrammesRequest(ProjectFacts):
    """Förderprogramme für eine Projektidee: Text, wer beantragt, wo; optional Partnerland, Betrag,
    Eigenanteil, Beginn und Laufzeit. Jede nicht genannte Angabe wird als „bitte prüfen“ gemeldet."""

    model_config = {"json_schema_extra": {"anyOf": [
        {"required": ["text"], "properties": {"text": HAS_TEXT}},
        {"required": ["applicant"], "properties": {"applicant": {"type": "string"}}}]}}

    text: NeedText | None = None
    applicant: EntityId | None = Field(default=None, description="id der beantragenden Organisation oder Kommune "
                                                                  "im Katalog (liefert Art und Ort)")
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_SHORT)] | None = Field(
        default=None, description="Sitz der beantragenden Stelle: eine Stadt, ein Kreis oder eine Region in NRW")
    as_of: IsoDate | None = Field(default=None, description="Stichtag für Fristen (Standard: heute)")
    k: K = 10
    lang: ReasonLanguage = "de"

    @model_validator(mode="after")
    def _idea_or_applicant(self) -> ProgrammesRequest:
        if not self.text and not self.applicant:
            raise ValueError("Bitte die Projektidee (text) oder die beantragende Stelle (applicant) angeben")
        return self

    def to_query(self) -> Query:
        facts = ProjectFacts(**{name: getattr(self, name) for name in ProjectFacts.model_fields})
        return Query(task="programmes", text=self.text, from_=self.applicant, city=self.city, as_of=self.as_of,
                     project=facts)


class RuleOut(BaseModel):
    rule: str = Field(description="welche Regel: applicant_type, registered, years, seat, place, country, amount, "
                                  "own_share, duration, deadline, start, partner")
    status: Literal["ok", "fail", "check", "info"] = Field(
        description="ok: erfüllt; fail: schließt aus; check: bitte prüfen; info: zur Kenntnis")
    message: str
    line: str = Field(description="die Zeile der Checkliste, mit ✓, ✗, ? oder •")


class SuggestionOut(BaseModel):
    id: str
    name: str
    kind: str
    reason: str


class ProgrammeResultOut(BaseModel):
    rank: int
    score: float
    eligible: bool
    programme: Programme
    explanation: ExplanationOut
    rules: list[RuleOut] = Field(description="jede Regel des Programms, geprüft")
    excluded_by: list[RuleOut] = Field(description="die Regeln, die das Programm ausschließen")
    next_deadline: dt.date | None = Field(description="nächste Frist (null: laufend oder keine Runde offen)")
    partners: list[SuggestionOut] = Field(description="Partner aus dem Katalog für die geforderten Partner")
    advisors: list[SuggestionOut] = Field(description="Beratende mit Erfahrung in solchen Anträgen")


class ProgrammesOut(BaseModel):
    id: str = Field(description="Kennung dieser Empfehlung (für POST /v1/feedback)")
    task: Literal["programmes"]
    model: str
    catalog_version: int
    candidates: int
    created: dt.datetime
    as_of: dt.date = Field(description="der Tag, für den die Fristen berechnet sind")
    eligible: list[ProgrammeResultOut] = Field(description="Programme, für die kein Ausschlussgrund vorliegt")
    ineligible: list[ProgrammeResultOut] = Field(description="Programme mit Ausschlussgrund (excluded_by)")
