"""Access control: every route admits exactly the roles its rule names (and docs/access.md says so), keys are
compared in constant time, recommendations are rate limited per key, contact data never reaches the logs."""

from __future__ import annotations

import hmac
import json
import logging
import re

import pytest

from bench.reliability.fuzz import error_shape_problem
from bench.reliability.report import record
from conftest import ROOT
from matcher.store import ROLES
from service.auth import ACCESS

CALLERS = ("anonymous", *ROLES)
PLACEHOLDERS = {"entity_id": "zz-gibt-es-nicht", "job_id": "job_" + "0" * 32, "filename": "web.css"}
# checks finer than the endpoint table, made in the view: (method, path with query) → role
VIEW_RULES = {("DELETE", "/v1/entities/{entity_id}?erase=true"): "admin"}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _routes(app) -> list[tuple[str, str, str]]:
    """(method, OpenAPI-style path, endpoint) of every route of the URL map."""
    return sorted((method, _openapi_path(rule.rule), rule.endpoint) for rule in app.url_map.iter_rules()
                  for method in (rule.methods or set()) - {"HEAD", "OPTIONS"})


def _readme_table() -> dict[tuple[str, str], tuple[str, str]]:
    """The access table of docs/access.md: (method, path) → (role, anonymous-when switch)."""
    text = (ROOT / "docs" / "access.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in {"GET", "POST", "PUT", "DELETE", "PATCH"}:
            rows[(cells[0], cells[1])] = (cells[2], cells[3])
    return rows


def _expected_row(endpoint: str) -> tuple[str, str]:
    rule = ACCESS[endpoint]
    return (rule.role or "—", rule.open_if or "—")


def _status(client, method: str, path: str, header: str | None) -> int:
    url = path.format(**PLACEHOLDERS)
    r = client.open(url, method=method, headers={"Authorization": header} if header else {})
    problem = error_shape_problem(r.status_code, r.content_type, r.get_data(), dict(r.headers))
    assert problem is None, (method, url, problem)
    return r.status_code


def _allowed(required: str | None, caller: str) -> bool:
    return required is None or (caller in ROLES and ROLES.index(caller) >= ROLES.index(required))


def test_every_route_admits_exactly_the_roles_its_rule_names(app, client, api_keys):
    """Walks the URL map: a route without a rule, a rule docs/access.md does not show, or a caller let in
    (or kept out) against the rule fails here."""
    routes = _routes(app)
    missing = [f"{m} {p} ({e})" for m, p, e in routes if e not in ACCESS]
    assert not missing, f"routes without an entry in service.auth.ACCESS: {missing}"
    table = {(m, p): _expected_row(e) for m, p, e in routes}
    table.update({key: (role, "—") for key, role in VIEW_RULES.items()})
    readme = _readme_table()
    wanted = "\n".join(f"| {m} | `{p}` | {r} | {o} |" for (m, p), (r, o) in sorted(table.items()))
    assert readme == table, f"docs/access.md's access table differs from service.auth.ACCESS; it should read:\n{wanted}"

    checked = 0
    for (method, path), (role, _) in sorted(table.items()):
        required = None if role == "—" else role
        for caller in CALLERS:
            status = _status(client, method, path, api_keys.get(caller))
            checked += 1
            if _allowed(required, caller):
                assert status not in (401, 403), (method, path, caller, status)
            else:
                assert status == (401 if caller == "anonymous" else 403), (method, path, caller, status)
        # a key that does not exist never passes, not even on public routes (a typo should not pass silently)
        assert _status(client, method, path, "Bearer mk_00000000_erfunden") == 401, (method, path)
        checked += 1

    # the demo switches admit anonymous callers on exactly the routes that name them
    for switch in sorted({rule.open_if for rule in ACCESS.values() if rule.open_if}):
        app.config[switch] = True
        try:
            for method, path, endpoint in routes:
                status = _status(client, method, path, None)
                checked += 1
                if ACCESS[endpoint].role is not None:
                    opened = ACCESS[endpoint].open_if == switch
                    assert (status not in (401, 403)) == opened, (switch, method, path, status)
        finally:
            app.config[switch] = False
    record("access", routes_checked=len(table), requests=checked,
           roles=list(CALLERS), routes_without_rule=len(missing))


def test_keys_are_compared_in_constant_time_on_every_path(app, monkeypatch):
    """Unknown key id, wrong secret and the right key all end in one hmac.compare_digest of two SHA-256
    digests: how long the check takes does not tell which part of a guess was wrong."""
    store = app.extensions["matcher"].store
    key, secret = store.create_key("reader", "constant time")
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    wrong_secret = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    unknown_id = f"mk_ffffffff_{secret.split('_', 2)[2]}"
    outcomes = {}
    for name, guess in {"right key": secret, "wrong secret": wrong_secret, "unknown key id": unknown_id}.items():
        calls.clear()
        outcomes[name] = store.authenticate(guess)
        assert len(calls) == 1, (name, calls)
        assert all(len(x) == 64 and re.fullmatch(r"[0-9a-f]{64}", x) for x in calls[0]), name
    assert outcomes["right key"].id == key.id
    assert outcomes["wrong secret"] is None and outcomes["unknown key id"] is None


@pytest.fixture
def limited_app(make_app, tmp_path):
    return make_app(f"sqlite:///{tmp_path / 'limited.db'}", RATELIMIT_ENABLED=True,
                    RATE_LIMIT_RECOMMENDATIONS="3 per minute", OPEN_RECOMMENDATIONS=True)


def test_recommendations_are_rate_limited_per_key_with_retry_after(limited_app):
    client = limited_app.test_client()
    store = limited_app.extensions["matcher"].store
    first, second = (f"Bearer {store.create_key('reader')[1]}" for _ in range(2))
    need = {"text": "Fairer Handel in der Beschaffung", "k": 2}

    statuses = [client.post("/v1/recommendations/advisors", json=need, headers={"Authorization": first}).status_code,
                client.post("/v1/recommendations/invitees", json={"event": "evt-101", "k": 2},
                            headers={"Authorization": first}).status_code,
                client.post("/v1/recommendations/advisors", json=need, headers={"Authorization": first}).status_code]
    assert statuses == [200, 200, 200]
    refused = client.post("/v1/recommendations/partners", json={"organisation": "org-101"},
                          headers={"Authorization": first})
    assert refused.status_code == 429, "the routes share one budget per key"
    assert error_shape_problem(429, refused.content_type, refused.get_data(), dict(refused.headers)) is None
    assert refused.json["error"]["code"] == "rate_limited"
    assert "3 per 1 minute" in refused.json["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 61      # the window is a minute, rounded up
    record("rate_limit", status=refused.status_code, code=refused.json["error"]["code"],
           retry_after=int(refused.headers["Retry-After"]), limit="3 per minute", scope="per key, per address")

    # another key has its own budget; other routes are not limited; anonymous callers count per address
    assert client.post("/v1/recommendations/advisors", json=need, headers={"Authorization": second}).status_code == 200
    assert client.get("/v1/entities?limit=1", headers={"Authorization": first}).status_code == 200
    anonymous = [client.post("/v1/recommendations/advisors", json=need).status_code for _ in range(4)]
    assert anonymous == [200, 200, 200, 429]
    other_address = client.post("/v1/recommendations/advisors", json=need, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other_address.status_code == 200


def test_the_default_limit_storage_starts_no_thread_per_request_and_still_forgets(monkeypatch):
    """matcher-memory:// counts like memory:// but one sweeper thread expires old entries, where
    memory:// starts a new threading.Timer on nearly every hit."""
    import threading
    import time

    from limits import RateLimitItemPerSecond
    from limits.storage import storage_from_string
    from limits.strategies import MovingWindowRateLimiter

    from service.ratelimit import SweptMemoryStorage

    storage = storage_from_string("matcher-memory://")
    assert isinstance(storage, SweptMemoryStorage) and storage.timer.is_alive()
    limiter, item = MovingWindowRateLimiter(storage), RateLimitItemPerSecond(2)
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self.name))
    hits = [limiter.hit(item, "k") for _ in range(3)]
    time.sleep(0.02)
    hits.append(limiter.hit(item, "other"))
    assert hits == [True, True, False, True] and started == [], started
    time.sleep(2.2)                                   # the window has passed and the sweeper has run
    assert storage.events and not any(storage.events.values()), "expired entries are swept"
    assert limiter.hit(item, "k")


def test_a_rate_limit_that_is_not_one_is_refused_at_start():
    from service import create_app

    with pytest.raises(ValueError, match="RATE_LIMIT_RECOMMENDATIONS"):
        create_app({"TESTING": True, "RATE_LIMIT_RECOMMENDATIONS": "viele pro Tag"})


CONTACT = {"person": "Kontakt Geheimnisperson", "email": "geheim.kontakt@example.org", "phone": "+49 201 5550199",
           "address": "Geheimweg 7, 45127 Essen"}
MARKERS = ["Geheimnisperson", "geheim.kontakt", "5550199", "Geheimweg"]


def test_contact_data_never_reaches_the_logs(app, client, api_keys, caplog, monkeypatch):
    """Requests that carry contact data — accepted, refused, failing inside — leave no trace of it in any log."""
    caplog.set_level(logging.DEBUG)
    editor, admin = ({"Authorization": api_keys[r]} for r in ("editor", "admin"))
    entity = {"id": "org-log-1", "kind": "organisation", "name": "Verein mit Kontakt", "city": "Essen",
              "description": "Eine-Welt-Arbeit und faire Beschaffung in Essen", "contact": CONTACT}
    line = json.dumps({**entity, "id": "org-log-2"}, ensure_ascii=False)
    bad_line = json.dumps({**entity, "id": "org-log-3", "lat": 500, "lon": 7}, ensure_ascii=False)
    statuses = [
        client.post("/v1/entities", headers=editor, json=entity).status_code,                       # 201
        client.post("/v1/entities", headers=editor, json=entity).status_code,                       # 409
        client.put("/v1/entities/org-log-1", headers=editor, json={**entity, "lat": 99, "lon": 7}).status_code,
        client.post("/v1/entities", headers=editor,
                    json={**entity, "id": "org-log-4", "contact": {**CONTACT, "email": "kein@"}}).status_code,
        client.post("/v1/entities/import", headers=editor, content_type="application/x-ndjson",
                    data=f"{line}\n{bad_line}\n").status_code,                                       # 422
        client.post("/v1/entities/import", headers=editor, content_type="application/x-ndjson",
                    data=f"{line}\n").status_code,                                                   # 200
        client.get("/v1/entities/org-log-1", headers=editor).status_code,
        client.post("/v1/recommendations/partners", headers=editor, json={"organisation": "org-log-1"}).status_code,
    ]
    assert statuses == [201, 409, 422, 422, 422, 200, 200, 200], statuses

    # an unexpected error while the request carries contact data: logged with an incident id, nothing else
    def broken(*_args, **_kwargs):
        raise RuntimeError("Speicher kaputt")

    monkeypatch.setattr(app.extensions["matcher"].store, "replace_entity", broken)
    failed = client.put("/v1/entities/org-log-1", headers=editor, json=entity)
    assert failed.status_code == 500 and failed.json["error"]["details"][0]["incident"] in caplog.text
    monkeypatch.undo()
    assert client.delete("/v1/entities/org-log-2?erase=true", headers=admin).status_code == 200

    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    leaked = [m for m in MARKERS if m in logged]
    record("logs", records=len(caplog.records), leaked=len(leaked), requests=len(statuses) + 2)
    assert not leaked, f"contact data in the logs: {leaked}"
    assert len(caplog.records) > 0, "nothing was logged at all: the test would prove nothing"
