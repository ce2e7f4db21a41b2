"""
What every ``bitget-keys`` parser shares: the parser class (a wrong command line exits
64), the global options every command takes, and the path options whose defaults come
from the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from bitget_keys.cli._common import STATE_PATH_ENV, VAULT_PATH_ENV
from bitget_keys.cli.exits import ExitCode

__all__ = ["PROGRAM", "CommandParser", "add_state_option", "add_vault_option"]

#: The prefix of every ``bitget-keys`` version line (``bitget-keys 1.2.3``).
PROGRAM = "bitget-keys"


class CommandParser(argparse.ArgumentParser):
    """
    The parser of ``bitget-keys`` and of each of its commands (argparse makes a
    command's parser of its parent's class).

    A wrong command line exits `ExitCode.USAGE` (64) with argparse's usual message, not
    argparse's 2: scripts tell it from a failure, and ``plan --detailed-exitcode`` uses 2.
    Every parser takes the global options, so ``bitget-keys apply -v plan.toml`` works as
    ``bitget-keys -v apply plan.toml`` does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_global_options(self)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    """
    The options every parser takes. Their default is SUPPRESS: a command's parser sets
    the value only when the option is given after the command, so it never resets what
    was given before it (the default is set once, on the top parser).
    """
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more logging (-vv: debug); before or after the command",
    )


def _path_option(
    parser: argparse.ArgumentParser, option: str, variable: str, default: str, what: str
) -> None:
    """``--vault`` or ``--state``: its environment variable when not given, else ``default``."""
    parser.add_argument(
        option,
        type=Path,
        default=Path(os.environ.get(variable) or default),
        metavar="PATH",
        help=f"the {what} (default ${variable}, else {default})",
    )


def add_vault_option(parser: argparse.ArgumentParser) -> None:
    _path_option(parser, "--vault", VAULT_PATH_ENV, "bitget-keys.vault", "secrets vault")


def add_state_option(parser: argparse.ArgumentParser) -> None:
    _path_option(parser, "--state", STATE_PATH_ENV, "bitget-keys.state", "state file")
