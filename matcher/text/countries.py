"""Countries and world regions named in a text ("Menschen aus Ostafrika",
"ghanaischer Verein", "partner centre in Nigeria").

Diaspora matching is about countries of origin and partner countries: a need
about Tanzania should find the Kiswahili association, not the Ghanaian one.
Country names in English and German come from pycountry (ISO 3166 with its
German translation); German/English adjective stems and the world regions
(UN M49 sub-regions, in the words people use) are curated below.
"""

from __future__ import annotations

import gettext
import re
import unicodedata
from functools import lru_cache

import pycountry

__all__ = ["country_mentions", "WORLD_REGIONS", "country_name_de"]

# UN M49 sub-regions (and the everyday groupings used in NRW's development work)
_WEST_AFRICA = "BJ BF CV CI GM GH GN GW LR ML MR NE NG SN SL TG"
_EAST_AFRICA = "BI KM DJ ER ET KE MG MW MU MZ RW SC SO SS TZ UG ZM ZW"
_CENTRAL_AFRICA = "AO CM CF TD CG CD GQ GA ST"
_NORTH_AFRICA = "DZ EG LY MA SD TN EH"
_SOUTHERN_AFRICA = "BW SZ LS NA ZA"
_LATIN_AMERICA = "AR BO BR CL CO EC GY PY PE SR UY VE BZ CR SV GT HN MX NI PA CU DO HT JM TT"
_MIDDLE_EAST = "BH IQ IR IL JO KW LB OM PS QA SA SY TR AE YE"
_SOUTH_EAST_ASIA = "BN KH ID LA MY MM PH SG TH TL VN"
_SOUTH_ASIA = "AF BD BT IN MV NP PK LK"
_EASTERN_EUROPE = "BY BG CZ HU MD PL RO RU SK UA"
_BALKANS = "AL BA HR XK ME MK RS SI"

WORLD_REGIONS: dict[str, str] = {
    r"west[- ]?afrika\w*|west africa\w*|westafrikanisch\w*|west african": _WEST_AFRICA,
    r"ost[- ]?afrika\w*|east africa\w*|ostafrikanisch\w*|east african|horn von afrika|horn of africa": _EAST_AFRICA,
    r"zentral[- ]?afrika\w*|central africa\w*|zentralafrikanisch\w*|central african": _CENTRAL_AFRICA,
    r"nord[- ]?afrika\w*|north africa\w*|nordafrikanisch\w*|north african|maghreb\w*": _NORTH_AFRICA,
    r"südliche[sn]? afrika|southern africa": _SOUTHERN_AFRICA,
    r"\bafrika\w*|\bafrican?\b|\bafrikanisch\w*": " ".join(
        [_WEST_AFRICA, _EAST_AFRICA, _CENTRAL_AFRICA, _NORTH_AFRICA, _SOUTHERN_AFRICA]),
    r"lateinamerika\w*|latin america\w*|südamerika\w*|south america\w*|mittelamerika\w*|central america\w*"
    r"|lateinamerikanisch\w*|latino\w*|latina\w*": _LATIN_AMERICA,
    r"nahe[nr]? osten|nahost\w*|middle east\w*|\bnahöstlich\w*": _MIDDLE_EAST,
    r"südostasi\w*|south[- ]?east asia\w*|southeast asia\w*": _SOUTH_EAST_ASIA,
    r"südasi\w*|south asia\w*": _SOUTH_ASIA,
    r"osteuropa\w*|eastern europe\w*|osteuropäisch\w*": _EASTERN_EUROPE,
    r"balkan\w*|westbalkan\w*": _BALKANS,
}

# adjective / demonym stems that do not start with the country's name; language names
# ("Spanisch", "Türkisch") are left out on purpose: they name a language, not an origin
_EXTRA_STEMS = {
    "TR": "türkeistämmig turkey",
    "SY": "syrisch syrian",
    "CI": "ivorisch ivorian elfenbeinküste ivory coast",
    "AF": "afghan",
    "KE": "kenian kenyan",
    "CD": "kongoles congolese kongo congo",
    "NL": "niederländisch dutch",
    "ET": "äthiop ethiop",
    "TG": "togoles togoisch",
    "PE": "peruan",
    "BO": "bolivian",
    "IQ": "irakisch iraqi nordirak kurdistan-region",
    "IR": "iranisch iranian",
    "PS": "palästin palestin",
    "VN": "vietnames",
    "MA": "marokkan moroccan",
    "TN": "tunes tunisian",
    "DZ": "algerisch algerian",
    "SN": "senegales senegalese",
    "GH": "ghanai",
    "NG": "nigerian",
    "CM": "kamerun cameroon",
    "ER": "eritre",
    "SO": "somali",
    "UA": "ukrain",
    "IN": "indisch indian",
    "PK": "pakistan",
    "BD": "bangladesch bangladesh",
    "LK": "sri lank",
    "PH": "philippin filipin",
    "BR": "brasilian brazilian",
    "CO": "kolumbian colombian",
    "MX": "mexikan mexican",
    "NI": "nicaraguan",
    "HN": "hondur",
    "GT": "guatemal",
    "EC": "ecuadorian",
    "CL": "chilen chilean",
    "AR": "argentin",
    "EG": "ägypt egypt",
    "SD": "sudanes",
    "SS": "südsudan south sudan",
    "RW": "ruand rwand",
    "BI": "burund",
    "UG": "ugand",
    "TZ": "tansan tanzan sansibar zanzibar",
    "MZ": "mosambik mozambi",
    "ZA": "südafrika south africa",
    "ML": "malisch malian",
    "BF": "burkin",
    "GN": "guine",
    "BJ": "benin",
    "SL": "sierra leone",
    "LR": "liberia",
    "XK": "kosov",
    "BA": "bosni",
    "AL": "albani",
    "MK": "mazedon macedon",
    "RS": "serbi",
    "HR": "kroati croati",
    "LB": "libanes lebanese libanon",
    "JO": "jordani",
    "YE": "jemen yemen",
}
# words that would otherwise be read as a country (stems too short or ambiguous)
# Germany is where everyone here lives; "Island" (Iceland in German) is an English word
_SKIP = {"DE", "IS"}


def _fold(s: str) -> str:
    return unicodedata.normalize("NFC", s).casefold()


@lru_cache(maxsize=1)
def _translator() -> gettext.NullTranslations:
    try:
        return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["de"])
    except OSError:  # pragma: no cover - pycountry without locales
        return gettext.NullTranslations()


def country_name_de(code: str) -> str:
    """German short name of an ISO 3166-1 alpha-2 code ("TZ" → "Tansania")."""
    c = pycountry.countries.get(alpha_2=code.upper())
    if c is None:
        return code
    return _translator().gettext(c.name).split(",")[0].strip()


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[re.Pattern[str], frozenset[str], bool, str]]:
    """(regex, country codes, is_region, literal) — longest names first so "Südsudan" beats "Sudan".

    ``literal`` is the name every match starts with ("" for the hand-written region patterns);
    :func:`_prefix_index` finds the few that can match a text.
    """
    entries: list[tuple[str, frozenset[str], bool, str]] = []
    for c in pycountry.countries:
        code = c.alpha_2
        names = {c.name.split(",")[0], getattr(c, "common_name", "") or "", country_name_de(code)}
        stems = [_fold(n) for n in names if n and len(n) >= 4]
        stems += [_fold(s) for s in _EXTRA_STEMS.get(code, "").split() if len(s) >= 4]
        if code in _SKIP:
            continue
        for s in stems:
            entries.append((re.escape(s) + r"\w*", frozenset({code}), False, s))
    for rx, codes in WORLD_REGIONS.items():
        entries.append((rx, frozenset(codes.split()), True, ""))
    entries.sort(key=lambda e: -len(e[0]))
    return [(re.compile(rf"(?<![\w-])(?:{rx})"), codes, is_region, literal)
            for rx, codes, is_region, literal in entries]


@lru_cache(maxsize=1)
def _prefix_index() -> dict[str, frozenset[int]]:
    """First four characters of each pattern's literal → the patterns (by position) that start so.

    A name pattern matches only where its literal (≥ 4 characters) begins a word, so looking up
    the four characters at each word start finds every pattern that can match: a text costs a
    dictionary lookup per word instead of ~600 pattern tests.
    """
    index: dict[str, set[int]] = {}
    for i, (_, _, _, literal) in enumerate(_patterns()):
        if literal:
            index.setdefault(literal[:4], set()).add(i)
    return {k: frozenset(v) for k, v in index.items()}


# every match of a WORLD_REGIONS pattern contains one of these: a text without them names no region
_REGION_HINTS = ("afrika", "africa", "maghreb", "amerika", "america", "latino", "latina", "osten", "nahost",
                 "middle east", "nahöstlich", "asi", "europ", "balkan")


@lru_cache(maxsize=1)
def _literal_free() -> tuple[int, ...]:
    """The patterns without a literal (world regions): they are tried on every text."""
    return tuple(i for i, p in enumerate(_patterns()) if not p[3])


_WORD_START_RE = re.compile(r"(?<![\w-])(?=(\S.{0,3}))", re.DOTALL)  # the first four characters at each word start
BROAD_REGION = 25  # a "region" of more countries than this is a continent ("Afrika")


def country_mentions(text: str | None) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Countries named in ``text``: (named directly, in sub-regions named, in continents named).

    Example:
        >>> sorted(country_mentions("Menschen aus Ostafrika für unsere Tansania-Partnerschaft")[0])
        ['TZ']
    """
    if not text:
        return frozenset(), frozenset(), frozenset()
    folded = _fold(text)
    direct: set[str] = set()
    regional: set[str] = set()
    broad: set[str] = set()
    taken: list[tuple[int, int]] = []
    index, always = _prefix_index(), _literal_free()
    possible: set[int] = set(always) if any(h in folded for h in _REGION_HINTS) else set()
    possible.update(*filter(None, map(index.get, set(_WORD_START_RE.findall(folded)))))  # a C loop over the words
    patterns = _patterns()
    for i in sorted(possible):  # in the patterns' order: longest names first
        rx, codes, is_region, _ = patterns[i]
        for m in rx.finditer(folded):
            span = m.span()
            if any(a < span[1] and span[0] < b for a, b in taken):
                continue
            taken.append(span)
            if not is_region:
                direct.update(codes)
            else:
                (broad if len(codes) > BROAD_REGION else regional).update(codes)
    return frozenset(direct), frozenset(regional), frozenset(broad)
