"""German messages for validation errors, written for the person who has to fix the input.

pydantic's own messages are English and name types ("Input should be a valid
integer"); the service and bulk imports answer people who fill in forms and
spreadsheets, so every error type a schema can raise gets a German sentence
that says what to change.

Values and names inside a German sentence stand in German quotation marks
(„Dortmund“, „accepted“): :func:`quoted` and :func:`alternatives` write them,
so no message shows Python's ``'…'`` reprs. :func:`json_error_reason` does the
same for the JSON decoder's English reasons, :func:`did_you_mean` closes a
message with suggestions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from matcher.domain.labels import KIND_LABELS  # defined with the other labels; still importable here

__all__ = [
    "FieldRuleError", "validation_details", "german_message", "field_path", "quoted", "alternatives",
           "did_you_mean", "listed",
           "json_error_reason", "KIND_LABELS", "GENERIC_MESSAGE"]

_KINDS = ("advisor", "organisation", "event", "municipality", "programme")
GENERIC_MESSAGE = "ungültiger Wert"

_SIMPLE = {
    "missing": "Pflichtfeld fehlt",
    "string_type": "Text erwartet",
    "string_unicode": "Text erwartet (gültiges UTF-8)",
    "int_type": "ganze Zahl erwartet",
    "int_parsing": "ganze Zahl erwartet",
    "int_from_float": "ganze Zahl ohne Nachkommastellen erwartet",
    "int_parsing_size": "Zahl zu groß",
    "float_type": "Zahl erwartet",
    "float_parsing": "Zahl erwartet (Dezimalpunkt, z. B. 51.43)",
    "finite_number": "endliche Zahl erwartet (nicht NaN oder Infinity)",
    "bool_type": "true oder false erwartet",
    "bool_parsing": "true oder false erwartet",
    "list_type": "Liste erwartet, z. B. [\"de\", \"en\"]",
    "dict_type": "Objekt erwartet, z. B. {\"email\": \"…\"}",
    "model_type": "Objekt erwartet",
    "model_attributes_type": "Objekt erwartet",
    "date_type": "Datum im Format JJJJ-MM-TT erwartet",
    "date_parsing": "Datum im Format JJJJ-MM-TT erwartet, z. B. 2025-03-14",
    "date_from_datetime_parsing": "Datum im Format JJJJ-MM-TT erwartet, z. B. 2025-03-14",
    "date_from_datetime_inexact": "nur ein Datum ohne Uhrzeit angeben (JJJJ-MM-TT)",
    "json_invalid": "ungültiges JSON",
    "json_type": "JSON erwartet",
    "none_required": "Feld muss leer sein",
    "union_tag_not_found": "Feld „kind“ fehlt: „advisor“, „organisation“, „event“ oder „municipality“ angeben",
}


def quoted(value: Any) -> str:
    """``value`` in German quotation marks: „Dortmund“."""
    return f"„{value}“"


def alternatives(values: Iterable[Any], conjunction: str = "oder") -> str:
    """Values for an "erlaubt: …" or "Meinten Sie …?": „a“, „b“ oder „c“."""
    items = [quoted(v) for v in values]
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def listed(items: Sequence[str], limit: int = 8) -> str:
    """At most ``limit`` items, comma-separated, then how many more: ``a, b, c und 4 weitere``."""
    more = f" und {len(items) - limit} weitere" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def did_you_mean(names: Iterable[str]) -> str:
    """``Meinten Sie „Dortmund“?`` — or ``""`` when there is nothing to suggest."""
    names = list(names)
    return f"Meinten Sie {alternatives(names)}?" if names else ""


def _expected_values(expected: Any) -> str:
    """pydantic's ``'a', 'b' or 'c'`` (a literal's allowed values; a union's tags come without the "or")
    as „a“, „b“ oder „c“."""
    parts = re.split(r", | or ", str(expected))
    return alternatives(p[1:-1] if len(p) >= 2 and p[0] == p[-1] and p[0] in "'\"" else p for p in parts)


# the reasons Python's JSON decoder gives (json.decoder and _json), as German sentences; first match wins
_JSON_REASONS = (
    ("Expecting property name enclosed in double quotes",
     "Feldname in doppelten Anführungszeichen erwartet (oder ein Komma zu viel)"),
    ("Expecting ':' delimiter", "Doppelpunkt „:“ nach dem Feldnamen erwartet"),
    ("Expecting ',' delimiter", "Komma „,“ oder schließende Klammer erwartet"),
    ("Expecting value",
     "Wert erwartet (Text in doppelten Anführungszeichen, Zahl, true, false, null, [ … ] oder { … })"),
    ("Unterminated string", "Text ohne schließendes Anführungszeichen"),
    ("Invalid control character", "Steuerzeichen (z. B. Zeilenumbruch oder Tabulator) in einem Text; bitte als \\n "
                                  "bzw. \\t schreiben"),
    ("Invalid \\uXXXX escape", "ungültige Escape-Sequenz: nach \\u vier Hexadezimalziffern erwartet"),
    ("Invalid \\escape", "ungültige Escape-Sequenz mit \\ (erlaubt: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"),
    ("Extra data", "nach dem Ende des JSON-Werts folgt noch Text"),
    ("Illegal trailing comma", "Komma zu viel vor der schließenden Klammer"),
)


def json_error_reason(exc: json.JSONDecodeError | ValueError) -> str:
    """Why JSON could not be read, in German (without line and column: the caller adds them where it has them).

    ``json.JSONDecodeError.msg`` is English ("Expecting value"); a ``ValueError`` raised
    by a ``parse_constant`` hook of ours (``NaN``) is German already and passes through.
    """
    msg = getattr(exc, "msg", None)
    if msg is None:
        return str(exc)
    for english, german in _JSON_REASONS:
        if msg.startswith(english):
            return german
    return "nicht lesbar"


def field_path(loc: tuple[Any, ...] | list[Any], root: str = "(Eintrag)") -> str:
    """Dotted field path of a pydantic error location, without union branch names (``root``: the whole record)."""
    parts = [str(p) for p in loc if p not in _KINDS and not str(p).startswith("function-")]
    return ".".join(parts) or root


def german_message(err: dict[str, Any]) -> str:
    """One pydantic error (from ``exc.errors()``) as a German sentence."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == "extra_forbidden":
        name = str(err.get("loc", ["?"])[-1])
        return f"unbekanntes Feld „{name}“ – bitte entfernen oder den Namen prüfen (siehe /openapi.json)"
    if kind == "string_too_long":
        return f"zu lang: höchstens {ctx.get('max_length')} Zeichen"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "darf nicht leer sein" if n == 1 else f"zu kurz: mindestens {n} Zeichen"
    if kind == "too_long":
        return f"zu viele Einträge: höchstens {ctx.get('max_length')}"
    if kind == "too_short":
        return f"zu wenige Einträge: mindestens {ctx.get('min_length')}"
    if kind == "greater_than_equal":
        return f"muss mindestens {ctx.get('ge')} sein"
    if kind == "less_than_equal":
        return f"darf höchstens {ctx.get('le')} sein"
    if kind == "greater_than":
        return f"muss größer als {ctx.get('gt')} sein"
    if kind == "less_than":
        return f"muss kleiner als {ctx.get('lt')} sein"
    if kind == "string_pattern_mismatch":
        return _pattern_message(err)
    if kind in ("literal_error", "enum"):
        return f"ungültiger Wert; erlaubt: {_expected_values(ctx.get('expected', ''))}"
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", ""))
        # a tag that is not text (a list, an object) arrives as its repr: not worth quoting back
        what = f"unbekannte Art {quoted(tag)}" if re.fullmatch(r"[\w .:-]*", tag) else "Art als Text erwartet"
        return f"{what}; erlaubt: {_expected_values(ctx.get('expected_tags', ''))}"
    if kind in ("value_error", "assertion_error"):
        # our validators' own (German) sentences
        msg = str(ctx.get("error") or err.get("msg", ""))
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    # never pydantic's English text: a type no schema of ours raises so far (a test checks they all are above)
    return GENERIC_MESSAGE


_ID_FIELDS = ("id", "from", "municipality", "organisation", "event", "entity_id", "partners", "entity_ids", "conflicts",
              "entity", "[key]")


def _pattern_message(err: dict[str, Any]) -> str:
    names = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    field = names[-1] if names else ""
    if field in _ID_FIELDS:
        return "ungültige Kennung: nur Buchstaben, Ziffern und _ . : - (höchstens 64 Zeichen), z. B. „adv-014“"
    if field == "languages":
        return "Sprachcode nach ISO 639-1 erwartet, z. B. „de“, „tr“, „ar“"
    if field == "partner_countries":
        return "Ländercode nach ISO 3166-1 erwartet, z. B. „GH“, „TR“"
    if field == "email":
        return "ungültige E-Mail-Adresse, z. B. name@beispiel.de"
    if field == "job":
        return "ungültige Auftragskennung: „job_“ und 32 Hexadezimalziffern, wie in der Antwort auf POST /v1/jobs/…"
    return f"Format ungültig (erwartet: Muster {quoted((err.get('ctx') or {}).get('pattern', '?'))})"


class FieldRuleError(ValueError):
    """A rule across fields that a model validator breaks, naming the field to fix (a 422 names its field).

    Raise it from a pydantic ``model_validator``; :func:`validation_details` reports ``field``."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def validation_details(exc: PydanticValidationError, root: str = "(Eintrag)", **where: Any) -> list[dict[str, Any]]:
    """The errors of ``exc`` as ``details`` entries: ``where`` (e.g. line), field, German message.

    ``root`` names the field of errors about the record as a whole, unless the rule names one
    (:class:`FieldRuleError`).
    """
    out = []
    for err in exc.errors(include_url=False):
        named = getattr((err.get("ctx") or {}).get("error"), "field", None)
        field = "kind" if err.get("type", "").startswith("union_tag") else field_path(err.get("loc", ()), root)
        if named:
            field = field_path((*err.get("loc", ()), named), root)
        out.append({**where, "field": field, "message": german_message(err)})
    return out
