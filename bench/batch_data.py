"""Synthetic, seeded instances for the batch benchmarks (``bench/batch.py``).

* an organisation catalog of any size, recombined from the fixture organisations
  (``bench.generate_catalog``), plus the fixture events and an invitation history;
* an advisor pool recombined from the fixture advisors, with capacities, and
  municipality requests recombined from the fixture municipalities' need texts,
  placed in random NRW municipalities, some requiring a language, some with conflicts.

Same arguments, same instance. Nothing here is used by the library or the tests.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import tempfile
from pathlib import Path

from bench.generate_catalog import generate_catalog
from matcher.batch.requests import AdvisorRequest
from matcher.domain.schema import load_catalog, parse_entity
from matcher.settings import package_data
from matcher.text.gazetteer import default_gazetteer
from matcher.text.profile import split_sentences

__all__ = ["organisation_catalog", "invitation_history", "advisor_instance"]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "catalog.jsonl"


def _generated(kind: str, n: int, seed: int) -> list[dict]:
    """``n`` records of one kind, recombined from the fixture profiles of that kind."""
    source = [e for e in load_catalog(FIXTURES) if e.kind == kind]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "source.jsonl"
        path.write_text("\n".join(json.dumps(e.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
                                  for e in source), encoding="utf-8")
        return generate_catalog(path, n, seed)


def organisation_catalog(n_orgs: int, seed: int = 7) -> list:
    """The fixture catalog plus ``n_orgs`` generated organisations."""
    return [*load_catalog(FIXTURES), *(parse_entity(r) for r in _generated("organisation", n_orgs, seed))]


def invitation_history(catalog: list, as_of: dt.date, seed: int = 7,
                       share: float = 0.2) -> list[tuple[str, str, dt.date]]:
    """A past: ``share`` of the organisations were invited to 1–6 events in the last two years."""
    rng = random.Random(seed)
    events = [e.id for e in catalog if e.kind == "event"]
    out = []
    for e in catalog:
        if e.kind == "organisation" and rng.random() < share:
            for _ in range(rng.randint(1, 6)):
                out.append((e.id, rng.choice(events), as_of - dt.timedelta(days=rng.randint(1, 730))))
    return out


def advisor_instance(n_advisors: int, n_requests: int, seed: int = 7, capacity: tuple[int, int] = (6, 16),
                     language_share: float = 0.1, conflict_share: float = 0.03) -> tuple[list, list[AdvisorRequest]]:
    """(catalog, requests): ``n_advisors`` generated advisors with capacities in ``capacity`` plus the
    fixture's other entities, and ``n_requests`` requests. A required language is one that an advisor
    serving the request's city speaks (besides German and English), so every request is eligible
    somewhere; whether capacity suffices is left to the solver."""
    rng = random.Random(seed)
    fixtures = load_catalog(FIXTURES)
    advisors = []
    for rec in _generated("advisor", n_advisors, seed):
        rec["capacity"] = rng.randint(*capacity)
        advisors.append(parse_entity(rec))
    catalog = [*advisors, *(e for e in fixtures if e.kind != "advisor")]
    sentences = [s for e in fixtures if e.kind == "municipality" for s in split_sentences(e.description)]
    places = json.loads(package_data("nrw_places.json").read_text(encoding="utf-8"))["municipalities"]
    cities = sorted(places)
    gazetteer = default_gazetteer()
    spoken: dict[str, list[str]] = {}  # city -> languages (besides de/en) of advisors serving it

    def languages_near(city: str) -> list[str]:
        if city not in spoken:
            place = gazetteer.resolve(city)
            serving = [a for a in advisors if not a.regions or any(gazetteer.covers(r, place) for r in a.regions)]
            spoken[city] = sorted({lang for a in serving for lang in a.languages} - {"de", "en"})
        return spoken[city]

    ids = [a.id for a in advisors]
    requests = []
    for i in range(n_requests):
        city = rng.choice(cities)
        record = {
            "id": f"req-{i:05d}",
            "text": " ".join(rng.sample(sentences, rng.randint(2, 4))),
            "city": city,
            "languages": [rng.choice(languages_near(city))] if rng.random() < language_share and languages_near(city)
            else [],
            "conflicts": rng.sample(ids, rng.randint(1, 2)) if rng.random() < conflict_share else [],
        }
        requests.append(AdvisorRequest.model_validate(record))
    return catalog, requests
