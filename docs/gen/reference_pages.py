"""
The documentation's generated pages: the command-line reference, and the exit statuses
with the environment variables.

They are written from the code on every build (``mkdocs.yml`` runs this file through
mkdocs-gen-files), so they cannot drift from it: the reference walks
`bitget_keys.cli.build_parser()` and every subcommand under it; the exit statuses come
from `bitget_keys.cli.exits.ExitCode`, each member with the ``#:`` comment above it in
the source; the variables from `bitget_keys.cli.environment.VARIABLES`.
``tests/test_docs.py`` imports these functions and checks what they produce.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import inspect
import os
import re
from collections.abc import Iterator

from bitget_keys.cli import build_parser, environment, exits

#: The width help is wrapped at in the reference, whatever terminal builds the site.
WIDTH = 88

CLI_PAGE = "reference/cli.md"
EXIT_CODES_PAGE = "reference/exit-codes.md"

_COMMENT = re.compile(r"^\s*#:\s?(.*)$")
_MEMBER = re.compile(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*\d+\s*(#.*)?$")


def markdown_text(text: str) -> str:
    """Plain text (help strings, comments) made safe for a Markdown table cell or line."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)  # reST literals, as the docstrings write them
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(part)  # Python-Markdown's tables do not split cells inside code
            continue
        escaped = html.escape(part, quote=False)
        out.append(re.sub(r"([\\*_\[\]|])", r"\\\1", escaped))
    return " ".join("".join(out).split())


@contextlib.contextmanager
def _clean_environment() -> Iterator[None]:
    """
    The package's variables unset, and a fixed width: the reference shows the defaults
    of a clean environment (never a value, let alone a secret, from the builder's) and
    wraps alike on every machine.
    """
    names = [variable.name for variable in environment.VARIABLES] + ["COLUMNS"]
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        yield
    finally:
        os.environ.pop("COLUMNS", None)
        os.environ.update(saved)


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str | None, argparse.ArgumentParser]]:
    """Every command under ``parser`` (itself first): its words, its one-line help, its parser."""
    yield path, None, parser
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of a command already shown
                continue
            seen.add(id(sub))
            for words, summary, found in commands(sub, (*path, name)):
                yield words, summary if words != (*path, name) else helps.get(name), found


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    """One table row per argument and option of ``parser`` (not its subcommands)."""
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        invocation = formatter._format_action_invocation(action)
        text = formatter._expand_help(action) if action.help else ""
        if action.choices is not None:
            choices = f"one of `{'`, `'.join(map(str, action.choices))}`"
            text = f"{text}; {choices}" if text else choices[0].upper() + choices[1:]
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS) and not (
            isinstance(action, argparse._CountAction) and default == 0
        )
        said = "default" in text.lower() or f"({default})" in text
        if shown and action.option_strings and not said:
            text = f"{text}; default `{default}`" if text else f"Default `{default}`."
        rows.append(f"| `{invocation}` | {markdown_text(text)} |")
    return rows


def cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The command-line reference page: every command's usage, description and options."""
    with _clean_environment():
        parser = build_parser() if parser is None else parser
        prog = parser.prog
        lines = [
            "# Command-line reference",
            "",
            "<!-- Generated from the argument parser by docs/gen/reference_pages.py. -->",
            "",
            (
                f"Every `{prog}` command, as `{prog} COMMAND --help` shows it. Exit statuses "
                "and environment variables are on [their own page](exit-codes.md)."
            ),
            "",
        ]
        for words, summary, command in commands(parser):
            name = " ".join((prog, *words))
            lines += [f"{'#' * min(len(words) + 2, 4)} `{name}`", ""]
            if summary:
                lines += [f"*{markdown_text(summary)}*", ""]
            usage = command.format_usage().removeprefix("usage: ").rstrip()
            # Continuation lines were indented to follow "usage: ".
            usage = "\n".join(line.removeprefix(" " * len("usage: ")) for line in usage.split("\n"))
            lines += ["```text", usage, "```", ""]
            if command.description:
                # Through the command's own formatter: filled to the width, or kept as
                # written by a RawDescriptionHelpFormatter.
                formatter = command._get_formatter()
                formatter.add_text(command.description)
                lines += ["```text", formatter.format_help().strip("\n"), "```", ""]
            rows = _option_rows(command)
            if rows:
                lines += ["| Argument or option | What it does |", "| --- | --- |", *rows, ""]
            subcommands = [(w[-1], s) for w, s, _ in commands(command) if len(w) == len(words) + 1]
            if subcommands:
                lines += ["| Command | What it does |", "| --- | --- |"]
                lines += [f"| `{word}` | {markdown_text(s or '')} |" for word, s in subcommands]
                lines.append("")
    return "\n".join(lines)


def exit_code_comments(source: str | None = None) -> dict[str, str]:
    """Each `ExitCode` member's ``#:`` comment, from the source of `bitget_keys.cli.exits`."""
    source = inspect.getsource(exits.ExitCode) if source is None else source
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in source.splitlines():
        if comment := _COMMENT.match(line):
            pending.append(comment[1])
        elif member := _MEMBER.match(line):
            comments[member[1]] = " ".join(pending)
            pending = []
        else:  # anything else between a comment and its member, a blank line too
            pending = []
    return comments


def exit_codes_page() -> str:
    """The page of exit statuses and environment variables."""
    comments = exit_code_comments()
    missing = [code.name for code in exits.ExitCode if not comments.get(code.name)]
    if missing:
        msg = f"ExitCode members without a #: comment to document them: {', '.join(missing)}"
        raise ValueError(msg)
    lines = [
        "# Exit codes and environment variables",
        "",
        "<!-- Generated from bitget_keys.cli.exits and bitget_keys.cli.environment. -->",
        "",
        "## Exit codes",
        "",
        (
            "Every `bitget-keys` command exits with one of these statuses, so a script or a "
            "scheduler can act on the status alone. The codes from 64 up follow the BSD "
            "`sysexits.h` convention."
        ),
        "",
        "| Code | Name | Meaning |",
        "| ---: | --- | --- |",
    ]
    lines += [
        f"| {int(code)} | `{code.name}` | {markdown_text(comments[code.name])} |"
        for code in exits.ExitCode
    ]
    lines += [
        "",
        "## Environment variables",
        "",
        (
            "Every environment variable the package reads. Those marked secret are never "
            "printed or logged; prefer them to command-line options, which other users of "
            "the host can see in its process list."
        ),
        "",
        "| Variable | Read by | What it sets | Secret |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| `{variable.name}` | {markdown_text(variable.used_by)} | "
        f"{markdown_text(variable.meaning)} | {'yes' if variable.secret else ''} |"
        for variable in environment.VARIABLES
    ]
    lines += [
        "",
        (
            'Plan files name further variables themselves: `credentials = "env:PREFIX"` '
            "reads `PREFIX_API_KEY`, `PREFIX_SECRET_KEY`, `PREFIX_PASSPHRASE` and the optional "
            "`PREFIX_UID`, and a passphrase written `env:NAME` reads `NAME` (see the "
            "[plan file reference](../plan-file.md)). `Credentials.from_env()` reads "
            "`BITGET_API_KEY`, `BITGET_SECRET_KEY`, `BITGET_PASSPHRASE` and `BITGET_UID` "
            "unless given another prefix."
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Write both pages into the site being built."""
    import mkdocs_gen_files  # noqa: PLC0415  (only where the site is built)

    for page, text in ((CLI_PAGE, cli_reference()), (EXIT_CODES_PAGE, exit_codes_page())):
        with mkdocs_gen_files.open(page, "w") as out:
            out.write(text)
        mkdocs_gen_files.set_edit_path(page, "gen/reference_pages.py")


if __name__ in {"__main__", "<run_path>"}:
    main()
