"""What every answer of the API promises beyond its body: exact routes and headers.

* URL converters that accept only what the document's path parameters allow, so
  that ``/v1/entities/import`` and ``/v1/jobs/invitations`` are not also read as
  an entity id or a job id (their ``OPTIONS``/405 ``Allow`` headers list only
  their own methods).
* ``X-Content-Type-Options: nosniff`` on every response, and
  ``Cache-Control: no-store`` on every ``/v1`` answer: they may carry contact
  data (JSON for editor keys, job exports, the landscape workbook), which no
  browser or proxy cache should keep.
* :func:`read_limited`: a body sent without ``Content-Length`` (chunked) over
  the limit is a 413, not silently cut at the limit.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import BaseConverter

__all__ = ["init_app", "read_limited", "ENTITY_ID_PATTERN", "JOB_ID_PATTERN", "PRIVATE_HEADERS"]

# matcher.domain.schema.EntityId, except the name of the route beside it (POST /v1/entities/import)
ENTITY_ID_PATTERN = r"(?!import(?![A-Za-z0-9_.:\-]))[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}"
JOB_ID_PATTERN = r"job_[0-9a-f]{32}"
PRIVATE_HEADERS = {"Cache-Control": "no-store"}
CHUNK = 64 * 1024


class EntityIdConverter(BaseConverter):
    regex = ENTITY_ID_PATTERN


class JobIdConverter(BaseConverter):
    regex = JOB_ID_PATTERN


def read_limited(limit: int | None) -> bytes | None:
    """The body of a request without ``Content-Length`` (chunked), read up to ``limit`` bytes.

    Returns ``None`` when the request has a ``Content-Length`` or no limit applies (werkzeug enforces those).

    Raises:
        RequestEntityTooLarge: more than ``limit`` bytes arrived (413 in the one error shape).
    """
    if limit is None or request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return None
    cached = request.environ.get("matcher.body")
    if cached is not None:
        return cached
    stream, parts, size = request.environ["wsgi.input"], [], 0
    while True:
        chunk = stream.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
    body = request.environ["matcher.body"] = b"".join(parts)
    return body


def _headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith("/v1/"):
        response.headers.update(PRIVATE_HEADERS)
        response.headers.pop("Expires", None)       # send_file's max_age=0 also set no-cache and Expires
    return response


def init_app(app: Flask) -> None:
    """Register the converters (before the blueprints) and the headers of every response."""
    app.url_map.converters["entity_id"] = EntityIdConverter
    app.url_map.converters["job_id"] = JobIdConverter
    app.after_request(_headers)
