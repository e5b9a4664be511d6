"""gunicorn settings for the reliability runs: ``-c python:bench.reliability.gunicorn_ready``.

Each worker, once it has loaded the app (model loaded, catalog fitted), leaves
an empty file named by its pid in ``$MATCHER_READY_DIR``: a test waits for all
workers before it measures, and after a worker was killed, for its successor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def post_worker_init(worker: Any) -> None:
    ready = os.environ.get("MATCHER_READY_DIR")
    if ready:
        Path(ready, str(worker.pid)).touch()
