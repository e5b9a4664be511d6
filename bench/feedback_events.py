"""Reading feedback as training events from the store (issue 18): ``AuditLog.feedback_events`` over
``--recommendations`` audited recommendations of 10 shown entities each, one feedback row each
(``--recommendations 10000`` = 100,000 events), beside the bare reads of the same rows in the same run.

    .venv/bin/python -m bench.feedback_events [--recommendations 10000] [--database URL]

The baseline reads the two tables whole (``SELECT`` of the audit columns the events need, and of the
feedback rows) without building events; the ratio is the cost of the extraction itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time

from sqlalchemy import insert, select

from matcher.store import Store, audit_log, feedback


def fill(store: Store, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    entries, rows = [], []
    for i in range(n):
        rec = f"rec_{i:032x}"
        shown = [f"adv-{rng.randrange(10_000)}" for _ in range(10)]
        entries.append({"recommendation_id": rec, "created_at": now - dt.timedelta(seconds=n - i), "key_id": "k",
                        "role": "editor", "task": "advisors", "asker_id": None, "query": {"k": 10},
                        "shown": shown, "model_id": "m/hand", "catalog_version": 1,
                        "request": {"task": "advisors", "text": f"Bedarf {i % 1000}", "city": "Essen"}})
        rows.append({"recommendation_id": rec, "entity_id": shown[rng.randrange(10)],
                     "outcome": rng.choice(("accepted", "declined", "contacted")), "key_id": "k", "created_at": now})
    with store.db.write() as conn:
        for start in range(0, n, 2000):
            conn.execute(insert(audit_log), entries[start:start + 2000])
            conn.execute(insert(feedback), rows[start:start + 2000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recommendations", type=int, default=10_000)
    parser.add_argument("--database", default=None, help="an empty database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="feedback-events-")
    store = Store(args.database or f"sqlite:///{os.path.join(folder, 'bench.db')}")
    store.upgrade()
    fill(store, args.recommendations)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for round_ in range(3):
        began = time.perf_counter()
        with store.db.read() as conn:
            a = conn.execute(select(audit_log.c.id, audit_log.c.recommendation_id, audit_log.c.task,
                                    audit_log.c.request, audit_log.c.asker_id, audit_log.c.shown,
                                    audit_log.c.created_at)).all()
            b = conn.execute(select(feedback.c.recommendation_id, feedback.c.entity_id, feedback.c.outcome,
                                    feedback.c.created_at)).all()
        bare = time.perf_counter() - began
        began = time.perf_counter()
        events = sum(1 for _ in store.audit.feedback_events())
        took = time.perf_counter() - began
        print(f"round {round_ + 1}: {events:,} events in {took:.2f} s; bare read of {len(a):,} + {len(b):,} rows "
              f"{bare:.2f} s; ratio {took / bare:.2f}×")
    store.close()


if __name__ == "__main__":
    main()
