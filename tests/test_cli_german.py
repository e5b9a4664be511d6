"""The command line speaks German: every command's help, the usual mistakes, and no raw codes."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from matcher.cli import cli, main

# click's own words, which must never reach a person
ENGLISH = ("Usage:", "Options:", "Commands:", "Show this message", "Show the version", "[default:", "[required]",
           "Error:", "Missing option", "No such option", "Invalid value", "is not one of", "does not exist",
           "is not a valid", "Try '", "Got unexpected", "INTEGER RANGE", "FLOAT RANGE", "FILE", "PATH")


def _commands() -> list[list[str]]:
    paths = [[]]
    for name, command in cli.commands.items():
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    return paths


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "matcher")
def test_every_help_is_german(path):
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="matcher")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Aufruf: matcher")
    assert "Optionen:" in result.output and "Diese Hilfe anzeigen und beenden." in result.output
    leaked = [w for w in ENGLISH if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", result.output)]
    assert not leaked, f"{' '.join(path)} --help shows {leaked}:\n{result.output}"


@pytest.mark.parametrize(("argv", "says"), [
    (["rank"], "Fehlende Angabe „--task“"),
    (["rank", "--task", "advisor"], "„advisor“ gibt es nicht; erlaubt: „advisors“"),
    (["rank", "--task", "advisors", "-k", "0"], "„0“ liegt nicht im erlaubten Bereich"),
    (["rank", "--task", "advisors", "-k", "viele"], "„viele“ ist keine ganze Zahl"),
    (["rank", "--taks", "advisors"], "Unbekannte Option „--taks“; meinten Sie"),
    (["rnak"], "Unbekannter Befehl „rnak“; meinten Sie „rank“"),   # (or „ranker“, also close)
    (["load", "/gibt/es/nicht.jsonl"], "Die Datei „/gibt/es/nicht.jsonl“ gibt es nicht"),
    (["evaluate", "--data", "/gibt/es/nicht"], "Den Ordner „/gibt/es/nicht“ gibt es nicht"),
    (["invite", "--event", "evt-113", "--size", "3", "--as-of", "3.12.2026"], "ist kein Datum; bitte JJJJ-MM-TT"),
    (["rank", "--task", "advisors", "--text", "Hilfe", "--city", "Dortmnd"], "Meinten Sie „Dortmund“?"),
])
def test_usual_mistakes_get_a_german_message_without_a_traceback(argv, says, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert says in err and err.startswith("Fehler: "), err
    assert "Traceback" not in err and not any(w in err for w in ("Error:", "Invalid value", "Usage:")), err


def test_the_unknown_place_is_refused_before_the_model_is_loaded(capsys, monkeypatch):
    import matcher.cli.common as common

    def no_fit(*args, **kwargs):
        raise AssertionError("the engine was fitted for a query that names an unknown place")

    monkeypatch.setattr(common, "fitted_matcher", no_fit)
    monkeypatch.setattr("matcher.cli.engine.fitted_matcher", no_fit)
    with pytest.raises(SystemExit):
        main(["rank", "--task", "advisors", "--text", "Hilfe", "--city", "Atlantis"])
    err = capsys.readouterr().err
    assert "Unbekannter Ort „Atlantis“ (--city)" in err


def test_no_raw_codes_or_english_in_the_cli_source_strings():
    """German messages in the command modules quote with „…“, never with repr quotes."""
    from pathlib import Path

    import matcher.cli

    for path in Path(matcher.cli.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"f\"[^\"]*[äöüÄÖÜß][^\"]*\{[^}]*!r\}", text), path.name
