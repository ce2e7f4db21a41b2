"""``bitget-keys demo``: provision at scale against the bundled emulator."""

from __future__ import annotations

import argparse

from bitget_keys.cli._common import output_mode
from bitget_keys.cli._demo import DemoSize, run_demo


async def run(args: argparse.Namespace) -> int:
    """Provision against the bundled emulator and summarise; see `bitget_keys.cli._demo`."""
    size = DemoSize(accounts=args.accounts, subaccounts=args.subaccounts, keys=args.keys)
    console = getattr(args, "console", None)
    return await run_demo(size, mode=output_mode(args), workdir=args.workdir, console=console)
