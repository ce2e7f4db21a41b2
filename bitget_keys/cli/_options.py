"""
What every ``bitget-keys`` parser shares: the parser class (a wrong command line exits
64), the global options every command takes, the path options whose defaults come from
the environment, the exit status list of ``--help``, and the ``completion`` command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from bitget_keys.cli._common import STATE_PATH_ENV, VAULT_PATH_ENV
from bitget_keys.cli.exits import ExitCode

__all__ = [
    "EXIT_STATUS_HELP",
    "PROGRAM",
    "CommandParser",
    "add_command",
    "add_completion",
    "add_state_option",
    "add_vault_option",
    "vault_from_environment",
]

EXIT_STATUS_HELP = """\
Exit status: 0 done; 1 failed (nothing done); 2 plan --detailed-exitcode: changes;
3 secrets stored nowhere; 4 partial (some items done, others not); 5 declined at the
prompt; 6 inventory: findings; 64 wrong command line; 65 invalid plan or vault; 66 no
such file; 69 Bitget or Redis unreachable; 74 cannot write the vault or state file;
75 locked by another run; 78 configuration (vault key, credentials); 130, 143 SIGINT,
SIGTERM; 141 the reader of the output went away.
"""


COMPLETION_HELP = """\
Print the shell completion script for bitget-keys. Load it in the shell's start-up file:

    bash:  eval "$(bitget-keys completion bash)"              (in ~/.bashrc)
    zsh:   eval "$(bitget-keys completion zsh)"               (in ~/.zshrc)
    fish:  bitget-keys completion fish | source               (in ~/.config/fish/config.fish)
"""


def add_command(commands: Any, name: str, help_text: str, description: str) -> Any:
    """A command's parser, its ``--help`` text shown as written (paragraphs, examples)."""
    return commands.add_parser(
        name,
        help=help_text,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_completion(commands: Any) -> None:
    """The ``completion`` command's arguments."""
    completion = add_command(
        commands,
        "completion",
        "print the shell completion script (bash, zsh, fish)",
        COMPLETION_HELP,
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    completion.set_defaults(run="completion:run")


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


def vault_from_environment() -> Path | None:
    """The vault ``$BITGET_KEYS_VAULT`` names, if it is set (``plan --vault``'s default)."""
    path = os.environ.get(VAULT_PATH_ENV)
    return Path(path) if path else None


def add_vault_option(parser: argparse.ArgumentParser) -> None:
    _path_option(parser, "--vault", VAULT_PATH_ENV, "bitget-keys.vault", "secrets vault")


def add_state_option(parser: argparse.ArgumentParser) -> None:
    _path_option(parser, "--state", STATE_PATH_ENV, "bitget-keys.state", "state file")
