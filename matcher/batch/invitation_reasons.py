"""Why the selection put each invitee where it is, in one to three German sentences
(the engine's own reasons say why the invitee fits the event; these say why it was chosen here:
relevance, a quota, the city limit, diversity, the exposure penalty)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from matcher.batch.invitation_types import ExposurePolicy, Quota
from matcher.batch.selection import Pick
from matcher.domain.formatting import decimal
from matcher.domain.labels import GROUP_LABELS

__all__ = ["WhyContext", "waitlist_why"]


@dataclass
class WhyContext:
    """What the reasons of one list need to know: the groups, cities, bounds and scores of its candidates."""

    group_list: list[str]
    groups: np.ndarray
    city_list: list[str]
    cities: np.ndarray
    city_cap: int | None
    quotas: list[Quota]
    size: int
    scores: np.ndarray
    relevance: np.ndarray
    recent: np.ndarray
    exposure: ExposurePolicy
    mmr_lambda: float
    reported: set[int] = field(default_factory=set)  # displaced candidates already named once

    def why(self, pick: Pick, taken: np.ndarray) -> list[str]:
        """Why the selection put ``pick`` here, in one to three German sentences."""
        i = pick.index
        out: list[str] = []
        open_scores = np.where(taken, -np.inf, self.scores)
        if int(np.argmax(open_scores)) == i:
            out.append("Höchste Relevanz unter den noch offenen Kandidaten")
        if pick.passed_over is not None and pick.blocked_by is not None and pick.passed_over not in self.reported:
            self.reported.add(pick.passed_over)
            out.append(self._forced(pick))
        if self.mmr_lambda < 1.0 and pick.best_relevance is not None and pick.best_relevance != i \
                and pick.passed_over is None:
            out.append(f"Mehr Vielfalt: unterscheidet sich von den bisher Gewählten "
                       f"(größte Ähnlichkeit {decimal(pick.redundancy)})")
        if self.exposure.penalty > 0 and self.recent.any():
            overtaken = (~taken) & (self.scores > self.scores[i]) & (self.relevance < self.relevance[i]) \
                & (self.recent > self.recent[i])
            if overtaken.any():
                out.append(f"Vorrang vor {int(overtaken.sum())} häufiger eingeladenen Kandidaten "
                           f"(Ausgleich der Einladungshäufigkeit, {self.exposure.window_days} Tage)")
            elif self.recent[i]:
                out.append(f"In den letzten {self.exposure.window_days} Tagen {int(self.recent[i])}-mal eingeladen "
                           f"(Abschlag {decimal(self.exposure.penalty * self.recent[i])})")
        if not out:
            out.append("Nächstbester Kandidat nach Relevanz" if self.mmr_lambda >= 1.0
                       else "Nächstbester Kandidat nach Relevanz und Vielfalt")
        return out[:3]

    def _forced(self, pick: Pick) -> str:
        j = pick.passed_over
        if pick.blocked_by == "city_max":
            return f"Nachgerückt: aus {self.city_list[self.cities[j]]} ist die Höchstzahl ({self.city_cap}) erreicht"
        if pick.blocked_by == "group_max":
            group = self.group_list[int(self.groups[j])]
            q = next((q for q in self.quotas if q.group == group and q.bound == "max"), None)
            return f"Nachgerückt: Höchstquote „{q.label() if q else GROUP_LABELS.get(group, group)}“ ist ausgeschöpft"
        open_groups = [self.group_list[g] for g in pick.open_lower]
        q = next((q for q in self.quotas if q.bound == "min" and q.group in open_groups), None)
        if q is not None:
            return f"Für die Quote „{q.label()}“ aufgenommen"
        return "Aufgenommen, damit alle Vorgaben erfüllbar bleiben"


def waitlist_why(number: int, pick: Pick, context: WhyContext) -> list[str]:
    out = [f"Nachrücker Nr. {number}"]
    if pick.passed_over is not None and pick.blocked_by == "reserve":
        q = next((q for q in context.quotas if q.bound == "min" and q.group in
                  [context.group_list[g] for g in pick.open_lower]), None)
        if q is not None:
            out.append(f"Hält die Quote „{q.label()}“ auch auf der Warteliste")
    return out
