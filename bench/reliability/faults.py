"""Fault injection helpers: a ledger of writes, the store compared with it, a private PostgreSQL cluster,
a tiny tmpfs, gunicorn's worker processes.

The ledger sorts every write a client sent by what the client learned:
*acknowledged* (2xx: it must be in the store, exactly as sent), *refused*
(an answer other than 2xx: it must not be), *uncertain* (no answer — the
connection died with the server: it may be in the store, but only whole).
:func:`store_matches` checks the store against that, entity by entity and
down to the rows that belong to an entity (its topics), so a half-written
entity is found too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WriteLedger", "StoreCheck", "store_matches", "PostgresCluster", "Tmpfs", "mount_tmpfs",
           "worker_pids", "wait_for_workers", "kill_process_group", "free_port"]


# ----------------------------------------------------------------------------- ledger and store comparison
@dataclass
class WriteLedger:
    """What clients sent and what they were told, per entity id (thread-safe)."""

    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)   # id → record as last acknowledged
    refused: dict[str, int] = field(default_factory=dict)                    # id → status of the refusal
    uncertain: dict[str, dict[str, Any]] = field(default_factory=dict)      # id → record sent, no answer
    writes_acknowledged: int = 0
    writes_uncertain: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, entity_id: str, record: dict[str, Any], status: int | None) -> None:
        """Note the outcome of one create/replace of ``record``: ``status`` None = no answer."""
        with self._lock:
            if status is None:
                self.uncertain[entity_id] = record
                self.writes_uncertain += 1
            elif 200 <= status < 300:
                self.acknowledged[entity_id] = record
                self.uncertain.pop(entity_id, None)
                self.writes_acknowledged += 1
            elif entity_id not in self.acknowledged:
                self.refused[entity_id] = status


@dataclass
class StoreCheck:
    """The store compared with a :class:`WriteLedger`."""

    acknowledged: int
    found: int
    lost: list[str]                 # acknowledged, not in the store
    different: list[str]            # in the store, but not as sent (half-written or mixed up)
    refused_present: list[str]      # refused, yet in the store
    uncertain_present: int          # no answer, in the store (whole)
    uncertain_absent: int

    @property
    def ok(self) -> bool:
        return not (self.lost or self.different or self.refused_present)

    def figures(self) -> dict[str, Any]:
        return {"writes_acknowledged": self.acknowledged, "writes_found": self.found, "lost": len(self.lost),
                "half_written": len(self.different), "refused_but_present": len(self.refused_present),
                "unanswered_present": self.uncertain_present, "unanswered_absent": self.uncertain_absent}


def _canonical(record: Mapping[str, Any]) -> dict[str, Any]:
    from matcher.domain.schema import parse_entity

    return parse_entity(dict(record)).model_dump(mode="json", exclude_none=True)


def store_matches(store: Any, acknowledged: Mapping[str, dict[str, Any]], *, refused: Iterable[str] = (),
                  uncertain: Mapping[str, dict[str, Any]] | None = None, version_before: int | None = None
                  ) -> StoreCheck:
    """Compare ``store`` with what clients were told; ``version_before`` is accepted for the caller's own check."""
    from sqlalchemy import select

    from matcher.store import entities, entity_topics
    from matcher.store.catalog import fold

    uncertain = dict(uncertain or {})
    ids = sorted({*acknowledged, *refused, *uncertain})
    stored: dict[str, dict[str, Any]] = {}
    topics: dict[str, set[str]] = {}
    with store.engine.connect() as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            stored.update({r.id: r.record for r in conn.execute(
                select(entities.c.id, entities.c.record).where(entities.c.id.in_(chunk)))})
            for entity_id, topic in conn.execute(select(entity_topics.c.entity_id, entity_topics.c.topic_key)
                                                 .where(entity_topics.c.entity_id.in_(chunk))):
                topics.setdefault(entity_id, set()).add(topic)

    def whole(entity_id: str, sent: Mapping[str, Any]) -> bool:
        record = stored[entity_id]
        want = _canonical(sent)
        return record == want and topics.get(entity_id, set()) == {fold(t)[:200] for t in want.get("topics", [])}

    def as_one_of(entity_id: str) -> bool:
        # a write without an answer may or may not have committed: the stored record is either it or the
        # one acknowledged before it, and nothing in between
        candidates = [r for r in (acknowledged.get(entity_id), uncertain.get(entity_id)) if r is not None]
        return any(whole(entity_id, r) for r in candidates)

    lost = [i for i in acknowledged if i not in stored]
    different = sorted({i for i in [*acknowledged, *uncertain] if i in stored and not as_one_of(i)})
    present_uncertain = sum(1 for i in uncertain if i in stored)
    return StoreCheck(acknowledged=len(acknowledged), found=len(acknowledged) - len(lost), lost=lost,
                      different=different, refused_present=[i for i in refused if i in stored],
                      uncertain_present=present_uncertain, uncertain_absent=len(uncertain) - present_uncertain)


# ----------------------------------------------------------------------------- processes
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(master_pid: int) -> list[int]:
    """The worker processes of a gunicorn master (its children), from /proc."""
    path = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except (OSError, ValueError):
        return []


def wait_for_workers(master_pid: int, count: int, exclude: Iterable[int] = (), timeout: float = 120.0) -> list[int]:
    """Wait until the master has ``count`` workers none of which is in ``exclude`` (killed ones replaced)."""
    excluded = set(exclude)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(master_pid)
        if len(pids) == count and not excluded & set(pids):
            return pids
        time.sleep(0.05)
    raise AssertionError(f"gunicorn master {master_pid} has workers {worker_pids(master_pid)}, wanted {count} new")


# ----------------------------------------------------------------------------- private PostgreSQL cluster
def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    located = shutil.which(name)
    if located is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (looked in /usr/lib/postgresql/*/bin and PATH)")
    return located


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb into a temporary directory, a free loopback port), so that a
    test can stop and start it without touching the shared server on port 5432.

    initdb refuses to run as root: as root the cluster is created and run as the ``postgres`` user
    (``runuser -u postgres``).

    Example:
        >>> pg = PostgresCluster().start(); pg.stop(); pg.start(); pg.destroy()
    """

    def __init__(self, port: int | None = None):
        # under /tmp, not the test's tmp_path: pytest's directories are private to root
        self.root = Path(tempfile.mkdtemp(prefix="matcher-pg-"))
        self.data = self.root / "data"
        self.port = port or free_port()
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        cmd = (["runuser", "-u", "postgres", "--"] if self._as_postgres else []) + list(args)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr or result.stdout}"
                               f"\n{self.log.read_text(errors='replace')[-2000:] if self.log.exists() else ''}")

    def start(self) -> PostgresCluster:
        """Create the cluster on first use, then start it and wait until it accepts connections."""
        if not self.data.exists():
            self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N",
                      "-E", "UTF8", "--locale=C")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
                  "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected, clean shutdown) or ``immediate`` (like a crash)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)


# ----------------------------------------------------------------------------- a tiny file system
@dataclass
class Tmpfs:
    path: Path

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


def mount_tmpfs(path: Path, size_bytes: int) -> Tmpfs | None:
    """Mount a tmpfs of ``size_bytes`` at ``path``; ``None`` where mounting is not permitted (not root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    pages = -(-size_bytes // 4096) * 4096
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={pages}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    return Tmpfs(path) if result.returncode == 0 else None


def kill_process_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
