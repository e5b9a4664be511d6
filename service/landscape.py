"""``/v1/landscape``: who works on which field of action in an area, and which links are missing.

The JSON answer, the self-contained HTML report (linked from the web page) and
the Excel workbook are built from the same :class:`~matcher.landscape.Landscape`.
"Contacted" feedback in the store counts as a recorded contact, like the
catalog's ``partners``: such pairs are never proposed as missing links.
The field classifier is fitted once per catalog version, on first use.
"""

from __future__ import annotations

import threading
import unicodedata
from typing import Annotated, Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field, StringConstraints

from matcher.domain.schema import MAX_SHORT, NOT_BLANK
from matcher.engine.fields import FieldClassifier, load_fields
from matcher.engine.matcher import Matcher
from matcher.landscape.build import Landscape, build_landscape, resolve_area
from matcher.landscape.report import render_html, xlsx_bytes

from .models import _Request
from .openapi import documented
from .parsing import parse_args
from .state import get_live, get_store

bp = Blueprint("landscape", __name__, url_prefix="/v1/landscape")

EXTENSION = "matcher_landscape"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# the report is one self-contained page: inline styles and an inline SVG, nothing else
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'self'")


class LandscapeQuery(_Request):
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SHORT,
                                           pattern=NOT_BLANK),
                    Field(description="Stadt, Kreis oder Region in NRW, z. B. „Köln“, „Kreis Kleve“, "
                                      "„Münsterland“, „NRW“")]
    radius_km: Annotated[float, Field(gt=0, le=500, description="Auch Akteure in diesem Umkreis (km)")] | None = None
    limit: Annotated[int, Field(ge=1, le=200, description="Höchstens so viele fehlende Verbindungen")] = 20


class LandscapeOut(BaseModel):
    """Landschaftsbericht: Abdeckung der Handlungsfelder und fehlende Verbindungen."""

    area: dict[str, Any]
    generated: str
    model: str
    fields: list[dict[str, str]]
    actor_types: list[dict[str, str]]
    coverage: list[dict[str, Any]] = Field(description="je Handlungsfeld: Anzahl und Namen je Akteurstyp")
    uncovered_fields: list[str]
    unassigned_actors: list[dict[str, str]]
    actors: list[dict[str, Any]]
    missing_links: list[dict[str, Any]] = Field(description="Paare ohne Partnerschaft oder Kontakt, beste zuerst")
    excluded_pairs: dict[str, int]
    link_weights: dict[str, float]


class _Classifiers:
    """The field classifier of the matcher currently served (refitted when the catalog changes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fitted: tuple[Matcher, FieldClassifier] | None = None

    def for_matcher(self, matcher: Matcher) -> FieldClassifier:
        with self._lock:
            if self._fitted is None or self._fitted[0] is not matcher:
                self._fitted = (matcher, FieldClassifier(load_fields(current_app.config["FIELDS_FILE"])).fit(matcher))
            return self._fitted[1]


def _ascii(name: str) -> str:
    """A file-name part in plain ASCII: "Köln" → "koeln"."""
    folded = name.lower().translate(str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"}))
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in folded).split()) or "bericht"


def _landscape() -> Landscape:
    q = parse_args(LandscapeQuery)
    _, matcher = get_live().current()
    resolve_area(matcher, q.city, q.radius_km)  # an unknown place is a 422 before the classifier is fitted
    classifier = current_app.extensions[EXTENSION].for_matcher(matcher)
    return build_landscape(matcher, classifier, q.city, radius_km=q.radius_km,
                           contacted=get_store().contacted_pairs(), limit=q.limit)


@bp.get("")
@documented("Landschaftsbericht als JSON: wer arbeitet woran, welche Verbindungen fehlen", query=LandscapeQuery,
            responses={200: LandscapeOut})
def landscape_json() -> ResponseReturnValue:
    return jsonify(_landscape().as_dict())


@bp.get("/report.html")
@documented("Landschaftsbericht als Webseite (Heatmap und Liste der fehlenden Verbindungen)", query=LandscapeQuery,
            responses={200: ("text/html", {"type": "string"})})
def landscape_html() -> ResponseReturnValue:
    resp = Response(render_html(_landscape()), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = REPORT_CSP
    return resp


@bp.get("/report.xlsx")
@documented("Landschaftsbericht als Excel-Datei", query=LandscapeQuery,
            responses={200: (XLSX, {"type": "string", "format": "binary"})})
def landscape_xlsx() -> ResponseReturnValue:
    result = _landscape()
    name = f"landschaft-{_ascii(result.area.name)}.xlsx"
    return Response(xlsx_bytes(result), mimetype=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = _Classifiers()
