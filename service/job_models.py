"""Request and response models of the batch jobs and the invitation history (pydantic v2).

The defaults are the library's (:mod:`matcher.batch.invitations`, :mod:`matcher.batch.assignment`); requests
reject unknown fields by name, like every request of the API.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from matcher.batch.assignment import DEFAULT_ALTERNATES
from matcher.batch.invitation_types import Quota
from matcher.batch.invitations import DEFAULT_MMR_LAMBDA, ExposurePolicy
from matcher.batch.requests import AdvisorRequest
from matcher.domain.labels import ADVISOR_GROUP
from matcher.domain.messages import FieldRuleError, alternatives, quoted
from matcher.domain.schema import ORG_TYPES, WS, EntityId, IsoDate

from .models import ErrorBody

__all__ = ["InvitationJobRequest", "AssignmentJobRequest", "JobOut", "ExportQuery", "RecordInvitationsRequest",
           "RecordedInvitationsOut", "InvitationListQuery", "InvitationOut", "InvitationPage",
           "MAX_LIST_SIZE", "MAX_REQUESTS"]

MAX_LIST_SIZE = 1000      # places (and waitlist places) of one invitation list
MAX_REQUESTS = 20_000     # requests of one assignment job
MAX_INVITED = 5000        # entity ids recorded at once

JobId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^job_[0-9a-f]{32}$"),
                  Field(description="Kennung eines Auftrags (job_…)")]
# the syntax Quota.parse reads, as a pattern: a group a quota may name; a count, a share in 0–1 or a percentage
# up to 100 (the advisor group only with include_advisors: InvitationJobRequest's schema says so)
QUOTA_GROUPS = (*ORG_TYPES, ADVISOR_GROUP)
_QUOTA_VALUE = rf"(?:[0-9]+|0*(?:0[.,][0-9]+|1[.,]0+)|0*(?:[0-9]{{1,2}}(?:[.,][0-9]+)?|100(?:[.,]0+)?)[{WS}]*%)"
QUOTA_PATTERN = (rf"^[{WS}]*(?:{'|'.join(QUOTA_GROUPS)})[{WS}]*:[{WS}]*(?:>=|<=|≥|≤)?[{WS}]*{_QUOTA_VALUE}"
                 rf"[{WS}]*$")


def _readable_quota(spec: str) -> str:
    """The quota's own German message (Quota.parse) rather than the pattern's."""
    if not re.search(QUOTA_PATTERN, spec):
        quota = Quota.parse(spec)          # raises with what is wrong in the syntax or the value
        raise ValueError(f"unbekannter Typ {quoted(quota.group)}; erlaubt: {alternatives(QUOTA_GROUPS)}")
    return spec


QuotaText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60),
                      AfterValidator(_readable_quota),
                      Field(json_schema_extra={"pattern": QUOTA_PATTERN},
                            description="TYP:WERT, z. B. migrant_organisation:0.4 (mind. 40 %), "
                                        "migrant_organisation:40% oder institution:<=2 (höchstens 2); TYP: "
                                        + ", ".join(QUOTA_GROUPS))]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InvitationJobRequest(_Request):
    """Einladungsliste für eine Veranstaltung: Quoten, Vielfalt, Ausgleich der Einladungshäufigkeit, Warteliste."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [   # an advisor quota only with include_advisors
        {"required": ["include_advisors"], "properties": {"include_advisors": {"const": True}}},
        {"properties": {"quotas": {"items": {"not": {"pattern": rf"^[{WS}]*{ADVISOR_GROUP}[{WS}]*:"}}}}}]})

    event: EntityId = Field(description="id der Veranstaltung")
    size: Annotated[int, Field(ge=1, le=MAX_LIST_SIZE, description="Plätze auf der Liste")]
    quotas: Annotated[list[QuotaText], Field(max_length=10)] = []
    max_per_city: Annotated[int, Field(ge=1, le=MAX_LIST_SIZE)] | None = Field(
        default=None, description="Höchstens so viele Eingeladene aus einer Stadt")
    waitlist: Annotated[int, Field(ge=0, le=MAX_LIST_SIZE, description="Länge der Warteliste")] = 0
    mmr_lambda: Annotated[float, Field(ge=0.0, le=1.0, description="1 = nur Relevanz, kleiner = mehr Vielfalt")] \
        = DEFAULT_MMR_LAMBDA
    include_advisors: bool = Field(default=False, description="Auch Beraterinnen und Berater einladen")
    include_municipalities: bool = Field(default=False, description="Auch Kommunen einladen (sonst nur, wo die "
                                                                    "Veranstaltung kommunale Akteure sucht)")
    reach_km: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = Field(
        default=None, description="Nur Eingeladene so nah am Veranstaltungsort (km; Standard: reach_km der "
                                  "Veranstaltung)")
    as_of: IsoDate | None = Field(default=None, description="Stichtag (Standard: heute); auch für die "
                                                            "Einladungshistorie")
    exposure_penalty: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        default=ExposurePolicy.penalty,
        description="Abschlag je Einladung zu einer anderen Veranstaltung im Zeitfenster")
    exposure_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=ExposurePolicy.window_days, description="Zeitfenster der Einladungshistorie in Tagen")


class AssignmentJobRequest(_Request):
    """Optimale Zuordnung von Beratungsanfragen zu Beraterinnen und Beratern mit Kapazitäten."""

    requests: Annotated[list[AdvisorRequest], Field(min_length=1, max_length=MAX_REQUESTS)]
    alternates: Annotated[int, Field(ge=0, le=50, description="Weitere passende Berater/innen je Anfrage")] \
        = DEFAULT_ALTERNATES
    allow_partial: bool = Field(default=False, description="Ist keine vollständige Zuordnung möglich, die beste "
                                                           "teilweise liefern (statt eines fehlgeschlagenen Auftrags)")
    as_of: IsoDate | None = None
    capacities: Annotated[dict[EntityId, Annotated[int, Field(ge=0, le=100_000)] | None],
                          Field(max_length=5000, json_schema_extra={"additionalProperties": False})] | None = Field(
        default=None, description="Freie Plätze je Berater/in (id → Anzahl, null = unbegrenzt) statt der "
                                  "Kapazität im Katalog")


class JobOut(BaseModel):
    """Ein Auftrag: Stand, Fortschritt in Prozent, und wenn fertig das Ergebnis (oder der Fehler)."""

    id: str
    kind: Literal["invitations", "assignments", "ranker"]
    state: Literal["queued", "running", "done", "failed"]
    progress: Annotated[int, Field(ge=0, le=100, description="Fortschritt in Prozent")]
    stage: str | None = Field(description="aktueller Arbeitsschritt")
    created: dt.datetime
    updated: dt.datetime
    result: dict[str, Any] | None = Field(description="Ergebnis (state done): Einladungsliste, Zuordnung oder "
                                                      "trainierte Ranker-Version; Kontaktdaten nur für editor- "
                                                      "und admin-Schlüssel")
    error: ErrorBody | None = Field(description="Fehler (state failed); code infeasible: keine vollständige "
                                                "Zuordnung, message nennt die blockierende Bedingung")


class ExportQuery(_Request):
    delimiter: Literal[",", ";"] = Field(default=",", description="CSV-Trennzeichen; „;“ für deutsches Excel "
                                                                  "(dann mit Dezimalkomma)")


class RecordInvitationsRequest(_Request):
    """Tatsächlich verschickte Einladungen: ids zu einer Veranstaltung, oder die Liste eines fertigen Auftrags."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["entity_ids", "event"], "properties": {"entity_ids": {"type": "array", "minItems": 1},
                                                             "event": {"type": "string"}, "job": {"type": "null"}}},
        {"required": ["job"], "properties": {"job": {"type": "string"}, "entity_ids": {"type": "array",
                                                                                       "maxItems": 0}}}]})

    event: EntityId | None = Field(default=None, description="id der Veranstaltung (bei job: optional)")
    entity_ids: Annotated[list[EntityId], Field(max_length=MAX_INVITED, json_schema_extra={"uniqueItems": True},
                                                description="ids der Eingeladenen, jede einmal")] = []
    job: JobId | None = Field(default=None, description="Einladungsauftrag, dessen Liste (ohne Warteliste) "
                                                         "verschickt wurde")
    date: IsoDate | None = Field(default=None, description="Datum, für das die Einladung zählt "
                                                           "(Standard: Datum der Veranstaltung, sonst heute)")

    @model_validator(mode="after")
    def _ids_or_job(self) -> RecordInvitationsRequest:
        if bool(self.entity_ids) == bool(self.job):
            raise FieldRuleError("Bitte genau eines angeben: entity_ids (mit event) oder job", "job")
        if self.entity_ids and not self.event:
            raise FieldRuleError("Zu entity_ids bitte die Veranstaltung (event) angeben", "event")
        return self


class RecordedInvitationsOut(BaseModel):
    """Was gespeichert wurde."""

    event: str
    date: dt.date
    recorded: list[str] = Field(description="neu gespeicherte Einladungen")
    already_recorded: list[str] = Field(description="schon vorher gespeichert (unverändert)")


class InvitationListQuery(_Request):
    event: EntityId | None = None
    entity: EntityId | None = None
    since: IsoDate | None = Field(default=None, description="Nur Einladungen ab diesem Datum (JJJJ-MM-TT)")
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0


class InvitationOut(BaseModel):
    event_id: str
    entity_id: str
    date: dt.date
    job_id: str | None
    created: dt.datetime


class InvitationPage(BaseModel):
    """Gespeicherte Einladungen, neueste zuerst."""

    items: list[InvitationOut]
    total: int
    limit: int
    offset: int
