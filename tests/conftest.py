"""Shared fixtures: real embedders (loaded once per session), the fixture catalog."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
# the command line's store (and its vector cache) for the whole session: never the developer's own data;
# it lives in var/ so that local re-runs encode nothing twice (CI starts empty and encodes for real)
os.environ["MATCHER_DATA_DIR"] = str(ROOT / "var" / "test-data")
os.environ.pop("MATCHER_DATABASE_URL", None)
FIXTURES = ROOT / "fixtures"
DEV_SET = ROOT.parent / "shared" / "eval" / "dev"
# vectors survive between local runs; CI starts with an empty cache and encodes for real.
# MATCHER_TEST_CACHE points elsewhere: `make test-numerics` gives each BLAS kernel a fresh file,
# so the embeddings themselves are computed under that kernel, not read from another run.
CACHE_FILE = Path(os.environ.get("MATCHER_TEST_CACHE") or ROOT / "var" / "test-vectors.sqlite")


# the demo catalog's vectors ship in models/ (what `make run` imports): `make test` starts its caches from
# them, verified as on import (a sample encoded here must agree to a cosine of 0.999), instead of spending
# 1–2 minutes encoding the fixture catalog twice. `make test-numerics` (MATCHER_TEST_CACHE set) encodes
# everything under each BLAS kernel itself.
SEED_VECTORS = None if os.environ.get("MATCHER_TEST_CACHE") else ROOT / "models" / "fixture-vectors.npz"


def seed_vectors(store, embedder) -> None:
    """Import the shipped demo-catalog vectors into ``store`` (anything with a ``vectors`` cache)."""
    if SEED_VECTORS is not None and SEED_VECTORS.exists():
        from matcher.live.vector_artifact import import_vectors

        import_vectors(SEED_VECTORS, store, embedder)


@pytest.fixture(scope="session")
def default_embedder():
    """The default (German-capable) embedder, real, behind an on-disk cache."""
    from types import SimpleNamespace

    from matcher.engine.embedding import DEFAULT_MODEL, CachedEmbedder, SQLiteVectorCache, make_embedder

    embedder = CachedEmbedder(make_embedder(DEFAULT_MODEL), SQLiteVectorCache(CACHE_FILE))
    seed_vectors(SimpleNamespace(vectors=embedder.cache), embedder.embedder)
    return embedder


@contextmanager
def default_store_lock():
    """Held while the command line's default store (``var/test-data``) is created or seeded: pytest-xdist's
    workers share it, and two that find it missing at once would both migrate it."""
    lock_file = Path(os.environ["MATCHER_DATA_DIR"]) / ".test-lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session", autouse=True)
def default_store(request):
    """The command line's default store (``var/test-data``; every command without ``--database`` opens it),
    migrated once before any test and its vector cache started from the shipped vectors, whatever test comes
    first (the default model is loaded for that only when some are missing: on a fresh clone)."""
    from matcher.cli.common import open_store
    from matcher.live.vector_artifact import read_artifact

    with default_store_lock():
        store = open_store(create=True)
        try:
            if SEED_VECTORS is not None and SEED_VECTORS.exists():
                shipped = read_artifact(SEED_VECTORS)
                if len(store.vectors.get_many(shipped.model_id, shipped.keys)) < len(shipped.keys):
                    seed_vectors(store, request.getfixturevalue("default_embedder").embedder)
        finally:
            store.close()


@pytest.fixture(scope="session")
def fast_embedder():
    """A real but fast model (USE multilingual, ~200 texts/s) for tests about
    storage and HTTP, where the choice of model is beside the point."""
    from matcher.engine.embedding import CachedEmbedder, SQLiteVectorCache, make_embedder

    return CachedEmbedder(make_embedder("use"), SQLiteVectorCache(CACHE_FILE))


@pytest.fixture(scope="session")
def catalog():
    from matcher.domain.schema import load_catalog

    return load_catalog(FIXTURES / "catalog.jsonl")


@pytest.fixture(scope="session")
def matcher(default_embedder, catalog):
    """The engine with its default configuration, fitted on the fixture catalog."""
    from matcher.engine.matcher import Matcher

    return Matcher(default_embedder).fit(catalog)


# -- pytest-xdist (`make test` runs two workers): a test marked `alone` measures timings under a load of its own
# (latency ratios, starvation, answer times while encoding), so no other test runs beside it. Every other test
# holds a shared lock while it runs (set-up and tear-down included); an `alone` one takes it exclusively, after
# closing the gate that new tests pass, so that it is not starved by the other worker's next tests.
RUN_LOCK = ROOT / "var" / "xdist-run.lock"
GATE_LOCK = ROOT / "var" / "xdist-gate.lock"


@contextmanager
def _run_lock(alone: bool):
    RUN_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(GATE_LOCK, "a") as gate, open(RUN_LOCK, "a") as run:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            if alone:
                fcntl.flock(run, fcntl.LOCK_EX)      # waits for the other worker's running test to end
            else:
                fcntl.flock(run, fcntl.LOCK_SH)
                fcntl.flock(gate, fcntl.LOCK_UN)
            yield
        finally:
            fcntl.flock(run, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    with _run_lock(item.get_closest_marker("alone") is not None):
        yield


def pytest_terminal_summary(terminalreporter):
    """Name the BLAS kernel and thread counts the numbers were computed with (see make test-numerics)."""
    from numerics import describe_blas

    terminalreporter.write_line(describe_blas())

# --- service fixtures (app, client, runner, servers) below this line ---

import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import requests  # noqa: E402

# The local PostgreSQL server is required (CI fails, never skips, when it is unreachable).
POSTGRES_URL = os.environ.get("MATCHER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _postgres_admin():
    from sqlalchemy import create_engine

    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except Exception as exc:
        engine.dispose()
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required for the store tests and is unreachable: {exc}")
    return engine


def _postgres_schema_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


def _database(backend: str, tmp_path: Path):
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    from sqlalchemy import text

    admin = _postgres_admin()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def any_database_url(request, tmp_path):
    """An empty database on SQLite and on PostgreSQL (every store test runs on both)."""
    yield from _database(request.param, tmp_path)


@pytest.fixture
def postgres_url(tmp_path):
    """An empty PostgreSQL schema of the test's own."""
    yield from _database("postgresql", tmp_path)


@pytest.fixture
def store(any_database_url):
    """A migrated, empty store on each backend."""
    from matcher.store import Store

    s = Store(any_database_url)
    s.upgrade()
    yield s
    s.close()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory, fast_embedder):
    """A migrated SQLite store holding the fixture catalog and all its vectors (built once per session)."""
    from matcher.domain.schema import load_catalog
    from matcher.live import LiveMatcher, StoreBackedEmbedder
    from matcher.store import Store

    path = tmp_path_factory.mktemp("template") / "template.db"
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    store.upsert_entities(load_catalog(FIXTURES / "catalog.jsonl"))
    LiveMatcher(store, StoreBackedEmbedder(fast_embedder, store)).fit()
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture(scope="session")  # session: module-scoped fixtures seed with it too (tests/test_jobs.py)
def seed_store(seeded_template):
    """Make the database at a URL a copy of the seeded template (catalog + vectors), on either backend."""
    from sqlalchemy import insert, select

    from matcher.domain.schema import load_catalog
    from matcher.store import Store, embeddings

    def seed(url: str) -> None:
        if url.startswith("sqlite:///"):
            shutil.copyfile(seeded_template, url.removeprefix("sqlite:///"))
            return
        target, source = Store(url), Store(f"sqlite:///{seeded_template}")
        target.upgrade()
        target.upsert_entities(load_catalog(FIXTURES / "catalog.jsonl"))
        with source.engine.connect() as src, target.engine.begin() as dst:
            rows = [dict(r) for r in src.execute(select(embeddings)).mappings()]
            for i in range(0, len(rows), 1000):
                dst.execute(insert(embeddings), rows[i : i + 1000])
        source.close()
        target.close()

    return seed


def _make_app(url: str, model, **config):
    from service import create_app

    # rate limits off: tests send many requests with one key (tests/test_reliability_access.py checks the limit);
    # started synchronously: the app is ready when made (tests/test_startup.py tests the start in the background)
    return create_app({"TESTING": True, "DATABASE_URL": url, "MODEL": model, "REFIT_WAIT_SECONDS": 60.0,
                       "RATELIMIT_ENABLED": False, "START_IN_BACKGROUND": False, **config})


@pytest.fixture(scope="module")
def app(tmp_path_factory, seeded_template, fast_embedder):
    """The app on a copy of the seeded SQLite store, keys required (shared by a test module:
    tests use their own ids, and assert nothing about what other tests wrote)."""
    path = tmp_path_factory.mktemp("app") / "matcher.db"
    shutil.copyfile(seeded_template, path)
    application = _make_app(f"sqlite:///{path}", fast_embedder)
    yield application
    application.extensions["matcher"].store.close()


@pytest.fixture
def make_app(fast_embedder, seed_store):
    """Factory: an app on a seeded database at ``url`` (``seed=False``: use the database as it is)."""
    made = []

    def make(url: str, seed: bool = True, **config):
        if seed:
            seed_store(url)
        application = _make_app(url, fast_embedder, **config)
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["matcher"].store.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner():
    """Click runner for the ``matcher`` command line (store commands take ``--database``)."""
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture(scope="module")
def api_keys(app):
    """One key per role for the module's app: {"reader": "Bearer …", ...} header values."""
    store = app.extensions["matcher"].store
    return {role: f"Bearer {store.create_key(role, f'test {role}')[1]}" for role in ("reader", "editor", "admin")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server():
    """Factory: serve an app with werkzeug's threaded server on a loopback port; returns the base URL."""
    from werkzeug.serving import make_server

    servers = []

    def serve(application) -> str:
        server = make_server("127.0.0.1", 0, application, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()


class ServerProcess:
    """A real gunicorn server in a subprocess (``service.wsgi:app``).

    Its workers start synchronously (``MATCHER_START_IN_BACKGROUND=false``): a worker takes requests only
    once it is ready, as the tests that kill and replace workers expect; pass
    ``MATCHER_START_IN_BACKGROUND="true"`` for the deployed behaviour (tests/test_startup.py)."""

    def __init__(self, url: str, database_url: str, log_path: Path, workers: int = 1, gunicorn_args: tuple = (),
                 **env: str):
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.gunicorn_args = tuple(gunicorn_args)
        self.env = env
        self.proc: subprocess.Popen | None = None

    def spawn(self) -> ServerProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MATCHER_DATABASE_URL": self.database_url,
               "MATCHER_MODEL": "use", "MATCHER_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "MATCHER_RATELIMIT_ENABLED": "false", "MATCHER_START_IN_BACKGROUND": "false", **self.env}
        log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
             "--threads", "4", "--timeout", "120", "--graceful-timeout", "5", *self.gunicorn_args, "service.wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return self

    def wait_ready(self, timeout: float = 120.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    self.ready_after = time.monotonic() - self.started_at
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log()}")

    def start(self, timeout: float = 120.0) -> ServerProcess:
        return self.spawn().wait_ready(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole server (master and workers: its own process group) and wait for it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


@pytest.fixture
def server_process(tmp_path):
    """Factory: a real gunicorn server on a loopback port against a database URL
    (``wait=False``: spawned only; call ``wait_ready()``)."""
    started: list[ServerProcess] = []

    def start(database_url: str, wait: bool = True, workers: int = 1, gunicorn_args: tuple = (),
              **env: str) -> ServerProcess:
        port = free_port()
        server = ServerProcess(f"http://127.0.0.1:{port}", database_url, tmp_path / f"server-{port}.log",
                               workers=workers, gunicorn_args=gunicorn_args, **env)
        started.append(server)
        server.spawn()
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.kill(signal.SIGTERM)


# -- the web page in Debian's chromium (tests/webpage.py); each module that uses them defines its `web` server
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    from webpage import CHROMIUM_ARGS

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, web):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE", accept_downloads=True)
    pg = context.new_page()
    from webpage import EXPECTED_4XX, Traffic

    traffic = Traffic(web.url)
    pg.on("request", lambda r: traffic.requests.append(r.url))
    pg.on("response", lambda r: r.status >= 500 and traffic.server_errors.append(f"{r.status} {r.url}"))
    # a 4xx the page answers with a message is expected; chromium logs it anyway, so it is left out
    pg.on("console", lambda m: m.type == "error" and not m.text.startswith(EXPECTED_4XX)
          and traffic.console_errors.append(m.text))
    pg.on("pageerror", lambda e: traffic.console_errors.append(str(e)))
    pg.traffic = traffic
    yield pg
    context.close()
