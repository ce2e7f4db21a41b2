"""``bitget-keys demo``: provision at scale against the bundled emulator."""

from __future__ import annotations

import argparse
import sys

from bitget_keys.cli._demo import DemoSize, run_demo
from bitget_keys.provision.progress import choose_mode


async def run(args: argparse.Namespace) -> int:
    """Provision against the bundled emulator and summarise; see `bitget_keys.cli._demo`."""
    size = DemoSize(accounts=args.accounts, subaccounts=args.subaccounts, keys=args.keys)
    mode = choose_mode(json_lines=args.json, stream=sys.stdout)
    return await run_demo(size, mode=mode, workdir=args.workdir)
