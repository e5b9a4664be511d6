"""The slow-client run (``tests/test_reliability_proxy.py``): Debian's nginx with ``deploy/nginx.conf`` in front
of a real gunicorn, clients that send 1 byte per second, and probes that time ``/healthz`` and a recommendation.

:class:`NginxProxy` runs the shipped config with only the listen port, the upstream address and the temporary
paths replaced (:func:`proxy_config`), so the test exercises what production runs. :class:`SlowClients` holds
``n`` connections open for the whole run: half send a request header that never ends, half a POST body; a
connection the server closes is opened again at once, as a patient attacker would. :class:`Prober` sends one
request every ~0.25 s with a 2 s timeout and keeps every outcome.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

__all__ = ["NGINX_CONF", "nginx_binary", "nginx_version", "proxy_config", "NginxProxy", "SlowClients", "Prober",
           "raw_request"]

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
# what the shipped config names, and what a test run puts in its place
LISTEN, UPSTREAM, TEMP = "listen 8080;", "server app:8000;", "/var/lib/nginx/"

HEADER_STREAM = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Langsam: "           # then "a" for ever
BODY_HEAD = (b"POST /v1/recommendations/advisors HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n")                                      # then the key, if any
BODY_STREAM = b'{"text": "'                                                             # then "a" for ever
# between two connections: opened all at once, they land mostly on one gunicorn worker (the one awake wins the
# accept race; seen 29 to 3 of 32), spread out they share the workers as real clients over time do
STAGGER = 0.02


def nginx_binary() -> str:
    """Debian's nginx (``/usr/sbin`` is not on every PATH)."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        raise RuntimeError("nginx is not installed: run `bash tests/ensure_nginx.sh` (make test does)")
    return found


def nginx_version() -> str:
    """``nginx -v`` as it answers, e.g. ``nginx version: nginx/1.22.1``."""
    done = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, timeout=30)
    return (done.stderr or done.stdout).strip()


def proxy_config(port: int, upstream: str, temp_dir: Path) -> str:
    """``deploy/nginx.conf`` with only the listen port, the upstream address and the temporary paths replaced."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    for old, new in ((LISTEN, f"listen 127.0.0.1:{port};"), (UPSTREAM, f"server {upstream};"), (TEMP, f"{temp_dir}/")):
        if old not in text:
            raise AssertionError(f"deploy/nginx.conf no longer contains {old!r}; adapt bench/reliability/proxy.py")
        text = text.replace(old, new)
    return text


class NginxProxy:
    """nginx in the foreground on a loopback port, with a private prefix (config, temp files, logs) in ``/tmp``.

    The prefix is world-readable: started as root, nginx's workers run as ``www-data`` (the config's ``user``)
    and must reach their temporary folders."""

    def __init__(self, port: int, upstream: str):
        self.port, self.upstream = port, upstream
        self.prefix = Path(tempfile.mkdtemp(prefix="matcher-nginx-"))
        os.chmod(self.prefix, 0o755)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(proxy_config(port, upstream, self.prefix / "temp"), encoding="utf-8")
        (self.prefix / "temp").mkdir(mode=0o755)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _globals(self, daemon: bool) -> str:
        return (f"{'' if daemon else 'daemon off; '}pid {self.prefix}/nginx.pid; "
                f"error_log {self.prefix}/error.log notice;")

    def test_config(self) -> subprocess.CompletedProcess:
        """``nginx -t`` on the generated config."""
        return subprocess.run([nginx_binary(), "-t", "-p", str(self.prefix), "-c", str(self.conf),
                               "-g", self._globals(daemon=True)], capture_output=True, text=True, timeout=30)

    def start(self, timeout: float = 15.0) -> NginxProxy:
        access = open(self.prefix / "access.log", "ab")
        self.proc = subprocess.Popen([nginx_binary(), "-p", str(self.prefix), "-c", str(self.conf),
                                      "-g", self._globals(daemon=False)],
                                     stdout=access, stderr=subprocess.STDOUT, start_new_session=True)
        access.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"nginx not listening after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop this nginx (its master and workers: its own process group) and remove its prefix."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        shutil.rmtree(self.prefix, ignore_errors=True)


@dataclass
class _Connection:
    sock: socket.socket
    body: bool
    sent: int = 0


class SlowClients:
    """``n`` connections to a loopback port sending 1 byte per second (even ones a header, odd ones a body).

    With ``key`` (``"Bearer …"``) the bodies are sent with it: the app then reads the body instead of refusing
    at once — the worst case, a key holder (or an open demo route) sending slowly."""

    def __init__(self, port: int, n: int, key: str | None = None, interval: float = 1.0):
        self.port, self.n, self.interval = port, n, interval
        self.head = BODY_HEAD + (f"Authorization: {key}\r\n".encode() if key else b"") + b"\r\n"
        self.reopened = 0          # connections the server closed (and that were opened again)
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._conns: list[_Connection] = []

    def __enter__(self) -> SlowClients:
        for i in range(self.n):
            self._conns.append(self._open(i % 2 == 1))
            time.sleep(STAGGER)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for conn in self._conns:
            conn.sock.close()

    def _open(self, body: bool) -> _Connection:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if body:
            sock.sendall(self.head)
        sock.setblocking(False)
        return _Connection(sock, body)

    @staticmethod
    def _closed(sock: socket.socket) -> bool:
        """The server closed the connection or answered (then it will close it: the request is over)."""
        try:
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)     # b"": closed; bytes: an answer
            return True
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for i, conn in enumerate(self._conns):
                stream = BODY_STREAM if conn.body else HEADER_STREAM
                byte = stream[conn.sent:conn.sent + 1] or b"a"
                try:
                    if self._closed(conn.sock):
                        raise ConnectionResetError
                    conn.sock.send(byte)
                    conn.sent += 1
                    self.bytes_sent += 1
                except OSError:
                    conn.sock.close()
                    self.reopened += 1
                    try:
                        self._conns[i] = self._open(conn.body)
                    except OSError:
                        self._conns[i] = _Connection(socket.socket(), conn.body)   # closed: retried next tick


@dataclass
class Prober:
    """One request every ``interval`` seconds in a thread of its own; a probe is ok when answered 200 in time."""

    name: str
    call: Callable[[float], requests.Response]
    interval: float = 0.25
    timeout: float = 2.0
    seconds: list[float] = field(default_factory=list)      # how long each probe took (failed ones included)
    statuses: list[int] = field(default_factory=list)        # 0: no answer within the timeout
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Prober:
        self._thread = threading.Thread(target=self._run, name=f"probe-{self.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 10)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                status = self.call(self.timeout).status_code
            except requests.RequestException:
                status = 0
            self.seconds.append(time.monotonic() - start)
            self.statuses.append(status)
            self._stop.wait(self.interval)

    @property
    def probes(self) -> int:
        return len(self.statuses)

    @property
    def ok(self) -> int:
        return sum(1 for s in self.statuses if s == 200)

    def p95_ms(self) -> float:
        """95th percentile of the probes' durations (nearest rank; an unanswered probe counts with its time)."""
        if not self.seconds:
            return math.inf
        ordered = sorted(self.seconds)
        return round(1000 * ordered[math.ceil(0.95 * len(ordered)) - 1], 1)


def raw_request(port: int, payload: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; the answer's status (0: none), headers (lower-case names) and body."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:     # no half-close after it: nginx would take that for a client that gave up (499, no answer)
            sock.sendall(payload)
        except OSError:
            pass                      # the server refused and closed before reading everything
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except OSError:
            pass
    if not answer.startswith(b"HTTP/"):
        return 0, {}, answer
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ", 2)[1]), headers, body


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value.strip())
    return False
