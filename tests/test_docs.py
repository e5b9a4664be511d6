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
               "MATCHER_FIELDS_FILE"}
    service = {f"MATCHER_{key}" for key in default_config()} - {"MATCHER_DATABASE_URL"}
    missing = sorted(name for name in library | service if f"`{name}`" not in text)
    assert not missing, f"docs/operations.md does not document {missing}"


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200
