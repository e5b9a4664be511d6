"""The production setup of docs/operations.md holds: Debian's nginx with deploy/nginx.conf in front of a real
gunicorn (2 workers × 4 threads) keeps /healthz and a keyed recommendation answering while slow clients send
1 byte/s — which, sent straight to gunicorn, starve it — and answers its own errors in the API's one JSON error
shape. deploy/compose.yaml runs that config as the only published port."""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import socket
import time
from pathlib import Path

import pytest
import requests
import yaml

from bench.reliability.faults import wait_for_workers
from bench.reliability.fuzz import error_shape_problem
from bench.reliability.proxy import (
    BODY_HEAD,
    NGINX_CONF,
    NginxProxy,
    Prober,
    SlowClients,
    nginx_version,
    raw_request,
)
from bench.reliability.report import record
from bench.reliability.sizes import is_full
from conftest import ROOT, ServerProcess, free_port

pytestmark = pytest.mark.slow
COMPOSE = ROOT / "deploy" / "compose.yaml"
NEED = {"text": "Faire Beschaffung für das Rathaus", "k": 3}
WARMUP = 2.5            # seconds for the slow clients' first bytes to arrive before the probes start
LIMIT_CONN = int(re.search(r"limit_conn per_address (\d+);", NGINX_CONF.read_text()).group(1))


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


class Stack:
    """gunicorn as deploy/compose.yaml configures the app (its environment), and the shipped nginx in front."""

    def __init__(self, root: Path, url: str):
        from matcher.store import Store

        store = Store(url)
        self.key = f"Bearer {store.create_key('reader')[1]}"
        store.close()
        app_env = {k: str(v) for k, v in _compose()["services"]["app"]["environment"].items()
                   if k in ("MATCHER_TRUSTED_PROXIES", "GUNICORN_CMD_ARGS")}
        ready = root / "ready"
        ready.mkdir()
        port = free_port()
        self.gunicorn = ServerProcess(f"http://127.0.0.1:{port}", url, root / "gunicorn.log", workers=2,
                                      gunicorn_args=("-c", "python:bench.reliability.gunicorn_ready"),
                                      MATCHER_READY_DIR=str(ready), **app_env).start()
        deadline = time.monotonic() + 180
        while not all((ready / str(pid)).exists() for pid in wait_for_workers(self.gunicorn.proc.pid, 2)):
            assert time.monotonic() < deadline, f"workers not ready:\n{self.gunicorn.log()}"
            time.sleep(0.1)
        self.proxy = NginxProxy(free_port(), f"127.0.0.1:{port}").start()

    def stop(self) -> None:
        self.proxy.stop()
        self.gunicorn.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, seed_store):
    root = tmp_path_factory.mktemp("proxy")
    url = f"sqlite:///{root / 'store.db'}"
    seed_store(url)
    s = Stack(root, url)
    yield s
    s.stop()


# ------------------------------------------------------------------------------------------ what is shipped
def test_compose_publishes_only_the_proxy_which_runs_the_shipped_config():
    services = _compose()["services"]
    assert set(services) == {"proxy", "app", "db"}
    assert [name for name, s in services.items() if s.get("ports")] == ["proxy"], "only the proxy is published"
    proxy, app, db = services["proxy"], services["app"], services["db"]
    mounts = {(COMPOSE.parent / src).resolve(): dst for src, dst, *_ in (v.split(":") for v in proxy["volumes"])}
    assert mounts.get(NGINX_CONF.resolve()) == "/etc/nginx/nginx.conf", "the proxy must run deploy/nginx.conf"
    assert "8080" in str(proxy["ports"][0]).split(":")[-1] and "listen 8080;" in NGINX_CONF.read_text()
    for service in (proxy, app):
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    env = app["environment"]
    assert re.match(r"postgresql\+psycopg://[^@]+@db:5432/", env["MATCHER_DATABASE_URL"])
    assert env["MATCHER_TRUSTED_PROXIES"] == "1"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    # the upstream nginx names is the app service on the port the image serves
    assert "server app:8000;" in NGINX_CONF.read_text() and "EXPOSE 8000" in (ROOT / "Dockerfile").read_text()


def test_the_shipped_nginx_config_passes_nginx_t():
    proxy = NginxProxy(free_port(), "127.0.0.1:9")
    try:
        done = proxy.test_config()
    finally:
        proxy.stop()
    assert done.returncode == 0, done.stderr


def test_what_the_dockerfile_imports_exists():
    """The image's build-time check imports by module path; a moved module must fail here, not in `docker build`."""
    imports = re.findall(r"from ([\w.]+) import (\w+)", (ROOT / "Dockerfile").read_text())
    assert imports
    for module, name in imports:
        assert importlib.util.find_spec(module) is not None, module
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


def test_the_proxys_error_texts_are_the_apps():
    """Whoever answers, proxy or app, a status has one code and one German message (service/errors.py)."""
    from service.errors import _HTTP_MESSAGES, _HTTP_OTHER

    conf = NGINX_CONF.read_text(encoding="utf-8")
    block = re.search(r"map \$status \$proxy_error \{(.*?)\n    \}", conf, re.S).group(1)
    texts = {int(s): json.loads(body) for s, body in re.findall(r"^\s*(\d{3})\s+'(.*)';$", block, re.M)}
    statuses = {int(s) for s in re.findall(r"\d{3}", " ".join(re.findall(r"error_page ([\d =]+) /", conf)))}
    assert statuses - {494} <= set(texts), "every status the proxy answers itself has a JSON text"
    for status, body in texts.items():
        assert error_shape_problem(status, "application/json", json.dumps(body).encode(),
                                   {"Allow": "x", "Retry-After": "5"}) is None, status
        code, message = body["error"]["code"], body["error"]["message"]
        if status in _HTTP_MESSAGES:
            assert code == _HTTP_MESSAGES[status][0], status
        elif status in _HTTP_OTHER and status != 500 and "{" not in _HTTP_OTHER[status]:   # 500: internal_error
            assert (code, message) == (f"http_{status}", _HTTP_OTHER[status]), status


# ------------------------------------------------------------------------------- the proxy's own errors
def _request(path: str, headers: bytes = b"", method: bytes = b"GET", body: bytes = b"") -> bytes:
    return method + b" " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n" + body


CHUNK = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
ERRORS = {  # what a client sends → the status the proxy answers itself
    "body over the limit": (_request("/v1/recommendations/advisors", b"Content-Type: application/json\r\n"
                                     b"Content-Length: 300000\r\n", b"POST", b"{" * 1000), 413),
    "chunked body over the limit": (_request("/v1/feedback", b"Transfer-Encoding: chunked\r\n", b"POST",
                                             CHUNK * 5 + b"0\r\n\r\n"), 413),
    "import over 16 MB": (_request("/v1/entities/import", b"Content-Length: 17000000\r\n", b"POST"), 413),
    "URI too long": (_request("/v1/entities?city=" + "x" * 5000), 414),
    "malformed request line": (b"\xff\xfe GARBAGE \x80\r\n\r\n", 400),
    "negative Content-Length": (_request("/v1/feedback", b"Content-Length: -5\r\n", b"POST"), 400),
    "header too large": (_request("/healthz", b"X-Gross: " + b"y" * 5000 + b"\r\n"), 431),
    "headers over 16 KB": (_request("/healthz", b"".join(b"X-%d: %s\r\n" % (i, b"z" * 3000) for i in range(8))), 431),
    "a method the API does not have": (_request("/healthz", method=b"PATCH"), 405),
    "a method name gunicorn refuses with HTML": (_request("/healthz", method=b"AB"), 405),
    "TRACE": (_request("/healthz", method=b"TRACE"), 405),
    "HTTP/2.0 request line": (b"GET /healthz HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
    "unknown Transfer-Encoding": (_request("/v1/feedback", b"Transfer-Encoding: gzip\r\n", b"POST"), 501),
}
PASSED_ON = {  # what the proxy lets through must reach the app (its JSON), never gunicorn's own HTML page
    "200 small headers": _request("/healthz", b"".join(b"X-%d: 1\r\n" % i for i in range(200))),
    **{f"request line of {n} bytes": _request("/v1/entities/" + "e" * (n - len("GET /v1/entities/ HTTP/1.1")))
       for n in range(4080, 4101, 4)},
}


@pytest.fixture(scope="module")
def proxy_errors(stack):
    """Every case of ERRORS through the proxy, and an upstream that is down: name → (status, problem or None)."""
    found = {}
    for name, (payload, wanted) in ERRORS.items():
        status, headers, body = raw_request(stack.proxy.port, payload)
        problem = error_shape_problem(status, headers.get("content-type"), body, headers)
        found[name] = (status, problem or (None if status == wanted else f"status {status}, not {wanted}")
                       or (None if headers.get("x-content-type-options") == "nosniff" else "no nosniff"))
    # limit_conn: 100 requests at a time per address (bodies that do not come), the 101st is refused
    waiting = [socket.create_connection(("127.0.0.1", stack.proxy.port), timeout=5) for _ in range(LIMIT_CONN)]
    try:
        for sock in waiting:
            sock.sendall(BODY_HEAD + b"\r\n")
        time.sleep(0.5)
        status, headers, body = raw_request(stack.proxy.port, _request("/healthz"))
    finally:
        for sock in waiting:
            sock.close()
    found["over 100 requests at a time from one address"] = (
        status, error_shape_problem(status, headers.get("content-type"), body, headers)
        or (None if status == 429 else f"status {status}, not 429"))
    down = NginxProxy(free_port(), f"127.0.0.1:{free_port()}").start()   # nothing listens there
    try:
        status, headers, body = raw_request(down.port, _request("/healthz"))
    finally:
        down.stop()
    found["app down"] = (status, error_shape_problem(status, headers.get("content-type"), body, headers)
                         or (None if status in (502, 503) and headers.get("retry-after") else f"status {status}"))
    return found


def test_the_proxys_own_errors_are_in_the_json_shape(proxy_errors):
    bad = {name: result for name, result in proxy_errors.items() if result[1] is not None}
    assert not bad, bad
    assert proxy_errors["header too large"][0] == 431 and proxy_errors["app down"][0] == 502


def test_what_the_proxy_passes_on_is_answered_by_the_app_not_by_gunicorn(stack):
    """gunicorn's limits are above nginx's (GUNICORN_CMD_ARGS in deploy/compose.yaml): no request that nginx
    accepts meets gunicorn's plain-text/HTML refusal."""
    for name, payload in PASSED_ON.items():
        status, headers, body = raw_request(stack.proxy.port, payload)
        assert status and headers.get("content-type", "").startswith("application/json"), (name, status, body[:200])
        assert status < 500 and error_shape_problem(status, headers["content-type"], body, headers) is None, name
    assert raw_request(stack.proxy.port, PASSED_ON["200 small headers"])[0] == 200


# ------------------------------------------------------------------------------------------- slow clients
def _healthz(base: str) -> Prober:
    return Prober("healthz", lambda timeout: requests.get(f"{base}/healthz", timeout=timeout))


def _recommend(base: str, key: str) -> Prober:
    return Prober("recommend", lambda timeout: requests.post(f"{base}/v1/recommendations/advisors", json=NEED,
                                                             headers={"Authorization": key}, timeout=timeout))


@pytest.mark.alone
def test_slow_clients_do_not_starve_the_service_behind_the_proxy(stack, proxy_errors):
    """64 connections (full run; 32 in make test) sending headers or bodies at 1 byte/s: through the proxy every
    probe is answered with p95 < 1 s; the same clients sent straight to gunicorn starve /healthz."""
    # make test: 32, so that each of the two workers surely gets more slow clients than its 4 threads
    n, seconds, direct_seconds = (64, 30.0, 20.0) if is_full() else (32, 7.0, 8.0)
    health, recommend = _healthz(stack.proxy.url), _recommend(stack.proxy.url, stack.key)
    with SlowClients(stack.proxy.port, n, key=stack.key) as slow:
        time.sleep(WARMUP)
        with health, recommend:
            time.sleep(seconds)
    direct = _healthz(stack.gunicorn.url)
    with SlowClients(stack.gunicorn.port, n, key=stack.key) as slow_direct:
        time.sleep(WARMUP)
        with direct:
            time.sleep(direct_seconds)
    recovered = _recovers(stack.gunicorn.url)
    json_ok = sum(1 for _, problem in proxy_errors.values() if problem is None)
    record("slow_clients", proxy=nginx_version(), connections=n, seconds=seconds,
           healthz_probes=health.probes, healthz_ok=health.ok, healthz_p95_ms=health.p95_ms(),
           recommend_probes=recommend.probes, recommend_ok=recommend.ok, recommend_p95_ms=recommend.p95_ms(),
           direct_healthz_probes=direct.probes, direct_healthz_ok=direct.ok,
           proxy_errors_json=f"{json_ok}/{len(proxy_errors)}")
    assert slow.bytes_sent >= n * seconds * 0.8 and slow_direct.bytes_sent >= n * direct_seconds * 0.8
    for probe in (health, recommend):
        assert probe.probes >= seconds * 2, (probe.name, probe.probes)
        assert probe.ok == probe.probes, (probe.name, probe.statuses, stack.proxy.log())
        assert probe.p95_ms() < 1000, (probe.name, probe.p95_ms())
    # why the proxy is there: gunicorn alone gives its 8 threads to the slow clients
    assert direct.probes >= 3 and direct.ok <= direct.probes // 2, (direct.statuses, direct.seconds)
    assert recovered, "gunicorn did not answer again once the slow clients were gone"


def _recovers(base: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False
