"""
The ``bitget-keys`` command line.

``main(argv)`` parses arguments and runs the chosen command with `asyncio.run`; it is
the only place this package starts an event loop or configures logging. Each command
lives in its own module, imported only when it runs. The exit status of every outcome
is one of `bitget_keys.cli.exits.ExitCode`.
"""

# PYTHON_ARGCOMPLETE_OK: the marker argcomplete's global completion looks for.

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from rich.logging import RichHandler

from bitget_keys._escape import escape
from bitget_keys.cli._common import live_console
from bitget_keys.cli._parser import build_parser
from bitget_keys.cli.exits import ExitCode, exit_code_for
from bitget_keys.errors import BitgetKeysError, PlanError
from bitget_keys.provision.progress import NO_COLOR_ENV

__all__ = ["build_parser", "main"]


def _command(target: str) -> Callable[[argparse.Namespace], Coroutine[Any, Any, int]]:
    """The command ``module:function`` names, imported now (see `bitget_keys.cli._parser`)."""
    module, _, function = target.partition(":")
    command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = getattr(
        importlib.import_module(f"bitget_keys.cli.{module}"), function
    )
    return command


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see `ExitCode`)."""
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:
        # A shell asks for completions (`bitget-keys completion`): argcomplete answers
        # and exits. Imported only then, so that a command starts without it.
        import argcomplete  # noqa: PLC0415

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if not getattr(args, "plain", False):
        return _run(args)
    # Everything that draws honours NO_COLOR (rich, plan's colours, the display):
    # --plain, before the command or after it, asks the same of all of them, for as
    # long as the command runs (a program calling main() gets its environment back).
    before = os.environ.get(NO_COLOR_ENV)
    os.environ[NO_COLOR_ENV] = "1"
    try:
        return _run(args)
    finally:
        if before is None:
            del os.environ[NO_COLOR_ENV]
        else:
            os.environ[NO_COLOR_ENV] = before


def _run(args: argparse.Namespace) -> int:
    """Configure logging, run the parsed command; its exit status."""
    level = logging.WARNING - 10 * min(args.verbose, 2)
    # With the live display on, log records go through its console (rich's logging
    # handler prints them above the display); otherwise plain lines on stderr.
    args.console = live_console(args)
    if args.console is not None:
        handler = RichHandler(console=args.console, show_time=False, show_path=False, markup=False)
        logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[handler])
    else:
        logging.basicConfig(
            level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
        )
    try:
        return int(asyncio.run(_command(args.run)(args)))
    except PlanError as exc:
        # One line per problem, each escaped by the error itself.
        print(exc, file=sys.stderr)
        return int(exit_code_for(exc))
    except BitgetKeysError as exc:
        # Messages quote paths, plan values and Bitget's answers: one line, escaped.
        print(escape(f"bitget-keys: {exc}"), file=sys.stderr)
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`bitget-keys vault list | head`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.BROKEN_PIPE)
