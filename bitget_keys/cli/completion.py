"""``bitget-keys completion SHELL``: the shell code that completes ``bitget-keys``."""

from __future__ import annotations

import argparse
import sys

from argcomplete.shell_integration import shellcode

from bitget_keys.cli._options import PROGRAM


async def run(args: argparse.Namespace) -> int:
    """
    Print the completion script for ``args.shell`` (bash, zsh or fish). The script asks
    ``bitget-keys`` itself for completions, so they always match the installed version.
    """
    sys.stdout.write(shellcode([PROGRAM], shell=args.shell))
    return 0
