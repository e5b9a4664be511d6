"""Running a batch job's thread below interactive requests.

A job runs in a thread of the serving process, next to the threads that
answer requests. Two things keep it from slowing them (see docs/batch-jobs.md
for what was measured): the job's thread asks the kernel for a lower CPU
priority (``nice``; on Linux a thread has its own), and its encoding is paced
(:meth:`matcher.live.StoreBackedEmbedder.in_background`), which leaves the
interpreter lock to request threads between small batches — ``nice`` alone
cannot do that: a thread that holds the lock holds it whatever its priority.
"""

from __future__ import annotations

import logging
import os
import threading

__all__ = ["lower_thread_priority"]

log = logging.getLogger(__name__)


def lower_thread_priority(niceness: int) -> bool:
    """Raise the calling thread's nice value by ``niceness`` (Linux: per thread); True if it did.

    Where the system cannot (no per-thread priorities, not allowed) the thread runs on
    unchanged and this says so in the log once per thread.
    """
    if niceness <= 0:
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + niceness))
        return True
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted: pacing still applies
        log.info("job thread priority not lowered: %s", exc)
        return False

