"""``/``: the German web page for municipal staff and associations.

One server-rendered page (Jinja) with four views — Beratung finden, Partner und
Veranstaltungen, Einladungsliste, Landschaftsbericht — whose plain JavaScript
(``service/static``) calls the JSON API with ``fetch`` on the same origin. The
page carries no data that needs a key: the choices it renders (cities and
languages of the catalog) are place and language names; organisations, events
and contact data come from the API, which checks the caller's key.
"""

from __future__ import annotations

import gettext
import secrets
import threading
import unicodedata
from dataclasses import dataclass

import pycountry
from flask import Blueprint, Flask, Response, current_app, render_template
from flask.typing import ResponseReturnValue

from matcher.domain.formatting import thousands
from matcher.domain.labels import APPLICANT_TYPE_LABELS_DE, GROUP_LABELS, LANGUAGE_NAMES_DE, ORG_TYPE_LABELS_DE
from matcher.domain.schema import MAX_SHORT, MAX_TEXT
from matcher.engine.matcher import Matcher

from .job_models import MAX_LIST_SIZE
from .models import MAX_K
from .openapi import documented
from .state import get_live

__all__ = ["bp", "init_app", "PAGE_CSP"]

bp = Blueprint("web", __name__)

EXTENSION = "matcher_web"
# everything from this origin, nothing inline, nothing from elsewhere; no framing
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin"}


@dataclass(frozen=True)
class PageChoices:
    """What the page's forms offer, read from the fitted catalog."""

    cities: list[str]
    languages: list[tuple[str, str]]       # (ISO 639-1 code, German name), sorted by name


def _sort_key(text: str) -> str:
    """German dictionary order, near enough: umlauts sort with their base letter."""
    return unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()


def language_name_de(code: str) -> str:
    """The German name of an ISO 639-1 language code ("tr" → "Türkisch"); the code when none is known."""
    if code in LANGUAGE_NAMES_DE:
        return LANGUAGE_NAMES_DE[code]
    language = pycountry.languages.get(alpha_2=code)
    if language is None:
        return code
    german = gettext.translation("iso639-3", pycountry.LOCALES_DIR, languages=["de"], fallback=True)
    return german.gettext(language.name).removesuffix("-Sprache")


def page_choices(matcher: Matcher) -> PageChoices:
    """The distinct cities and languages of the catalog ``matcher`` is fitted on."""
    entities = matcher.entities_
    cities = sorted({e.city for e in entities if e.city}, key=_sort_key)
    codes = {code for e in entities for code in e.languages}
    languages = sorted(((c, language_name_de(c)) for c in codes), key=lambda pair: _sort_key(pair[1]))
    return PageChoices(cities, languages)


class _ChoicesCache:
    """The page choices of the matcher currently served (recomputed when the catalog changes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[Matcher, PageChoices] | None = None

    def for_matcher(self, matcher: Matcher) -> PageChoices:
        with self._lock:
            if self._cached is None or self._cached[0] is not matcher:
                self._cached = (matcher, page_choices(matcher))
            return self._cached[1]


@bp.app_template_filter("de_number")
def de_number(value: int) -> str:
    """An integer with German thousands separators: 5000 → "5.000"."""
    return thousands(value)


@bp.get("/")
@documented("Die Webseite (deutsch): Beratung, Partner und Veranstaltungen, Einladungsliste, Landschaftsbericht",
            description="HTML für Menschen; die Seite ruft mit fetch die JSON-Endpunkte dieser API auf. "
                        "Skripte und Stile kommen aus /static (Content-Security-Policy: default-src 'self').",
            responses={200: ("text/html", {"type": "string"})})
def index() -> ResponseReturnValue:
    _, matcher = get_live().current()
    choices = current_app.extensions[EXTENSION].for_matcher(matcher)
    html = render_template(
        "index.html", cities=choices.cities, languages=choices.languages,
        org_types=ORG_TYPE_LABELS_DE, applicant_types=APPLICANT_TYPE_LABELS_DE,
        quota_groups={g: GROUP_LABELS[g] for g in ORG_TYPE_LABELS_DE},
        limits={"text": MAX_TEXT, "short": MAX_SHORT, "k": MAX_K, "list": MAX_LIST_SIZE},
        open_recommendations=bool(current_app.config["OPEN_RECOMMENDATIONS"]),
        open_feedback=bool(current_app.config["OPEN_FEEDBACK"]),
        tab_token=secrets.token_urlsafe(24))   # binds this tab's anonymous feedback to its recommendations
    # no-store: the page carries a tab token of its own, which no cache may hand to another browser
    return Response(html, mimetype="text/html", headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = _ChoicesCache()
