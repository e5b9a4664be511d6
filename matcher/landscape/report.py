"""The landscape report as a file: HTML (with an inline SVG heatmap), Excel or JSON.

The HTML page is self-contained: styles inline, the heatmap drawn here as SVG,
no scripts, fonts or images from elsewhere — it can be mailed or archived as is.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO

import numpy as np
from jinja2 import Environment, select_autoescape
from markupsafe import Markup, escape

from matcher.domain.formatting import capitalised, decimal, german_date
from matcher.domain.labels import ORG_TYPE_HEADING_LINES_DE, ORG_TYPE_LABELS_DE
from matcher.domain.messages import quoted
from matcher.errors import ValidationError
from matcher.landscape.build import ACTOR_TYPE_HEADINGS, ACTOR_TYPES, Landscape

__all__ = ["FORMATS", "heatmap_svg", "render_html", "write_report", "xlsx_bytes"]

FORMATS = (".html", ".xlsx", ".json")
_SOURCE_LABELS = {"topic": "eigenes Thema", "actor": "Akteurstyp und Partnerländer", "sentence": "Satz im Profil"}
# an actor's type in a table cell
_TYPE_CELLS = {t: capitalised(ORG_TYPE_LABELS_DE[t]) for t in ACTOR_TYPES}
_LOW, _HIGH, _EMPTY = (0xD8, 0xEE, 0xF0), (0x0B, 0x4F, 0x5C), "#F3F4F6"


def _colour(value: int, top: int) -> str:
    if value <= 0:
        return _EMPTY
    t = 0.15 + 0.85 * (value / top if top > 1 else 1.0) ** 0.8
    return "#" + "".join(f"{round(lo + (hi - lo) * t):02X}" for lo, hi in zip(_LOW, _HIGH))


def _is_dark(colour: str) -> bool:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 140


def heatmap_svg(landscape: Landscape) -> Markup:
    """The coverage matrix as an accessible SVG heatmap: fields × actor types, counts in the cells,
    the actors' names as tooltip of each cell, a total per field at the right."""
    counts = landscape.counts()
    top = int(counts.max()) if counts.size else 0
    label_w, cell_w, cell_h, head_h, total_w = 330, 126, 30, 62, 64
    width = label_w + cell_w * len(ACTOR_TYPES) + total_w
    height = head_h + cell_h * len(landscape.fields) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" class="heatmap" aria-labelledby="hm-title"><title id="hm-title">Abdeckung der '
           f'Handlungsfelder nach Akteurstyp in {escape(landscape.area.title)}</title>']
    for c, kind in enumerate(ACTOR_TYPES):
        x = label_w + c * cell_w + cell_w / 2
        lines = ORG_TYPE_HEADING_LINES_DE[kind]
        y0 = head_h - 8 - 15 * (len(lines) - 1)
        tspans = "".join(f'<tspan x="{x}" y="{y0 + 15 * k}">{escape(line)}</tspan>' for k, line in enumerate(lines))
        out.append(f'<text class="col" text-anchor="middle">{tspans}</text>')
    out.append(f'<text class="col" text-anchor="middle" x="{label_w + cell_w * len(ACTOR_TYPES) + total_w / 2}" '
               f'y="{head_h - 8}">Summe</text>')
    for r, (field_id, label) in enumerate(landscape.fields):
        y = head_h + r * cell_h
        out.append(f'<text class="row" x="{label_w - 10}" y="{y + cell_h / 2 + 5}" '
                   f'text-anchor="end">{escape(label)}</text>')
        for c, kind in enumerate(ACTOR_TYPES):
            value = int(counts[r, c])
            colour = _colour(value, top)
            names = ", ".join(a.name for a in landscape.cell(field_id, kind)) or "niemand"
            x = label_w + c * cell_w
            out.append(f'<g><title>{escape(label)} · {escape(ACTOR_TYPE_HEADINGS[kind])}: {escape(names)}</title>'
                       f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" rx="3" '
                       f'fill="{colour}"/>'
                       f'<text x="{x + cell_w / 2}" y="{y + cell_h / 2 + 5}" text-anchor="middle" '
                       f'class="{"num light" if _is_dark(colour) else "num"}">{value if value else "–"}</text></g>')
        total = int(counts[r].sum())
        out.append(f'<text class="{"total" if total else "total zero"}" '
                   f'x="{label_w + cell_w * len(ACTOR_TYPES) + total_w / 2}" '
                   f'y="{y + cell_h / 2 + 5}" text-anchor="middle">{total}</text>')
    # legend: a few swatches from 1 to the maximum
    y = head_h + cell_h * len(landscape.fields) + 14
    out.append(f'<text class="legend" x="{label_w - 10}" y="{y + 12}" text-anchor="end">Akteure je Zelle:</text>')
    steps = sorted({0, *np.linspace(1, max(top, 1), num=min(max(top, 1), 5)).round().astype(int).tolist()})
    for k, v in enumerate(steps):
        colour = _colour(v, top)
        x = label_w + k * 56
        out.append(f'<rect x="{x}" y="{y}" width="22" height="16" rx="3" fill="{colour}" stroke="#D1D5DB"/>'
                   f'<text class="legend" x="{x + 27}" y="{y + 12}">{v}</text>')
    out.append("</svg>")
    return Markup("".join(out))


_TEMPLATE = """<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Landschaftsbericht {{ ls.area.title }}</title>
<style>
  :root { --ink:#1F2933; --muted:#52606D; --line:#E4E7EB; --accent:#0B4F5C; --soft:#F5F7FA; }
  * { box-sizing: border-box; }
  body { margin:0; font-family: "Segoe UI", "Noto Sans", "DejaVu Sans", Arial, sans-serif; color:var(--ink);
         line-height:1.45; background:#fff; }
  main { max-width: 1040px; margin: 0 auto; padding: 28px 32px 48px; }
  header { border-bottom: 3px solid var(--accent); padding-bottom: 14px; margin-bottom: 22px; }
  h1 { font-size: 1.7rem; margin: 0 0 4px; }
  h2 { font-size: 1.25rem; margin: 34px 0 8px; color: var(--accent); }
  .sub { color: var(--muted); margin: 0; }
  .facts { display:flex; gap: 14px; flex-wrap: wrap; margin-top: 14px; }
  .fact { background: var(--soft); border-radius: 8px; padding: 8px 14px; }
  .fact b { font-size: 1.3rem; display:block; }
  svg.heatmap { max-width: 100%; height: auto; font-family: inherit; }
  svg .row { font-size: 13px; fill: var(--ink); }
  svg .col { font-size: 12px; font-weight: 600; fill: var(--ink); }
  svg .num { font-size: 14px; font-weight: 600; fill: var(--ink); }
  svg .num.light { fill: #fff; }
  svg .total { font-size: 13px; font-weight: 600; fill: var(--muted); }
  svg .total.zero { fill: #B42318; }
  svg .legend { font-size: 12px; fill: var(--muted); }
  .gaps { background:#FEF3F2; border-left: 4px solid #B42318; padding: 8px 12px; border-radius: 4px; }
  ol.links { padding-left: 1.4rem; }
  ol.links > li { margin: 0 0 14px; padding: 10px 14px; background: var(--soft); border-radius: 8px; }
  .pair { font-weight: 600; }
  .type { color: var(--muted); font-weight: normal; font-size: .9rem; }
  .score { float: right; font-size: .85rem; color: var(--accent); background:#fff; border:1px solid var(--line);
           border-radius: 12px; padding: 1px 9px; }
  ul.reasons { margin: 6px 0 0; padding-left: 1.1rem; }
  table { border-collapse: collapse; width: 100%; font-size: .9rem; }
  th, td { text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); padding: 6px 8px; }
  th { background: var(--soft); }
  .evidence { color: var(--muted); }
  .note { color: var(--muted); font-size: .9rem; }
  footer { margin-top: 40px; color: var(--muted); font-size: .8rem; border-top: 1px solid var(--line);
           padding-top: 10px; }
</style>
</head>
<body>
<main>
<header>
  <h1>Wer arbeitet woran – und wer kennt sich noch nicht?</h1>
  <p class="sub">Landschaftsbericht für <strong>{{ ls.area.title }}</strong> · Stand {{ ls.generated|german_date }}</p>
  <div class="facts">
    <div class="fact"><b>{{ ls.actors|length }}</b>Akteure</div>
    {% for kind in types %}<div class="fact"><b>{{ type_counts[kind] }}</b>{{ plurals[kind] }}</div>{% endfor %}
    <div class="fact"><b>{{ ls.links|length }}</b>mögliche neue Verbindungen</div>
  </div>
</header>

<section id="abdeckung">
  <h2>Abdeckung der Handlungsfelder</h2>
  <p>Wie viele Akteure jedes Typs in einem Handlungsfeld arbeiten. Je dunkler, desto mehr; die Namen erscheinen beim
     Zeigen auf eine Zelle und in der Tabelle „Wer arbeitet in welchem Handlungsfeld?“.</p>
  {{ svg }}
  {% if ls.uncovered_fields %}
  <p class="gaps"><strong>Von niemandem bearbeitet:</strong> {{ ls.uncovered_fields|join(", ") }}.</p>
  {% endif %}
  {% if ls.unassigned %}
  <p class="note">Ohne erkennbares Handlungsfeld: {{ ls.unassigned|map(attribute="name")|join(", ") }}.</p>
  {% endif %}
</section>

<section id="verbindungen">
  <h2>Fehlende Verbindungen</h2>
  <p>Paare in der Nähe, die sich ergänzen, aber weder eine eingetragene Partnerschaft noch einen vermerkten
     Kontakt haben – Vorschläge für das nächste Netzwerktreffen, die besten zuerst.</p>
  {% if ls.links %}
  <ol class="links">
  {% for link in ls.links %}
    <li>
      <span class="score" title="Passung (Summe der gewichteten Gründe)">Passung {{ link.score|decimal(1) }}</span>
      <span class="pair">{{ link.a.name }}</span>
      <span class="type">({{ singular[link.a.actor_type] }}, {{ link.a.city }})</span>
      ↔ <span class="pair">{{ link.b.name }}</span>
      <span class="type">({{ singular[link.b.actor_type] }}, {{ link.b.city }})</span>
      <ul class="reasons">{% for reason in link.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>
    </li>
  {% endfor %}
  </ol>
  {% else %}
  <p>Keine: alle naheliegenden Paare kennen sich schon, oder es gibt zu wenige Akteure verschiedener Typen.</p>
  {% endif %}
  <p class="note">Nicht vorgeschlagen: {{ ls.excluded.partners }} Paar(e) mit eingetragener Partnerschaft,
     {{ ls.excluded.contacted }} bereits kontaktiert, {{ ls.excluded.named_in_profile }} nennen einander im Profil.</p>
</section>

<section id="foerderfristen">
  <h2>Förderfristen der nächsten 6 Monate</h2>
  {% if ls.funding %}
  <table>
    <thead><tr><th>Frist</th><th>Programm</th><th>Fördergeber</th><th>Antragsberechtigt</th></tr></thead>
    <tbody>
    {% for f in ls.funding %}
      <tr><td>{{ f.date|german_date }}</td>
          <td>{{ f.name }}{% if f.example %} <span class="note">(Beispieldaten)</span>{% endif %}</td>
          <td>{{ f.funder }}</td><td>{{ f.applicants }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  <p class="note">Programme mit laufender Antragstellung haben keine Frist und fehlen hier. Beispieldaten: Bedingungen
     und Fristen beim Fördergeber prüfen.</p>
  {% else %}
  <p>Keine Förderfristen in den nächsten sechs Monaten im Katalog.</p>
  {% endif %}
</section>

<section id="namen">
  <h2>Wer arbeitet in welchem Handlungsfeld?</h2>
  <table>
    <thead><tr><th>Handlungsfeld</th>{% for kind in types %}<th>{{ plurals[kind] }}</th>{% endfor %}</tr></thead>
    <tbody>
    {% for fid, label in ls.fields %}
      <tr><td>{{ label }}</td>{% for kind in types %}<td>
        {{- ls.cell(fid, kind)|map(attribute="name")|join(", ") or "–" }}</td>{% endfor %}</tr>
    {% endfor %}
    </tbody>
  </table>
</section>

<section id="akteure">
  <h2>Akteure und Belege</h2>
  <table>
    <thead><tr><th>Akteur</th><th>Typ</th><th>Handlungsfelder und Beleg</th></tr></thead>
    <tbody>
    {% for a in ls.actors %}
      <tr><td>{{ a.name }}<br><span class="note">{{ a.city }}</span></td><td>{{ singular[a.actor_type] }}</td>
          <td>{% for f in a.fields %}<div><strong>{{ f.label }}</strong>
            <span class="evidence">– {{ sources[f.source] }}: {{ f.reason }}</span></div>
          {%- else %}–{% endfor %}</td></tr>
    {% endfor %}
    </tbody>
  </table>
</section>

<section id="methode">
  <h2>So entsteht der Bericht</h2>
  <p class="note">Ein Akteur zählt für ein Handlungsfeld, wenn eines seiner eigenen Themen es nennt, wenn sein
  Akteurstyp zusammen mit angegebenen Partnerländern das Feld belegt (eine Migrantenorganisation mit Partnerländern
  arbeitet in „Migration und Entwicklung“) oder wenn ein Satz seines Profils der Beschreibung des Feldes sehr nahe
  kommt (Sprachmodell, Schwellenwert an beurteilten Beispielen kalibriert). Angezeigt
  wird jeweils der Satz, der das Feld am besten belegt. Verbindungen werden nur zwischen verschiedenen Akteurstypen
  vorgeschlagen, höchstens {{ ls.link_weights.max_pair_km|int }} km voneinander entfernt; Gewichte: gemeinsame
  Handlungsfelder, gemeinsamer Länderbezug, ausdrücklicher Wunsch nach Zusammenarbeit, inhaltliche Nähe der Profile und
  Entfernung. Die Einordnung ist ein Vorschlag und ersetzt nicht das Gespräch vor Ort.</p>
</section>
<footer>Erstellt mit matcher · Modell {{ ls.model_id }} · Daten: Katalog der Akteure; nur für die interne
Planung.</footer>
</main>
</body>
</html>
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True,
                   lstrip_blocks=True)
_ENV.filters.update(decimal=decimal, german_date=german_date)


def render_html(landscape: Landscape) -> str:
    """The report as one self-contained HTML page (German)."""
    type_counts = {t: sum(a.actor_type == t for a in landscape.actors) for t in ACTOR_TYPES}
    return _ENV.from_string(_TEMPLATE).render(
        ls=landscape, svg=heatmap_svg(landscape), types=ACTOR_TYPES, plurals=ACTOR_TYPE_HEADINGS,
        singular=_TYPE_CELLS, sources=_SOURCE_LABELS, type_counts=type_counts)


def _write_xlsx(landscape: Landscape, path: Path | IO[bytes]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    from matcher.domain.spreadsheets import append_text_row  # names as plain text: no formulas, nothing Excel refuses

    counts = landscape.counts()
    top = int(counts.max()) if counts.size else 0
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    wb = Workbook()
    ws = wb.active
    ws.title = "Abdeckung"
    append_text_row(ws, [f"Landschaftsbericht {landscape.area.title}", f"Stand {german_date(landscape.generated)}"])
    append_text_row(ws, ["Handlungsfeld", *[ACTOR_TYPE_HEADINGS[t] for t in ACTOR_TYPES], "Summe"])
    for r, (_, label) in enumerate(landscape.fields):
        append_text_row(ws, [label, *[int(v) for v in counts[r]], int(counts[r].sum())])
        for c in range(len(ACTOR_TYPES)):
            colour = _colour(int(counts[r, c]), top)
            cell = ws.cell(row=r + 3, column=c + 2)
            cell.fill = PatternFill("solid", fgColor=colour[1:])
            cell.font = Font(bold=True, color="FFFFFF" if _is_dark(colour) else "1F2933")
    names = wb.create_sheet("Namen")
    append_text_row(names, ["Handlungsfeld", *[ACTOR_TYPE_HEADINGS[t] for t in ACTOR_TYPES]])
    for fid, label in landscape.fields:
        append_text_row(names, [label, *["\n".join(a.name for a in landscape.cell(fid, t)) for t in ACTOR_TYPES]])
    fields = wb.create_sheet("Zuordnungen")
    append_text_row(fields, ["ID", "Akteur", "Typ", "Ort", "Handlungsfeld", "Beleg", "Begründung", "Ähnlichkeit"])
    for a in landscape.actors:
        for f in a.fields:
            append_text_row(fields, [a.id, a.name, _TYPE_CELLS[a.actor_type], a.city, f.label,
                                     _SOURCE_LABELS[f.source], f.reason, round(f.score, 3)])
    links = wb.create_sheet("Fehlende Verbindungen")
    append_text_row(links, ["Rang", "Akteur A", "Typ A", "Akteur B", "Typ B", "Entfernung (km)", "Passung", "Gründe"])
    for rank, link in enumerate(landscape.links, start=1):
        append_text_row(links, [rank, link.a.name, _TYPE_CELLS[link.a.actor_type], link.b.name,
                                _TYPE_CELLS[link.b.actor_type],
                                None if link.distance_km is None else round(link.distance_km, 1),
                                round(link.score, 2), "\n".join(link.reasons)])
    funding = wb.create_sheet("Förderfristen")
    append_text_row(funding, ["Frist", "Programm", "Fördergeber", "Antragsberechtigt", "Beispieldaten"])
    for f in landscape.funding:
        append_text_row(funding, [german_date(f.date), f.name, f.funder, f.applicants, "ja" if f.example else "nein"])
    for sheet, widths in ((ws, [44, 22, 22, 22, 22, 10]), (names, [44, 34, 34, 34, 34]),
                          (fields, [10, 40, 26, 18, 36, 26, 80, 12]), (links, [6, 38, 24, 38, 24, 14, 10, 90]),
                          (funding, [12, 60, 50, 50, 14])):
        header_row = 2 if sheet is ws else 1
        for cell in sheet[header_row]:
            cell.font = bold
        for k, w in enumerate(widths):
            sheet.column_dimensions[chr(ord("A") + k)].width = w
        for row in sheet.iter_rows(min_row=header_row + 1):
            for cell in row:
                cell.alignment = wrap
    ws["A1"].font = Font(bold=True, size=14)
    wb.save(path)


def xlsx_bytes(landscape: Landscape) -> bytes:
    """The Excel report as bytes (for a download)."""
    buffer = io.BytesIO()
    _write_xlsx(landscape, buffer)
    return buffer.getvalue()


def write_report(landscape: Landscape, path: str | Path) -> Path:
    """Write the report; the format follows the suffix (``.html``, ``.xlsx`` or ``.json``).

    Raises:
        ValidationError: any other suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValidationError(f"Unbekanntes Format {quoted(suffix) if suffix else '(ohne Endung)'}: "
                              "bitte .html, .xlsx oder .json",
                              [{"field": "out", "value": str(path)}])
    if suffix == ".html":
        path.write_text(render_html(landscape), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(landscape.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    else:
        _write_xlsx(landscape, path)
    return path
