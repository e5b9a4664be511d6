"""„Förderung finden“ in Debian's headless chromium against a real gunicorn server holding the example
programmes: the project idea, the eligibility checklist, the excluded programmes with their rule, an
axe-core WCAG 2.1 AA scan of the results, and a screenshot in ``tests/artifacts/``.

The browser, the page and its traffic checks are those of the page's other tests (``tests/webpage.py``);
only the server differs (its store also holds ``fixtures/programmes.jsonl``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from webpage import ARTIFACTS, WCAG_AA, WebServer, open_page, web_server

from conftest import FIXTURES

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def web(tmp_path_factory, seeded_template) -> Iterator[WebServer]:
    """gunicorn on a copy of the seeded store plus the example programmes (their texts are encoded at start)."""
    from matcher.domain.schema import load_catalog

    with web_server(tmp_path_factory.mktemp("web-programmes"), seeded_template,
                    entities=load_catalog(FIXTURES / "programmes.jsonl")) as server:
        yield server


def test_a_project_idea_finds_programmes_with_the_checklist_and_the_excluded_ones_with_their_rule(page, web):
    from axe_playwright_python.sync_playwright import Axe

    open_page(page, web)
    page.get_by_role("link", name="Förderung finden").click()
    form = page.locator("#programme-form")
    form.get_by_label("Ihre Projektidee").fill(
        "Unser ghanaischer Verein möchte mit einer Partnerorganisation in Ghana eine Ausbildungswerkstatt für "
        "junge Frauen aufbauen.")
    form.get_by_label("Wer beantragt?").select_option("migrant_organisation")
    form.get_by_label("Eingetragener, gemeinnütziger Verein (e. V.)").check()
    form.get_by_label("Der Verein besteht seit … Jahren (optional)").fill("4")
    form.get_by_label("Sitz (Stadt oder Kreis in NRW)").fill("Bochum")
    form.get_by_label("Wo findet das Projekt statt?").select_option("true")
    form.get_by_label("Partnerland (optional, ISO-Kürzel, z. B. GH für Ghana)").fill("GH")
    form.get_by_label("Beantragte Fördersumme in Euro (optional)").fill("40000")
    form.get_by_label("Eigenanteil im Budget in Prozent (optional)").fill("10")
    form.get_by_role("button", name="Förderprogramme suchen").press("Enter")
    cards = page.locator("#programme-list .card")
    cards.first.wait_for()
    assert cards.first.get_attribute("data-entity-id") == "prg-109"
    lines = cards.first.locator(".checklist li").all_text_contents()
    assert "✓ Migrantenorganisationen sind antragsberechtigt" in lines
    assert any(line.startswith("• Nächste Frist: ") for line in lines)
    assert cards.first.locator(".suggestions li").count() >= 2                   # partners and advisors
    excluded = page.locator("#programme-excluded .card")
    bengo = page.locator("#programme-excluded .card[data-entity-id='prg-107']")
    assert excluded.count() >= 5
    assert bengo.locator(".checklist li").all_text_contents() == ["✗ Eigenanteil 25 %, Ihr Budget sieht 10 % vor"]
    page.locator("#foerderung").screenshot(path=str(ARTIFACTS / "foerderung-finden.png"))
    results = Axe().run(page, options=WCAG_AA)
    assert results.violations_count == 0, results.generate_report()
    page.traffic.check()


def test_an_empty_idea_is_explained_in_german_and_nothing_is_sent(page, web):
    open_page(page, web)
    page.locator("#programme-form").get_by_role("button", name="Förderprogramme suchen").click()
    error = page.locator("#programme-text-error")
    error.wait_for()
    assert "Projektidee: bitte ausfüllen." in error.text_content()
    assert page.traffic.api_calls("/v1/recommendations/programmes") == []
    page.traffic.check()
