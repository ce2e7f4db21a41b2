"""
bitget-keys beside other clients (ccxt, aiolimiter) on three workloads, against the strict emulator.

Each (workload, client) pair runs against a fresh `bitget_keys.testing.Emulator` in a
child process on 127.0.0.1 (real aiohttp on both sides), strict as always: per-UID
sliding windows and 6,000 requests per IP per 60 s with a 300 s lockout. Batch answers
show the new sub-accounts' UIDs in clear, so no client needs a list read. Accepted
requests and 429s come from the emulator's audit; shares and makespans from the clients.

1. ``bulk``: M masters (``--masters``, 50) each create ``--subaccounts`` (20) sub-accounts
   by batch-create, 5 a call (1/s per UID), and one further key per new sub-account
   (create-virtual-subaccount-apikey, 5/s per UID), all masters at once: 24 requests a
   master. The per-UID burst bound is when the last key could be sent if every lane
   sent N at once each window (3.0 s for 20 sub-accounts; spacing every request W/N
   apart would give 3.8 s); the IP rule's bound is when request 6,001 could go (60 s,
   so ``--masters 300``, 7,200 requests, is a sustained job). The bound is the larger.
2. ``shared``: two clients with two keys of one master UID, each submitting ``--calls``
   (90) create-virtual-subaccount-apikey calls at once (client A's first), run for
   ``--duration`` (10) s: each client's share of the accepted requests, accepted/s
   against the lane's 5/s, and 429s.
3. ``broker``: an ND-broker master streams ``--stream`` (10) batch-creates (queued at
   once, 1/s per UID) and, ``--lead`` (1) s later, issues ``--modifies`` (40) broker
   modify-subaccount-apikey calls (10/s per UID): the modifies' makespan against their
   burst bound, and 429s.

Clients are those of `benchmarks.peer_clients`. ccxt is skipped with a message when it
is not installed (``pip install -e '.[bench]'``).

Run (about three minutes)::

    python -m benchmarks.peers
    python -m benchmarks.peers bulk --masters 300 --clients bitget-keys bitget-keys-sliding
    python -m benchmarks.peers --json > peers.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import multiprocessing.connection
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import attrs

from benchmarks.peer_clients import (
    CLIENTS,
    CONFIG,
    DEFAULT_CLIENTS,
    PASSPHRASE,
    Peer,
    Program,
    Refused,
    Throttled,
    ccxt_installed,
    program,
)
from bitget_keys import Client
from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.testing import Audit, Emulator, EmulatorAccount, LaneAudit, Limits, Unpaced

WORKLOADS: Final = ("bulk", "shared", "broker")
BATCH: Final = 5
#: What the emulator enforces while the benchmark runs: everything, as Bitget documents.
STRICT: Final = Limits(mask_batch_names=False)
#: While the child seeds accounts before a run: nothing counted.
SEEDING: Final = Limits(per_uid=False, ip_limit=None, mask_batch_names=False)
BROKER_SUB: Final = "5550001"
BROKER_KEY: Final = "bg_broker_sub_key"
BROKER_KEY_PASSPHRASE: Final = "SubKeyPass1"

Lanes = dict[tuple[str, str], tuple[list[float], int]]


@attrs.frozen(kw_only=True)
class Sizes:
    masters: int = 50
    subaccounts: int = 20
    calls: int = 90
    duration: float = 10.0
    stream: int = 10
    modifies: int = 40
    lead: float = 1.0


def account(index: int, *, uid: str | None = None, broker: bool = False) -> EmulatorAccount:
    return EmulatorAccount(
        uid=uid or str(3_000_000_000 + index),
        api_key=f"bg_peer_{index:05d}",
        secret_key=f"peer-secret-{index:05d}",
        passphrase=f"PeerPass{index:05d}",
        broker=broker,
    )


def name(number: int) -> str:
    """A sub-account name unique to ``number``: exactly 8 lowercase letters."""
    letters = []
    for _ in range(8):
        number, digit = divmod(number, 26)
        letters.append(chr(ord("a") + digit))
    return "".join(reversed(letters))


# -- bounds ----------------------------------------------------------------------------------


def burst_times(
    ready: Sequence[float], endpoint: ep.Endpoint, *, spacing: bool = False
) -> list[float]:
    """
    The earliest send times on one lane whose requests become ready at ``ready``
    (in order): request k goes no earlier than request k-N plus W, Bitget's rule; with
    ``spacing``, no earlier than request k-1 plus W/N.
    """
    if spacing:
        limit, period = 1, endpoint.window / endpoint.rate
    else:
        limit, period = endpoint.rate, endpoint.window
    sent: list[float] = []
    for k, at in enumerate(ready):
        earliest = sent[k - limit] + period if k >= limit else 0.0
        sent.append(max(at, earliest))
    return sent


def bulk_uid_bound(subaccounts: int, *, spacing: bool = False) -> float:
    """When one master's last key could be sent if every lane sent N per window at once."""
    sizes = [min(BATCH, subaccounts - start) for start in range(0, subaccounts, BATCH)]
    batch = ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS
    batches = burst_times([0.0] * len(sizes), batch, spacing=spacing)
    ready = [at for at, size in zip(batches, sizes, strict=True) for _ in range(size)]
    keys = burst_times(ready, ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY, spacing=spacing)
    return max(keys, default=max(batches, default=0.0))


def ip_bound(requests: int, limit: int = 6000, window: float = 60.0) -> float:
    """When the last of ``requests`` could go under at most ``limit`` per ``window`` s."""
    return ((requests - 1) // limit) * window if requests else 0.0


def modify_bound(modifies: int) -> float:
    """When the last of ``modifies`` broker modifies could go, 10 per second at once."""
    endpoint = ep.MODIFY_BROKER_SUBACCOUNT_API_KEY
    return (math.ceil(modifies / endpoint.rate) - 1) * endpoint.window if modifies else 0.0


def bulk_requests(masters: int, subaccounts: int) -> int:
    return masters * (math.ceil(subaccounts / BATCH) + subaccounts)


# -- the emulator in a child process ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class Setup:
    """The accounts a run needs, and what the child seeds before the clock starts."""

    accounts: tuple[EmulatorAccount, ...]
    #: Virtual sub-accounts to create for the first account before the run.
    subaccounts: int = 0
    #: Seed the first account (a broker) with one broker sub-account key.
    broker_key: bool = False


def _serve(setup: Setup, conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve_async(setup, conn))


async def _seed(emulator: Emulator, setup: Setup) -> list[str]:
    master = setup.accounts[0]
    if setup.broker_key:
        key = {"api_key": BROKER_KEY, "passphrase": BROKER_KEY_PASSPHRASE}
        emulator.exchange.add_broker_subaccount(master.uid, BROKER_SUB, key)
    uids: list[str] = []
    if not setup.subaccounts:
        return uids
    client = Client(
        master.credentials, transport=emulator.transport(), scheduler=Unpaced(), config=CONFIG
    )
    for start in range(0, setup.subaccounts, BATCH):
        items = [
            m.NewVirtualSubaccount(
                name=name(10**6 + number),
                passphrase=PASSPHRASE,
                label=f"s{number}",
                permissions=["read"],
                ip_list=[],
            )
            for number in range(start, min(start + BATCH, setup.subaccounts))
        ]
        rows = await client.batch_create_virtual_subaccounts(
            m.BatchCreateVirtualSubaccountsRequest(items=items)
        )
        uids.extend(row.subaccount_uid for row in rows)
    await client.aclose()
    return uids


async def _serve_async(setup: Setup, conn: multiprocessing.connection.Connection) -> None:
    emulator = Emulator(setup.accounts, limits=SEEDING)
    loop = asyncio.get_running_loop()
    async with emulator:
        seeded = await _seed(emulator, setup)
        # From here on every request counts, from a clean audit.
        emulator.exchange.limits = STRICT
        emulator.exchange.audit = Audit()
        conn.send((emulator.base_url, seeded))
        await loop.run_in_executor(None, conn.recv)
    lanes = {key: (lane.accepted, lane.throttled) for key, lane in emulator.audit.lanes.items()}
    # The emulator keeps its lockouts to itself; an entry means the IP was locked out.
    locked = bool(emulator.exchange._rates._locked_until)  # noqa: SLF001
    conn.send((lanes, locked))


# -- the workloads ------------------------------------------------------------------------------


@attrs.define
class Tally:
    """What the calls of one client came back with."""

    ok: int = 0
    throttled: int = 0
    refused: int = 0

    async def call(self, call: Awaitable[Any]) -> Any:
        try:
            result = await call
        except Throttled:
            self.throttled += 1
        except Refused:
            self.refused += 1
        else:
            self.ok += 1
            return result
        return None


async def bulk(make: Callable[[], Program], sizes: Sizes) -> dict[str, Any]:
    prog = make()
    tally = Tally()
    masters = [account(i) for i in range(sizes.masters)]

    async def batch_then_keys(peer: Peer, names: list[str]) -> None:
        uids = await tally.call(peer.batch_create(names))
        if uids:
            await asyncio.gather(*(tally.call(peer.create_key(uid, "x1")) for uid in uids))

    loop = asyncio.get_running_loop()
    start = loop.time()
    jobs = []
    for index, master in enumerate(masters):
        peer = prog.client(master)
        numbers = range(index * 100, index * 100 + sizes.subaccounts)
        for first in range(0, sizes.subaccounts, BATCH):
            names = [name(number) for number in numbers[first : first + BATCH]]
            jobs.append(batch_then_keys(peer, names))
    await asyncio.gather(*jobs)
    makespan = loop.time() - start
    await prog.aclose()
    planned = bulk_requests(sizes.masters, sizes.subaccounts)
    per_uid = bulk_uid_bound(sizes.subaccounts)
    ip = ip_bound(planned)
    return {
        "makespan_s": makespan,
        "bound_s": max(per_uid, ip),
        "uid_bound_s": per_uid,
        "ip_bound_s": ip,
        "done": tally.ok,
        "planned": planned,
        "client_429s": tally.throttled,
        "refused": tally.refused,
    }


async def shared(make: Callable[[], Program], seeded: list[str], sizes: Sizes) -> dict[str, Any]:
    prog = make()
    uid = account(0).uid
    peers = [prog.client(account(i, uid=uid)) for i in range(2)]
    tallies = [Tally(), Tally()]
    loop = asyncio.get_running_loop()
    start = loop.time()
    # A's calls are all queued before B's, as two callers that start together would be.
    tasks = [
        asyncio.create_task(
            tallies[who].call(peers[who].create_key(seeded[k % len(seeded)], f"k{k}"))
        )
        for who in (0, 1)
        for k in range(who * sizes.calls, (who + 1) * sizes.calls)
    ]
    _, pending = await asyncio.wait(tasks, timeout=sizes.duration)
    elapsed = loop.time() - start
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await prog.aclose()
    accepted = sum(tally.ok for tally in tallies)
    return {
        "makespan_s": elapsed,
        "bound_s": None,
        "shares": [round(tally.ok / accepted, 3) if accepted else 0.0 for tally in tallies],
        "per_client_accepted": [tally.ok for tally in tallies],
        "per_client_429s": [tally.throttled for tally in tallies],
        "accepted_per_s": accepted / elapsed,
        "done": accepted,
        "planned": 2 * sizes.calls,
        "client_429s": sum(tally.throttled for tally in tallies),
        "refused": sum(tally.refused for tally in tallies),
    }


async def broker(make: Callable[[], Program], sizes: Sizes) -> dict[str, Any]:
    prog = make()
    peer = prog.client(account(0, broker=True))
    stream_tally, tally = Tally(), Tally()
    loop = asyncio.get_running_loop()
    stream = [
        asyncio.create_task(stream_tally.call(peer.batch_create([name(number)])))
        for number in range(sizes.stream)
    ]
    await asyncio.sleep(sizes.lead)
    start = loop.time()
    modifies = [
        tally.call(peer.modify_broker_key(BROKER_SUB, BROKER_KEY, BROKER_KEY_PASSPHRASE))
        for _ in range(sizes.modifies)
    ]
    await asyncio.gather(*modifies)
    makespan = loop.time() - start
    stream_done = stream_tally.ok
    for task in stream:
        task.cancel()
    await asyncio.gather(*stream, return_exceptions=True)
    await prog.aclose()
    return {
        "makespan_s": makespan,
        "bound_s": modify_bound(sizes.modifies),
        "done": tally.ok,
        "planned": sizes.modifies,
        "stream_batches_done": stream_done,
        "client_429s": tally.throttled + stream_tally.throttled,
        "refused": tally.refused + stream_tally.refused,
    }


def setup_of(workload: str, sizes: Sizes) -> Setup:
    if workload == "bulk":
        return Setup(accounts=tuple(account(i) for i in range(sizes.masters)))
    if workload == "shared":
        uid = account(0).uid
        # Each sub-account holds 10 keys, its first from the batch: 9 more each.
        return Setup(
            accounts=(account(0, uid=uid), account(1, uid=uid)),
            subaccounts=min(20, math.ceil(2 * sizes.calls / 9)),
        )
    return Setup(accounts=(account(0, broker=True),), broker_key=True)


def run(workload: str, client: str, sizes: Sizes) -> dict[str, Any]:
    """One workload with one client against a fresh emulator in a child process."""
    parent, child = mp.Pipe()
    process = mp.get_context("fork").Process(
        target=_serve, args=(setup_of(workload, sizes), child), daemon=True
    )
    process.start()
    try:
        base_url, seeded = parent.recv()

        async def main() -> dict[str, Any]:
            def make() -> Program:
                return program(client, base_url)

            if workload == "bulk":
                return await bulk(make, sizes)
            if workload == "shared":
                return await shared(make, seeded, sizes)
            return await broker(make, sizes)

        row = asyncio.run(main())
        parent.send("stop")
        lanes, locked = parent.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    return summarize(workload, client, row, lanes, locked=locked)


def summarize(
    workload: str, client: str, row: dict[str, Any], lanes: Lanes, *, locked: bool
) -> dict[str, Any]:
    """The client's figures with what the emulator accepted and refused."""
    bound = row["bound_s"]
    makespan = row["makespan_s"]
    densest: dict[str, int] = {}
    for (_, endpoint), (times, _) in lanes.items():
        window = LaneAudit(accepted=times).max_in_window()
        densest[str(endpoint)] = max(densest.get(str(endpoint), 0), window)
    return {
        "workload": workload,
        "client": client,
        **row,
        "makespan_s": round(makespan, 3),
        "bound_s": None if bound is None else round(bound, 3),
        "ratio": round(makespan / bound, 3) if bound else None,
        "accepted": sum(len(times) for times, _ in lanes.values()),
        "429s": sum(throttled for _, throttled in lanes.values()),
        "densest_window": densest,
        "lockout": locked,
    }


# -- output ---------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of one workload as a Markdown table."""
    workload = rows[0]["workload"]
    columns = ["client", "makespan_s", "bound_s", "ratio", "done", "accepted", "429s"]
    if workload == "shared":
        columns = ["client", "makespan_s", "shares", "accepted_per_s", "accepted", "429s"]
    if workload == "broker":
        columns.append("stream_batches_done")
    columns.append("lockout")
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if column == "shares":
                value = " / ".join(f"{share:.0%}" for share in row["shares"])
            elif column == "done":
                value = f"{value} of {row['planned']}"
            cells.append(_cell(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heading(workload: str, sizes: Sizes) -> str:
    if workload == "bulk":
        requests = bulk_requests(sizes.masters, sizes.subaccounts)
        per_uid = bulk_uid_bound(sizes.subaccounts)
        spaced = bulk_uid_bound(sizes.subaccounts, spacing=True)
        return (
            f"bulk: {sizes.masters} masters x {sizes.subaccounts} sub-accounts + 1 key "
            f"({requests} requests); per-UID burst bound {per_uid:.2f} s "
            f"({spaced:.2f} s spacing requests W/N apart), "
            f"IP rule (6,000 / 60 s) bound {ip_bound(requests):.2f} s, "
            f"at 95/s evenly {requests / 95:.2f} s"
        )
    if workload == "shared":
        return (
            f"shared: two clients of one UID, {sizes.calls} create-key calls each, "
            f"{sizes.duration:g} s; the lane allows 5/s"
        )
    return (
        f"broker: {sizes.modifies} broker modifies {sizes.lead:g} s into a stream of "
        f"{sizes.stream} batch-creates; bound {modify_bound(sizes.modifies):.2f} s"
    )


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Sizes]:
    """The command line's arguments, checked, and the sizes they give."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Sizes()
    parser.add_argument(
        "workloads", nargs="*", help=f"any of {', '.join(WORKLOADS)} (default: all)"
    )
    parser.add_argument("--clients", nargs="+", default=list(DEFAULT_CLIENTS), choices=CLIENTS)
    parser.add_argument("--masters", type=int, default=defaults.masters)
    parser.add_argument("--subaccounts", type=int, default=defaults.subaccounts)
    parser.add_argument("--calls", type=int, default=defaults.calls, help="per client (shared)")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="s (shared)")
    parser.add_argument("--stream", type=int, default=defaults.stream, help="batch-creates")
    parser.add_argument("--modifies", type=int, default=defaults.modifies)
    parser.add_argument("--lead", type=float, default=defaults.lead, help="s before modifies")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON only")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    problems = [
        f"--{field} must be above 0"
        for field in attrs.fields_dict(Sizes)
        if field != "lead" and getattr(args, field) <= 0
    ]
    if args.lead < 0:
        problems.append("--lead must not be negative")
    if unknown:
        problems.append(f"unknown workload {', '.join(unknown)}; one of {', '.join(WORKLOADS)}")
    if args.subaccounts > 20 or args.stream > 20:
        problems.append("a master holds at most 20 sub-accounts (--subaccounts, --stream)")
    if args.calls > 90:
        problems.append("--calls: at most 90, what 20 sub-accounts of 10 keys take from two")
    if problems:
        parser.error("; ".join(problems))
    sizes = Sizes(**{field: getattr(args, field) for field in attrs.fields_dict(Sizes)})
    return args, sizes


def main(argv: Sequence[str] | None = None) -> int:
    args, sizes = parse(argv)
    clients = list(dict.fromkeys(args.clients))
    if "ccxt" in clients and not ccxt_installed():
        print("ccxt is not installed (pip install -e '.[bench]'): skipping it", file=sys.stderr)
        clients.remove("ccxt")
    if not clients:
        return 0
    log = sys.stderr if args.json else sys.stdout
    rows = []
    for workload in args.workloads or WORKLOADS:
        print(f"\n{heading(workload, sizes)}", file=log, flush=True)
        done = []
        for client in clients:
            started = time.perf_counter()
            row = run(workload, client, sizes)
            row["wall_s"] = round(time.perf_counter() - started, 1)
            print(row, file=sys.stderr, flush=True)
            done.append(row)
        print(table(done), file=log, flush=True)
        rows.extend(done)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
