"""Learned ranker versions and which one serves.

Each version is stored with its payload (the ranker as :meth:`to_dict` gives it), its feature names,
its metrics (training and the gate's verdict), the window of feedback it was trained on and the commit
of the code that trained it. Which ranker serves is the newest row of ``ranker_activations`` (the
version ``"default"`` for the ranker the package ships, also when no row exists; ``"hand"`` for the hand
weights): one serves at a time, and the rows
before it are the history that :meth:`RankerVersions.rollback` walks back. Replicas read the newest
activation id (one indexed row, beside the catalog version) and swap their ranker when it moves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from matcher.domain.messages import quoted
from matcher.errors import ConflictError, UnknownEntityError
from matcher.store.db import Database, now, utc
from matcher.store.tables import ranker_activations, ranker_versions

__all__ = ["DEFAULT_VERSION", "HAND_VERSION", "RESERVED", "Activation", "RankerVersion", "RankerVersions"]

HAND_VERSION = "hand"          # the hand weights
DEFAULT_VERSION = "default"    # the ranker the package ships (matcher.engine.ranker.shipped_ranker)
RESERVED = (DEFAULT_VERSION, HAND_VERSION)


@dataclass(frozen=True)
class RankerVersion:
    """One stored ranker version."""

    version: str
    payload: dict[str, Any]
    features: list[str]
    metrics: dict[str, Any]
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    commit: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Activation:
    """One entry of the activation history; ``id`` 0: nothing was ever activated (the shipped default serves)."""

    id: int
    version: str
    reason: str
    created_at: dt.datetime | None


class RankerVersions:
    """Stored ranker versions and the activation history (one transaction a call)."""

    def __init__(self, db: Database):
        self.db = db

    def add(self, version: str, payload: dict[str, Any], *, features: list[str], metrics: dict[str, Any],
            commit: str, window_start: dt.datetime | None = None, window_end: dt.datetime | None = None) -> None:
        """Store a new version (not yet serving). Raises :class:`ConflictError` when the name is taken."""
        if version in RESERVED:
            raise ConflictError(f"Der Name {quoted(version)} steht für "
                                f"{'die Handgewichte' if version == HAND_VERSION else 'das mitgelieferte Modell'}")
        with self.db.write() as conn:
            if conn.scalar(select(ranker_versions.c.version).where(ranker_versions.c.version == version)):
                raise ConflictError(f"Die Ranker-Version {quoted(version)} gibt es schon")
            conn.execute(insert(ranker_versions).values(
                version=version, payload=payload, features=list(features), metrics=metrics, commit=commit,
                window_start=window_start, window_end=window_end, created_at=now()))

    def update_metrics(self, version: str, metrics: dict[str, Any]) -> None:
        """Replace the stored metrics of ``version`` (the gate adds its verdict)."""
        with self.db.write() as conn:
            conn.execute(ranker_versions.update().where(ranker_versions.c.version == version).values(metrics=metrics))

    def get(self, version: str) -> RankerVersion:
        """One stored version. Raises :class:`UnknownEntityError`."""
        with self.db.read() as conn:
            row = conn.execute(select(ranker_versions).where(ranker_versions.c.version == version)).mappings().first()
        if row is None:
            raise UnknownEntityError(f"Unbekannte Ranker-Version {quoted(version)}",
                                     [{"field": "version", "value": version}])
        return _version(row)

    def all(self) -> list[RankerVersion]:
        """Every stored version, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(ranker_versions).order_by(ranker_versions.c.created_at.desc(),
                                                                 ranker_versions.c.version.desc())).mappings().all()
        return [_version(r) for r in rows]

    def active(self) -> Activation:
        """The activation that serves now (``Activation(0, "default", …)`` when none was ever made)."""
        with self.db.read() as conn:
            return self._active(conn)

    @staticmethod
    def _active(conn: Connection) -> Activation:
        row = conn.execute(select(ranker_activations).order_by(ranker_activations.c.id.desc()).limit(1)).first()
        if row is None:
            return Activation(0, DEFAULT_VERSION, "", None)
        return Activation(row.id, row.version, row.reason, utc(row.created_at))

    def active_id(self) -> int:
        """The id of the serving activation (cheap: what replicas poll)."""
        with self.db.read() as conn:
            return int(conn.scalar(select(func.max(ranker_activations.c.id))) or 0)

    def history(self, limit: int = 100) -> list[Activation]:
        """The activations, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(ranker_activations).order_by(ranker_activations.c.id.desc())
                                .limit(limit)).all()
        return [Activation(r.id, r.version, r.reason, utc(r.created_at)) for r in rows]

    def activate(self, version: str, reason: str = "activated") -> Activation:
        """Make ``version`` (or ``"default"``, ``"hand"``) the serving ranker. Raises :class:`UnknownEntityError`."""
        with self.db.write() as conn:
            return self._activate(conn, version, reason)

    def _activate(self, conn: Connection, version: str, reason: str) -> Activation:
        if version not in RESERVED and conn.scalar(
                select(ranker_versions.c.version).where(ranker_versions.c.version == version)) is None:
            raise UnknownEntityError(f"Unbekannte Ranker-Version {quoted(version)}",
                                     [{"field": "version", "value": version}])
        created = now()
        new_id = conn.execute(insert(ranker_activations).values(version=version, reason=reason, created_at=created)
                              .returning(ranker_activations.c.id)).scalar_one()
        return Activation(int(new_id), version, reason, created)

    def rollback(self) -> Activation:
        """Serve again the version that served before the current one (a new activation, reason
        ``rollback``: the history keeps what happened). Rolling back twice goes back two steps: a
        rollback's own activation and the one it undid are skipped.

        Raises:
            ConflictError: there is nothing to roll back to.
        """
        with self.db.write() as conn:
            rows = conn.execute(select(ranker_activations.c.version, ranker_activations.c.reason)
                                .order_by(ranker_activations.c.id)).all()
            stack: list[str] = []
            for version, reason in rows:
                if reason == "rollback":
                    stack.pop()
                else:
                    stack.append(version)
            if not stack:
                raise ConflictError("Es gibt keine frühere Ranker-Version, zu der zurückgekehrt werden kann")
            stack.pop()
            return self._activate(conn, stack[-1] if stack else DEFAULT_VERSION, "rollback")

    def delete_all(self) -> None:
        """Forget every version and activation (tests)."""
        with self.db.write() as conn:
            conn.execute(delete(ranker_activations))
            conn.execute(delete(ranker_versions))


def _version(row: Any) -> RankerVersion:
    return RankerVersion(row["version"], row["payload"], list(row["features"]), row["metrics"],
                         utc(row["window_start"]), utc(row["window_end"]), row["commit"], utc(row["created_at"]))
