"""Library-level settings read from the environment, in one place.

Everything the library reads from the environment or from its own package data
goes through these functions, so the CLI, the server and batch jobs agree:

``MATCHER_MODEL``         embedding model spec (default :data:`DEFAULT_MODEL`)
``MATCHER_THREADS``       inference threads per process (default: the backend's choice)
``MATCHER_DATA_DIR``      where the embedded store lives (default: see :func:`data_dir`)
``MATCHER_DATABASE_URL``  the store (default: ``sqlite:///<data dir>/matcher.db``)
``MATCHER_INDEX_DIR``     where fitted catalog indexes are kept for the next start (default: ``<data dir>/index``)
``MATCHER_PLACES_FILE``   the curated gazetteer (default: the package's ``data/nrw_places.json``)
``MATCHER_FIELDS_FILE``   the fields of action (default: the package's ``data/fields_of_action.json``)
``MATCHER_CONFIDENCE_FILE`` the confidence calibration (default: the package's ``data/confidence.json``)
``MATCHER_RANKER_FILE``   the shipped default ranker (default: the package's ``data/ranker.json``)
``MATCHER_REQUEST_RETENTION_DAYS`` days request texts (and their vectors) are kept (default
                          :data:`REQUEST_RETENTION_DAYS`)
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

DEFAULT_MODEL = "e5+use"  # multilingual-e5-small (4-bit) and USE multilingual v3, fused (see the model card)
# request texts in the audit log and their vectors are purged after this many days: longer than the feedback
# window a ranker is trained on by default (90 days, matcher.live.rankers.RECENT_DAYS)
REQUEST_RETENTION_DAYS = 180

__all__ = ["DEFAULT_MODEL", "REQUEST_RETENTION_DAYS", "model_spec", "threads", "data_dir", "database_url", "index_dir",
           "package_data", "places_file", "fields_file", "confidence_file", "ranker_file", "request_retention_days"]


def model_spec() -> str:
    """The embedding model: ``MATCHER_MODEL`` (a backend spec, name or path) or the default."""
    return os.environ.get("MATCHER_MODEL") or DEFAULT_MODEL


def threads() -> int | None:
    """Inference threads per process: ``MATCHER_THREADS`` (default: the backend's own choice)."""
    value = os.environ.get("MATCHER_THREADS")
    return int(value) if value else None


def data_dir() -> Path:
    """The folder of the embedded store: ``MATCHER_DATA_DIR``, else one per installation.

    Inside a virtual environment it is ``<venv>/var/matcher``, so the ``matcher``
    command and the server of one installation share one store whatever folder
    they run in (the idea of Jupyter's ``sys.prefix`` paths); outside one it is
    the user's data folder (``~/.local/share/matcher`` on Linux, via platformdirs).
    Never the current folder.
    """
    configured = os.environ.get("MATCHER_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix).resolve() / "var" / "matcher"
    from platformdirs import user_data_dir

    return Path(user_data_dir("matcher", appauthor=False))


def database_url() -> str:
    """The store's URL: ``MATCHER_DATABASE_URL``, else the SQLite file ``<data dir>/matcher.db``."""
    return os.environ.get("MATCHER_DATABASE_URL") or f"sqlite:///{data_dir() / 'matcher.db'}"


def index_dir() -> Path:
    """Where the fitted catalog index is kept between starts: ``MATCHER_INDEX_DIR``, else ``<data dir>/index``
    (see :mod:`matcher.engine.index_file`)."""
    configured = os.environ.get("MATCHER_INDEX_DIR")
    return Path(configured).expanduser().resolve() if configured else data_dir() / "index"


def package_data(name: str) -> Path:
    """A reference data file shipped inside the package (``matcher/domain/data/<name>``)."""
    return Path(str(resources.files("matcher").joinpath("domain", "data", name)))


def places_file() -> Path:
    """The curated gazetteer: ``MATCHER_PLACES_FILE`` or the package's ``nrw_places.json``."""
    return Path(os.environ.get("MATCHER_PLACES_FILE") or package_data("nrw_places.json"))


def fields_file() -> Path:
    """The fields of action: ``MATCHER_FIELDS_FILE`` or the package's ``fields_of_action.json``."""
    return Path(os.environ.get("MATCHER_FIELDS_FILE") or package_data("fields_of_action.json"))


def confidence_file() -> Path:
    """The confidence calibration (``matcher calibrate`` writes it): ``MATCHER_CONFIDENCE_FILE`` or the
    package's ``confidence.json``."""
    return Path(os.environ.get("MATCHER_CONFIDENCE_FILE") or package_data("confidence.json"))


def ranker_file() -> Path:
    """The shipped default ranker (``make ranker`` writes it; it serves while the store has activated no
    version): ``MATCHER_RANKER_FILE`` or the package's ``ranker.json``."""
    return Path(os.environ.get("MATCHER_RANKER_FILE") or package_data("ranker.json"))


def request_retention_days() -> float:
    """How many days request texts and their vectors are kept: ``MATCHER_REQUEST_RETENTION_DAYS`` or
    :data:`REQUEST_RETENTION_DAYS`."""
    value = os.environ.get("MATCHER_REQUEST_RETENTION_DAYS")
    return float(value) if value else float(REQUEST_RETENTION_DAYS)
