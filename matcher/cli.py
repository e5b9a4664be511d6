"""Command line: ``matcher evaluate``, ``matcher rank``, the store, batch and landscape commands.

Errors are printed as one readable message (no traceback) with exit status 2.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from .errors import MatcherError

__all__ = ["main", "cli"]


def _build_matcher(catalog, model: str | None, weights_file: str | None = None, progress: bool = True):
    from .embedding import CachedEmbedder, SQLiteVectorCache, make_embedder
    from .ranking import Matcher, Weights
    from .settings import cache_file, model_spec, threads

    embedder = CachedEmbedder(make_embedder(model or model_spec(), threads=threads()), SQLiteVectorCache(cache_file()))
    weights = None
    if weights_file:
        weights = Weights.from_mapping(json.loads(Path(weights_file).read_text(encoding="utf-8")))
    return Matcher(embedder, weights=weights, progress=progress).fit(catalog)


@click.group()
@click.version_option(package_name="matcher")
def cli() -> None:
    """Matchmaking für Migration und Entwicklung auf kommunaler Ebene."""


@cli.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Directory with catalog.jsonl, queries.jsonl, qrels.tsv (FORMAT.md).")
@click.option("--run-out", type=click.Path(dir_okay=False, writable=True),
              help="Write the top 10 per query as TSV: query_id, entity_id, rank, score.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--model", default=None, help="Embedding model spec (default: MATCHER_MODEL or the built-in default).")
@click.option("--weights", "weights_file", type=click.Path(exists=True, dir_okay=False), help="JSON file of fusion weights.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Reference date for events (default: the earliest event date, i.e. no event counts as past).")
@click.option("--without", "ablate", default=None, help="Switch one signal off (ablation), e.g. --without lexical.")
def evaluate(data_dir: str, run_out: str | None, as_json: bool, model: str | None, weights_file: str | None,
             as_of: dt.datetime | None, ablate: str | None) -> None:
    """nDCG@10, MRR@10 and Recall@10 per task and overall on a judged data set."""
    from .evaluation import evaluate as run_evaluation
    from .evaluation import load_dataset, matcher_ranker

    ds = load_dataset(data_dir)
    m = _build_matcher(ds.catalog, model, weights_file)
    if ablate:
        m.weights_ = m.weights_.without(ablate)
    ref = as_of.date() if as_of else min((e.date for e in ds.catalog if getattr(e, "date", None)), default=None)
    report = run_evaluation(matcher_ranker(m, as_of=ref), ds)
    if run_out:
        with open(run_out, "w", encoding="utf-8") as fh:
            for qid, ranked in report.runs.items():
                for r, (eid, score) in enumerate(ranked, start=1):
                    fh.write(f"{qid}\t{eid}\t{r}\t{score:.6f}\n")
    if as_json:
        click.echo(json.dumps({"model": m.model_id, **report.as_dict()}, indent=2, ensure_ascii=False))
        return
    click.echo(f"model: {m.model_id}")
    click.echo(f"{'task':<12} {'queries':>7} {'nDCG@10':>8} {'MRR@10':>8} {'R@10':>8}")
    for task, row in [*report.per_task.items(), ("overall", report.overall)]:
        click.echo(f"{task:<12} {row['queries']:>7} {row['ndcg@10']:>8.3f} {row['mrr@10']:>8.3f} {row['recall@10']:>8.3f}")


@cli.command()
@click.option("--catalog", "catalog_file", default="fixtures/catalog.jsonl", show_default=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--task", type=click.Choice(["advisors", "partners", "events", "invitations"]), required=True)
@click.option("--text", default=None, help="The need in free text.")
@click.option("--from", "from_", default=None, help="Id of the asking entity.")
@click.option("--city", default=None)
@click.option("--language", "languages", multiple=True, help="Language the asker needs (ISO 639-1), repeatable.")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--lang", default="de", type=click.Choice(["de", "en"]), help="Language of the reasons.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--model", default=None)
def rank(catalog_file: str, task: str, text: str | None, from_: str | None, city: str | None, languages: tuple[str, ...],
         k: int, lang: str, as_json: bool, model: str | None) -> None:
    """Answer one query from the command line, with explanations."""
    from .schema import Query, load_catalog, pydantic_details
    from pydantic import ValidationError as PydanticValidationError
    from .errors import ValidationError

    try:
        query = Query.model_validate({"task": task, "text": text, "from": from_, "city": city, "languages": list(languages)})
    except PydanticValidationError as exc:
        raise ValidationError("Ungültige Anfrage", pydantic_details(exc)) from None
    m = _build_matcher(load_catalog(catalog_file), model)
    ranking = m.rank(query, k=k, lang=lang)
    if as_json:
        out = [{"rank": r.rank, "id": r.entity_id, "name": r.entity.name, "score": round(r.score, 4),
                "explanation": r.explanation.as_dict()} for r in ranking.results]
        click.echo(json.dumps({"model": ranking.model_id, "results": out}, indent=2, ensure_ascii=False, default=str))
        return
    for r in ranking.results:
        click.echo(f"{r.rank:>2}. {r.entity.name} ({r.entity_id}, {r.entity.city or '–'})  {r.score:+.2f}")
        for reason in r.explanation.reasons:
            click.echo(f"      – {reason}")


# --- store / service commands are registered below this line ---
from .batch_cli import assign, invite  # noqa: E402 - registered after the engine commands
from .landscape_cli import landscape, landscape_calibrate  # noqa: E402
from .store_cli import db, keys, load  # noqa: E402

for _command in (db, load, keys, invite, assign, landscape, landscape_calibrate):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, print library errors without a traceback."""
    try:
        cli.main(args=argv, prog_name="matcher", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Abgebrochen.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MatcherError as exc:
        click.echo(f"Fehler: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
