"""The landscape report: fields of action, coverage, missing links, the report files.

Quality of the field assignment is measured on ``tests/data/fields_judged.csv``
(80 fixture organisations, each label defended in its note) with 5-fold
cross-validation; run with ``-s`` to see the figures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from webpage import ARTIFACTS, CHROMIUM_ARGS

from conftest import FIXTURES, ROOT
from matcher.engine.fields import FieldClassifier, Thresholds, load_fields
from matcher.errors import CatalogError, NotFittedError, ValidationError
from matcher.landscape.build import build_landscape
from matcher.landscape.calibration import (
    best_threshold,
    calibrate,
    cross_validate,
    load_judged_fields,
    precision_recall,
)
from matcher.landscape.links import LINK_TYPES, LinkWeights, recorded_pairs
from matcher.landscape.report import render_html, write_report

CATALOG = ["--catalog", str(FIXTURES / "catalog.jsonl")]  # the command line in file mode

JUDGED = ROOT / "tests" / "data" / "fields_judged.csv"


@pytest.fixture(scope="module")
def fields():
    return load_fields()


@pytest.fixture(scope="module")
def classifier(matcher, fields):
    """Field assignment with the thresholds calibrated for the default model."""
    return FieldClassifier(fields).fit(matcher)


@pytest.fixture(scope="module")
def cologne(matcher, classifier):
    return build_landscape(matcher, classifier, "Köln", radius_km=30)


# ------------------------------------------------------------ field assignment
def test_judged_file_covers_at_least_30_organisations_with_defended_labels(catalog, fields):
    judged = load_judged_fields(JUDGED, fields)  # raises on a missing note or an unknown field
    kinds = {e.id: e.kind for e in catalog}
    assert len(judged) >= 30
    assert all(kinds.get(i) == "organisation" for i in judged)
    assert sum(len(v) for v in judged.values()) >= 100
    assert {"org-143", "org-171", "org-172", "org-173"} <= {i for i, v in judged.items() if not v}  # the traps


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@pytest.mark.numerics
def test_field_assignment_precision_and_recall_cross_validated(matcher, fields):
    """5-fold cross-validation over actors: each actor is assigned with a threshold calibrated without it;
    and the thresholds shipped in the fields file still give (nearly) the best F1 on this machine."""
    judged = load_judged_fields(JUDGED, fields)
    result = calibrate(matcher, judged, fields, folds=5, seed=0)
    print(f"\nField assignment on {result.actors} judged organisations ({result.labels} labels), "
          f"model {result.model_id}")
    for name, row in result.cv.items():
        print(f"  {name:<15} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
              f"(TP {row['tp']}, FP {row['fp']}, FN {row['fn']})")
    cv = result.cv["assignment"]
    assert cv["precision"] >= 0.80 and cv["recall"] >= 0.72
    # pure zero-shot (sentences alone) stays well above chance: 206 labels among 80 × 14 decisions
    assert result.cv["sentences_only"]["precision"] >= 0.5 and result.cv["sentences_only"]["recall"] >= 0.5
    # The thresholds shipped in the fields file were calibrated on the judged file, on some machine.
    # What such a value promises is the F1 of the best single threshold for this model, not a place
    # among the gaps between observed scores: F1 is flat near its maximum (without topics it stays
    # within 0.005 of it from 0.092 to 0.099), so the arg max jumps to a far gap when the vectors move in
    # their last bits on another CPU (OpenBLAS kernels, the engines' SIMD paths; 0.0925 fresh on an
    # AMD EPYC against 0.0961 shipped from an Intel Xeon), while the F1 it reaches barely moves. So
    # the shipped thresholds, applied to this machine's scores, must give an F1 within two decisions
    # of the freshly calibrated optimum. One (actor, field) decision moves F1 = 2TP/(2TP+FP+FN) by
    # at most 2/(2TP+FP+FN), ~0.005 at these counts (the worst seen is one decision, 0.0033): two
    # allow for the few pairs whose scores moved across a gap; a threshold from another model or an
    # edited judged file or fields file is off by far more (then recalibrate).
    stored = fields.thresholds_for(matcher.model_id)
    hint = "recalibrate: matcher landscape-calibrate --judged tests/data/fields_judged.csv --write"
    classifier = FieldClassifier(fields, thresholds=Thresholds(0.0, 0.0)).fit(matcher)
    ids = list(judged)
    scores = classifier.score_matrix(ids)
    gold = np.array([[f in judged[i] for f in fields.ids] for i in ids], dtype=bool)
    # the bars of the scenario: with topics those of the assignment above; without topics the bar
    # of sentences alone (actor types only add evidence to them)
    for name, evidence, bars in (("with_topics", classifier.explicit_matrix(ids), (0.80, 0.72)),
                                 ("without_topics", classifier.explicit_matrix(ids, topics=False), (0.5, 0.5))):
        shipped, fresh = getattr(stored, name), getattr(result.thresholds, name)
        p, r, *_ = precision_recall(evidence | (scores >= shipped), gold)
        p_best, r_best, tp, fp, fn = precision_recall(evidence | (scores >= fresh), gold)
        one_decision = 2 / (2 * tp + fp + fn)
        print(f"  {name:<15} shipped {shipped:.4f}: F1 {_f1(p, r):.4f} (P {p:.3f}, R {r:.3f}); "
              f"fresh {fresh:.4f}: F1 {_f1(p_best, r_best):.4f} (P {p_best:.3f}, R {r_best:.3f})")
        assert _f1(p, r) >= _f1(p_best, r_best) - 2 * one_decision, f"{name}: {hint}"
        assert p >= bars[0] and r >= bars[1], f"{name}: precision {p:.3f}, recall {r:.3f}; {hint}"


@pytest.mark.numerics
def test_traps_are_in_no_field(classifier):
    # Fair Play, Datenmigration, Klimaanlagen, Eine Welt Reisen
    for trap in ("org-143", "org-171", "org-172", "org-173"):
        assert classifier.assignments(trap) == [], trap


def test_every_assignment_quotes_a_sentence_of_the_actor(matcher, classifier):
    for entity_id, assignments in classifier.assignments_.items():
        entity = matcher.entity(entity_id)
        own = " ".join([entity.description, *entity.evidence, ", ".join(entity.topics)])
        for a in assignments:
            assert a.sentence and a.sentence in own
            assert a.reason.endswith("“") and a.sentence[:20] in a.reason
            if a.source == "topic":
                assert a.topic in entity.topics


def test_weltladen_is_fair_trade_by_its_own_topic(classifier):
    fair = next(a for a in classifier.assignments("org-136") if a.field_id == "fairer-handel")
    assert fair.source == "topic" and fair.reason.startswith("Eigenes Thema „Weltladen“")


def test_classifier_before_fit_and_unknown_model_are_errors(fields, matcher):
    with pytest.raises(NotFittedError):
        FieldClassifier(fields).assignments("org-101")
    with pytest.raises(ValidationError, match="kein Schwellenwert"):
        fields.thresholds_for("some-other-model")


def test_bad_fields_file_is_rejected_with_every_problem(tmp_path):
    path = tmp_path / "fields.json"
    path.write_text(json.dumps({"fields": [{"id": "a", "label": "A", "description": "zu kurz", "colour": "red"}]}),
                    encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_fields(path)
    assert {d["field"] for d in err.value.details} >= {"fields.0.description", "fields.0.colour"}


@pytest.mark.numerics
def test_threshold_calibration_against_brute_force_on_random_scores():
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(40, 6))
    gold = scores + rng.normal(scale=0.7, size=scores.shape) > 0.8
    explicit = rng.random(scores.shape) < 0.1
    t = best_threshold(scores, explicit, gold)

    def f1(threshold):
        p, r, *_ = precision_recall(explicit | (scores >= threshold), gold)
        return 2 * p * r / (p + r) if p + r else 0.0

    assert f1(t) == pytest.approx(max(f1(x) for x in np.unique(scores)))
    separable = np.tile(np.linspace(-1, 1, 8), (10, 1))
    result = cross_validate(separable, np.zeros_like(separable, bool), separable > 0, folds=5)
    assert (result["precision"], result["recall"]) == (1.0, 1.0)


# ------------------------------------------------------------ coverage and links
def test_coverage_counts_are_the_named_actors(cologne):
    counts = cologne.counts()
    for r, (fid, _) in enumerate(cologne.fields):
        for c, kind in enumerate(("migrant_organisation", "civil_society", "municipal_office", "institution")):
            assert counts[r, c] == len(cologne.cell(fid, kind))
    data = json.loads(json.dumps(cologne.as_dict()))  # JSON-ready as is
    assert data["area"]["title"] == "Köln und 30 km Umkreis"
    assert {a["id"] for a in data["actors"]} >= {"org-105", "org-115", "org-147", "org-168", "mun-102", "org-164"}
    assert "org-141" not in {a["id"] for a in data["actors"]}  # Witten is 60 km away
    row = next(c for c in data["coverage"] if c["field"] == "kommunale-partnerschaften")
    municipal_offices = [a["name"] for a in row["by_type"]["municipal_office"]["actors"]]
    assert "Büro für Städtepartnerschaften der Stadt Köln" in municipal_offices


def test_missing_links_join_nearby_actors_of_different_types_with_reasons(cologne):
    links = cologne.links
    assert 5 <= len(links) <= 20
    assert [link.score for link in links] == sorted((link.score for link in links), reverse=True)
    for link in links:
        assert link.a.actor_type != link.b.actor_type
        assert {link.a.actor_type, link.b.actor_type} <= set(LINK_TYPES)
        assert link.distance_km is not None and link.distance_km <= LinkWeights().max_pair_km
        assert link.reasons and all(isinstance(r, str) and r for r in link.reasons)
        assert link.shared_fields or link.shared_countries or "sucht die Zusammenarbeit" in " ".join(link.reasons)
    assert any("ergänzen sich" in r for r in links[0].reasons)


def test_recorded_partnerships_are_never_missing_links(matcher, classifier, catalog):
    everywhere = build_landscape(matcher, classifier, "NRW", limit=None)
    recorded = {p for p, why in recorded_pairs(catalog).items() if why == "partners"}
    assert len(recorded) == 19
    suggested = {frozenset((link.a.id, link.b.id)) for link in everywhere.links}
    assert not suggested & recorded
    assert everywhere.excluded["partners"] > 0


def test_without_the_record_the_partners_would_have_been_suggested(default_embedder, catalog):
    """Nur (org-112) and Bonn's Amt für Internationales (org-164) are recorded partners; drop the
    record and the pair comes back as a missing link — the exclusion is what keeps it out."""
    from matcher.engine.matcher import Matcher

    pair = {"org-112", "org-164"}
    edited = [e.model_copy(update={"partners": [p for p in e.partners if {e.id, p} != pair]}) for e in catalog]
    m = Matcher(default_embedder).fit(edited)
    ls = build_landscape(m, FieldClassifier().fit(m), "Bonn", limit=None)
    assert pair in [{link.a.id, link.b.id} for link in ls.links]


def test_contacted_pairs_are_never_missing_links(matcher, classifier, cologne):
    top = [(link.a.id, link.b.id) for link in cologne.links[:3]]
    contacted = {(b, a) for a, b in top}  # order does not matter
    again = build_landscape(matcher, classifier, "Köln", radius_km=30, contacted=contacted, limit=None)
    suggested = {frozenset((link.a.id, link.b.id)) for link in again.links}
    assert not suggested & {frozenset(p) for p in top}
    assert again.excluded["contacted"] == 3


def test_actors_that_name_each_other_already_know_each_other(matcher, classifier):
    # the Siegen climate office names the Klimawerkstatt ("gemeinsam mit der Klimawerkstatt")
    siegen = build_landscape(matcher, classifier, "Kreis Siegen-Wittgenstein", limit=None)
    assert {"org-138", "org-170"} not in [{link.a.id, link.b.id} for link in siegen.links]
    assert siegen.excluded["named_in_profile"] >= 1


def test_unknown_place_and_bad_radius_are_errors(matcher, classifier):
    with pytest.raises(ValidationError, match="Unbekannter Ort"):
        build_landscape(matcher, classifier, "Atlantis")
    with pytest.raises(ValidationError):
        build_landscape(matcher, classifier, "Köln", radius_km=-5)


# ------------------------------------------------------------ files and command line
@pytest.mark.slow
def test_command_writes_html_xlsx_and_json(tmp_path, monkeypatch):
    from openpyxl import load_workbook

    from matcher.cli.landscape import landscape

    monkeypatch.chdir(tmp_path)  # nothing may depend on the folder it runs in
    runner = CliRunner()
    for suffix in ("html", "xlsx", "json"):
        out = tmp_path / f"report.{suffix}"
        res = runner.invoke(landscape, [*CATALOG, "--city", "Köln", "--radius-km", "30", "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert "Köln und 30 km Umkreis" in res.output and out.stat().st_size > 1000
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["missing_links"]
    wb = load_workbook(tmp_path / "report.xlsx")
    assert wb.sheetnames == ["Abdeckung", "Namen", "Zuordnungen", "Fehlende Verbindungen", "Förderfristen"]
    assert wb["Abdeckung"]["A3"].value == "Fairer Handel und faire Beschaffung"
    bad = runner.invoke(landscape, [*CATALOG, "--city", "Köln", "--out", str(tmp_path / "report.pdf")])
    assert bad.exit_code == 2 and "--out" in bad.output


def test_report_refuses_unknown_format(cologne, tmp_path):
    with pytest.raises(ValidationError, match="Unbekanntes Format"):
        write_report(cologne, tmp_path / "report.docx")


@pytest.mark.browser
@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(cologne, tmp_path):
    """Open the report in Debian's chromium, check it needs nothing from outside, save a screenshot."""
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "landschaft.html"
    page_file.write_text(render_html(cologne), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 2000}, locale="de-DE")
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                       else (outside.append(route.request.url), route.abort()))
            page.goto(page_file.as_uri())
            assert page.locator("h1").inner_text() == "Wer arbeitet woran – und wer kennt sich noch nicht?"
            heatmap = page.locator("svg.heatmap")
            assert heatmap.is_visible()
            box = heatmap.bounding_box()
            assert box["width"] > 600 and box["height"] > 400
            assert heatmap.locator("rect").count() >= len(cologne.fields) * 4
            assert page.locator("ol.links > li").count() == len(cologne.links)
            assert "Humanitäre Hilfe und Wiederaufbau" in page.locator(".gaps").inner_text()
            page.screenshot(path=str(ARTIFACTS / "landscape.png"))
        finally:
            browser.close()
    assert outside == []
    assert (ARTIFACTS / "landscape.png").stat().st_size > 50_000
