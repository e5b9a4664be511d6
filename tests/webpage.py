"""The web page's test harness: a gunicorn server on a copy of the seeded store, Debian's chromium,
and what a page asked for and got (shared by the page's browser tests; the fixtures are in conftest)."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ROOT, ServerProcess, free_port

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--headless"]
EXPECTED_4XX = "Failed to load resource: the server responded with a status of 4"
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@dataclass
class WebServer:
    server: ServerProcess
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def web_server(folder: Path, seeded_template: Path, roles: Iterable[str] = (),
               entities: Iterable = ()) -> Iterator[WebServer]:
    """gunicorn on a copy of the seeded store (vectors stored: start-up encodes nothing but ``entities``' texts),
    open as in `make run`; a key for each of ``roles``."""
    from matcher.store import Store

    ARTIFACTS.mkdir(exist_ok=True)
    url = f"sqlite:///{folder / 'matcher.db'}"
    shutil.copyfile(seeded_template, folder / "matcher.db")
    store = Store(url)
    if entities:
        store.upsert_entities(list(entities))
    keys = {role: store.create_key(role, f"web test {role}")[1] for role in roles}
    store.close()
    server = ServerProcess(f"http://127.0.0.1:{free_port()}", url, folder / "server.log",
                           MATCHER_OPEN_RECOMMENDATIONS="true", MATCHER_OPEN_FEEDBACK="true").start()
    try:
        yield WebServer(server, keys)
    finally:
        server.kill(signal.SIGTERM)


@dataclass
class Traffic:
    """What the page asked for and got, to assert on after the test's steps."""

    base: str
    requests: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def api_calls(self, path: str) -> list[str]:
        return [u for u in self.requests if u.startswith(self.base + path)]

    def check(self) -> None:
        assert not self.server_errors, f"5xx answers: {self.server_errors}"
        foreign = [u for u in self.requests if not u.startswith(self.base) and not u.startswith(("blob:", "data:"))]
        assert not foreign, f"the page loaded something from elsewhere: {foreign}"
        assert not self.console_errors, f"errors in the browser console: {self.console_errors}"


def open_page(page, web):
    response = page.goto(web.url + "/")
    assert response.status == 200
    # the page's script ran: the organisation picker is filled (a polled JS string would need 'unsafe-eval')
    page.locator("#partner-org option").nth(1).wait_for(state="attached")
    return response
