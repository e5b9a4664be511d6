"""The retention period of request texts: a serving process forgets them (and their vectors) when it is over.

The audit log keeps each recommendation's request, text included, and the store the vector of that text
(:mod:`matcher.store.request_vectors`), so that a ranker can learn from the feedback on it. A request text may
hold personal data: after ``days`` days both are purged (:meth:`~matcher.store.Store.purge_requests`). A
serving process purges at its start and then at most once every ``every`` seconds, from the request that
finds the time has come (one DELETE and one UPDATE over an index); ``matcher db purge-requests`` does the
same from the command line (e.g. from cron, where no server runs).
"""

from __future__ import annotations

import logging
import threading
import time

from matcher.errors import MatcherError, ValidationError
from matcher.store import Store

__all__ = ["RequestRetention"]

log = logging.getLogger(__name__)


class RequestRetention:
    """Purges request texts and vectors older than ``days`` days, at most once every ``every`` seconds.

    Raises:
        ValidationError: ``days`` is not a positive number.
    """

    def __init__(self, store: Store, days: float, every: float = 3600.0):
        if not days > 0:
            raise ValidationError("Die Aufbewahrungsfrist für Anfragetexte muss größer als 0 Tage sein",
                                  [{"field": "REQUEST_RETENTION_DAYS", "value": days}])
        self.store = store
        self.days = float(days)
        self.every = float(every)
        self._due = float("-inf")
        self._lock = threading.Lock()

    def tick(self) -> dict[str, int] | None:
        """Purge if the last purge is ``every`` seconds ago (or none has run); return what went, or None.
        A purge the store refuses is logged and tried again with the next call after ``every`` seconds:
        the request being answered is not failed for it."""
        if time.monotonic() < self._due or not self._lock.acquire(blocking=False):
            return None
        try:
            if time.monotonic() < self._due:
                return None
            self._due = time.monotonic() + self.every
            purged = self.store.purge_requests(self.days)
            if purged["requests"] or purged["vectors"]:
                log.info("retention (%s days): %d request texts and %d request vectors purged", self.days,
                         purged["requests"], purged["vectors"])
            return purged
        except MatcherError:
            log.exception("request texts could not be purged; trying again in %.0f s", self.every)
            return None
        finally:
            self._lock.release()
