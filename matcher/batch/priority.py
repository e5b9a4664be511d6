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

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["lower_thread_priority", "short_switch_interval"]

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


_switch_lock = threading.Lock()
_switch_users = 0
_switch_default = sys.getswitchinterval()


@contextlib.contextmanager
def short_switch_interval(seconds: float) -> Iterator[None]:
    """While a job runs, the interpreter hands its lock over every ``seconds`` instead of every 5 ms, so a
    request thread that waits for it (after each database call, each numpy call) waits that much less.
    Process-wide; restored when the last running job ends. ``seconds`` ≤ 0: unchanged."""
    global _switch_users
    if seconds <= 0:
        yield
        return
    with _switch_lock:
        _switch_users += 1
        sys.setswitchinterval(min(seconds, _switch_default))
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_default)
