"""MATCHER_TRUSTED_PROXIES: behind the documented proxy the rate limit counts per client address (the last
X-Forwarded-For entry, the one the proxy added); without a proxy configured, forwarded headers change nothing."""

from __future__ import annotations

import pytest

NEED = {"text": "Fairer Handel in der Beschaffung", "k": 2}


def _app(make_app, tmp_path, trusted):
    return make_app(f"sqlite:///{tmp_path / 'proxied.db'}", RATELIMIT_ENABLED=True, OPEN_RECOMMENDATIONS=True,
                    RATE_LIMIT_RECOMMENDATIONS="2 per minute", TRUSTED_PROXIES=trusted)


def _ask(client, forwarded_for: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/v1/recommendations/advisors", json=NEED, headers=headers,
                       environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code


def test_without_a_trusted_proxy_forwarded_addresses_are_ignored(make_app, tmp_path):
    client = _app(make_app, tmp_path, 0).test_client()
    statuses = [_ask(client, f"10.0.0.{i}") for i in range(1, 4)]
    assert statuses == [200, 200, 429], "a client must not get a new budget by writing X-Forwarded-For"


def test_behind_one_proxy_the_address_it_appended_counts(make_app, tmp_path):
    client = _app(make_app, tmp_path, 1).test_client()
    assert [_ask(client, "10.0.0.1"), _ask(client, "10.0.0.1"), _ask(client, "10.0.0.1")] == [200, 200, 429]
    assert _ask(client, "10.0.0.2") == 200, "another client behind the proxy has its own budget"
    # what the client wrote itself stands left of the proxy's entry and is ignored
    assert _ask(client, "203.0.113.9, 10.0.0.1") == 429
    assert _ask(client, "203.0.113.10, 10.0.0.2") == 200


def test_behind_one_proxy_the_scheme_is_the_forwarded_one(make_app, tmp_path):
    from flask import request

    app = _app(make_app, tmp_path, 1)
    seen = {}
    app.before_request(lambda: seen.update(scheme=request.scheme, addr=request.remote_addr) and None)
    app.test_client().get("/healthz", headers={"X-Forwarded-For": "10.0.0.5", "X-Forwarded-Proto": "https"})
    assert seen == {"scheme": "https", "addr": "10.0.0.5"}


@pytest.mark.parametrize("value", ["zwei", -1, 1.5, True])
def test_a_trusted_proxy_count_that_is_not_one_is_refused_at_start(make_app, tmp_path, value):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        _app(make_app, tmp_path, value)
