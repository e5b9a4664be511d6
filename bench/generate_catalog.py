"""Build a large synthetic catalog from a small real one by recombining its parts.

Each generated profile takes its kind from the source distribution, its
description from 2–5 sentences of source profiles of the same kind, topics
and languages from the same kind's pools, and the place of a random source
entity. Advisors and organisations get an invented contact (``example.org``)
so that tests about contact data see it at scale. Seeded: the same arguments
always give the same file.

    python -m bench.generate_catalog --n 10000 --seed 7 --out var/catalog-10k.jsonl
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from matcher.domain.schema import load_catalog
from matcher.text.profile import split_sentences

__all__ = ["generate_catalog"]

_PREFIX = {"advisor": "adv", "organisation": "org", "event": "evt", "municipality": "mun"}
_KIND_FIELDS = {
    "advisor": ("regions", "capacity"),
    "organisation": ("org_type", "scope", "partner_countries"),
    "event": ("date", "target_groups", "capacity"),
    "municipality": (),
}


def generate_catalog(source: str | Path, n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Return ``n`` entity records (dicts in the catalog format) recombined from ``source``.

    Ids are ``<kind prefix>-g<number>`` so they never collide with the source ids.
    """
    base = [e.model_dump(mode="json", exclude_none=True) for e in load_catalog(source)]
    if not base:
        raise click.UsageError(f"{source} holds no entities")
    rng = random.Random(seed)
    by_kind: dict[str, list[dict]] = defaultdict(list)
    sentences: dict[str, list[str]] = defaultdict(list)
    topics: dict[str, list[str]] = defaultdict(list)
    evidence: dict[str, list[str]] = defaultdict(list)
    for rec in base:
        kind = rec["kind"]
        by_kind[kind].append(rec)
        sentences[kind].extend(split_sentences(rec.get("description", "")))
        topics[kind].extend(rec.get("topics", []))
        evidence[kind].extend(rec.get("evidence", []))
    places = [(r["city"], r.get("lat"), r.get("lon")) for r in base if r.get("city")]
    kinds = [rec["kind"] for rec in base]

    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        template = rng.choice(by_kind[kind])
        city, lat, lon = rng.choice(places) if places else (None, None, None)
        rec: dict[str, Any] = {
            "id": f"{_PREFIX[kind]}-g{i:05d}",
            "kind": kind,
            "name": _name(rng, kind, template, by_kind[kind], city),
            "description": " ".join(rng.sample(sentences[kind], min(len(sentences[kind]), rng.randint(2, 5)))),
            "topics": list(dict.fromkeys(rng.sample(topics[kind], min(len(topics[kind]), rng.randint(2, 5))))),
            "languages": list(template.get("languages", [])),
        }
        if city:
            rec["city"] = city
        if lat is not None and lon is not None:
            rec["lat"], rec["lon"] = lat, lon
        if evidence[kind] and rng.random() < 0.5:
            rec["evidence"] = rng.sample(evidence[kind], min(len(evidence[kind]), rng.randint(1, 2)))
        for field in _KIND_FIELDS[kind]:
            if field in template:
                rec[field] = template[field]
        if kind in ("advisor", "organisation"):
            rec["contact"] = {"person": f"Kontakt {i}", "email": f"kontakt{i}@example.org", "phone": f"+49 211 {i:06d}"}
        out.append(rec)
    return out


def _name(rng: random.Random, kind: str, template: dict, same_kind: list[dict], city: str | None) -> str:
    if kind == "advisor":  # first name of one advisor, family name of another
        first = template["name"].split()[0]
        last = rng.choice(same_kind)["name"].split()[-1]
        return f"{first} {last}"
    if kind == "municipality":
        return f"{template['name']} ({city})" if city else template["name"]
    return f"{template['name']} {city}" if city and city not in template["name"] else template["name"]


@click.command()
@click.option("--source", default="fixtures/catalog.jsonl", show_default=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--n", "n", default=10_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--seed", default=7, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True))
def main(source: str, n: int, seed: int, out: str) -> None:
    """Write N recombined profiles as JSON Lines."""
    records = generate_catalog(source, n, seed)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    click.echo(f"{len(records)} profiles → {out}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
