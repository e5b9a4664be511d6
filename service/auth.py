"""API keys and roles.

Callers send ``Authorization: Bearer <key>``. Roles are ordered:
``reader`` (recommendations, catalog reads) < ``editor`` (catalog writes,
feedback, contact data) < ``admin`` (erasure). :data:`ACCESS` names the role
each endpoint needs, in one table; an endpoint missing from it is refused
(and a test walks the URL map so that cannot ship). Endpoints marked
``open_if`` admit anonymous callers when that config switch is on
(``OPEN_RECOMMENDATIONS``, ``OPEN_FEEDBACK``: the loopback demo, where the web
page's "passt / passt nicht" buttons work without a key).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from flask import Flask, current_app, g, request

from matcher.domain.messages import quoted
from matcher.store import ROLES

from .errors import Forbidden, Unauthorized
from .state import get_store

__all__ = ["ACCESS", "Access", "Caller", "current_caller", "require_role", "can_see_contact", "browser_tab",
           "TAB_HEADER", "init_app"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Access:
    """Who may call an endpoint: ``role`` None = anyone; ``open_if`` = config switch that admits anonymous callers."""

    role: str | None
    open_if: str | None = None


PUBLIC = Access(None)
READ = Access("reader", open_if="OPEN_RECOMMENDATIONS")

ACCESS: dict[str, Access] = {
    "recommendations.advisors": READ,
    "recommendations.partners": READ,
    "recommendations.events": READ,
    "recommendations.invitees": READ,
    "recommendations.programmes": READ,
    "entities.list_entities": READ,
    "entities.get_entity": READ,
    "entities.create_entity": Access("editor"),
    "entities.replace_entity": Access("editor"),
    "entities.delete_entity": Access("editor"),      # erase=true: admin, checked in the view
    "entities.import_entities": Access("editor"),
    "feedback.create_feedback": Access("editor", open_if="OPEN_FEEDBACK"),
    "health.healthz": PUBLIC,
    "health.readyz": PUBLIC,
    "health.metrics": PUBLIC,
    "health.openapi": PUBLIC,
    "landscape.landscape_json": READ,
    "landscape.landscape_html": READ,
    "landscape.landscape_xlsx": READ,
    "web.index": PUBLIC,                            # the page; its API calls carry their own checks
    # batch jobs: staff tools, never open anonymously; contact data in results for editor/admin only
    "jobs.create_invitations": Access("reader"),
    "jobs.create_assignments": Access("reader"),
    "jobs.get_job": Access("reader"),
    "jobs.export_xlsx": Access("reader"),
    "jobs.export_csv": Access("reader"),
    "invitations.record_invitations": Access("editor"),
    "invitations.list_invitations": Access("reader"),
    # the learned ranker's versions: training, activation and rollback change every answer
    "rankers.list_rankers": Access("admin"),
    "rankers.train": Access("admin"),
    "rankers.activate_version": Access("admin"),
    "rankers.rollback_version": Access("admin"),
    "static": PUBLIC,
}


@dataclass(frozen=True)
class Caller:
    role: str                 # "anonymous" or one of ROLES
    key_id: str | None = None

    def allows(self, role: str) -> bool:
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(role)


ANONYMOUS = Caller("anonymous")


def current_caller() -> Caller:
    return g.get("caller", ANONYMOUS)


def can_see_contact() -> bool:
    """Contact data (personal) goes only to editor and admin keys."""
    return current_caller().allows("editor")


TAB_HEADER = "X-Matcher-Tab"
_TAB_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def browser_tab() -> str | None:
    """An opaque id of the anonymous caller's browser tab: the SHA-256 of the token the web page
    sends in ``X-Matcher-Tab`` (it gets one with each page load); None without a well-formed one.
    Feedback in the open demo is bound to it, as keyed feedback is bound to the key."""
    token = request.headers.get(TAB_HEADER, "")
    if not _TAB_TOKEN.fullmatch(token):
        return None
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def require_role(role: str) -> Caller:
    """Raise 401/403 unless the caller holds ``role`` (for checks finer than the endpoint table)."""
    caller = current_caller()
    if caller.role == "anonymous":
        raise Unauthorized(f"Für diese Aktion ist ein API-Schlüssel mit der Rolle {quoted(role)} nötig "
                           "(Header: Authorization: Bearer <Schlüssel>)", [{"required_role": role}])
    if not caller.allows(role):
        raise Forbidden(f"Der Schlüssel hat die Rolle {quoted(caller.role)}; nötig ist {quoted(role)}",
                        [{"required_role": role, "role": caller.role}])
    return caller


def _identify() -> Caller:
    header = request.headers.get("Authorization")
    if header is None:
        return ANONYMOUS
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Den Schlüssel bitte so senden: Authorization: Bearer <Schlüssel>",
                           [{"field": "Authorization"}])
    found = get_store().authenticate(key.strip())
    if found is None:
        raise Unauthorized("Unbekannter oder widerrufener API-Schlüssel", [{"field": "Authorization"}])
    return Caller(found.role, found.id)


def _check_access() -> None:
    if request.url_rule is None or request.method == "OPTIONS":
        return  # no such route (the router answers 404/405), or Flask's automatic OPTIONS answer
    # a presented key is always checked, even on open endpoints: a typo should not pass silently
    g.caller = _identify()
    rule = ACCESS.get(request.endpoint or "")
    if rule is None:
        log.error("endpoint %s has no access rule; refusing", request.endpoint)
        rule = Access("admin")
    if rule.role is None:
        return
    if g.caller.role == "anonymous" and rule.open_if and current_app.config.get(rule.open_if):
        return
    require_role(rule.role)


def init_app(app: Flask) -> None:
    app.before_request(_check_access)
