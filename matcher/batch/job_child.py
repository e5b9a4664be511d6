"""The job process itself (``python -m matcher.batch.job_child``, started by
:class:`matcher.batch.job_process.JobProcess`): lowest CPU priority, the store and the model named in its
environment, one job a line on stdin, one answer a line on stdout."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["main"]


def main() -> None:
    """Run jobs from stdin until it closes (the serving process has ended)."""
    from matcher.batch.runner import JobRunner
    from matcher.engine.embedding import make_embedder
    from matcher.live import LiveMatcher, StoreBackedEmbedder
    from matcher.store import Store

    os.nice(int(os.environ.get("MATCHER_JOB_CHILD_NICENESS", "19")))
    answers, sys.stdout = sys.stdout, sys.stderr           # the pipe carries answers only
    store = Store(os.environ["MATCHER_JOB_CHILD_DATABASE_URL"])
    threads = int(os.environ.get("MATCHER_JOB_CHILD_THREADS", "1")) or None
    index_dir = os.environ.get("MATCHER_JOB_CHILD_INDEX_DIR")
    # the serving process's index file: mapped (its pages shared), not fitted again
    live = LiveMatcher(store, StoreBackedEmbedder(make_embedder(os.environ["MATCHER_JOB_CHILD_MODEL"], threads=threads),
                                                  store, batch_window=None),
                       index_dir=Path(index_dir) if index_dir else None).fit()
    runner = JobRunner(store, live, encode_batch=1 << 30)  # nothing to give way to in here
    runner.progress_interval = 1.0   # fewer progress writes: each takes the database's write lock
    for line in sys.stdin:
        msg = json.loads(line)
        runner.run_job(msg["job"], msg["kind"], msg["params"], owner=msg["owner"])
        answers.write(json.dumps({"job": msg["job"]}) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
