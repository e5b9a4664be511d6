"""One vocabulary: every label of an organisation type, and the German number format, defined once.

The web page, the invitation list, the exports, the explanations and the
landscape report once each spelled the types their own way ("zivilgesellschaftliche
Gruppe", "Eine-Welt-Gruppe", "Eine-Welt- und zivilgesellschaftliche Gruppen").
These tests read the source: a label written into a dict anywhere but
``matcher/domain/labels.py``, or a decimal comma made anywhere but
``matcher/domain/formatting.py``, is a second definition that will drift.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from matcher.batch.invitation_types import Quota
from matcher.domain import labels
from matcher.domain.formatting import decimal

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("matcher", "service") for p in (ROOT / d).rglob("*.py"))
LABELS_MODULE = "matcher/domain/labels.py"
FORMATTING_MODULE = "matcher/domain/formatting.py"

# files that still hold a copy and belong to a change in progress elsewhere; each entry must still
# hold its copy (the test says so when it no longer does: then delete the entry)
PENDING_LABELS: set[str] = set()
PENDING_DECIMAL = {"matcher/cli/landscape.py"}          # one inline f"{x:.4f}".replace(".", ",")
PENDING_THOUSANDS = {"service/state.py"}                # _de_number, the start progress

# pieces of every wording an organisation type has had, old and new
ORG_TYPE_WORDS = ("Migrantenorganisation", "Migranten-", "zivilgesellschaftl", "Eine-Welt-", "ommunale Stelle",
                  "ommunalen Stelle", "Einrichtungen", "civil-society", "migrant organisation", "municipal office")


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _dict_value_strings(tree: ast.AST) -> list[str]:
    """Every string written as (part of) a value of a dict literal."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for value in node.values:
                out += [n.value for n in ast.walk(value) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return out


def _modules_defining(words: tuple[str, ...]) -> dict[str, set[str]]:
    """word -> the modules whose dict literals hold a string containing it."""
    found: dict[str, set[str]] = {w: set() for w in words}
    for path in SOURCES:
        strings = _dict_value_strings(ast.parse(path.read_text(encoding="utf-8")))
        for word in words:
            if any(word in s for s in strings):
                found[word].add(_relative(path))
    return found


def _modules_matching(pattern: str) -> set[str]:
    return {_relative(p) for p in SOURCES if re.search(pattern, p.read_text(encoding="utf-8"))}


def test_every_organisation_type_label_is_defined_in_one_module():
    found = _modules_defining(ORG_TYPE_WORDS)
    for word, modules in found.items():
        assert modules - PENDING_LABELS <= {LABELS_MODULE}, f"{word!r} defined again in {sorted(modules)}"
    assert all(found[w] for w in ("Migrantenorganisation", "zivilgesellschaftl", "Eine-Welt-"))
    for module in PENDING_LABELS:
        assert any(module in modules for modules in found.values()), \
            f"{module} no longer defines labels: remove it from PENDING_LABELS"


@pytest.mark.parametrize("name", ["ORG_TYPE_LABELS_DE", "ORG_TYPE_PLURALS_DE", "ORG_TYPE_PLURALS_DATIVE_DE",
                                  "ORG_TYPE_HEADING_LINES_DE", "ORG_TYPE_LABELS_EN", "ORG_TYPE_PLURALS_EN"])
def test_each_label_set_names_every_organisation_type(name):
    from matcher.domain.schema import ORG_TYPES

    assert tuple(getattr(labels, name)) == ORG_TYPES


def test_one_german_wording_for_civil_society_groups():
    assert labels.ORG_TYPE_LABELS_DE["civil_society"] == "Eine-Welt- oder zivilgesellschaftliche Gruppe"
    assert labels.ORG_TYPE_PLURALS_DE["civil_society"] == "Eine-Welt- und zivilgesellschaftliche Gruppen"
    assert Quota.parse("civil_society:40%").label() == "mindestens 40 % Eine-Welt- und zivilgesellschaftliche Gruppen"


def test_decimal_comma_is_made_in_one_place():
    modules = _modules_matching(r"""replace\(\s*(['"])\.\1\s*,\s*(['"]),\2\s*\)""")
    assert modules - PENDING_DECIMAL == {FORMATTING_MODULE}
    assert PENDING_DECIMAL <= modules, "a pending copy is gone: remove it from PENDING_DECIMAL"


def test_thousands_separator_is_made_in_one_place():
    modules = _modules_matching(r"""\{\w+:,\}"\s*\)?\s*\.replace\(\s*(['"]),\1\s*,\s*(['"])\.\2\s*\)""")
    assert modules - PENDING_THOUSANDS == {FORMATTING_MODULE}
    assert PENDING_THOUSANDS <= modules, "a pending copy is gone: remove it from PENDING_THOUSANDS"


def test_german_numbers():
    assert [decimal(0.8312), decimal(40.0, 0), decimal(2.5, None), decimal(30.0, None)] == ["0,83", "40", "2,5", "30"]
