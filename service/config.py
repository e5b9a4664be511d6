"""The service's configuration defaults, in one place.

Order (later wins): these defaults → the instance file ``instance/config.py``
→ ``MATCHER_*`` environment variables (``MATCHER_DATABASE_URL``, …; values
are parsed as JSON where they can be, so ``true`` and ``5`` work) → the
mapping given to :func:`service.create_app`.
"""

from __future__ import annotations

from typing import Any

from matcher.engine.embedding import DEFAULT_MODEL
from matcher.settings import REQUEST_RETENTION_DAYS

__all__ = ["default_config"]


def default_config() -> dict[str, Any]:
    return {
        "DATABASE_URL": None,                   # None: MATCHER_DATA_DIR/matcher.db (matcher.settings); or postgresql+psycopg://…
        "MODEL": DEFAULT_MODEL,                 # embedding model spec (see matcher.engine.embedding)
        "START_IN_BACKGROUND": True,            # model and fit in a thread, /readyz 503 meanwhile (False: create_app)
        "THREADS": None,                        # inference threads (None: the backend's choice)
        "BLAS_THREADS": 1,                      # threads of the engine's numpy products (0: numpy's default); a
                                                # request's products are small: spare threads only wait for cores
        "OPEN_RECOMMENDATIONS": False,          # True: recommendations and catalog reads without a key
        "OPEN_FEEDBACK": False,                 # True: feedback on a recommendation without a key (demo)
        "MAX_BODY_BYTES": 256 * 1024,           # JSON request bodies (413 above)
        "MAX_IMPORT_BYTES": 16 * 1024 * 1024,   # bulk import bodies
        "REFIT_WAIT_SECONDS": 5.0,              # how long a request waits for a refit after a catalog change
        "INDEX_DIR": None,                      # fitted catalog indexes for the next start (None: MATCHER_INDEX_DIR
                                                # or <data dir>/index, see matcher.settings; False: fit at every start)
        "REQUEST_CACHE_SIZE": 2048,             # request-text vectors kept in memory (besides those stored with
                                                # the recommendations, matcher.store.request_vectors)
        "REQUEST_RETENTION_DAYS": REQUEST_RETENTION_DAYS,  # request texts in the audit log and their vectors are
                                                # purged after this many days (matcher.live.retention)
        "ENCODE_BATCH_WINDOW": 0.002,           # seconds concurrent requests' texts are collected for one forward
                                                # pass (matcher.engine.batching); None: one request at a time
        # rate limit of /v1/recommendations/* per key (per address without one); see service/ratelimit.py
        "RATE_LIMIT_RECOMMENDATIONS": "120 per minute",   # limits notation; None or "": no limit
        "RATELIMIT_ENABLED": True,              # Flask-Limiter's switch (False: no limits at all)
        "RATELIMIT_STORAGE_URI": "matcher-memory://",  # per process (memory:// with one sweeper thread);
                                                       # redis://… for one budget across workers
        # the learned ranker (docs/ranker.md): judged sets (folders) a newly trained version must beat the serving
        # one on; MATCHER_RANKER_JUDGED_DATA='["/srv/eval/trust"]'. Empty: POST /v1/rankers/train answers 409
        "RANKER_JUDGED_DATA": [],
        # batch jobs (see matcher/batch/runner.py for the rule that marks a lost job failed)
        "JOB_WORKERS": 1,                       # jobs run at the same time per process (CPU-bound)
        "JOB_HEARTBEAT_SECONDS": 5.0,           # how often a process signs its unfinished jobs as alive
        "JOB_STALE_SECONDS": 60.0,              # no sign of life for this long: the job is marked failed
        "JOB_MAX_PENDING": 20,                  # unfinished jobs one process accepts (429 above)
        "JOB_RETENTION_DAYS": 30,               # finished jobs (and their results) are deleted after this
        "MAX_JOB_BYTES": 16 * 1024 * 1024,      # body of POST /v1/jobs/assignments
        # per-key limits and priority of batch jobs (issue 16; see docs/batch-jobs.md, matcher/batch/quotas.py)
        "JOB_MAX_PENDING_PER_KEY": 3,           # unfinished jobs one key may have (429 above; 0: no limit)
        "JOB_TEXTS_PER_HOUR_PER_KEY": 2000,     # distinct uncached texts one key's jobs may encode per hour
        "JOB_PROCESS": True,                    # jobs run in a process of their own (needs MODEL as a spec)
        "JOB_PROCESS_NICENESS": 19,             # that process's nice value (19: the lowest CPU priority)
        "JOB_PROCESS_THREADS": 1,               # inference threads of its model (0: the backend's choice)
        # only where jobs run in threads of the serving process (JOB_PROCESS false, or a model object):
        "JOB_YIELD_TO_REQUESTS": True,          # a job's encoding waits while this process serves requests
        "JOB_ENCODE_BATCH": 8,                  # texts a job encodes at a time (between two such waits)
        "JOB_ENCODE_PAUSE": 0.0,                # extra pause after each batch, × its encoding time (0: none)
        "JOB_NICENESS": 0,                      # job threads' nice value above the requests' (see docs/batch-jobs.md)
        # rate limits of the landscape reports and job exports per key (per address without one)
        "RATE_LIMIT_LANDSCAPE": "6 per minute",  # all three landscape routes together
        "RATE_LIMIT_EXPORTS": "30 per minute",   # CSV and XLSX exports of jobs together
        "FIELDS_FILE": None,                    # fields of action (None: MATCHER_FIELDS_FILE or the package's own)
        # proxies in front that append to X-Forwarded-For (deploy/nginx.conf: 1); 0: forwarded headers are ignored
        "TRUSTED_PROXIES": 0,                   # see service/proxies.py
    }
