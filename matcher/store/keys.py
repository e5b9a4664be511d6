"""API keys in the store: stored as SHA-256 hashes only; the key itself is shown once."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from matcher.domain.messages import alternatives, quoted
from matcher.errors import UnknownEntityError, ValidationError
from matcher.store.db import Database, now, utc
from matcher.store.tables import api_keys

__all__ = ["ROLES", "ApiKey", "ApiKeys"]

ROLES = ("reader", "editor", "admin")          # each role may do everything the ones before it may


@dataclass(frozen=True)
class ApiKey:
    """A stored API key (never the key itself)."""

    id: str
    role: str
    label: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    def allows(self, role: str) -> bool:
        """Whether this key may act as ``role`` (admin ⊃ editor ⊃ reader)."""
        return self.revoked_at is None and ROLES.index(self.role) >= ROLES.index(role)


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_NO_KEY_HASH = _hash_key(secrets.token_urlsafe(32))   # compared against when no key has the presented id


class ApiKeys:
    """Create, check, list and revoke API keys (one transaction a call)."""

    def __init__(self, db: Database):
        self.db = db

    def create(self, role: str, label: str | None = None) -> tuple[ApiKey, str]:
        """Create an API key; return it and the secret key (shown once, stored only as a hash)."""
        if role not in ROLES:
            raise ValidationError(f"Unbekannte Rolle {quoted(role)}; erlaubt: {alternatives(ROLES)}",
                                  [{"field": "role"}])
        key_id = secrets.token_hex(4)
        secret = f"mk_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(id=key_id, role=role, label=label, created_at=now())
        with self.db.write() as conn:
            conn.execute(insert(api_keys).values(id=key.id, key_hash=_hash_key(secret), role=role, label=label,
                                                 created_at=key.created_at))
        return key, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        """The key a caller presented, or ``None`` if it is unknown or revoked (constant-time compare)."""
        parts = secret.split("_", 2)
        if len(parts) != 3 or parts[0] != "mk" or not parts[1]:
            return None
        with self.db.read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == parts[1][:16])).mappings().first()
        # hash and compare on every path (an unknown id against a dummy): the time taken does not tell
        # a guessed id that exists from one that does not
        matches = hmac.compare_digest(row["key_hash"] if row is not None else _NO_KEY_HASH, _hash_key(secret))
        if row is None or not matches or row["revoked_at"] is not None:
            return None
        return ApiKey(id=row["id"], role=row["role"], label=row["label"], created_at=utc(row["created_at"]))

    def all(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
        return [ApiKey(id=r["id"], role=r["role"], label=r["label"], created_at=utc(r["created_at"]),
                       revoked_at=utc(r["revoked_at"])) for r in rows]

    def revoke(self, key_id: str) -> None:
        """Revoke a key at once. Raises :class:`UnknownEntityError` for an unknown key id."""
        with self.db.write() as conn:
            n = conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                             .values(revoked_at=now())).rowcount
            if n == 0 and conn.scalar(select(api_keys.c.id).where(api_keys.c.id == key_id)) is None:
                raise UnknownEntityError(f"Unbekannter Schlüssel {quoted(key_id)} (siehe `matcher keys list`)",
                                         [{"field": "key_id", "value": key_id}])
