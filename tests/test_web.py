"""The web page without a browser: served publicly with its CSP, German, labelled, every asset local and
packaged, and the API answers the page relies on (German 4xx, never a 5xx) for empty and too-long needs.

The module's ``app`` requires keys (recommendations and feedback are closed), as a deployment would.
"""

from __future__ import annotations

import glob
import re
import tomllib
from html.parser import HTMLParser

import pytest

from conftest import ROOT
from matcher.domain.schema import MAX_TEXT
from service.auth import ACCESS, PUBLIC

SERVICE = ROOT / "service"


class PageParser(HTMLParser):
    """Collects what the checks below need: tags with their attributes, label targets, text of the lang root."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


@pytest.fixture(scope="module")
def page(app):
    response = app.test_client().get("/")
    parser = PageParser()
    parser.feed(response.get_data(as_text=True))
    return response, parser


def test_page_is_public_german_html_with_a_strict_csp(page):
    response, parsed = page
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert parsed.all("html")[0]["lang"] == "de"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # no inline script: every script is a file from /static, or inert JSON data
    for script in parsed.all("script"):
        assert script.get("src", "").startswith("/static/") or script.get("type") == "application/json", script
    # no inline style attributes either (style-src 'self' would block them)
    assert not [a for _, a in parsed.tags if "style" in a]


def test_every_form_control_has_a_label_and_ids_are_unique(page):
    _, parsed = page
    ids = [a["id"] for _, a in parsed.tags if a.get("id")]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    labelled = {a["for"] for a in parsed.all("label")}
    controls = [a for t, a in parsed.tags if t in ("input", "select", "textarea") and a.get("type") != "hidden"]
    assert len(controls) > 60                                    # four forms, language and quota choices
    assert [c.get("id") for c in controls if c.get("id") not in labelled] == []


def test_page_offers_the_catalogs_cities_and_languages_by_german_name(page):
    _, parsed = page
    cities = {o["value"] for o in parsed.all("option") if o.get("value")}
    assert {"Witten", "Dortmund", "Münster", "Mülheim an der Ruhr"} <= cities
    html = page[0].get_data(as_text=True)
    for name in ("Französisch", "Tigrinya", "Türkisch", "Niederländisch", "Ewe"):
        assert f">{name}</label>" in html, name


def test_every_asset_is_served_from_this_origin(app, page):
    client = app.test_client()
    _, parsed = page
    assets = [a["src"] for a in parsed.all("script") if a.get("src")] + [a["href"] for a in parsed.all("link")]
    modules = [f"/static/{p.name}" for p in (SERVICE / "static").glob("*.js")]
    for url in assets + modules:
        assert url.startswith("/static/"), url
        assert client.get(url).status_code == 200, url
    for path in (SERVICE / "static").glob("*.js"):
        imports = re.findall(r'^import .* from "([^"]+)";', path.read_text(encoding="utf-8"), re.M)
        assert all(i.startswith("./") and (path.parent / i).exists() for i in imports), (path.name, imports)
    for path in [*(SERVICE / "static").iterdir(), *(SERVICE / "templates").iterdir()]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)=["\']?(https?:)?//', text), path.name          # no CDN, no remote assets
        assert "@import" not in text and "url(http" not in text, path.name


def test_templates_and_static_files_are_package_data():
    """Every file under service/templates and service/static matches a package-data pattern (setuptools' globbing)."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["service"]
    packaged = {p for pattern in patterns for p in glob.glob(pattern, root_dir=SERVICE, recursive=True)}
    files = {str(p.relative_to(SERVICE)) for d in ("templates", "static") for p in (SERVICE / d).rglob("*")
             if p.is_file()}
    assert files and files <= packaged, sorted(files - packaged)


def test_page_is_documented_as_html_and_public(app):
    spec = app.test_client().get("/openapi.json").json
    op = spec["paths"]["/"]["get"]
    assert "text/html" in op["responses"]["200"]["content"]
    assert op["security"] == [] and op["x-required-role"] is None
    assert ACCESS["web.index"] == PUBLIC


@pytest.mark.parametrize("body, field, words", [
    ({"text": "x" * (MAX_TEXT + 1)}, "text", f"höchstens {MAX_TEXT} Zeichen"),
    ({"text": ""}, "text", "Bitte den Bedarf"),   # every 422 names its field (issue 17)
    ({"text": "   "}, "text", "Bitte den Bedarf"),
    ({}, "text", "Bitte den Bedarf"),
    ({"text": "Fairer Handel", "city": "x" * 201}, "city", "höchstens 200 Zeichen"),
])
def test_empty_or_too_long_needs_get_a_german_422_not_a_5xx(client, api_keys, body, field, words):
    r = client.post("/v1/recommendations/advisors", json=body, headers={"Authorization": api_keys["reader"]})
    assert r.status_code == 422
    error = r.json["error"]
    assert error["code"] == "validation_error"
    assert any(d["field"] == field and words in d["message"] for d in error["details"]), error


def test_closed_deployment_answers_the_page_with_german_401s(client):
    """Without OPEN_RECOMMENDATIONS / OPEN_FEEDBACK the page's anonymous calls get a German hint, not a crash."""
    for path, body in [("/v1/recommendations/advisors", {"text": "Fairer Handel"}),
                       ("/v1/feedback", {"recommendation_id": "rec_x", "entity_id": "adv-101", "outcome": "accepted"})]:
        r = client.post(path, json=body)
        assert r.status_code == 401
        assert "API-Schlüssel" in r.json["error"]["message"]
    assert client.get("/").status_code == 200      # the page itself stays public


def test_page_has_a_status_line_for_a_starting_service_and_marks_the_forms_that_wait_for_it(page):
    """readiness.js fills the (empty, announced) status line and disables these forms' buttons while starting."""
    _, parsed = page
    assert [a for _, a in parsed.tags if a.get("id") == "service-status"] == [
        {"class": "service-status", "id": "service-status", "role": "status", "aria-live": "polite"}]
    waiting = {a["id"] for a in parsed.all("form") if "data-needs-matcher" in a}
    assert waiting == {"advisor-form", "partner-form", "programme-form", "invite-form", "landscape-form"}  # not the key
