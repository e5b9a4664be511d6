"""The documentation names what exists: every command, every setting."""

from __future__ import annotations

import re

from conftest import ROOT


def _doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def test_every_command_of_the_command_line_is_documented():
    from matcher.cli import cli

    text = _doc("cli.md")
    for name, command in cli.commands.items():
        subcommands = getattr(command, "commands", None)
        wanted = [f"{name} {sub}" for sub in subcommands] if subcommands else [f"`matcher {name}"]
        for words in wanted:
            assert words in text, f"„{words}“ is not described in docs/cli.md"


def test_every_setting_is_documented():
    from service.config import default_config

    text = _doc("operations.md")
    library = {"MATCHER_MODEL", "MATCHER_THREADS", "MATCHER_DATA_DIR", "MATCHER_DATABASE_URL", "MATCHER_PLACES_FILE",
               "MATCHER_FIELDS_FILE", "MATCHER_CONFIDENCE_FILE", "MATCHER_RANKER_FILE"}
    service = {f"MATCHER_{key}" for key in default_config()} - {"MATCHER_DATABASE_URL"}
    missing = sorted(name for name in library | service if f"`{name}`" not in text)
    assert not missing, f"docs/operations.md does not document {missing}"


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


DOCS = ["README.md", "docs/*.md", "bench/README.md", "models/MODEL_CARD.md", "fixtures/README.md",
        "tests/data/README.md"]
SUBPACKAGES = ("cli", "batch", "landscape", "live", "store", "evaluation", "engine", "text", "domain")


def _doc_files():
    for pattern in DOCS:
        yield from sorted(ROOT.glob(pattern))


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:   # a parent is not a package
        return False


def test_every_module_the_docs_name_exists():
    """No out-of-date module names: each path (``matcher/engine/index.py``, ``engine/index.py``,
    ``service/auth.py``) and each dotted name (``matcher.engine.signals``) in the docs is real."""
    stale = []
    for doc in _doc_files():
        text = doc.read_text(encoding="utf-8")
        for path in re.findall(r"(?<![\w/.-])((?:matcher|service|bench|tests)/[\w/]+\.py)\b", text):
            if not (ROOT / path).is_file():
                stale.append(f"{doc.relative_to(ROOT)}: {path}")
        for sub, name in re.findall(rf"(?<![\w/.-])({'|'.join(SUBPACKAGES)})/(\w+)\.py\b", text):
            if not (ROOT / "matcher" / sub / f"{name}.py").is_file():
                stale.append(f"{doc.relative_to(ROOT)}: {sub}/{name}.py")
        for dotted in re.findall(r"(?<![\w./-])(matcher(?:\.\w+)+)", text):
            if dotted.endswith((".db", ".py", ".json", ".jsonl", ".npz")):  # a file name, not a module
                continue
            parts = dotted.split(".")
            # the longest importable prefix must be a module; what follows may be an attribute of it
            found = any(_is_module(".".join(parts[:n])) for n in range(len(parts), 1, -1))
            if not found:
                stale.append(f"{doc.relative_to(ROOT)}: {dotted}")
    assert not stale, "out-of-date module names in the docs:\n" + "\n".join(stale)
