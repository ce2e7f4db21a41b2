"""
Fair shares and priorities on one lane, with real Clients against the strict emulator.

The emulator runs in a child process on 127.0.0.1 (real aiohttp on both sides); the
clients share one `RateLimitScheduler`, as every client of one event loop does by
default, and all call create-virtual-subaccount-apikey (5 a second per UID) for one
master UID, so they all queue on one lane.

- ``shares``: two clients of one UID with equal demand: A queues ``--calls`` requests,
  then B queues as many ``--offset`` seconds later (the case where one caller used to
  take every slot until its backlog was gone). Each client is its own flow (a
  `Client`'s default) and the lane serves them in turn; ``--no-flows`` gives both
  ``Client(flow="shared")``, one flow: the FIFO of before. Printed: each client's share
  of the requests accepted while both were waiting, accepted per second over the run,
  and 429s.
- ``priority``: one client queues ``--bulk`` requests; once they wait, another
  (``Client(priority=1)``) sends one. Printed: how long after its call it was sent, in
  slots of W/N.

Each client paces through a `Noting` view of the shared scheduler, which notes when
each request was sent and whether it drew a 429.

Run (about a minute and a half)::

    python -m benchmarks.scheduler_fairness --calls 90 --bulk 200

``--margin``, ``--policy`` (sliding by default), ``--latency`` change the setup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

import aiohttp
import attrs

from benchmarks.scheduler_saturation import CONFIG, Scenario, _serve, accounts
from bitget_keys import Client, RateLimitScheduler
from bitget_keys import _endpoints as ep
from bitget_keys.errors import APIError, RateLimitExceededError
from bitget_keys.limits import Policy
from bitget_keys.testing import EmulatorAccount
from bitget_keys.testing._load import load_request

T = TypeVar("T")

ENDPOINT: Final = ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY
#: The emulator's audit: (accepted times, 429s) per (UID, endpoint) lane.
Lanes = dict[tuple[str, str], tuple[list[float], int]]
#: W/N of the endpoint: one slot.
SLOT: Final = ENDPOINT.window / ENDPOINT.rate


@attrs.frozen(kw_only=True)
class Setup:
    calls: int = 90
    offset: float = 0.05
    bulk: int = 200
    margin: float = 0.02
    policy: Policy = Policy.SLIDING
    latency: float = 0.005
    flows: bool = True


class Noting:
    """A client's view of the shared scheduler that notes its sends and their 429s."""

    __slots__ = ("accepted", "inner", "throttled")

    def __init__(self, inner: RateLimitScheduler) -> None:
        self.inner = inner
        #: Loop time of each send that was not answered with a 429.
        self.accepted: list[float] = []
        self.throttled = 0

    async def run(
        self, uid: str, endpoint: ep.Endpoint, send: Callable[[], Awaitable[T]], **pacing: Any
    ) -> T:
        loop = asyncio.get_running_loop()

        async def noted() -> T:
            at = loop.time()
            try:
                result = await send()
            except RateLimitExceededError:
                self.throttled += 1
                raise
            except APIError:
                self.accepted.append(at)  # refused after the lane counted it
                raise
            self.accepted.append(at)
            return result

        return await self.inner.run(uid, endpoint, noted, **pacing)

    def observe(
        self, uid: str, endpoint: ep.Endpoint, *, sent_ms: int, request_time_ms: int
    ) -> None:
        self.inner.observe(uid, endpoint, sent_ms=sent_ms, request_time_ms=request_time_ms)

    def alias(self, lane_uid: str, uid: str) -> None:
        self.inner.alias(lane_uid, uid)


def _client(
    account: EmulatorAccount,
    base_url: str,
    session: aiohttp.ClientSession,
    view: Noting,
    **pacing: Any,
) -> Client:
    """A client of ``account`` on ``session``, paced through ``view``."""
    return Client(
        account.credentials,
        base_url=base_url,
        session=session,
        scheduler=view,
        config=CONFIG,
        **pacing,
    )


async def _calls(client: Client, count: int) -> None:
    call = load_request(ENDPOINT)

    async def one() -> None:
        with contextlib.suppress(APIError):  # refused after counting: still a request
            await call(client)

    await asyncio.gather(*(one() for _ in range(count)))


async def shares(setup: Setup, base_url: str) -> dict[str, Any]:
    """Two clients of one UID, equal demand, B a little after A."""
    scheduler = RateLimitScheduler(margin=setup.margin, default_policy=setup.policy, ip_budget=None)
    views = [Noting(scheduler), Noting(scheduler)]
    # Each client is its own flow unless both are told to be one.
    flow: dict[str, Any] = {} if setup.flows else {"flow": "shared"}
    account = accounts(1)[0]
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        clients = [_client(account, base_url, session, view, **flow) for view in views]
        start = loop.time()
        first = asyncio.create_task(_calls(clients[0], setup.calls))
        await asyncio.sleep(setup.offset)
        second = asyncio.create_task(_calls(clients[1], setup.calls))
        # While both wait, the lane is contended: shares count until one is done.
        await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        both_until = loop.time()
        await asyncio.gather(first, second)
        end = loop.time()
        for client in clients:
            await client.aclose()
    contended = [
        sum(1 for at in view.accepted if start + setup.offset <= at < both_until) for view in views
    ]
    accepted = sum(len(view.accepted) for view in views)
    return {
        "workload": "shares",
        "flows": setup.flows,
        "share_a_pct": round(100 * contended[0] / max(1, sum(contended)), 1),
        "share_b_pct": round(100 * contended[1] / max(1, sum(contended)), 1),
        "contended_requests": sum(contended),
        "accepted": accepted,
        "accepted_per_s": round(accepted / (end - start), 2),
        "client_429s": sum(view.throttled for view in views),
        "makespan_s": round(end - start, 2),
    }


async def priority(setup: Setup, base_url: str) -> dict[str, Any]:
    """``bulk`` requests queued on one lane, then one at priority 1."""
    scheduler = RateLimitScheduler(margin=setup.margin, default_policy=setup.policy, ip_budget=None)
    bulk_view, urgent_view = Noting(scheduler), Noting(scheduler)
    account = accounts(1)[0]
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        bulk = _client(account, base_url, session, bulk_view)
        urgent = _client(account, base_url, session, urgent_view, priority=1)
        queued = asyncio.create_task(_calls(bulk, setup.bulk))
        await asyncio.sleep(1.0)  # the bulk requests wait in the lane by now
        waiting = scheduler.statistics().lane(account.uid, ENDPOINT.name)
        arrived = loop.time()
        await _calls(urgent, 1)
        await queued
        await bulk.aclose()
        await urgent.aclose()
    delay = urgent_view.accepted[0] - arrived
    return {
        "workload": "priority",
        "queued_ahead": waiting.queued if waiting is not None else 0,
        "delay_s": round(delay, 3),
        "delay_slots": round(delay / SLOT, 2),
        "client_429s": bulk_view.throttled + urgent_view.throttled,
    }


WORKLOADS: Final = {"shares": shares, "priority": priority}


@contextlib.contextmanager
def _emulator(scenario: Scenario) -> Iterator[tuple[str, Callable[[], Lanes]]]:
    """
    The emulator in a child process: its base URL, and a call that stops it and returns
    its audit, (accepted times, 429s) per lane.
    """
    parent, child = mp.Pipe()
    process = mp.get_context("fork").Process(target=_serve, args=(scenario, child), daemon=True)
    process.start()

    def stop() -> Lanes:
        parent.send("stop")
        audit: Lanes = parent.recv()
        return audit

    try:
        yield parent.recv(), stop
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()


def run(workload: str, setup: Setup) -> dict[str, Any]:
    """One workload against a fresh emulator in a child process; adds its 429 count."""
    scenario = Scenario(
        name=workload, uids=1, endpoints=(ENDPOINT,), over_loopback=True, latency=setup.latency
    )
    with _emulator(scenario) as (base_url, stop):
        row = asyncio.run(WORKLOADS[workload](setup, base_url))
        lanes = stop()
    row["emulator_429s"] = sum(throttled for _, throttled in lanes.values())
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scheduler_fairness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Setup()
    parser.add_argument("workloads", nargs="*", help="shares, priority (default: both)")
    parser.add_argument("--calls", type=int, default=defaults.calls, help="per client")
    parser.add_argument("--offset", type=float, default=defaults.offset, help="seconds")
    parser.add_argument("--bulk", type=int, default=defaults.bulk)
    parser.add_argument("--margin", type=float, default=defaults.margin)
    parser.add_argument(
        "--policy", choices=[p.value for p in Policy], default=defaults.policy.value
    )
    parser.add_argument("--latency", type=float, default=defaults.latency, help="seconds")
    parser.add_argument("--no-flows", action="store_true", help="one flow: the FIFO of before")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    if args.calls < 1 or args.bulk < 1:
        parser.error("--calls and --bulk must be at least 1")
    setup = Setup(
        calls=args.calls,
        offset=args.offset,
        bulk=args.bulk,
        margin=args.margin,
        policy=Policy(args.policy),
        latency=args.latency,
        flows=not args.no_flows,
    )
    print(setup, flush=True)
    for workload in args.workloads or WORKLOADS:
        print(run(workload, setup), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
