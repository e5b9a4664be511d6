"""Load on loopback: bounded concurrent clients, mixed reads and writes, every answer counted.

Each of ``clients`` threads has one request in flight at a time (so at most
``clients`` are outstanding: bounded concurrency) and draws its next request
from a fixed mix — recommendations of all four kinds, catalog reads and
filtered lists, entity creation and replacement (with contact data), and
feedback on a recommendation it was just given. Any answer other than 2xx,
and any request without an answer, is an error. Writes go to a
:class:`~bench.reliability.faults.WriteLedger` (and feedback to its own list)
so that the store can be compared with what was acknowledged afterwards.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests

from bench.latency import NEEDS as LATENCY_NEEDS

from .faults import WriteLedger

__all__ = ["Load", "LoadReport", "run_load", "feedback_found", "NEEDS", "MIX", "WRITES"]

NEEDS = LATENCY_NEEDS[:8]   # the latency benchmark's needs, each with a city
# the request mix: name → share (sums to 1); catalog writes are rare, as with staff editing a catalog
MIX = {"advisors": 0.36, "partners": 0.10, "events": 0.08, "invitees": 0.08, "get_entity": 0.13, "list": 0.15,
       "create": 0.02, "replace": 0.01, "feedback": 0.07}
WRITES = {"create": 0.7, "replace": 0.3}     # the writers of the fault tests


@dataclass
class LoadReport:
    """What a load run sent and what came back."""

    seconds: float
    clients: int
    requests: int = 0
    errors: int = 0
    no_answer: int = 0                       # requests the connection died under (a killed server)
    statuses: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    by_kind: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    ledger: WriteLedger = field(default_factory=WriteLedger)
    feedback: dict[int, tuple[str, str, str]] = field(default_factory=dict)   # id → (recommendation, entity, outcome)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, seconds: float, error: str | None, status: int | None) -> None:
        with self._lock:
            self.requests += 1
            self.by_kind[kind] += 1
            if status is None:
                self.no_answer += 1
            else:
                self.statuses[status] += 1
            self.latencies.setdefault(kind, []).append(seconds)
            if error is not None:
                self.errors += 1
                if len(self.error_samples) < 20:
                    self.error_samples.append(f"{kind}: {error}")

    def percentiles(self, kinds: set[str] | None = None) -> dict[str, float]:
        values = [v for k, vs in self.latencies.items() if kinds is None or k in kinds for v in vs]
        if not values:
            return {"p50_ms": 0.0, "p99_ms": 0.0}
        arr = np.asarray(values) * 1000
        return {"p50_ms": round(float(np.percentile(arr, 50)), 1), "p99_ms": round(float(np.percentile(arr, 99)), 1)}

    def figures(self) -> dict[str, Any]:
        recs = {"advisors", "partners", "events", "invitees"}
        return {"seconds": self.seconds, "clients": self.clients, "requests": self.requests,
                "requests_per_second": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
                "errors": self.errors, "no_answer": self.no_answer,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "error_samples": self.error_samples, "requests_by_kind": dict(self.by_kind),
                **self.percentiles(), "recommendations": self.percentiles(recs),
                "write_requests_acknowledged": self.ledger.writes_acknowledged,
                "feedback_acknowledged": len(self.feedback)}


def _entity(client: int, n: int, revision: int = 0) -> dict[str, Any]:
    rnd = random.Random(client * 100_000 + n)
    need, city = rnd.choice(NEEDS)
    return {"id": f"org-last-{client}-{n}", "kind": "organisation", "name": f"Lastverein {client}-{n}",
            "city": city, "org_type": rnd.choice(["migrant_organisation", "civil_society"]),
            "description": f"{need}. Stand {revision}: wir arbeiten seit Jahren daran.",
            "topics": [rnd.choice(["Fairer Handel", "Klimapartnerschaft", "Diaspora", "Globales Lernen"])],
            "languages": rnd.sample(["de", "tr", "fr", "ar", "en"], 2),
            "contact": {"person": f"Lastperson {client}-{n}", "email": f"last{client}x{n}@example.org",
                        "phone": f"+49 231 77{client:02d}{n:04d}"}}


class _Client:
    """One load client: a session, its own random stream, what it created and was last recommended."""

    def __init__(self, index: int, base: str, keys: dict[str, str], report: LoadReport, ids: dict[str, list[str]],
                 mix: dict[str, float]):
        self.index = index
        self.mix = mix
        self.base = base
        self.report = report
        self.ids = ids
        self.rnd = random.Random(index)
        self.session = requests.Session()
        self.editor = {"Authorization": keys["editor"]}
        self.reader = {"Authorization": keys["reader"]}
        self.created: dict[str, int] = {}        # own entity id → revision acknowledged
        self.last_recommendation: tuple[str, list[str]] | None = None
        self.n = 0
        self.next_id = 0

    def _send(self, kind: str, method: str, path: str, headers: dict[str, str], **kwargs: Any
              ) -> requests.Response | None:
        started = time.perf_counter()
        try:
            r = self.session.request(method, self.base + path, headers=headers, timeout=60, **kwargs)
        except requests.RequestException as exc:
            self.report.add(kind, time.perf_counter() - started, f"no answer: {type(exc).__name__}", None)
            return None
        error = None if 200 <= r.status_code < 300 else f"{r.status_code} {r.text[:200]}"
        self.report.add(kind, time.perf_counter() - started, error, r.status_code)
        return r

    def step(self) -> None:
        kind = self.rnd.choices(list(self.mix), weights=list(self.mix.values()))[0]
        if kind == "replace" and not self.created:
            kind = "create"
        if kind == "feedback" and self.last_recommendation is None:
            kind = "advisors"
        getattr(self, f"_{kind}")(kind)

    def _recommend(self, kind: str, body: dict[str, Any]) -> None:
        headers = self.reader if self.rnd.random() < 0.5 else self.editor
        r = self._send(kind, "POST", f"/v1/recommendations/{kind}", headers, json=body)
        if r is not None and r.status_code == 200:
            data = r.json()
            if data["results"] and headers is self.editor:   # feedback is bound to the key that got it
                self.last_recommendation = (data["id"], [x["entity"]["id"] for x in data["results"]])

    def _advisors(self, kind: str) -> None:
        need, city = self.rnd.choice(NEEDS)
        text = need if self.rnd.random() < 0.5 else f"{need} – Anfrage {self.index}-{self.n}"
        self.n += 1
        self._recommend(kind, {"text": text, "city": city, "k": self.rnd.choice([5, 10])})

    def _partners(self, kind: str) -> None:
        self._recommend(kind, {"organisation": self.rnd.choice(self.ids["organisation"]), "k": 5})

    def _events(self, kind: str) -> None:
        self._recommend(kind, {"organisation": self.rnd.choice(self.ids["organisation"]), "k": 5,
                               "as_of": "2026-01-01"})

    def _invitees(self, kind: str) -> None:
        self._recommend(kind, {"event": self.rnd.choice(self.ids["event"]), "k": 10})

    def _get_entity(self, kind: str) -> None:
        pool = self.ids["advisor"] + self.ids["organisation"]
        self._send(kind, "GET", f"/v1/entities/{self.rnd.choice(pool)}", self.editor)

    def _list(self, kind: str) -> None:
        _, city = self.rnd.choice(NEEDS)
        self._send(kind, "GET", "/v1/entities", self.reader,
                   params={"kind": self.rnd.choice(["advisor", "organisation"]), "city": city, "limit": 20})

    def _create(self, kind: str) -> None:
        self.next_id += 1
        record = _entity(self.index, self.next_id)
        r = self._send(kind, "POST", "/v1/entities", self.editor, json=record)
        self.report.ledger.sent(record["id"], record, None if r is None else r.status_code)
        if r is not None and r.status_code == 201:
            self.created[record["id"]] = 0

    def _replace(self, kind: str) -> None:
        entity_id = self.rnd.choice(sorted(self.created))
        revision = self.created[entity_id] + 1
        n = int(entity_id.rsplit("-", 1)[1])
        record = _entity(self.index, n, revision)
        r = self._send(kind, "PUT", f"/v1/entities/{entity_id}", self.editor, json=record)
        self.report.ledger.sent(entity_id, record, None if r is None else r.status_code)
        if r is not None and r.status_code == 200:
            self.created[entity_id] = revision

    def _feedback(self, kind: str) -> None:
        rec_id, shown = self.last_recommendation  # type: ignore[misc]
        entity_id = self.rnd.choice(shown)
        outcome = self.rnd.choice(["accepted", "declined", "contacted"])
        r = self._send(kind, "POST", "/v1/feedback", self.editor,
                       json={"recommendation_id": rec_id, "entity_id": entity_id, "outcome": outcome})
        if r is not None and r.status_code == 201:
            with self.report._lock:
                self.report.feedback[r.json()["id"]] = (rec_id, entity_id, outcome)


class Load:
    """Clients running in the background until :meth:`stop` (or a deadline): for fault injection under load.

    Example:
        >>> with Load(url, keys, ids, clients=8, mix=WRITES) as load:
        ...     kill_something()
        >>> load.report.ledger.acknowledged
    """

    def __init__(self, base_url: str, keys: dict[str, str], ids: dict[str, list[str]], clients: int = 16,
                 mix: dict[str, float] | None = None, seconds: float | None = None, first_client: int = 0):
        self.report = LoadReport(seconds=seconds or 0.0, clients=clients)
        self._stop = threading.Event()
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._clients = [_Client(first_client + i, base_url, keys, self.report, ids, mix or MIX)
                         for i in range(clients)]
        self._threads = [threading.Thread(target=self._loop, args=(c,), name=f"load-{c.index}", daemon=True)
                         for c in self._clients]
        self._started = 0.0

    def _loop(self, client: _Client) -> None:
        while not self._stop.is_set() and (self._deadline is None or time.monotonic() < self._deadline):
            client.step()
        client.session.close()

    def start(self) -> Load:
        self._started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def join(self) -> LoadReport:
        for t in self._threads:
            t.join()
        self.report.seconds = round(time.monotonic() - self._started, 2)
        return self.report

    def stop(self) -> LoadReport:
        self._stop.set()
        return self.join()

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_load(base_url: str, keys: dict[str, str], ids: dict[str, list[str]], seconds: float, clients: int = 16,
             mix: dict[str, float] | None = None) -> LoadReport:
    """Drive ``clients`` concurrent clients against ``base_url`` for ``seconds`` and return what happened.

    Args:
        keys: ``{"reader": "Bearer …", "editor": "Bearer …"}``.
        ids: catalog ids by kind (``advisor``, ``organisation``, ``event``) to ask about.
        mix: request kind → share (default :data:`MIX`).
    """
    return Load(base_url, keys, ids, clients=clients, mix=mix, seconds=seconds).start().join()


def feedback_found(store: Any, feedback: dict[int, tuple[str, str, str]]) -> int:
    """How many acknowledged feedback entries are in the store as sent."""
    from sqlalchemy import select

    from matcher.store import feedback as table

    with store.engine.connect() as conn:
        rows = {r.id: (r.recommendation_id, r.entity_id, r.outcome)
                for r in conn.execute(select(table.c.id, table.c.recommendation_id, table.c.entity_id,
                                             table.c.outcome))}
    return sum(1 for fid, sent in feedback.items() if rows.get(fid) == sent)
