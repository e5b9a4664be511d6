"""Request and response models of the batch jobs and the invitation history (pydantic v2).

The defaults are the library's (:mod:`matcher.batch.invitations`, :mod:`matcher.batch.assignment`); requests
reject unknown fields by name, like every request of the API.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from matcher.batch.assignment import DEFAULT_ALTERNATES
from matcher.batch.invitations import DEFAULT_MMR_LAMBDA, ExposurePolicy
from matcher.batch.requests import AdvisorRequest
from matcher.domain.schema import EntityId

from .models import ErrorBody

__all__ = ["InvitationJobRequest", "AssignmentJobRequest", "JobOut", "ExportQuery", "RecordInvitationsRequest",
           "RecordedInvitationsOut", "InvitationListQuery", "InvitationOut", "InvitationPage",
           "MAX_LIST_SIZE", "MAX_REQUESTS"]

MAX_LIST_SIZE = 1000      # places (and waitlist places) of one invitation list
MAX_REQUESTS = 20_000     # requests of one assignment job
MAX_INVITED = 5000        # entity ids recorded at once

JobId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^job_[0-9a-f]{32}$"),
                  Field(description="Kennung eines Auftrags (job_…)")]
QuotaText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60),
                      Field(description="TYP:WERT, z. B. migrant_organisation:0.4 (mind. 40 %) oder "
                                        "institution:<=2 (höchstens 2)")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InvitationJobRequest(_Request):
    """Einladungsliste für eine Veranstaltung: Quoten, Vielfalt, Ausgleich der Einladungshäufigkeit, Warteliste."""

    event: EntityId = Field(description="id der Veranstaltung")
    size: Annotated[int, Field(ge=1, le=MAX_LIST_SIZE, description="Plätze auf der Liste")]
    quotas: Annotated[list[QuotaText], Field(max_length=10)] = []
    max_per_city: Annotated[int, Field(ge=1, le=MAX_LIST_SIZE)] | None = Field(
        default=None, description="Höchstens so viele Eingeladene aus einer Stadt")
    waitlist: Annotated[int, Field(ge=0, le=MAX_LIST_SIZE, description="Länge der Warteliste")] = 0
    mmr_lambda: Annotated[float, Field(ge=0.0, le=1.0, description="1 = nur Relevanz, kleiner = mehr Vielfalt")] \
        = DEFAULT_MMR_LAMBDA
    include_advisors: bool = Field(default=False, description="Auch Beraterinnen und Berater einladen")
    as_of: dt.date | None = Field(default=None, description="Stichtag (Standard: heute); auch für die "
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
    as_of: dt.date | None = None
    capacities: Annotated[dict[EntityId, Annotated[int, Field(ge=0, le=100_000)] | None],
                          Field(max_length=5000)] | None = Field(
        default=None, description="Freie Plätze je Berater/in (id → Anzahl, null = unbegrenzt) statt der "
                                  "Kapazität im Katalog")


class JobOut(BaseModel):
    """Ein Auftrag: Stand, Fortschritt in Prozent, und wenn fertig das Ergebnis (oder der Fehler)."""

    id: str
    kind: Literal["invitations", "assignments"]
    state: Literal["queued", "running", "done", "failed"]
    progress: Annotated[int, Field(ge=0, le=100, description="Fortschritt in Prozent")]
    stage: str | None = Field(description="aktueller Arbeitsschritt")
    created: dt.datetime
    updated: dt.datetime
    result: dict[str, Any] | None = Field(description="Ergebnis (state done): Einladungsliste oder Zuordnung; "
                                                      "Kontaktdaten nur für editor- und admin-Schlüssel")
    error: ErrorBody | None = Field(description="Fehler (state failed); code infeasible: keine vollständige "
                                                "Zuordnung, message nennt die blockierende Bedingung")


class ExportQuery(_Request):
    delimiter: Literal[",", ";"] = Field(default=",", description="CSV-Trennzeichen; „;“ für deutsches Excel "
                                                                  "(dann mit Dezimalkomma)")


class RecordInvitationsRequest(_Request):
    """Tatsächlich verschickte Einladungen: ids zu einer Veranstaltung, oder die Liste eines fertigen Auftrags."""

    event: EntityId | None = Field(default=None, description="id der Veranstaltung (bei job: optional)")
    entity_ids: Annotated[list[EntityId], Field(max_length=MAX_INVITED)] = []
    job: JobId | None = Field(default=None, description="Einladungsauftrag, dessen Liste (ohne Warteliste) "
                                                         "verschickt wurde")
    date: dt.date | None = Field(default=None, description="Datum, für das die Einladung zählt "
                                                           "(Standard: Datum der Veranstaltung, sonst heute)")

    @model_validator(mode="after")
    def _ids_or_job(self) -> RecordInvitationsRequest:
        if bool(self.entity_ids) == bool(self.job):
            raise ValueError("Bitte genau eines angeben: entity_ids (mit event) oder job")
        if self.entity_ids and not self.event:
            raise ValueError("Zu entity_ids bitte die Veranstaltung (event) angeben")
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
    since: dt.date | None = None
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
