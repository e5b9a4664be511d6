"""The web page in Debian's headless chromium against a real gunicorn server on a loopback port.

One server and one browser per module (the server loads the real USE model once); each test
opens a fresh browser context, so sessionStorage (the staff key) starts empty. Every test
also checks that no response was a 5xx and that the page loaded nothing from elsewhere.
Screenshots go to ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import time
from collections.abc import Iterator

import pytest
import requests
from openpyxl import load_workbook
from webpage import ARTIFACTS, WCAG_AA, WebServer, open_page, web_server

from conftest import ROOT, ServerProcess, free_port

pytestmark = pytest.mark.browser

# fixtures/README.md, designed case c: a francophone West-African diaspora need in the Ruhrgebiet;
# only adv-101 (Aïssatou Ndiaye, fr/wo) speaks French, her twin adv-102 does not
FRANCOPHONE_NEED = "Frankophone westafrikanische Diaspora-Vereine sollen gemeinsam mit der Stadt Projekte umsetzen."


@pytest.fixture(scope="module")
def web(tmp_path_factory, seeded_template) -> Iterator[WebServer]:
    """gunicorn on a copy of the seeded store (vectors stored: start-up encodes nothing), open as in `make run`."""
    with web_server(tmp_path_factory.mktemp("web"), seeded_template, roles=["editor"]) as server:
        yield server


def use_key(page, key: str) -> None:
    page.get_by_label("API-Schlüssel").fill(key)
    page.get_by_role("button", name="Schlüssel verwenden").click()
    page.locator("#key-form .form-message").wait_for()


def search_advisors(page, need: str, city: str, languages: list[str]):
    form = page.locator("#advisor-form")
    form.get_by_label("Ihr Bedarf").fill(need)
    form.get_by_label("Ort (Stadt oder Kreis)").fill(city)
    for name in languages:
        form.get_by_label(name, exact=True).check()
    form.get_by_role("button", name="Beratung suchen").press("Enter")  # keyboard, not a mouse click
    cards = page.locator("#advisor-list .card")
    cards.first.wait_for()
    return cards


# ------------------------------------------------------------------------------------------ tests
def test_advisor_form_finds_the_french_speaking_advisor_with_a_german_reason(page, web):
    open_page(page, web)
    cards = search_advisors(page, FRANCOPHONE_NEED, "Dortmund", ["Französisch"])
    top3 = [cards.nth(i).get_attribute("data-entity-id") for i in range(min(3, cards.count()))]
    assert "adv-101" in top3, top3
    card = page.locator(".card[data-entity-id='adv-101']")
    reasons = card.locator(".reasons li").all_inner_texts()
    assert "Spricht Französisch" in reasons, reasons
    assert "km entfernt" in card.locator(".meta").inner_text()
    assert "Französisch" in card.locator(".meta").inner_text()   # its languages, by German name
    assert card.locator(".contact").count() == 0                  # anonymous: no contact data
    page.locator("#beratung").screenshot(path=str(ARTIFACTS / "web-advisors.png"))

    card.locator("button[data-outcome='accepted']").click()          # "passt" (open feedback, as in `make run`)
    card.locator(".feedback .ok").wait_for()
    assert "Rückmeldung „passt“ ist gespeichert" in card.locator(".feedback .ok").inner_text()
    assert card.locator("button[data-outcome='accepted']").get_attribute("aria-pressed") == "true"
    page.traffic.check()


def test_a_weak_need_says_nothing_fits_well_and_labels_every_card(page, web):
    """Issue 17: „Hilfe“ fits nothing — the page says so in German, suggests what to change, still lists the
    closest advisors marked weak; a fitting need shows no such hint and its top card a stronger label."""
    open_page(page, web)
    cards = search_advisors(page, "Hilfe", "Essen", [])
    hint = page.locator("#advisor-results .nothing-fits")
    hint.wait_for()
    assert "Keiner der Vorschläge passt gut" in hint.inner_text()
    assert hint.locator("li").count() >= 1 and "ausführlicher" in hint.inner_text()
    labels = [cards.nth(i).locator(".strength").inner_text() for i in range(cards.count())]
    assert labels and all(label.endswith("schwache Übereinstimmung") for label in labels), labels
    assert not [r for r in page.locator("#advisor-list .reasons li").all_inner_texts()
                if r.startswith("Passt inhaltlich")]
    page.locator("#beratung").screenshot(path=str(ARTIFACTS / "web-nothing-fits.png"))

    cards = search_advisors(page, FRANCOPHONE_NEED, "Dortmund", ["Französisch"])
    page.locator("#advisor-status").filter(has_text="Vorschläge").wait_for()
    assert page.locator("#advisor-results .nothing-fits").count() == 0
    top = cards.first.locator(".strength").inner_text()
    assert top.endswith(("passt gut", "passt teilweise")), top
    page.traffic.check()


def test_empty_and_too_long_need_show_german_messages_and_send_nothing(page, web):
    open_page(page, web)
    form = page.locator("#advisor-form")
    need = form.get_by_label("Ihr Bedarf")
    form.get_by_role("button", name="Beratung suchen").click()
    error = page.locator("#advisor-text-error")
    assert error.inner_text() == "Bedarf: bitte ausfüllen."
    assert need.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "advisor-text"   # focus moved to the field to fix
    assert "Bitte prüfen Sie" in form.locator(".form-message").inner_text()

    need.fill("Fairer Handel " * 400)                                       # 5,600 characters, limit 5,000
    assert "bitte kürzen" in page.locator("#advisor-text-count").inner_text()
    form.get_by_role("button", name="Beratung suchen").click()
    assert error.inner_text().startswith("Bedarf: zu lang – höchstens 5.000 Zeichen")
    assert page.traffic.api_calls("/v1/recommendations") == []              # nothing reached the API
    page.locator("#advisor-form").screenshot(path=str(ARTIFACTS / "web-validation.png"))
    page.traffic.check()


def test_partner_view_finds_partners_and_coming_events_with_reasons(page, web):
    """fixtures/README.md case b: the Witten–Kisanga circle (org-141) and the Tanzania partnership circle (org-139)."""
    open_page(page, web)
    form = page.locator("#partner-form")
    form.get_by_label("Auswahl nach Ort eingrenzen (optional)").fill("Witten")
    form.get_by_label("Auswahl nach Ort eingrenzen (optional)").press("Tab")     # change event: list for Witten only
    page.locator("#partner-org-status").filter(has_text="in Witten").wait_for()
    form.get_by_label(re.compile(r"^Organisation")).select_option("org-141")
    form.get_by_role("button", name="Partner und Veranstaltungen suchen").click()
    partners = page.locator("#partner-list .card")
    partners.first.wait_for()
    top3 = [partners.nth(i).get_attribute("data-entity-id") for i in range(3)]
    assert "org-139" in top3, top3
    assert any("Tansania" in r for r in page.locator(".card[data-entity-id='org-139'] .reasons li").all_inner_texts())
    page.locator("#event-status").filter(has_text="Veranstaltungen").wait_for()
    today = dt.date.today()
    for card in page.locator("#event-list .card").all():                  # only coming events, each explained
        date = card.locator(".meta").inner_text().split("am ")[-1][:10]
        assert dt.datetime.strptime(date, "%d.%m.%Y").date() >= today
        assert card.locator(".reasons li").count() >= 1

    # an organisation that is not in the catalog, described in a few words
    form.get_by_label("Selbst beschreiben").check()
    form.get_by_label("Was macht Ihre Organisation?").fill(
        "Wir sind ein Weltladen-Verein und möchten den fairen Handel in unserer Stadt stärken.")
    form.get_by_label("Ort", exact=True).fill("Münster")
    form.get_by_label("Art der Organisation (optional)").select_option("civil_society")
    form.get_by_role("button", name="Partner und Veranstaltungen suchen").click()
    # a described organisation gets events too (issue 17), each explained
    page.locator("#event-status").filter(has_text="anstehende Veranstaltungen").wait_for()
    assert page.locator("#event-list .card").count() >= 1
    assert all(card.locator(".reasons li").count() >= 1 for card in page.locator("#event-list .card").all())
    names = page.locator("#partner-list .card h4").all_inner_texts()
    assert any("Weltladen" in n for n in names[:3]), names
    page.traffic.check()


def test_landscape_form_opens_the_report_and_explains_an_unknown_place(page, web):
    open_page(page, web)
    form = page.locator("#landscape-form")
    form.get_by_label("Stadt, Kreis oder Region").fill("Atlantis")
    form.get_by_role("button", name="Bericht öffnen").click()
    form.locator(".form-message").filter(has_text="Unbekannter Ort").wait_for()   # the API's German message
    assert "Unbekannter Ort" in page.locator("#landscape-city-error").inner_text()

    form.get_by_label("Stadt, Kreis oder Region").fill("Köln")
    form.get_by_label("Umkreis in km (optional)").fill("30")
    with page.context.expect_page() as opened:
        form.get_by_role("button", name="Bericht öffnen").click()
    report = opened.value
    report.wait_for_load_state()
    assert report.url.startswith(f"{web.url}/v1/landscape/report.html?city=K")
    assert report.title() == "Landschaftsbericht Köln und 30 km Umkreis"
    page.traffic.check()


def test_api_refusals_are_shown_as_german_hints(page, web):
    """A key the API does not know: the key form says so, and a search sent with it gets a German hint, not a crash."""
    open_page(page, web)
    use_key(page, "mk_this-key-does-not-exist")
    assert "Unbekannter oder widerrufener API-Schlüssel" in page.locator("#api-key-error").inner_text()
    page.evaluate("sessionStorage.setItem('matcher.apiKey', 'mk_this-key-does-not-exist')")
    # the advisor search itself is refused now, with the API's German message and a hint
    form = page.locator("#advisor-form")
    form.get_by_label("Ihr Bedarf").fill(FRANCOPHONE_NEED)
    form.get_by_role("button", name="Beratung suchen").click()
    message = form.locator(".form-message")
    message.wait_for()
    assert "ist ein API-Schlüssel nötig" in message.inner_text()
    assert "Unbekannter oder widerrufener API-Schlüssel" in message.inner_text()
    assert page.traffic.api_calls("/v1/recommendations/advisors")
    page.traffic.check()


def test_staff_key_shows_contact_data_and_invitation_list_downloads_as_xlsx(page, web, tmp_path):
    open_page(page, web)
    use_key(page, web.keys["editor"])
    assert "wird verwendet" in page.locator("#key-form .form-message").inner_text()

    cards = search_advisors(page, FRANCOPHONE_NEED, "Dortmund", ["Französisch"])
    assert "@example." in cards.first.locator(".contact").inner_text()    # editor key: contact data shown

    form = page.locator("#invite-form")
    page.locator("#invite-event option").nth(1).wait_for(state="attached")
    form.get_by_label("Veranstaltung").select_option("evt-113")
    form.get_by_label("Wie viele Einladungen?").fill("10")
    form.get_by_label("Migrantenorganisationen: mindestens (in %)").fill("40")
    form.get_by_label("Höchstens je Ort (optional)").fill("3")
    form.get_by_role("button", name="Einladungsliste berechnen").click()
    page.locator("#invite-output").wait_for(timeout=60_000)
    assert page.locator("#invite-progress").get_attribute("value") == "100"
    rows = page.locator("#invite-list tr")
    assert rows.count() == 10
    strengths = rows.locator("td:nth-of-type(4)").all_inner_texts()       # Rang, Art, Ort, Passung (name is a th)
    assert set(strengths) <= {"passt gut", "passt teilweise", "schwache Übereinstimmung"}, strengths
    held = page.locator("#invite-constraints li.held").all_inner_texts()
    assert any("Migrantenorganisationen" in t for t in held), held
    assert page.locator("#invite-constraints li.missed").count() == 0
    assert page.locator("#invite-waitlist-list li").count() == 5

    with page.expect_download() as info:
        page.get_by_role("button", name="Als Excel-Datei herunterladen (XLSX)").click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    sheet = load_workbook(path, read_only=True).worksheets[0]
    rows_xlsx = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = [str(c) for c in rows_xlsx[0] if c is not None]
    assert {"Rang", "Name", "Ort"} <= set(header), header
    names = {r[header.index("Name")] for r in rows_xlsx[1:]}
    assert set(rows.locator("th").all_inner_texts()) <= names
    page.locator("#einladungen").screenshot(path=str(ARTIFACTS / "web-invitations.png"))
    page.traffic.check()


def test_page_has_csp_labels_visible_focus_and_passes_axe_wcag_aa(page, web):
    from axe_playwright_python.sync_playwright import Axe

    response = open_page(page, web)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("script:not([src]):not([type='application/json'])").count() == 0   # no inline scripts

    ids = page.evaluate("[...document.querySelectorAll('[id]')].map(el => el.id)")
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(el => el.type !== 'hidden')
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
                      !el.getAttribute('aria-labelledby'))
        .map(el => el.id || el.name)""")
    assert unlabelled == []

    # keyboard: the skip link comes first, then every control shows a visible focus outline
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Zum Inhalt springen"
    for _ in range(12):
        page.keyboard.press("Tab")
        style = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return [document.activeElement.tagName, s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
        assert style[1] != "none" and style[2] >= 2, style

    # the describe-your-organisation part and the results are checked too, not only the first view
    page.get_by_label("Selbst beschreiben").check()
    search_advisors(page, FRANCOPHONE_NEED, "Dortmund", [])
    results = Axe().run(page, options=WCAG_AA)
    assert results.violations_count == 0, results.generate_report()
    page.traffic.check()


# ------------------------------------------------------------------------------------------ while starting
STARTING = {"error": {"code": "starting", "message": "Der Dienst startet: Profile werden kodiert: 83 von 170",
                      "details": [{"stage": "encoding", "done": 83, "total": 170, "seconds": 12.5}]}}


def test_page_shows_the_start_with_its_progress_and_the_search_once_ready(browser, tmp_path):
    """A fresh store (no vectors): gunicorn starts in the background as deployed; the page answers at once
    with the start's progress (polled), passes axe, and becomes the search page by itself when ready."""
    from axe_playwright_python.sync_playwright import Axe

    from matcher.domain.schema import load_catalog
    from matcher.store import Store
    from matcher.text.profile import passages, profile_text

    # the catalog's advisors (what the search below looks for): ~300 texts, whose encoding with the default
    # model lasts long enough (~10 s idle, ~30 s on a busy 2-core machine) for the page's 2-second polls to see
    # it; the whole catalog's ~1,000 took a minute and more (the fast USE model encodes them in ~5 s).
    # tests/test_startup.py checks the count's German thousands separator on the whole catalog.
    advisors = [e for e in load_catalog(ROOT / "fixtures" / "catalog.jsonl") if e.kind == "advisor"]
    to_encode = len({profile_text(e) for e in advisors}) + len({p for e in advisors for p in passages(e)})
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = Store(url)
    store.upgrade()
    store.upsert_entities(advisors)
    store.close()
    server = ServerProcess(f"http://127.0.0.1:{free_port()}", url, tmp_path / "server.log",
                           MATCHER_START_IN_BACKGROUND="true", MATCHER_OPEN_RECOMMENDATIONS="true",
                           # the default model: its encoding stage lasts long enough for the page's 2-second
                           # polls to see it (see above)
                           MATCHER_MODEL="e5+use").spawn()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{server.url}/healthz"):
            assert time.monotonic() < deadline and server.proc.poll() is None, server.log()
            time.sleep(0.05)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and "status of 503" not in m.text and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        response = page.goto(server.url + "/")
        assert response.status == 503 and "script-src 'self'" in response.headers["content-security-policy"]
        status = page.get_by_role("status")
        assert status.inner_text().startswith("Der Dienst startet")
        # polled every two seconds: the line follows the start into the encoding, with the bar beside it
        # (the model loads first: up to a minute or two on a loaded 2-core machine)
        encoding = re.compile(rf"Profile werden kodiert: \d+ von {to_encode}(?!\d)")
        status.filter(has_text=encoding).wait_for(timeout=180_000)
        assert page.locator("#start-progress").is_visible()
        page.screenshot(path=str(ARTIFACTS / "web-starting.png"))
        results = Axe().run(page, options=WCAG_AA)
        assert results.violations_count == 0, results.generate_report()

        # ready: the search page takes its place, the forms usable, no status left
        button = page.get_by_role("button", name="Beratung suchen")
        button.wait_for(timeout=120_000)
        assert button.is_enabled() and page.locator("#service-status").inner_text() == ""
        cards = search_advisors(page, FRANCOPHONE_NEED, "Dortmund", ["Französisch"])
        assert cards.count() >= 3
        assert errors == []
    finally:
        context.close()
        server.kill(signal.SIGTERM)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_page_served_by_a_ready_worker_shows_a_starting_one_and_keeps_search_disabled(page, web):
    """With several workers the page may come from a ready one while the API call lands on one that is still
    starting (stood in for by answering /readyz and the search with its 503): the page shows the status line,
    keeps the search buttons disabled, and clears both once /readyz answers 200."""
    from playwright.sync_api import expect

    starting = {"n": 2}

    def readyz(route):
        if starting["n"] > 0:
            starting["n"] -= 1
            route.fulfill(status=503, json=STARTING, headers={"Retry-After": "5"})
        else:
            route.continue_()

    page.route("**/readyz", readyz)
    page.goto(web.url + "/")
    status = page.locator("#service-status")
    status.filter(has_text="Profile werden kodiert: 83 von 170").wait_for()
    assert page.get_by_role("status").filter(has_text="Der Dienst startet").count() == 1
    button = page.get_by_role("button", name="Beratung suchen")
    assert button.is_disabled()
    assert page.get_by_role("button", name="Schlüssel verwenden").is_enabled()   # needs no matcher
    expect(status).to_have_text("", timeout=15_000)
    expect(button).to_be_enabled()

    # a search answered "starting" (another worker): the same status, the button disabled until ready
    page.route("**/v1/recommendations/advisors",
               lambda route: route.fulfill(status=503, json=STARTING, headers={"Retry-After": "5"}))
    starting["n"] = 1
    form = page.locator("#advisor-form")
    form.get_by_label("Ihr Bedarf").fill(FRANCOPHONE_NEED)
    button.click()
    form.locator(".form-message").filter(has_text="Der Dienst startet").wait_for()
    status.filter(has_text="Der Dienst startet").wait_for()
    expect(button).to_be_disabled()
    expect(status).to_have_text("", timeout=15_000)
    expect(button).to_be_enabled()
