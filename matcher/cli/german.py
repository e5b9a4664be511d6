"""The command line in German, through click's public extension points.

click writes its own words ("Usage:", "Options:", "Show this message and
exit.", "Missing option …") in English through gettext's global default
domain, which a library should not take over. Instead the commands use:

* :class:`Command` / :class:`Group` with a German context (help formatter:
  „Aufruf:“, „Optionen:“, „Befehle:“), German metavars and help option;
* :class:`Option`, whose help line says „Standard:“ and „Pflicht“;
* German parameter types (:class:`Choice`, :class:`IntRange`, …) that name
  the wrong value and what is allowed;
* :func:`usage_message`, which turns click's usage errors into German for
  :func:`matcher.cli.main`.

``tests/test_cli_german.py`` walks every command's ``--help`` and the usual
mistakes and fails on an English word of click's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import click

__all__ = [
    "Command", "Group", "Option", "Choice", "IntRange", "FloatRange", "ExistingFile", "WritableFile", "Date",
    "command", "group", "option", "usage_message", "HELP_TEXT",
]

HELP_TEXT = "Diese Hilfe anzeigen und beenden."
_SECTIONS = {"Options": "Optionen", "Commands": "Befehle", "Positional arguments": "Argumente"}


class _Formatter(click.HelpFormatter):
    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, prefix="Aufruf: " if prefix is None else prefix)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        with super().section(_SECTIONS.get(name, name)):
            yield


class _Context(click.Context):
    formatter_class = _Formatter


class Command(click.Command):
    """A command with German help (see the module docstring)."""

    context_class = _Context

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", "[OPTIONEN]")
        super().__init__(*args, **kwargs)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        opt = super().get_help_option(ctx)
        if opt is not None:
            opt.help = HELP_TEXT
        return opt


class Group(click.Group):
    """A command group with German help; its subcommands default to :class:`Command`."""

    context_class = _Context
    command_class = Command

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", "[OPTIONEN]")
        kwargs.setdefault("subcommand_metavar", "BEFEHL [ARGUMENTE]...")
        super().__init__(*args, **kwargs)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        opt = super().get_help_option(ctx)
        if opt is not None:
            opt.help = HELP_TEXT
        return opt


Group.group_class = Group


class Option(click.Option):
    """An option whose help line reads „[Standard: 5]“ and „[Pflicht]“."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        names, text = record
        text = text.replace("[default: ", "[Standard: ").replace("; default: ", "; Standard: ")
        text = re.sub(r"\brequired\]", "Pflicht]", text)
        return names, text


command: Callable[..., Any] = partial(click.command, cls=Command)
group: Callable[..., Any] = partial(click.group, cls=Group)
option: Callable[..., Any] = partial(click.option, cls=Option)


# ----------------------------------------------------------------------------- parameter types
def _quoted(value: Any) -> str:
    return f"„{value}“"


class Choice(click.Choice):
    """One of fixed values; a wrong one is named with the allowed ones."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            allowed = ", ".join(_quoted(c) for c in self.choices)
            self.fail(f"{_quoted(value)} gibt es nicht; erlaubt: {allowed}", param, ctx)


def _out_of_range(kind: click.IntRange | click.FloatRange, value: Any, param: click.Parameter | None,
                  ctx: click.Context | None, parse: Callable[[Any], Any], noun: str) -> None:
    """Fail with what is wrong with a number: not a number at all, or outside the bounds."""
    try:
        parse(value)
    except (TypeError, ValueError):
        kind.fail(f"{_quoted(value)} ist keine {noun}", param, ctx)
    kind.fail(f"{_quoted(value)} liegt nicht im erlaubten Bereich ({_bounds(kind)})", param, ctx)


class IntRange(click.IntRange):
    """A whole number, optionally within bounds."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            _out_of_range(self, value, param, ctx, int, "ganze Zahl")

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "ZAHL"


class FloatRange(click.FloatRange):
    """A number (decimal point or comma), optionally within bounds."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            value = value.replace(",", ".")
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            _out_of_range(self, value, param, ctx, float, "Zahl")

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "ZAHL"


def _bounds(kind: click.IntRange | click.FloatRange) -> str:
    lo, hi = kind.min, kind.max
    lo_op = ">" if kind.min_open else "≥"
    hi_op = "<" if kind.max_open else "≤"
    if lo is not None and hi is not None:
        return f"{lo_op} {lo} und {hi_op} {hi}"
    if lo is not None:
        return f"{lo_op} {lo}"
    if hi is not None:
        return f"{hi_op} {hi}"
    return "beliebig"


class _Path(click.Path):
    """A path whose error names it in German: ``problem`` is a template with ``{path}``."""

    problem = "„{path}“ geht nicht"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail(self.problem.format(path=value), param, ctx)


class ExistingFile(_Path):
    """A file that must exist (not a folder)."""

    name = "datei"
    problem = "Die Datei „{path}“ gibt es nicht (oder sie ist ein Ordner)"

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)


class ExistingFolder(_Path):
    """A folder that must exist."""

    name = "ordner"
    problem = "Den Ordner „{path}“ gibt es nicht"

    def __init__(self) -> None:
        super().__init__(exists=True, file_okay=False)


class WritableFile(_Path):
    """A file to write (its folder is created when needed)."""

    name = "datei"
    problem = "In „{path}“ kann nicht geschrieben werden"

    def __init__(self) -> None:
        super().__init__(dir_okay=False, writable=True)


class Date(click.ParamType):
    """A date written JJJJ-MM-TT."""

    name = "datum"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{_quoted(value)} ist kein Datum; bitte JJJJ-MM-TT schreiben, z. B. 2027-03-14", param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "JJJJ-MM-TT"


# ----------------------------------------------------------------------------- usage errors
_EXTRA_ARGS = re.compile(r"^Got unexpected extra arguments? \((?P<args>.*)\)$")
_NEEDS_VALUE = re.compile(r"^Option '(?P<name>[^']+)' requires (?:an argument|\d+ arguments)\.$")
_NO_VALUE = re.compile(r"^Option '(?P<name>[^']+)' does not take a value\.$")


def _names(param: click.Parameter | None) -> str:
    if param is None:
        return "?"
    if isinstance(param, click.Option):
        return " / ".join(param.opts)
    return (param.metavar or param.name or "?").upper()


def usage_message(exc: click.UsageError) -> str:
    """A click usage error as one German message (with where to find help)."""
    ctx = exc.ctx
    if isinstance(exc, click.exceptions.NoArgsIsHelpError) and ctx is not None:
        return ctx.get_help()
    where = f"{ctx.command_path} --help" if ctx is not None else "matcher --help"
    if isinstance(exc, click.MissingParameter):
        what = "Argument" if isinstance(exc.param, click.Argument) else "Angabe"
        text = f"Fehlende {what} {_quoted(_names(exc.param))}"
    elif isinstance(exc, click.BadParameter):
        text = f"Ungültiger Wert für {_quoted(_names(exc.param))}: {exc.message}"
    elif isinstance(exc, click.NoSuchOption):
        text = f"Unbekannte Option {_quoted(exc.option_name)}"
        if exc.possibilities:
            text += "; meinten Sie " + " oder ".join(_quoted(p) for p in sorted(exc.possibilities)) + "?"
    elif isinstance(exc, click.exceptions.NoSuchCommand):
        text = f"Unbekannter Befehl {_quoted(exc.command_name)}"
        if exc.possibilities:
            text += "; meinten Sie " + " oder ".join(_quoted(p) for p in sorted(exc.possibilities)) + "?"
    elif m := _EXTRA_ARGS.match(exc.message):
        text = f"Zu viele Argumente: {m['args']}"
    elif m := _NEEDS_VALUE.match(exc.message):
        text = f"Nach {_quoted(m['name'])} fehlt der Wert"
    elif m := _NO_VALUE.match(exc.message):
        text = f"{_quoted(m['name'])} nimmt keinen Wert"
    elif exc.message == "Missing command.":
        text = "Bitte einen Befehl angeben"
    else:
        text = f"Ungültiger Aufruf ({exc.message})"
    end = "" if text.endswith(("?", ".")) else "."
    return f"Fehler: {text}{end} Hilfe: {where}"
