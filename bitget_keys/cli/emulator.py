"""``bitget-keys emulator``: serve the bundled emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from bitget_keys._escape import escape
from bitget_keys.testing import Emulator, Limits, load_accounts_file


async def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    accounts, seeds = load_accounts_file(args.accounts) if args.accounts else (None, {})
    limits = Limits(ip_limit=None if args.no_ip_limit else 6000)
    emulator = Emulator(
        accounts,
        generate=args.generate,
        host=args.host,
        port=args.port,
        seed=args.seed,
        limits=limits,
    )
    for uid, rows in seeds.items():
        for row in rows:
            emulator.exchange.add_broker_subaccount(uid, str(row["sub_uid"]), row)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        print(emulator.base_url, flush=True)
        if args.print_credentials:
            for account in emulator.accounts:
                # From the accounts file: escaped, one line per account whatever it holds.
                line = (
                    f"uid={account.uid} api_key={account.api_key} "
                    f"secret_key={account.secret_key.reveal()} "
                    f"passphrase={account.passphrase.reveal()}"
                )
                print(escape(line), flush=True)
        await stop.wait()
    return 0
