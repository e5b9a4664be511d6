"""What a free-text need says beyond its topic: languages asked for, the kind of
actor wanted, a time window, and whether nearness matters.

These cues turn sentences such as "Spanischkenntnisse wären ein großer
Vorteil", "vor allem Migrantenorganisationen" or "in the first half of 2027"
into the same structured signals a form would give. The word lists are domain
data (German and English), kept here in one place.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from matcher.domain.labels import LANGUAGE_NAMES_DE, LANGUAGE_NAMES_EN
from matcher.text.profile import split_sentences

__all__ = ["Intent", "parse_intent", "asked_types", "LANGUAGE_NAMES_DE"]

# the languages a text may ask for: ISO 639-1 code -> regex alternatives besides the German and English
# names (matcher.domain.labels); German itself is taken for granted, not asked for
_LANG_ALIASES = {
    "en": "",
    "fr": r"frankophon\w*|francophone",
    "es": r"hispanophon\w*",
    "pt": r"lusophon\w*",
    "it": "",
    "tr": "",
    "ar": "",
    "fa": r"Farsi|Dari",
    "ku": r"Kurmancî|Kurmanci|Sorani",
    "ru": "",
    "uk": "",
    "pl": "",
    "ro": "",
    "bg": "",
    "el": "",
    "sq": "",
    "sr": "",
    "hr": "",
    "bs": "",
    "ti": r"Tigrinisch|Tigrigna",
    "am": "",
    "so": r"Somalisch",
    "sw": r"Kiswahili|Suaheli",
    "tw": r"Akan",
    "yo": "",
    "ig": "",
    "ha": "",
    "ln": "",
    "wo": "",
    "vi": "",
    "zh": r"Mandarin",
    "ps": r"Paschto|Pashtu",
    "ur": "",
    "hi": "",
    "ta": r"Tamilisch",
}
_LANGS: dict[str, tuple[str, str, str]] = {code: (LANGUAGE_NAMES_DE[code], LANGUAGE_NAMES_EN[code], extra)
                                           for code, extra in _LANG_ALIASES.items()}


def _lang_pattern(de: str, en: str, extra: str) -> re.Pattern[str]:
    # German language nouns are capitalised ("auf Türkisch", "Spanischkenntnisse"),
    # while the lower-case adjective ("türkische Vereine") names an origin, not a language.
    alts = [
        rf"\b{de}(?:kenntniss\w*|sprachig\w*|sprechend\w*)?\b",
        rf"\b{de.lower()}sprachig\w*",
        rf"\b{de.lower()}sprechend\w*",
        rf"\b{de.lower()}(?:e[nrs]?)?\s+[Ss]prache\b",
        rf"\b(?:in|speaks?|speaking|fluent in)\s+{en}\b",
        rf"\b{en}[- ]speaking\b",
    ]
    if extra:
        alts.append(rf"\b(?:{extra})")
    return re.compile("|".join(alts))


_LANG_RES = {code: _lang_pattern(*names) for code, names in _LANGS.items()}
# every alternative of a language's pattern contains one of these (lower-cased): a text without any
# of them cannot match, and most texts name no language at all
_LANG_LITERALS = {code: tuple({de.lower(), en.lower(), *(x.replace("\\w*", "").lower() for x in extra.split("|") if x)})
                  for code, (de, en, extra) in _LANGS.items()}

_ORG_TYPE_RES = {
    "migrant_organisation": re.compile(
        r"migrant\w*(?:selbst)?organisation|migrantenselbstorganisation|\bMSOs?\b"
        r"|diaspora[- ]?(?:verein|organisation|gruppe|communit)"
        r"|migrant (?:organi[sz]ation|association|group)|diaspora (?:organi[sz]ation|association|group|communit)"
        r"|migrantische\w* (?:verein|organisation|gruppe|communit)|vereine? von geflüchteten"
        r"|mit (?:eigener )?migrationsgeschichte|mit migrationshintergrund|(?:with|own) migrant background"
        r"|migrant communit|diaspora communit|migrant\w*verein\w*|moschee(?:gemeinde|verein)\w*",
        re.IGNORECASE,
    ),
    "municipal_office": re.compile(
        r"\b(?:stadt|kreis|kommunal|bezirks)?verwaltung(?:en)?\b|integrationszentr|agenda[- ]?(?:21[- ])?büro"
        r"|klimaschutzmanag"
        r"|kommunale[nr]? (?:stelle|akteur|partner)|municipal partner|gleichstellungsstelle"
        r"|municipal (?:office|administration|staff)|city (?:administration|hall)|local authorit",
        re.IGNORECASE,
    ),
    "civil_society": re.compile(
        r"eine[- ]welt[- ]?(?:verein|gruppe|initiative|netz)|weltl[aä]den|umweltgruppe|umweltverein|umweltinitiative"
        r"|kirchengemeinde|partnerschaftsverein|fairtrade[- ]?(?:steuerungsgruppe|gruppe|initiative)"
        r"|civil society|environmental group|world shop",
        re.IGNORECASE,
    ),
    "institution": re.compile(
        r"\bschulen?\b|hochschule|universität|volkshochschule|\bVHS\b|bildungseinrichtung|erwachsenenbildung|stiftung"
        r"|\bschools?\b|universit(?:y|ies)|adult education|student groups?|foundation",
        re.IGNORECASE,
    ),
}

# every alternative of a type's pattern contains one of these (lower-cased): most texts name
# few types, so most patterns are skipped by substring tests
_ORG_TYPE_HINTS = {
    "migrant_organisation": ("migrant", "mso", "diaspora", "geflüchtet", "migrationsgeschichte",
                             "migrationshintergrund", "moschee"),
    "municipal_office": ("verwaltung", "integrationszentr", "agenda", "klimaschutzmanag", "kommunale", "municipal",
                         "gleichstellungsstelle", "city", "local authorit"),
    "civil_society": ("welt", "umwelt", "kirchengemeinde", "partnerschaftsverein", "fairtrade", "civil society",
                      "environmental group", "world shop"),
    "institution": ("schule", "universit", "vhs", "bildungseinrichtung", "erwachsenenbildung", "stiftung", "school",
                    "adult education", "student group", "foundation"),
}

# generic words for associations: they ask for civil society or migrant organisations,
# but less pointedly than "Migrantenorganisationen" does
_GENERIC_ASSOCIATIONS_RE = re.compile(r"\b(?:Vereine|Initiativen|associations|NGOs|grassroots groups)\b")
GENERIC_STRENGTH = 0.5
# a type named as a preference, not a requirement ("gern Referentinnen mit eigener Migrationsgeschichte",
# "ideally migrant organisations"): asked for as weakly as a generic word; the hedge stands at most four words
# before the type ("Wir arbeiten gern mit Schulen zusammen und suchen Migrantenorganisationen" asks outright)
_HEDGE_BEFORE_RE = re.compile(r"\b(?:gerne?|idealerweise|vorzugsweise|am liebsten|ideally|preferably)"
                              r"(?:\s+[\w-]+){0,4}\s+$", re.IGNORECASE)

_NEAR_RE = re.compile(
    r"in der nähe|aus der nähe|umgebung|nachbar(?:stadt|städte|schaft|kommune)|vor ort"
    r"|in unserer (?:gegend|region|stadt)"
    r"|aus unserer (?:gegend|region|stadt)|\bregional\b|nearby|near us|in our (?:area|region|city|town)|local(?:ly)?\b",
    re.IGNORECASE,
)

_MONTHS = {
    "januar": 1, "january": 1, "februar": 2, "february": 2, "märz": 3, "march": 3, "april": 4, "mai": 5, "may": 5,
    "juni": 6, "june": 6, "juli": 7, "july": 7, "august": 8, "september": 9, "oktober": 10, "october": 10,
    "november": 11, "dezember": 12, "december": 12,
}
_SEASONS = {  # (first month, last month)
    "frühjahr": (3, 5), "frühling": (3, 5), "spring": (3, 5), "sommer": (6, 8), "summer": (6, 8),
    "herbst": (9, 11), "autumn": (9, 11), "fall": (9, 11), "winter": (12, 2),
}
_MONTH_NAMES = "|".join(_MONTHS)
_Y = r"(?:\s+(?:des\s+jahres\s+|of\s+)?(?P<year>20\d\d))?"
_HALF_RE = re.compile(
    r"(?P<which>erste[nr]?|1\.|first|zweite[nr]?|2\.|second)\s+(?:half|hälfte|jahreshälfte|halbjahr)"
    r"(?:\s+(?:of|des jahres|von))?"
    r"(?:\s+(?P<year>20\d\d))?", re.IGNORECASE)
_HALF_RE2 = re.compile(r"\bH(?P<which>[12])\s+(?P<year>20\d\d)", re.IGNORECASE)
_QUARTER_RE = re.compile(r"\b(?:Q(?P<q>[1-4])|(?P<q2>[1-4])\.\s*quartal)(?:\s+(?P<year>20\d\d))?", re.IGNORECASE)
# "zwischen März und Mai 2027", "von März bis Mai", "Januar oder Februar 2027", "March to May 2027"
_MONTH_RANGE_RE = re.compile(
    rf"\b(?P<m1>{_MONTH_NAMES})(?:\s+(?P<y1>20\d\d))?\s*(?:und|bis|oder|–|-|to|and|or|through|until)\s*"
    rf"(?P<m2>{_MONTH_NAMES})\b(?:\s+(?P<year>20\d\d))?", re.IGNORECASE)
# "bis Ende Juni 2027", "spätestens im Mai", "by the end of June 2027", "bis Mitte 2027"
_UNTIL_RE = re.compile(
    rf"\b(?:bis|spätestens|until|by|before|vor)\s+(?:(?:zum|im|in|the)\s+)?"
    rf"(?:(?P<part>anfang|mitte|ende|end of|early|mid|late)\s+)?"
    rf"(?:(?P<month>{_MONTH_NAMES})\b(?:\s+(?P<year>20\d\d))?|(?P<year_only>20\d\d)\b)", re.IGNORECASE)
# "ab September 2027", "from March 2027 on"
_FROM_RE = re.compile(
    rf"\b(?:ab|from|starting(?: in)?|beginning(?: in)?)\s+(?:(?:dem|im)\s+)?(?P<month>{_MONTH_NAMES})\b"
    rf"(?:\s+(?P<year>20\d\d))?", re.IGNORECASE)
# "Anfang 2027", "Mitte des Jahres 2027", "late 2027"
_PART_OF_YEAR_RE = re.compile(
    r"\b(?P<part>anfang|mitte|ende|early|mid|late)(?:\s+des\s+jahres)?\s+(?P<year>20\d\d)\b", re.IGNORECASE)
_PARTS = {"anfang": (1, 4), "early": (1, 4), "mitte": (5, 8), "mid": (5, 8), "ende": (9, 12), "late": (9, 12),
          "end of": (9, 12)}
_MONTH_RE = re.compile(
    rf"\b(?:(?P<prep>im|in|ab|bis|anfang|mitte|ende|in early|in late)\s+)?(?P<month>{_MONTH_NAMES})\b"
    r"(?:\s+(?P<year>20\d\d))?", re.IGNORECASE)
_SEASON_RE = re.compile(
    r"\b(?:(?P<prep>im|in|diese[nm]?|this|next|coming)\s+(?:(?:the|kommenden|nächsten|coming|next)\s+)?)?"
    r"(?P<season>" + "|".join(_SEASONS) + r")(?:\s+(?P<year>20\d\d))?\b", re.IGNORECASE)
# a bare year, but not "seit 2019", "since 2019" or "Agenda 2030"
_YEAR_RE = re.compile(r"(?<!seit )(?<!since )(?<!agenda )(?<!\d)(?P<year>20\d\d)(?!\d)", re.IGNORECASE)


# Who an actor says in its own profile it wants to work with. Deliberately not the need-text cue
# lists above (_ORG_TYPE_RES): those read a need, where naming a type is asking for it; a profile
# names many types in passing, so only a sentence that states a wish counts
# ("suchen Kontakt zu Migrantenvereinen", "Stimmen von Migrantenvereinen einbeziehen").
_WANTS_RE = re.compile(
    r"\b(?:such\w*|möchte\w*|wollen|will|wünsch\w*|gewinnen|einbinden|einbeziehen|beteiligen|vernetzen|kontakt\w*|austausch"
    r"|looking for|would like|wants?|seek\w*|alliances?|exchange)\b", re.IGNORECASE)
_ASKED_TYPE_RES = {
    "migrant_organisation": re.compile(
        r"migrant\w*|diaspora\w*|\bMSOs?\b|migrationsgeschichte|migrationshintergrund|migrationserfahrung",
        re.IGNORECASE),
    "civil_society": re.compile(
        r"eine[- ]welt[- ]?(?:gruppe|verein|initiative|arbeit)\w*|weltl[äa]den|fairtrade[- ]steuerungsgruppe\w*"
        r"|zivilgesellschaft\w*|umweltgruppe\w*|world shops?|civil society", re.IGNORECASE),
    "municipal_office": re.compile(
        r"\bkommunen?\b|\b(?:der|mit der) stadt\b|stadtverwaltung|kreisverwaltung|integrationszentr\w*"
        r"|gleichstellungsstelle\w*|municipal\w*|\bcity\b|district administration", re.IGNORECASE),
}


@dataclass(frozen=True)
class Intent:
    """Structured cues read from a need text."""

    languages: tuple[str, ...] = ()
    org_types: tuple[str, ...] = ()
    org_type_strength: tuple[float, ...] = ()  # 1.0 named outright, 0.5 implied by a generic word
    window: tuple[dt.date, dt.date] | None = None
    near: bool = False
    cues: tuple[str, ...] = field(default_factory=tuple)


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _next_year_for(last_month: int, as_of: dt.date, first_month: int | None = None) -> int:
    """The year of the next period ending in ``last_month`` that has not (nearly) passed."""
    end = _month_end(as_of.year, last_month if first_month is None or last_month >= first_month else 12)
    return as_of.year if end > as_of + dt.timedelta(days=30) else as_of.year + 1


def _months(first: int, last: int, year: int) -> tuple[dt.date, dt.date]:
    """From the first of month ``first`` to the end of ``last`` (in the next year when ``last < first``)."""
    return dt.date(year, first, 1), _month_end(year + (last < first), last)


# every period pattern below needs a year, a month or season name, or a half/quarter word (lower-cased)
_WINDOW_HINTS = ("20", "hälfte", "halbjahr", "half", "quartal", "q1", "q2", "q3", "q4", "h1", "h2", *_MONTHS, *_SEASONS)
# every alternative of _NEAR_RE contains one of these (lower-cased)
_NEAR_HINTS = ("nähe", "umgebung", "nachbar", "vor ort", "unserer", "regional", "near", "in our", "local")


def _window(text: str, as_of: dt.date) -> tuple[tuple[dt.date, dt.date] | None, str | None]:
    """The period a need names, most specific phrasing first; a period without a year is the next
    one that has not (nearly) passed."""
    lowered = text.lower()
    if not any(h in lowered for h in _WINDOW_HINTS):
        return None, None
    m = _HALF_RE.search(text) or _HALF_RE2.search(text)
    if m:
        first = m.group("which").lower() in ("erste", "ersten", "erster", "1.", "first", "1")
        months = (1, 6) if first else (7, 12)
        year = int(m.group("year")) if m.group("year") else _next_year_for(months[1], as_of)
        return _months(*months, year), m.group(0)
    m = _QUARTER_RE.search(text)
    if m:
        q = int(m.group("q") or m.group("q2"))
        year = int(m.group("year")) if m.group("year") else _next_year_for(3 * q, as_of)
        return _months(3 * q - 2, 3 * q, year), m.group(0)
    m = _MONTH_RANGE_RE.search(text)
    if m:
        first, last = _MONTHS[m.group("m1").lower()], _MONTHS[m.group("m2").lower()]
        if m.group("y1"):
            year = int(m.group("y1"))
        elif m.group("year"):
            year = int(m.group("year")) - (last < first)
        else:
            year = _next_year_for(last, as_of, first)
        return _months(first, last, year), m.group(0)
    m = _UNTIL_RE.search(text)
    if m:
        part = (m.group("part") or "").lower()
        before = m.group(0).lower().startswith(("vor ", "before "))
        if m.group("month"):
            month = _MONTHS[m.group("month").lower()]
            year = int(m.group("year")) if m.group("year") else _next_year_for(month, as_of)
            end = dt.date(year, month, 1) - dt.timedelta(days=1) if before else _month_end(year, month)
        else:
            year = int(m.group("year_only"))
            end = dt.date(year - 1, 12, 31) if before and not part else (
                _month_end(year, _PARTS[part][1]) if part else dt.date(year, 12, 31))
        if end >= as_of:
            return (as_of, end), m.group(0)
    m = _FROM_RE.search(text)
    if m:
        month = _MONTHS[m.group("month").lower()]
        year = int(m.group("year")) if m.group("year") else _next_year_for(month, as_of)
        start = dt.date(year, month, 1)
        return (start, dt.date(year + 1, month, 1) - dt.timedelta(days=1)), m.group(0)
    m = _PART_OF_YEAR_RE.search(text)
    if m:
        first, last = _PARTS[m.group("part").lower()]
        return _months(first, last, int(m.group("year"))), m.group(0)
    for m in _MONTH_RE.finditer(text):
        # a month name alone ("Mai") could be anything; with a year or a preposition it names a period
        if not (m.group("year") or m.group("prep")):
            continue
        month = _MONTHS[m.group("month").lower()]
        year = int(m.group("year")) if m.group("year") else _next_year_for(month, as_of)
        return _months(month, month, year), m.group(0)
    m = _SEASON_RE.search(text)
    if m and (m.group("year") or m.group("prep")):
        first, last = _SEASONS[m.group("season").lower()]
        year = int(m.group("year")) if m.group("year") else _next_year_for(last, as_of, first)
        return _months(first, last, year), m.group(0)
    years = [int(y) for y in _YEAR_RE.findall(text) if int(y) >= as_of.year]
    if len(set(years)) == 1:
        return (dt.date(years[0], 1, 1), dt.date(years[0], 12, 31)), str(years[0])
    return None, None


# a type named as the object of the work, not as whom it is asked of: "Wiederaufbau von Schulen",
# "Projekttage an Schulen", "neben den Verwaltungen" (they come anyway), "talks at schools"; an
# article, a word and a coordination may stand between ("für Schulen und Erwachsenenbildung")
_OBJECT_PREPOSITIONS = r"von|vom|an|neben|at|besides"
# in a partner search also "für": the joint work's audience ("Bildungsangebot für Schulen"); elsewhere
# "für" names whom an event or an invitation is for, and that is whom it asks for
_AUDIENCE_PREPOSITIONS = r"für|for"


def _object_re(prepositions: str) -> re.Pattern[str]:
    return re.compile(
        rf"\b(?:{prepositions})\s+(?:(?:den|der|die|dem|des|einer?|einem|unseren?|unserer|unserem|ihren?|the|our)\s+)?"
        r"(?:[\w-]+\s+(?:und|oder|and|or)\s+|[\w-]+\s+)?$", re.IGNORECASE)


_OBJECT_BEFORE_RE = _object_re(_OBJECT_PREPOSITIONS)
_PARTNER_OBJECT_BEFORE_RE = _object_re(f"{_OBJECT_PREPOSITIONS}|{_AUDIENCE_PREPOSITIONS}")


def _asked_type_match(rx: re.Pattern[str], text: str, task: str | None) -> re.Match[str] | None:
    """The first mention of an actor type that asks for it: not one the need names as the object of its
    work (:data:`_OBJECT_BEFORE_RE`; in a partner search also its audience)."""
    before = _PARTNER_OBJECT_BEFORE_RE if task == "partners" else _OBJECT_BEFORE_RE
    for m in rx.finditer(text):
        if not before.search(text[max(0, m.start() - 60):m.start()]):
            return m
    return None


def parse_intent(text: str | None, as_of: dt.date | None = None, task: str | None = None) -> Intent:
    """Read languages, actor types, a time window and a nearness cue from ``text``.

    ``task``: a partner search reads a type named as the audience of the joint work ("ein Bildungsangebot
    für Schulen") as no ask; any task reads one named as the work's object ("Wiederaufbau von Schulen") so.

    Example:
        >>> parse_intent("Spanischkenntnisse wären ein großer Vorteil").languages
        ('es',)
    """
    if not text:
        return Intent()
    as_of = as_of or dt.date.today()
    cues: list[str] = []
    langs = []
    lowered = text.lower()
    for code, rx in _LANG_RES.items():
        if not any(lit in lowered for lit in _LANG_LITERALS[code]):
            continue
        m = rx.search(text)
        if m:
            langs.append(code)
            cues.append(m.group(0))
    types: dict[str, float] = {}
    for t, rx in _ORG_TYPE_RES.items():
        if not any(h in lowered for h in _ORG_TYPE_HINTS[t]):
            continue
        m = _asked_type_match(rx, text, task)
        if m:
            hedged = _HEDGE_BEFORE_RE.search(text[max(0, m.start() - 80):m.start()])
            types[t] = GENERIC_STRENGTH if hedged else 1.0
            cues.append(m.group(0))
    m = _GENERIC_ASSOCIATIONS_RE.search(text)
    if m:
        for t in ("migrant_organisation", "civil_society"):
            types.setdefault(t, GENERIC_STRENGTH)
        cues.append(m.group(0))
    window, cue = _window(text, as_of)
    if cue:
        cues.append(cue)
    near = _NEAR_RE.search(text) if any(h in lowered for h in _NEAR_HINTS) else None
    if near:
        cues.append(near.group(0))
    return Intent(tuple(langs), tuple(types), tuple(types.values()), window, bool(near), tuple(cues))


def asked_types(description: str | None) -> dict[str, str]:
    """Actor types a profile says it wants to work with, each with the sentence that says so.

    Only sentences that state a wish count ("We are looking for municipal partners",
    "Migrantenorganisationen sollen von Anfang an mitreden" does not).

    Example:
        >>> asked_types("Wir fördern eine Grundschule in Kumasi. Für unsere Projekte suchen wir Kontakt zu "
        ...             "Kommunen im Ruhrgebiet.")
        {'municipal_office': 'Für unsere Projekte suchen wir Kontakt zu Kommunen im Ruhrgebiet.'}
    """
    out: dict[str, str] = {}
    for sentence in split_sentences(description or ""):
        if not _WANTS_RE.search(sentence):
            continue
        for t, rx in _ASKED_TYPE_RES.items():
            if rx.search(sentence):
                out.setdefault(t, sentence)
    return out
