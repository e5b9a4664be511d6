"""``matcher ranker-cv``: the learned ranker against the hand weights on judged sets, cross-validated by query
(issue 18), and optionally the ranker trained on all of them as a file (``--out``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from matcher.cli import german
from matcher.cli.common import database_option, decimal, fitted_matcher, model_option
from matcher.engine.weights import TASK_KIND

__all__ = ["ranker_cv"]


@german.command("ranker-cv")
@german.option("--data", "data_dirs", required=True, multiple=True, type=german.ExistingFolder(), metavar="ORDNER",
               help="Beurteilter Datensatz (catalog.jsonl, queries.jsonl, qrels.tsv), wiederholbar, z. B. "
                    "--data ../shared/eval/dev --data eval/trust.")
@german.option("--folds", default=5, show_default=True, type=german.IntRange(2, 50),
               help="Teile der Kreuzvalidierung über Anfragen (je Aufgabe).")
@german.option("--out", default=None, type=german.WritableFile(), metavar="DATEI",
               help="Das auf allen Anfragen trainierte Rangfolge-Modell als JSON schreiben (gelernt nur für die "
                    "Aufgaben, in denen es die Handgewichte in der Kreuzvalidierung schlägt).")
@german.option("--hand", "hand_tasks", multiple=True, type=click.Choice(sorted(TASK_KIND)), metavar="AUFGABE",
               help="Für diese Aufgabe die Handgewichte behalten, auch wenn das gelernte Modell die "
                    "Kreuzvalidierung gewinnt (wiederholbar), z. B. wenn es einen entworfenen Fall bricht.")
@german.option("--json", "as_json", is_flag=True, help="Bericht als JSON ausgeben.")
@database_option
@model_option
def ranker_cv(data_dirs: tuple[str, ...], folds: int, out: str | None, hand_tasks: tuple[str, ...], as_json: bool,
              url: str | None, model: str | None) -> None:
    """Gelerntes Rangfolge-Modell gegen die Handgewichte: nDCG@10 je Aufgabe, kreuzvalidiert über Anfragen."""
    from matcher.evaluation.judged import load_dataset
    from matcher.learning.train import train_ranker

    datasets = [load_dataset(d) for d in data_dirs]
    names = [d.path.resolve().name for d in datasets]
    if len(set(names)) < len(names):
        raise click.BadParameter("zwei Datensätze mit demselben Ordnernamen", param_hint="„--data“")
    m = fitted_matcher(None, url, model, catalog=datasets[0].catalog)
    ranker, metrics = train_ranker(m, judged=datasets, folds=folds)
    if hand_tasks:
        ranker = ranker.with_hand(hand_tasks)
        metrics["tasks"] = list(ranker.tasks)
    if out:
        # what it was trained on travels with it (the shipped default, `make ranker`, is such a file)
        payload = ranker.to_dict()
        payload["info"] = {**payload["info"], "trained_on": names, "embedding_model": m.model_id,
                           "date": dt.date.today().isoformat(), "folds": folds}
        Path(out).write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps({"model": m.model_id, "ranker": ranker.version, **metrics}, indent=2,
                              ensure_ascii=False))
        return
    click.echo(f"Modell: {m.model_id}; Daten: {', '.join(names)} ({metrics['judged_queries']} Anfragen mit "
               f"passendem Eintrag); {folds} Teile je Aufgabe")
    click.echo(f"{'Aufgabe':<12} {'Anfragen':>8} {'gelernt':>8} {'Hand':>8} {'Differenz':>10}  Standard")
    for task, row in metrics["cv"].items():
        default = "gelernt" if task in metrics["tasks"] else "Handgewichte" + (
            " (gewählt)" if task in hand_tasks and row["delta"] > 0 else "")
        click.echo(f"{task:<12} {row['queries']:>8} {row['learned']:>8.3f} {row['hand']:>8.3f} "
                   f"{row['delta']:>+10.3f}  {default}")
    click.echo(f"Rangfolge-Modell {ranker.version}: gelernt für {', '.join(ranker.tasks) or 'keine Aufgabe'}; "
               f"Training {decimal(metrics['seconds'], 1)} s" + (f"; gespeichert: {out}" if out else ""))
