"""Gazetteer, country mentions and the cues read from a need text."""

from __future__ import annotations

import datetime as dt

import pytest

from matcher.text.countries import country_mentions
from matcher.text.gazetteer import default_gazetteer, haversine_km
from matcher.text.intent import GENERIC_STRENGTH, parse_intent


@pytest.fixture(scope="module")
def gaz():
    return default_gazetteer()


def test_every_fixture_city_resolves_inside_nrw(gaz, catalog):
    for e in catalog:
        p = gaz.resolve(e.city)
        assert p is not None and p.kind == "municipality", e.city
        assert p.district and "NRW" in p.regions


@pytest.mark.parametrize("name, canonical", [("Mülheim", "Mülheim an der Ruhr"), ("Cologne", "Köln"),
                                             ("Muenster", "Münster"), ("ruhrpott", "Ruhrgebiet"),
                                             ("OWL", "Ostwestfalen-Lippe")])
def test_aliases_and_spellings(gaz, name, canonical):
    assert gaz.resolve(name).name == canonical


def test_cities_outside_the_curated_map_come_from_geonames(gaz):
    berlin = gaz.resolve("Berlin")
    assert berlin.kind == "city" and 52 < berlin.lat < 53
    assert gaz.resolve("Atlantis-upon-Thames") is None


@pytest.mark.parametrize("area, city, covered", [
    ("Ruhrgebiet", "Bochum", True), ("Ruhrgebiet", "Köln", False), ("NRW", "Höxter", True),
    ("Ennepe-Ruhr-Kreis", "Witten", True), ("Kreis Borken", "Bocholt", True), ("Münsterland", "Bonn", False),
    ("Bochum", "Bochum", True), ("Rheinland", "Düsseldorf", True), ("NRW", "Berlin", False),
])
def test_served_area_covers_place(gaz, area, city, covered):
    assert gaz.covers(area, gaz.resolve(city)) is covered


def test_places_named_in_text_with_compass_qualifier(gaz):
    found = {p.name: p
             for p in gaz.mentions("Vereine vom Niederrhein und aus dem westlichen Ruhrgebiet, gern auch aus Bonn")}
    assert set(found) == {"Niederrhein", "Ruhrgebiet", "Bonn"}
    ruhr = found["Ruhrgebiet"]
    assert ruhr.side == "west"
    duisburg, dortmund = gaz.resolve("Duisburg"), gaz.resolve("Dortmund")
    assert ruhr.on_side(duisburg.lat, duisburg.lon) and not ruhr.on_side(dortmund.lat, dortmund.lon)


def test_a_distance_to_a_named_part_of_an_area_is_to_the_centre_of_that_part(gaz, fast_embedder):
    # the whole Ruhrgebiet's centre lies on the line that divides it: Bochum, just east of it, lay 1 km from "the
    # western Ruhrgebiet"; now it is measured to the western part's centre, and a town inside that part is 0 km
    from matcher.domain.schema import parse_entity
    from matcher.engine.index import CatalogIndex

    west = next(p for p in gaz.mentions("aus dem westlichen Ruhrgebiet") if p.name == "Ruhrgebiet")
    towns = gaz.area_towns(west)
    assert len(towns) >= 5 and all(west.on_side(a, b) for a, b in towns)
    lat, lon = gaz.centre(west)
    assert lon < west.lon   # the western part's centre lies west of the dividing line
    orgs = [parse_entity({"id": f"o{i}", "kind": "organisation", "name": c, "description": "Verein", "city": c,
                          "lat": gaz.resolve(c).lat, "lon": gaz.resolve(c).lon}) for i, c in
            enumerate(("Bochum", "Duisburg", "Köln"))]
    index = CatalogIndex(orgs, fast_embedder, gaz)
    d = index.distance_km(west, slice(0, 3))
    bochum = gaz.resolve("Bochum")
    assert d[1] == 0.0
    assert d[0] == pytest.approx(float(haversine_km(lat, lon, bochum.lat, bochum.lon)))
    assert float(haversine_km(west.lat, west.lon, bochum.lat, bochum.lon)) < 2 < 10 < d[0]
    # an area named without a part is measured from its own coordinates, as before
    whole = gaz.resolve("Ruhrgebiet")
    assert gaz.centre(whole) == (whole.lat, whole.lon)
    assert index.distance_km(whole, slice(0, 3))[2] == pytest.approx(
        float(haversine_km(whole.lat, whole.lon, gaz.resolve("Köln").lat, gaz.resolve("Köln").lon)))


def test_ordinary_words_are_not_read_as_towns(gaz):
    assert gaz.mentions("Wir sind in der Lage, bei jedem Wetter zu helfen, how much we can.") == []
    assert gaz.mentions("Beim Fest essen wir zusammen; alle kamen.") == []
    assert [p.name for p in gaz.mentions("Vereine aus Essen")] == ["Essen"]


def test_declined_names_of_districts_and_regions(gaz):
    names = [p.name for p in gaz.mentions("im Märkischen Kreis, im Bergischen Land und im Oberbergischen Kreis")]
    assert names == ["Märkischer Kreis", "Bergisches Land", "Oberbergischer Kreis"]


def test_haversine_known_distance():
    assert float(haversine_km(51.4556, 7.0116, 51.5136, 7.4653)) == pytest.approx(32, abs=2)  # Essen–Dortmund


def test_country_mentions_countries_adjectives_and_regions():
    direct, regional, broad = country_mentions("Menschen aus Ostafrika für unsere Tansania-Partnerschaft")
    assert direct == {"TZ"} and "KE" in regional and not broad
    assert country_mentions("ein ghanaischer Verein und Vereine aus dem Senegal")[0] == {"GH", "SN"}
    assert "NG" in country_mentions("A training centre in Nigeria")[0]
    assert "CD" in country_mentions("afrikanische Vereine")[2]


def test_language_names_are_not_countries():
    assert country_mentions("Spanischkenntnisse und Türkisch wären gut") == (frozenset(), frozenset(), frozenset())


@pytest.mark.parametrize("text, langs", [
    ("Spanischkenntnisse wären ein großer Vorteil", ("es",)),
    ("Gespräche auch auf Türkisch führen", ("tr",)),
    ("idealerweise französischsprachig", ("fr",)),
    ("someone who speaks Arabic", ("ar",)),
    ("türkische Kulturvereine gewinnen", ()),
    ("Gespräche in türkischer Sprache", ("tr",)),
])
def test_languages_asked_for_in_text(text, langs):
    assert parse_intent(text).languages == langs


def test_actor_types_and_strength():
    i = parse_intent("Wir suchen Vereine aus Oberhausen – vor allem Migrantenorganisationen")
    assert dict(zip(i.org_types, i.org_type_strength)) == {"migrant_organisation": 1.0, "civil_society": 0.5}
    assert parse_intent("zusammen mit der Stadtverwaltung").org_types == ("municipal_office",)


@pytest.mark.parametrize("text, wanted", [
    ("vor allem Migrantenvereine aus Duisburg", "migrant_organisation"),
    ("Moscheegemeinden für den Klimaschutz gewinnen", "migrant_organisation"),
    ("gemeinsam mit der Kreisverwaltung", "municipal_office"),
    ("We are looking for municipal partners", "municipal_office"),
    ("die Fairtrade-Steuerungsgruppen der Region", "civil_society"),
])
def test_common_names_of_actor_types(text, wanted):
    assert parse_intent(text).org_types == (wanted,)


@pytest.mark.parametrize("text", [
    "Wir suchen Partner, um den Wiederaufbau von Schulen in unserer Partnerstadt zu unterstützen.",
    "Unsere Jugendlichen möchten Workshops zu globalen Themen an Schulen anbieten.",
    "Neben den Verwaltungen möchten wir Gruppen einladen, die über Rohstoffabbau berichten können.",
    "We want to give talks at schools about girls' education.",
])
def test_an_actor_type_named_as_the_object_of_the_work_is_not_asked_for(text):
    assert parse_intent(text).org_types == ()
    assert parse_intent(text, task="partners").org_types == ()


def test_the_audience_of_a_partner_search_is_not_asked_for_but_an_events_is():
    need = "Wir möchten ein festes Bildungsangebot für Schulen und Erwachsenenbildung machen."
    assert parse_intent(need, task="partners").org_types == ()
    assert parse_intent(need, task="invitations").org_types == ("institution",)
    assert parse_intent("Eine Werkstatt für Migrantenorganisationen", task="events").org_types == (
        "migrant_organisation",)


def test_a_later_mention_of_a_type_still_asks_for_it():
    i = parse_intent("Für den Wiederaufbau von Schulen suchen wir Schulen aus Köln.", task="partners")
    assert i.org_types == ("institution",)
    assert parse_intent("zusammen mit der Stadtverwaltung", task="partners").org_types == ("municipal_office",)


@pytest.mark.parametrize("text", [
    "Gesucht sind Teilnehmende, die Bildungsangebote machen – gern Referentinnen mit eigener Migrationsgeschichte.",
    "We are looking for speakers, ideally migrant organisations from the region.",
])
def test_a_type_named_as_a_preference_is_asked_for_weakly(text):
    i = parse_intent(text, task="invitations")
    assert i.org_types == ("migrant_organisation",)
    assert i.org_type_strength == (GENERIC_STRENGTH,)
    # the same type without the hedge, and a hedge in another sentence, ask outright
    assert parse_intent("Gesucht sind Migrantenorganisationen.").org_type_strength == (1.0,)
    assert parse_intent("Gern gesehen. Wir suchen Migrantenorganisationen.").org_type_strength == (1.0,)
    far = parse_intent("Wir arbeiten gern mit Kitas zusammen und suchen für das Projekt Migrantenorganisationen.")
    assert far.org_type_strength == (1.0,)


@pytest.mark.parametrize("text, window", [
    ("an event in the first half of 2027", (dt.date(2027, 1, 1), dt.date(2027, 6, 30))),
    ("in der zweiten Jahreshälfte 2027", (dt.date(2027, 7, 1), dt.date(2027, 12, 31))),
    ("im März 2027", (dt.date(2027, 3, 1), dt.date(2027, 3, 31))),
    ("Gibt es 2027 ein Treffen?", (dt.date(2027, 1, 1), dt.date(2027, 12, 31))),
    ("seit 2019 aktiv, Agenda 2030", None),
])
def test_time_window(text, window):
    assert parse_intent(text, dt.date(2026, 11, 22)).window == window


@pytest.mark.parametrize("text, window", [
    ("bis Ende Juni 2027", (dt.date(2026, 12, 1), dt.date(2027, 6, 30))),
    ("by the end of March 2027", (dt.date(2026, 12, 1), dt.date(2027, 3, 31))),
    ("vor Juni 2027", (dt.date(2026, 12, 1), dt.date(2027, 5, 31))),
    ("zwischen März und Mai 2027", (dt.date(2027, 3, 1), dt.date(2027, 5, 31))),
    ("im Januar oder Februar 2027", (dt.date(2027, 1, 1), dt.date(2027, 2, 28))),
    ("von Dezember 2027 bis Januar 2028", (dt.date(2027, 12, 1), dt.date(2028, 1, 31))),
    ("ab September 2027", (dt.date(2027, 9, 1), dt.date(2028, 8, 31))),
    ("Anfang 2027", (dt.date(2027, 1, 1), dt.date(2027, 4, 30))),
    ("late 2027", (dt.date(2027, 9, 1), dt.date(2027, 12, 31))),
    ("in der zweiten Jahreshälfte", (dt.date(2027, 7, 1), dt.date(2027, 12, 31))),
    ("im Mai", (dt.date(2027, 5, 1), dt.date(2027, 5, 31))),
    ("im kommenden Herbst", (dt.date(2027, 9, 1), dt.date(2027, 11, 30))),
    ("Frau Mai Thi Nguyen berät", None),
    ("bis 2019 waren wir in Ghana aktiv", None),
])
def test_time_window_phrasings(text, window):
    """Ranges, deadlines, parts of a year and periods without a year (the next one that has not passed)."""
    assert parse_intent(text, dt.date(2026, 12, 1)).window == window


def test_season_without_year_is_the_next_one():
    assert parse_intent("im Herbst", dt.date(2026, 11, 22)).window == (dt.date(2027, 9, 1), dt.date(2027, 11, 30))
    assert parse_intent("im Sommer", dt.date(2026, 3, 1)).window == (dt.date(2026, 6, 1), dt.date(2026, 8, 31))


def test_nearness_cue():
    assert parse_intent("Vereine aus der Nähe").near
    assert not parse_intent("Vereine mit Erfahrung").near


def test_coordinates_alone_get_district_and_regions(gaz):
    bochum = gaz.resolve("Bochum")
    p = gaz.locate(None, bochum.lat + 0.01, bochum.lon)
    assert p.district == "Bochum" and gaz.covers("Ruhrgebiet", p)
    assert gaz.locate(None, 48.1, 11.6).regions == ()  # Munich: not in NRW


def test_every_world_region_pattern_contains_a_prefilter_hint():
    """country_mentions skips the region patterns for texts without any hint: each alternative must contain one."""
    from matcher.text.countries import _REGION_HINTS, WORLD_REGIONS

    for pattern in WORLD_REGIONS:
        for alternative in pattern.split("|"):
            assert any(h in alternative for h in _REGION_HINTS), alternative


def _top_level_alternatives(pattern: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(pattern):
        if ch == "(" and pattern[i - 1 : i] != "\\":
            depth += 1
        elif ch == ")" and pattern[i - 1 : i] != "\\":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    return [*parts, pattern[start:]]


def test_every_actor_type_pattern_alternative_contains_a_prefilter_hint():
    """parse_intent skips a type's pattern for texts without any of its hints: each alternative must contain one."""
    from matcher.text.intent import _ORG_TYPE_HINTS, _ORG_TYPE_RES

    for kind, rx in _ORG_TYPE_RES.items():
        for alternative in _top_level_alternatives(rx.pattern):
            assert any(h in alternative.lower() for h in _ORG_TYPE_HINTS[kind]), (kind, alternative)


def test_every_nearness_pattern_alternative_contains_a_prefilter_hint():
    from matcher.text.intent import _NEAR_HINTS, _NEAR_RE

    for alternative in _top_level_alternatives(_NEAR_RE.pattern):
        assert any(h in alternative.lower() for h in _NEAR_HINTS), alternative
