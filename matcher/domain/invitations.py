"""Invitations as the domain knows them: who may be invited, and an invitation that was sent.

The store records invitations and the invitation lists read them (exposure control), so these
values sit below both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["INVITABLE_KINDS", "InvitationRecord"]

# the kinds of entity an invitation list invites (``include_kinds``)
INVITABLE_KINDS = ("organisation", "municipality", "advisor")


@dataclass(frozen=True)
class InvitationRecord:
    """One past invitation: who was invited to which event, and the date it counts for."""

    entity_id: str
    event_id: str
    date: dt.date
