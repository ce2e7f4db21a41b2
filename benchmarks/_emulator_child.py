"""
What the makespan benchmarks share: the emulator they measure against, in a child
process serving HTTP on 127.0.0.1 (the second core, as the CLI would talk to Bitget) or
in process (no sockets, one core); the scheduler they pace with; the plan's master
credentials; and the tallies of the emulator's audit.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import multiprocessing.connection
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from bitget_keys import RateLimitScheduler
from bitget_keys.limits import IPBudget
from bitget_keys.testing import Emulator, EmulatorAccount, LaneAudit

__all__ = [
    "Serve",
    "endpoint_tallies",
    "lane_audit",
    "master_environ",
    "measure",
    "print_run",
    "scheduler",
]

Measured = TypeVar("Measured")
Setup = TypeVar("Setup")

#: Opens the emulator (and what serves beside it) on the stack, in the child process;
#: returns what the parent is sent once it serves (its base URL, ...) and what gives the
#: audit the parent is sent once it has closed.
Serve = Callable[[contextlib.AsyncExitStack], Awaitable[tuple[Any, Callable[[], dict[str, Any]]]]]


def measure(
    *,
    in_process: Callable[[], Coroutine[Any, Any, tuple[Measured, dict[str, Any]]]] | None,
    serve: Serve,
    drive: Callable[[Any], Measured],
) -> tuple[Measured, dict[str, Any]]:
    """
    What ``drive`` measures against the emulator ``serve`` opens in a child process, and
    the audit; with ``in_process``, what it measures and audits without a child instead.
    """
    if in_process is not None:
        return asyncio.run(in_process())
    parent, child = mp.Pipe()
    process = mp.get_context("fork").Process(target=_serve, args=(serve, child), daemon=True)
    process.start()
    measured = drive(parent.recv())
    parent.send("stop")
    audit: dict[str, Any] = parent.recv()
    process.join(10)
    return measured, audit


def _serve(serve: Serve, conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve_async(serve, conn))


async def _serve_async(serve: Serve, conn: multiprocessing.connection.Connection) -> None:
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        hello, audit = await serve(stack)
        conn.send(hello)
        await loop.run_in_executor(None, conn.recv)
    conn.send(audit())


def scheduler(*, margin: float, budget: IPBudget | None) -> RateLimitScheduler:
    """The scheduler a run paces with: ``budget`` per IP, or none."""
    return RateLimitScheduler(
        margin=margin,
        ip_budget=budget,
        # With the emulator's IP limit off, the scheduler must not read a 429 as an IP
        # lockout because its own count passed Bitget's 6,000 a minute.
        ip_cap=6000 if budget is not None else 10**9,
        max_in_flight=100,
    )


def master_environ(prefix: str, master: EmulatorAccount) -> dict[str, str]:
    """The environment a plan's ``credentials = "env:PREFIX"`` reads ``master`` from."""
    return {
        f"{prefix}_API_KEY": master.api_key,
        f"{prefix}_SECRET_KEY": master.secret_key.reveal(),
        f"{prefix}_PASSPHRASE": master.passphrase.reveal(),
        f"{prefix}_UID": master.uid,
    }


def lane_audit(emulator: Emulator) -> dict[str, Any]:
    """Each (UID, endpoint) lane's accepted times and 429s, and what it refused."""
    lanes = {key: (lane.accepted, lane.throttled) for key, lane in emulator.audit.lanes.items()}
    # Refused requests (a classic master's 40084 from the mode probe) cost IP budget too.
    refused = {key: lane.rejected for key, lane in emulator.audit.lanes.items() if lane.rejected}
    return {"lanes": lanes, "refused": refused}


def endpoint_tallies(
    lanes: dict[tuple[str, str], tuple[list[float], int]],
) -> tuple[dict[str, int], dict[str, int]]:
    """Per endpoint, over all UIDs: the requests accepted, and the most in one lane's window."""
    sent: dict[str, int] = {}
    densest: dict[str, int] = {}
    for (_, name), (times, _) in lanes.items():
        sent[name] = sent.get(name, 0) + len(times)
        densest[name] = max(densest.get(name, 0), LaneAudit(accepted=list(times)).max_in_window())
    return sent, densest


def print_run(run: Callable[[Setup], dict[str, Any]], setup: Setup) -> int:
    """Print what ``run`` reports of ``setup``, one line a figure; 1 when it is incomplete."""
    started = time.perf_counter()
    result = run(setup)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    for key, value in result.items():
        print(f"{key}: {value}", flush=True)
    return 0 if result["complete"] else 1
