"""Text building: which texts of a profile are embedded and matched.

A profile is represented by several texts (multi-vector): the whole profile
(name, description, topics) and each of its passages (description sentences,
evidence texts, the topic list). Scores aggregate over the passages, so an
advisor whose best fit is one past engagement is still found.
"""

from __future__ import annotations

import re

from matcher.domain.schema import Advisor, Event, Municipality, Organisation, Programme

__all__ = ["profile_text", "passages", "split_sentences"]

_SENT_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÄÖÜ0-9„\"'(])")
_MIN_PASSAGE = 25


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences (German/English punctuation rules).

    Very short fragments are merged into their neighbour so that every passage
    carries some meaning of its own.
    """
    parts = [p.strip() for p in _SENT_END.split(text.strip()) if p.strip()]
    out: list[str] = []
    for p in parts:
        if out and len(p) < _MIN_PASSAGE:
            out[-1] = f"{out[-1]} {p}"
        else:
            out.append(p)
    if len(out) > 1 and len(out[0]) < _MIN_PASSAGE:
        out[1] = f"{out[0]} {out[1]}"
        out.pop(0)
    return out


def profile_text(entity: Advisor | Organisation | Event | Municipality | Programme) -> str:
    """The whole profile as one text: name, description, topics."""
    parts = [entity.name.rstrip(".") + "."]
    if isinstance(entity, Programme):
        parts.append(f"Fördergeber: {entity.funder.rstrip('.')}.")
    if entity.description:
        parts.append(entity.description)
    if entity.topics:
        parts.append("Themen: " + ", ".join(entity.topics) + ".")
    return " ".join(parts)


def passages(entity: Advisor | Organisation | Event | Municipality | Programme) -> list[str]:
    """The profile's passages: description sentences, evidence texts, topic list."""
    out = split_sentences(entity.description) if entity.description else []
    out.extend(t.strip() for t in entity.evidence if t.strip())
    if entity.topics:
        out.append(", ".join(entity.topics))
    return out or [entity.name]
