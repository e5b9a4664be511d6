"""``matcher rank`` (one query, with reasons), ``matcher evaluate`` (a judged data set) and ``matcher calibrate``
(the confidence calibration on judged data sets)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from matcher.cli import german
from matcher.cli.common import catalog_option, database_option, decimal, fitted_matcher, model_option, require_place

__all__ = ["rank", "evaluate", "calibrate"]

TASKS = ("advisors", "partners", "events", "invitations", "programmes")
APPLICANT_TYPES = ("municipality", "municipal_office", "migrant_organisation", "eine_welt_group", "association")


@german.command()
@german.option("--task", required=True, type=german.Choice(TASKS),
               help="Was gesucht wird: advisors (Beratung), partners (Partner), events (Veranstaltungen), "
                    "invitations (Einzuladende für eine Veranstaltung).")
@german.option("--text", default=None, help="Das Anliegen in eigenen Worten.")
@german.option("--from", "from_", default=None, metavar="ID", help="Id des fragenden Eintrags (z. B. mun-101).")
@german.option("--city", default=None, metavar="ORT", help="Ort der Anfrage (Stadt, Kreis oder Region in NRW).")
@german.option("--language", "languages", multiple=True, metavar="SPRACHE",
               help="Gewünschte Sprache (ISO 639-1, z. B. fr), wiederholbar.")
@german.option("-k", "k", default=5, show_default=True, type=german.IntRange(1, 100), help="Wie viele Vorschläge.")
@german.option("--lang", default="de", show_default=True, type=german.Choice(["de", "en"]),
               help="Sprache der Begründungen.")
@german.option("--json", "as_json", is_flag=True, help="Ergebnis als JSON ausgeben.")
@german.option("--applicant-type", type=german.Choice(APPLICANT_TYPES), default=None,
               help="programmes: wer beantragt.")
@german.option("--partner-country", default=None, metavar="LAND", help="programmes: Partnerland (ISO, z. B. GH).")
@german.option("--abroad/--inland", default=None, help="programmes: das Projekt findet (auch) im Ausland statt.")
@german.option("--amount", type=german.IntRange(0), default=None, help="programmes: beantragte Summe in Euro.")
@german.option("--own-share", type=float, default=None, help="programmes: Eigenanteil im Budget in Prozent.")
@german.option("--start", type=german.Date(), default=None, help="programmes: geplanter Projektbeginn.")
@german.option("--as-of", type=german.Date(), default=None, help="programmes: Stichtag der Fristen (Standard: heute).")
@catalog_option
@database_option
@model_option
def rank(task: str, text: str | None, from_: str | None, city: str | None, languages: tuple[str, ...], k: int,
         lang: str, as_json: bool, applicant_type: str | None, partner_country: str | None, abroad: bool | None,
         amount: int | None, own_share: float | None, start: dt.date | None, as_of: dt.date | None,
         catalog_file: str | None, url: str | None, model: str | None) -> None:
    """Eine Anfrage beantworten: die besten Vorschläge mit Begründung (programmes: mit Förderbedingungen)."""
    from pydantic import ValidationError as PydanticValidationError

    from matcher.domain.messages import validation_details
    from matcher.domain.schema import Query
    from matcher.errors import ValidationError
    from matcher.text.gazetteer import default_gazetteer

    facts = {"applicant_type": applicant_type, "partner_country": partner_country, "abroad": abroad,
             "amount": amount, "own_share": own_share, "start": start}
    try:
        query = Query.model_validate({"task": task, "text": text, "from": from_, "city": city,
                                      "languages": list(languages), "as_of": as_of,
                                      "project": facts if task == "programmes" else None})
    except PydanticValidationError as exc:
        raise ValidationError("Ungültige Anfrage; siehe unten", validation_details(exc)) from None
    if city:
        require_place(default_gazetteer(), city)  # before the fit: a typo costs no model load
    m = fitted_matcher(catalog_file, url, model, serving_ranker=True)
    if task == "programmes":
        _programmes(m, query, k, lang, as_json)
        return
    ranking = m.rank(query, k=k, lang=lang)
    if as_json:
        out = [{"rank": r.rank, "id": r.entity_id, "name": r.entity.name, "score": round(r.score, 4),
                "confidence": r.confidence, "strength": r.strength, "strength_label": r.strength_label,
                "explanation": r.explanation.as_dict()} for r in ranking.results]
        click.echo(json.dumps({"model": f"{ranking.model_id}/{ranking.ranker}",   # as the API's: model/ranker
                               "assessment": ranking.assessment.as_dict(), "results": out},
                              indent=2, ensure_ascii=False, default=str))
        return
    if not ranking.results:
        click.echo("Keine passenden Einträge gefunden.")
    assessment = ranking.assessment
    if assessment.message:
        click.echo(assessment.message)
        for suggestion in assessment.suggestions:
            click.echo(f"  → {suggestion}")
    for r in ranking.results:
        strength = f"  {r.strength_label} ({decimal(100 * r.confidence, 0)} %)" if r.confidence is not None else ""
        click.echo(f"{r.rank:>2}. {r.entity.name} ({r.entity_id}, {r.entity.city or '–'})  "
                   f"{decimal(r.score)}{strength}")
        for reason in r.explanation.reasons:
            click.echo(f"      – {reason}")


def _programmes(m, query, k: int, lang: str, as_json: bool) -> None:
    """``rank --task programmes``: eligible programmes with their checklist, then the excluded ones."""
    from matcher.domain.formatting import german_date
    from matcher.programmes.matching import match_programmes

    found = match_programmes(m, query, k=k, lang=lang)
    if as_json:
        def row(x):
            return {"rank": x.rank, "id": x.programme.id, "name": x.programme.name, "score": round(x.score, 4),
                    "eligible": x.eligible, "rules": [r.as_dict() for r in x.rules],
                    "next_deadline": x.next_deadline.isoformat() if x.next_deadline else None,
                    "partners": [s.as_dict() for s in x.partners], "advisors": [s.as_dict() for s in x.advisors]}
        click.echo(json.dumps({"model": found.model_id, "as_of": found.today.isoformat(),
                               "eligible": [row(x) for x in found.eligible],
                               "ineligible": [row(x) for x in found.ineligible]}, indent=2, ensure_ascii=False))
        return
    click.echo(f"Förderprogramme (Fristen Stand {german_date(found.today)}; Beispieldaten: Bedingungen beim "
               "Fördergeber prüfen)")
    if not found.eligible:
        click.echo("Kein Programm ohne Ausschlussgrund gefunden.")
    for x in found.eligible:
        click.echo(f"{x.rank:>2}. {x.programme.name} ({x.programme.id}; {x.programme.funder})  {decimal(x.score)}")
        for r in x.rules:
            click.echo(f"      {r.line}")
        for s in [*x.partners, *x.advisors]:
            click.echo(f"      → {s.name} ({s.id}): {s.reason}")
    if found.ineligible:
        click.echo("\nNicht passend (mit Ausschlussgrund):")
    for x in found.ineligible:
        click.echo(f"{x.rank:>2}. {x.programme.name} ({x.programme.id})")
        for r in x.excluded_by:
            click.echo(f"      {r.line}")


@german.command()
@german.option("--data", "data_dir", required=True, type=german.ExistingFolder(), metavar="ORDNER",
               help="Ordner mit catalog.jsonl, queries.jsonl und qrels.tsv (siehe ../shared/eval/FORMAT.md).")
@german.option("--run-out", type=german.WritableFile(), metavar="DATEI",
               help="Die besten 10 je Anfrage als TSV schreiben: query_id, entity_id, rank, score.")
@german.option("--json", "as_json", is_flag=True, help="Bericht als JSON ausgeben.")
@german.option("--weights", "weights_file", type=german.ExistingFile(), metavar="DATEI",
               help="JSON-Datei mit Gewichten der Signale (siehe matcher.engine.matcher.Weights).")
@german.option("--as-of", type=german.Date(), default=None,
               help="Stichtag für Veranstaltungen (Standard: das früheste Veranstaltungsdatum des Datensatzes).")
@german.option("--without", "ablate", default=None, metavar="SIGNAL",
               help="Ein Signal abschalten (Ablation), z. B. --without lexical.")
@german.option("--ranker", "ranker_file", type=german.ExistingFile(), metavar="DATEI",
               help="Rangfolge-Modell als JSON (z. B. von `matcher ranker-cv --out`) statt der Handgewichte.")
@database_option
@model_option
def evaluate(data_dir: str, run_out: str | None, as_json: bool, weights_file: str | None, as_of: dt.date | None,
             ablate: str | None, ranker_file: str | None, url: str | None, model: str | None) -> None:
    """nDCG@10, MRR@10 und Recall@10 je Aufgabe und insgesamt auf einem beurteilten Datensatz."""
    from matcher.evaluation.judged import evaluate as run_evaluation
    from matcher.evaluation.judged import load_dataset, matcher_ranker, reference_date

    ds = load_dataset(data_dir)
    m = fitted_matcher(None, url, model, catalog=ds.catalog, weights_file=weights_file)
    if ablate:
        m.weights_ = m.weights_.without(ablate)
    if ranker_file:
        from matcher.engine.ranker import ranker_from_dict

        m.use_ranker(ranker_from_dict(_read_json(ranker_file, "Rangfolge-Modell")))
    ref = as_of or reference_date(ds)
    report = run_evaluation(matcher_ranker(m, as_of=ref), ds)
    if run_out:
        with open(run_out, "w", encoding="utf-8") as fh:
            for qid, ranked in report.runs.items():
                for r, (eid, score) in enumerate(ranked, start=1):
                    fh.write(f"{qid}\t{eid}\t{r}\t{score:.6f}\n")
    if as_json:
        click.echo(json.dumps({"model": m.model_id, "ranker": m.ranker_.version, **report.as_dict()}, indent=2,
                              ensure_ascii=False))
        return
    click.echo(f"Modell: {m.model_id}" + (f"; Rangfolge: {m.ranker_.version}" if ranker_file else ""))
    click.echo(f"{'Aufgabe':<12} {'Anfragen':>8} {'nDCG@10':>8} {'MRR@10':>8} {'R@10':>8} {'ohne Treffer':>13}")
    for task, row in [*report.per_task.items(), ("insgesamt", report.overall)]:
        click.echo(f"{task:<12} {row['queries']:>8} {row['ndcg@10']:>8.3f} {row['mrr@10']:>8.3f} "
                   f"{row['recall@10']:>8.3f} {row['no_fit']:>13}")
    only_no_fit = [t for t in report.no_fit if t not in report.per_task]
    for task in only_no_fit:
        click.echo(f"{task:<12} {0:>8} {'–':>8} {'–':>8} {'–':>8} {len(report.no_fit[task]):>13}")
    if report.overall["no_fit"]:
        click.echo(f"Kennzahlen über die {report.overall['queries']} Anfragen mit mindestens einem passenden "
                   f"Eintrag (Relevanzstufe ≥ 2); {report.overall['no_fit']} Anfragen ohne passenden Eintrag "
                   "laufen mit, zählen aber nicht in die Mittelwerte (Spalte „ohne Treffer“).")


def _read_json(path: str, what: str) -> dict:
    from matcher.errors import ValidationError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{what} „{path}“ kann nicht gelesen werden: {exc}", [{"file": path}]) from None


@german.command()
@german.option("--data", "data_dirs", required=True, multiple=True, type=german.ExistingFolder(), metavar="ORDNER",
               help="Beurteilter Datensatz (catalog.jsonl, queries.jsonl, qrels.tsv), wiederholbar, z. B. "
                    "--data ../shared/eval/dev --data eval/trust.")
@german.option("--out", default=None, type=german.WritableFile(), metavar="DATEI",
               help="Wohin die Kalibrierung geschrieben wird (Standard: MATCHER_CONFIDENCE_FILE bzw. die "
                    "mitgelieferte matcher/domain/data/confidence.json); Kalibrierungen anderer Modelle bleiben.")
@german.option("--plot", default=None, type=german.WritableFile(), metavar="DATEI",
               help="Zuverlässigkeitsdiagramm der kreuzvalidierten Konfidenz als PNG schreiben (braucht matplotlib).")
@german.option("--folds", default=5, show_default=True, type=german.IntRange(2, 50),
               help="Teile der Kreuzvalidierung über Anfragen.")
@german.option("-k", "k", default=10, show_default=True, type=german.IntRange(1, 100),
               help="Wie viele Vorschläge je Anfrage kalibriert werden.")
@german.option("--json", "as_json", is_flag=True, help="Bericht als JSON ausgeben.")
@german.option("--dry-run", is_flag=True, help="Nur messen, nichts schreiben.")
@german.option("--ranker", "ranker_file", type=german.ExistingFile(), metavar="DATEI",
               help="Für dieses Rangfolge-Modell (JSON, z. B. von `matcher ranker-cv --out`) kalibrieren statt für "
                    "die Handgewichte; die Kalibrierung der Handgewichte bleibt.")
@german.option("--model", "models", multiple=True, metavar="MODELL",
               help="Embedding-Modell, wiederholbar: je Modell eine Kalibrierung (Standard: MATCHER_MODEL bzw. "
                    "e5+use).")
@database_option
def calibrate(data_dirs: tuple[str, ...], out: str | None, plot: str | None, folds: int, k: int, as_json: bool,
              dry_run: bool, ranker_file: str | None, models: tuple[str, ...], url: str | None) -> None:
    """Konfidenz kalibrieren: Wahrscheinlichkeit, dass ein Vorschlag passt (Stufe ≥ 2), mit kreuzvalidierter ECE."""
    from matcher.engine.confidence import artifact_key
    from matcher.engine.ranker import ranker_from_dict
    from matcher.evaluation.confidence import JudgedResults, collect, reliability_plot
    from matcher.evaluation.confidence import calibrate as fit_calibration
    from matcher.evaluation.judged import load_dataset
    from matcher.settings import confidence_file, model_spec

    ranker = ranker_from_dict(_read_json(ranker_file, "Rangfolge-Modell")) if ranker_file else None
    datasets = [load_dataset(d) for d in data_dirs]
    names = [d.path.resolve().name for d in datasets]
    if len(set(names)) < len(names):
        raise click.BadParameter("zwei Datensätze mit demselben Ordnernamen", param_hint="„--data“")
    target = out or confidence_file()
    reports = []
    for model in models or (None,):
        parts = []
        for ds, name in zip(datasets, names):
            m = fitted_matcher(None, url, model, catalog=ds.catalog)
            if ranker is not None:
                m.use_ranker(ranker)
            parts.append(collect(m, ds, k=k, name=name))
        report = fit_calibration(m, JudgedResults.concat(parts), folds=folds)
        if not dry_run:
            report.model.save(target, artifact_key(m.model_id, m.ranker_))
        if plot and not reports:   # the first model's
            reliability_plot(report, plot, model or model_spec())
        reports.append(report)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False))
        return
    for report in reports:
        _print_calibration(report, None if dry_run else str(target))


def _print_calibration(report, target: str | None) -> None:
    from matcher.evaluation.confidence import METHODS

    click.echo(f"Modell: {report.model.model_id}")
    sets = ", ".join(f"{name} ({n} Anfragen)" for name, n in report.sets.items())
    click.echo(f"Relevant heißt: beurteilte Stufe ≥ 2. Daten: {sets}; {report.results} Vorschläge, davon "
               f"{int(report.relevant.sum())} relevant. Kreuzvalidierung: {report.folds} Teile nach Anfragen.")
    click.echo(f"{'Verfahren':<62} {'ECE':>6} {'Brier':>6} {'schwach: nichts passt':>22} {'schwach: ideal':>15}")
    for method, label in METHODS.items():
        row = report.methods[method]
        shares = [("–" if row[f"weak_top_{w}"] is None else f"{100 * row[f'weak_top_{w}']:.0f} %")
                  for w in ("nothing", "perfect")]
        click.echo(f"{label:<62} {row['ece']:>6.3f} {row['brier']:>6.3f} {shares[0]:>22} {shares[1]:>15}")
    bars = report.model.bars
    click.echo(f"Stufen: „passt gut“ ab {decimal(bars.good, 2)}, „passt teilweise“ ab {decimal(bars.partial, 2)}, "
               "darunter „schwache Übereinstimmung“.")
    for key, what in (("nothing", "Anfragen, zu denen nichts passt (keine Stufe ≥ 2)"),
                      ("perfect", "Anfragen mit idealem Treffer (Stufe 3)")):
        cv, fitted = report.weak_top[key], report.weak_top_in_sample[key]
        if not cv["queries"]:
            click.echo(f"{what}: keine im Datensatz")
            continue
        click.echo(f"{what}: oberster Vorschlag schwach in {cv['weak']} von {cv['queries']} "
                   f"({decimal(100 * cv['share'], 0)} %, kreuzvalidiert; mit dem gespeicherten Modell "
                   f"{fitted['weak']} von {fitted['queries']})")
    if target:
        click.echo(f"Gespeichert: {target}")
