"""German messages for validation errors, written for the person who has to fix the input.

pydantic's own messages are English and name types ("Input should be a valid
integer"); the service and bulk imports answer people who fill in forms and
spreadsheets, so every error type a schema can raise gets a German sentence
that says what to change.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError

__all__ = ["validation_details", "german_message", "field_path"]

_KINDS = ("advisor", "organisation", "event", "municipality")

_SIMPLE = {
    "missing": "Pflichtfeld fehlt",
    "string_type": "Text erwartet",
    "string_unicode": "Text erwartet (gültiges UTF-8)",
    "int_type": "ganze Zahl erwartet",
    "int_parsing": "ganze Zahl erwartet",
    "int_from_float": "ganze Zahl ohne Nachkommastellen erwartet",
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
    "union_tag_not_found": "Feld „kind“ fehlt: advisor, organisation, event oder municipality angeben",
}


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
        return f"ungültiger Wert; erlaubt: {ctx.get('expected')}"
    if kind == "union_tag_invalid":
        return f"unbekannte Art {ctx.get('tag')!r}; erlaubt: advisor, organisation, event, municipality"
    if kind in ("value_error", "assertion_error"):
        msg = str(ctx.get("error") or err.get("msg", ""))
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return str(err.get("msg", "ungültiger Wert"))


_ID_FIELDS = ("id", "from", "municipality", "organisation", "event", "entity_id", "partners")


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
    return f"Format ungültig (erwartet: {(err.get('ctx') or {}).get('pattern', '?')})"


def validation_details(exc: PydanticValidationError, root: str = "(Eintrag)", **where: Any) -> list[dict[str, Any]]:
    """The errors of ``exc`` as ``details`` entries: ``where`` (e.g. line), field, German message.

    ``root`` names the field of errors about the record as a whole.
    """
    out = []
    for err in exc.errors(include_url=False):
        field = "kind" if err.get("type", "").startswith("union_tag") else field_path(err.get("loc", ()), root)
        out.append({**where, "field": field, "message": german_message(err)})
    return out
