"""Request and response models of the ranker administration (``/v1/rankers``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from .models import _Request

RankerVersionName = Annotated[str, StringConstraints(min_length=1, max_length=40,
                                                     pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"),
                              Field(description="Name der Version („default“: das mitgelieferte Modell; „hand“: die "
                                                "von Hand gesetzten Gewichte)")]


class RankerTrainRequest(_Request):
    """Eine neue Version trainieren (auf den eingerichteten bewerteten Datensätzen und den Rückmeldungen)."""

    days: Annotated[int, Field(ge=1, le=3650, description="Rückmeldungen der letzten so vielen Tage")] = 90
    activate: bool = Field(default=True, description="Aktivieren, wenn sie die aktive Version auf den bewerteten "
                                                     "Daten und in der IPS-Schätzung schlägt")
    hand: list[Literal["advisors", "partners", "events", "invitations", "programmes"]] = Field(
        default_factory=list, max_length=5,
        description="Für diese Aufgaben in der neuen Version die Handgewichte behalten, was immer das Training "
                    "ergibt (wie `matcher train --hand`), z. B. wenn das gelernte Modell einen entworfenen Fall bricht")


class RankerActivateRequest(_Request):
    """Eine gespeicherte Version aktivieren, die ihre Prüfung bestanden hat (oder „default“, „hand“)."""

    version: RankerVersionName


class ActivationOut(BaseModel):
    """Welche Version dient, seit wann und warum (trained, activated, rollback; leer: nie aktiviert)."""

    id: int
    version: str
    reason: str
    activated: dt.datetime | None


class RankerVersionOut(BaseModel):
    version: str
    created: dt.datetime
    commit: str = Field(description="Git-Commit des Codes, sonst Paketversion")
    window_start: dt.datetime | None = Field(description="Beginn des Zeitraums der Rückmeldungen")
    window_end: dt.datetime | None
    features: list[str]
    metrics: dict[str, Any] = Field(description="Trainingsmaße und das Urteil der Prüfung (gate)")
    active: bool


class RankersOut(BaseModel):
    """Die aktive Version, alle gespeicherten Versionen (neueste zuerst) und der Verlauf der Aktivierungen."""

    active: ActivationOut
    versions: list[RankerVersionOut]
    history: list[ActivationOut]
