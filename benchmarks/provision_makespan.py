"""
Makespan of applying a provisioning plan, against its theoretical lower bound.

``M`` master accounts, each with ``S`` new sub-accounts (made by
batch-create-subaccount-and-apikey, five per call, each with its first key) and ``E``
further keys per sub-account (create-virtual-subaccount-apikey), applied with
`apply_plan` (what ``bitget-keys apply`` runs) against the strict emulator, all masters
at once through one `RateLimitScheduler`.

The lower bound is the larger of two terms:

- **Per UID.** Bitget allows batch-create 1/s and create-virtual-subaccount-apikey 5/s
  per master UID, and does not document how it counts (a rolling window, fixed windows
  or spacing), so the bound is the schedule that is safe under every way of counting:
  one batch every 1 s, one key every 0.2 s. Batch ``b`` goes at ``b`` seconds; a key may
  go only once its sub-account's batch has gone; so the bound is the dispatch time of the
  last batch or the last key, whichever is later. 20 sub-accounts with one further key
  each: batches at 0, 1, 2, 3 s; the last five keys at 3.0, 3.2, ..., 3.8 s: **3.8 s**.
  At the scheduler's 5% safety margin every interval is 5% longer: 3.99 s. Both are
  printed; the ratio is taken against the margin bound (``ratio``) and against the
  physical one (``ratio_physical``). This is the issue's bound, and it leaves out one
  constraint: a further key needs its sub-account's UID, which the batch answer masks,
  so a sub-account list read (1/s per UID) must come between a batch and its keys, and
  that list's first slot went to the read before the first batch. No key can then go
  before one list interval: 1.05 + 19 x 0.21 = 5.04 s (``ratio_with_uid_reads``).
- **Per IP**, when the per-IP budget is on: the requests any correct applier must send,
  divided by the budget's rate (95/s) under the even policy; under the rolling one,
  ``window`` for each whole ``limit`` (5,700) before the last request. Counted: every
  create (``M·(ceil(S/5) + S·E)``), plus two reads of each master's sub-account list:
  one before anything is created (what exists decides what to create), and one after
  its last batch, because Bitget masks new sub-accounts' UIDs in the batch answer and a
  further key needs its sub-account's UID.
  Not counted: reads a faster schedule spends (a list read per batch, to start keys
  early), clock synchronisation (off here, see ``--sync-clock``) and account-info
  (the UID is in the credentials).

**Unified masters** (``--unified FRACTION``: that share of the masters are Unified
Trading Accounts, interleaved with classic ones) are provisioned through v3: one
create-sub per sub-account and one create-sub-api per key, 10/s per UID each; a key may
go once its sub-account's create-sub has gone, and the answer names the new UID, so no
list read stands between them. Per UID that is the larger of the last create-sub
(``0.1·(S-1)``) and the last key (``0.1·(S·K-1)``, K keys per sub-account): 20
sub-accounts with two keys each give **3.9 s** (4.095 s at 5%). Counted per IP for a
unified master: S + S·K creates and one sub-account list read. The plan does not pin
modes, so every master costs one more request, the account-settings call that tells its
mode (a classic master's answer is 40084); it is counted for both kinds.

The makespan runs from the call of `apply_plan` to its return: the first read and the
last answer's round trip are inside it, the clients' and vault's set-up is not. The
emulator's audit gives the 429s and the densest 1000 ms window of each (UID, endpoint)
lane (the most per endpoint is printed), and of all requests together (the per-IP view).

By default the emulator runs in a child process and serves HTTP on 127.0.0.1 (the
second core), as ``bitget-keys apply`` would talk to Bitget; ``--in-process`` uses the
emulator's in-process transport instead (no sockets, one core). Run::

    python benchmarks/provision_makespan.py --masters 100 --subaccounts 20 \\
        --extra-keys 1 --ip-budget on
    python benchmarks/provision_makespan.py --ip-budget off   # emulator's IP limit off too

**Egresses** (``--egresses K``): the job leaves through K forward proxies
(`bitget_keys.testing.LoopbackProxy`, in the emulator's process) whose upstream
connections come from 127.0.0.2, 127.0.0.3, ..., so the emulator counts each proxy's
requests against its own IP, as Bitget would count K public IPs. Masters are spread over
them round-robin in plan order (as ``apply --egress NAME=PROXY_URL`` does), each egress
with its own `RateLimitScheduler` and so its own IP budget; the per-IP term of the bound
is then that of the busiest egress. Compare ``--egresses 1`` with ``--egresses 2`` (both
pay the proxy hop) where the IP budget binds; ``--ip-rate`` lowers the budget's rate so
that it binds at small sizes::

    python benchmarks/provision_makespan.py --masters 100 --subaccounts 20 \\
        --extra-keys 1 --ip-budget on --egresses 2
    python benchmarks/provision_makespan.py --masters 10 --subaccounts 20 \\
        --extra-keys 1 --ip-budget on --ip-rate 10 --egresses 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from benchmarks._emulator_child import (
    Serve,
    endpoint_tallies,
    lane_audit,
    master_environ,
    measure,
    print_run,
    scheduler,
)
from bitget_keys import Client, ClientConfig, RateLimitScheduler, ServerClock
from bitget_keys import models as m
from bitget_keys.limits import IPBudget, IPPolicy
from bitget_keys.provision.apply import ItemResult, Status, apply_plan
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.plan import AccountSpec, Plan, parse_plan
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount, LaneAudit, Limits, LoopbackProxy

LETTERS = "abcdefghijklmnopqrstuvwxyz"
VAULT_KEY = "benchmark vault passphrase"
#: The per-UID rates of the two creates (Bitget's documentation).
BATCH_INTERVAL = 1.0
KEY_INTERVAL = 0.2
#: v3 create-sub and create-sub-api: 10/s per UID each.
UTA_INTERVAL = 0.1


@attrs.frozen(kw_only=True)
class Setup:
    masters: int
    subaccounts: int
    extra_keys: int
    ip_budget: bool
    margin: float = 0.05
    sync_clock: bool = False
    in_process: bool = False
    #: Whether the batch answer shows the new sub-accounts' UIDs (Bitget's example masks them).
    clear_uids: bool = False
    #: Where the vault and the journal live (their fsyncs are part of the cost).
    workdir: Path = attrs.field(factory=Path.cwd)
    #: The share of masters that are Unified Trading Accounts (interleaved).
    unified: float = 0.0
    #: Forward proxies on loopback the masters are spread over (0: none, direct).
    egresses: int = 0
    #: The IP budget's rate (per second) and policy.
    ip_rate: float = 95.0
    ip_policy: IPPolicy = IPPolicy.EVEN

    @property
    def budget(self) -> IPBudget:
        return IPBudget(rate=self.ip_rate, policy=self.ip_policy)

    def egress_of(self, index: int) -> int:
        """The egress master ``index`` leaves through: round-robin in plan order."""
        return index % max(1, self.egresses)

    def requests_of(self, index: int) -> int:
        """What `necessary_requests` counts for master ``index``."""
        if is_unified(index, self.unified):
            return self.subaccounts * (1 + self.keys_per_subaccount) + 1 + 1
        reads = 1 + (1 if self.extra_keys and not self.clear_uids else 0)
        return self.batches + self.subaccounts * self.extra_keys + reads + 1

    @property
    def busiest_egress_requests(self) -> int:
        """The necessary requests of the egress with the most (all of them without proxies)."""
        load = [0] * max(1, self.egresses)
        for index in range(self.masters):
            load[self.egress_of(index)] += self.requests_of(index)
        return max(load)

    @property
    def unified_masters(self) -> int:
        return sum(is_unified(i, self.unified) for i in range(self.masters))

    @property
    def classic_masters(self) -> int:
        return self.masters - self.unified_masters

    @property
    def batches(self) -> int:
        return math.ceil(self.subaccounts / m.MAX_BATCH_ITEMS)

    @property
    def keys_per_subaccount(self) -> int:
        return 1 + self.extra_keys

    @property
    def creates(self) -> int:
        classic = self.batches + self.subaccounts * self.extra_keys
        unified = self.subaccounts * (1 + self.keys_per_subaccount)
        return self.classic_masters * classic + self.unified_masters * unified

    @property
    def necessary_requests(self) -> int:
        """
        Creates, the sub-account list reads no applier can do without, and the call that
        tells each master's mode.
        """
        return sum(self.requests_of(index) for index in range(self.masters))


def is_unified(index: int, fraction: float) -> bool:
    """Whether master ``index`` is unified when ``fraction`` of them are, interleaved."""
    return math.floor((index + 1) * fraction + 1e-9) > math.floor(index * fraction + 1e-9)


def ip_bound(budget: IPBudget, requests: int) -> float:
    """
    The earliest the last of ``requests`` can go through one IP budget: evenly paced,
    one per ``1/rate``; rolling, ``limit`` per ``window`` in bursts.
    """
    if budget.policy is IPPolicy.ROLLING:
        return budget.window * ((requests - 1) // budget.effective_limit) if requests else 0.0
    return requests / budget.effective_rate


def per_uid_bound_unified(subaccounts: int, keys: int, margin: float) -> float:
    """
    The dispatch time of a unified master's last create: create-subs ``UTA_INTERVAL·(1+m)``
    apart from 0, keys as often on their own lane, each no earlier than its sub-account's.
    """
    gap = UTA_INTERVAL * (1 + margin)
    last_key: float | None = None
    for sub in range(subaccounts):
        for _ in range(keys):
            released = sub * gap
            last_key = released if last_key is None else max(last_key + gap, released)
    return max((subaccounts - 1) * gap, last_key or 0.0)


def per_uid_bound(
    subaccounts: int, extra_keys: int, margin: float, *, masked: bool = False
) -> float:
    """
    The dispatch time of one master's last create, sending each as early as allowed.

    Batches go ``BATCH_INTERVAL·(1+margin)`` apart from 0; keys ``KEY_INTERVAL·(1+margin)``
    apart, each no earlier than its sub-account's batch. With ``masked``, a key also
    waits for a sub-account list read after its batch (the batch answer masks the UID);
    that endpoint allows 1/s, and its first slot went to the read before the first batch,
    so batch ``b``'s keys wait for ``max(b, 1)`` list intervals.
    """
    batch_gap, key_gap = BATCH_INTERVAL * (1 + margin), KEY_INTERVAL * (1 + margin)
    batches = math.ceil(subaccounts / m.MAX_BATCH_ITEMS)
    last_key: float | None = None
    for batch in range(batches):
        released = (max(batch, 1) if masked else batch) * batch_gap
        items = min(m.MAX_BATCH_ITEMS, subaccounts - batch * m.MAX_BATCH_ITEMS)
        for _ in range(items * extra_keys):
            last_key = released if last_key is None else max(last_key + key_gap, released)
    return max((batches - 1) * batch_gap, last_key or 0.0)


def _name(index: int) -> str:
    """A distinct 8-letter sub-account name per index (Bitget's names are global)."""
    letters = []
    for _ in range(6):
        index, digit = divmod(index, 26)
        letters.append(LETTERS[digit])
    return "bm" + "".join(reversed(letters))


def masters(count: int, unified: float = 0.0) -> list[EmulatorAccount]:
    return [
        EmulatorAccount(
            uid=str(5_000_000_000 + i),
            api_key=f"bg_bench_master_{i:04d}",
            secret_key=f"bench-master-secret-{i:04d}",
            passphrase=f"BenchMaster{i:04d}",
            mode="unified" if is_unified(i, unified) else "classic",
        )
        for i in range(count)
    ]


def build_plan(setup: Setup) -> Plan:
    environ: dict[str, str] = {}
    rows = []
    for a, master in enumerate(masters(setup.masters, setup.unified)):
        prefix = f"BENCH{a}"
        environ |= master_environ(prefix, master)
        subaccounts = [
            {
                "name": _name(a * setup.subaccounts + s),
                "label": f"s{s}",
                "keys": [
                    {"label": "first", "permissions": ["spot_trade"]},
                    *({"label": f"x{k}", "permissions": ["read"]} for k in range(setup.extra_keys)),
                ],
            }
            for s in range(setup.subaccounts)
        ]
        rows.append(
            {"name": f"desk{a}", "credentials": f"env:{prefix}", "subaccounts": subaccounts}
        )
    data = {"defaults": {"ip_list": ["203.0.113.7"]}, "accounts": rows}
    return parse_plan(data, environ=environ)


def emulator_for(setup: Setup) -> Emulator:
    limits = Limits(
        ip_limit=6000 if setup.ip_budget else None, mask_batch_names=not setup.clear_uids
    )
    return Emulator(masters(setup.masters, setup.unified), limits=limits)


def audit_summary(emulator: Emulator) -> dict[str, Any]:
    keys = sum(
        len(sub["keys"]) for a in emulator.accounts for sub in emulator.exchange.subaccounts(a.uid)
    )
    subs = sum(len(emulator.exchange.subaccounts(a.uid)) for a in emulator.accounts)
    return lane_audit(emulator) | {"subaccounts": subs, "keys": keys}


# -- the emulator in a child process (HTTP on loopback, on the second core) ------------


def _serve(setup: Setup) -> Serve:
    """The emulator and the egresses' proxies, in the child process."""

    async def serve(stack: contextlib.AsyncExitStack) -> tuple[Any, Callable[[], dict[str, Any]]]:
        emulator = await stack.enter_async_context(emulator_for(setup))
        proxies = [
            await stack.enter_async_context(LoopbackProxy(source=f"127.0.0.{2 + i}"))
            for i in range(setup.egresses)
        ]
        return (
            (emulator.base_url, [proxy.url for proxy in proxies]),
            lambda: audit_summary(emulator) | {"by_egress": [proxy.requests for proxy in proxies]},
        )

    return serve


# -- the applier -------------------------------------------------------------------------


def _scheduler(setup: Setup) -> RateLimitScheduler:
    return scheduler(margin=setup.margin, budget=setup.budget if setup.ip_budget else None)


async def apply(
    setup: Setup, target: str | Emulator, workdir: Path, proxies: Sequence[str] = ()
) -> tuple[float, list[ItemResult]]:
    """Apply the plan; return the makespan and the results."""
    plan = build_plan(setup)
    # One scheduler (one IP budget) per egress, as `apply --egress NAME=PROXY_URL` makes.
    schedulers = [_scheduler(setup) for _ in range(max(1, len(proxies)))]
    egress = {account.name: setup.egress_of(i) for i, account in enumerate(plan.accounts)}
    clients: dict[str, Client] = {}
    server_clock = ServerClock()  # measured once for all masters, as the CLI does

    def client_for(account: AccountSpec) -> Client:
        if account.name not in clients:
            way = egress[account.name]
            scheduler = schedulers[way]
            config = ClientConfig(
                sync_clock=setup.sync_clock,
                request_timeout=60,
                proxy=proxies[way] if proxies else None,
            )
            if isinstance(target, Emulator):
                clients[account.name] = Client(
                    account.credentials,
                    transport=target.transport(),
                    scheduler=scheduler,
                    config=config,
                    server_clock=server_clock,
                )
            else:
                clients[account.name] = Client(
                    account.credentials,
                    base_url=target,
                    scheduler=scheduler,
                    config=config,
                    server_clock=server_clock,
                )
        return clients[account.name]

    vault = SecretsVault.open(workdir / "bench.vault", VAULT_KEY)
    with Journal(workdir / "bench.state") as journal:
        started = time.perf_counter()
        results = await apply_plan(plan, clients=client_for, vault=vault, journal=journal)
        makespan = time.perf_counter() - started
    for client in clients.values():
        await client.aclose()
    return makespan, results


def run(setup: Setup) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-provision-", dir=setup.workdir) as directory:
        workdir = Path(directory)

        async def in_process() -> tuple[tuple[float, list[ItemResult]], dict[str, Any]]:
            emulator = emulator_for(setup)
            measured = await apply(setup, emulator, workdir)
            return measured, audit_summary(emulator)

        def drive(hello: tuple[str, list[str]]) -> tuple[float, list[ItemResult]]:
            base_url, proxies = hello
            return asyncio.run(apply(setup, base_url, workdir, proxies))

        (makespan, results), audit = measure(
            in_process=in_process if setup.in_process else None, serve=_serve(setup), drive=drive
        )
    return report(setup, makespan, results, audit)


def _unified_bound(
    subaccounts: int, extra_keys: int, margin: float, *, masked: bool = False
) -> float:
    del masked  # create-sub answers with the new UID: no list read before the keys
    return per_uid_bound_unified(subaccounts, 1 + extra_keys, margin)


def report(
    setup: Setup, makespan: float, results: list[ItemResult], audit: dict[str, Any]
) -> dict[str, Any]:
    lanes: dict[tuple[str, str], tuple[list[float], int]] = audit["lanes"]
    kinds = [(setup.classic_masters, per_uid_bound), (setup.unified_masters, _unified_bound)]

    def bound_of(margin: float, *, masked: bool = False) -> float:
        return max(
            bound(setup.subaccounts, setup.extra_keys, margin, masked=masked)
            for count, bound in kinds
            if count
        )

    uid_physical = bound_of(0.0)
    uid_margin = bound_of(setup.margin)
    uid_masked = bound_of(setup.margin, masked=True)
    ip_term = ip_bound(setup.budget, setup.busiest_egress_requests) if setup.ip_budget else 0.0
    bound, physical = max(uid_margin, ip_term), max(uid_physical, ip_term)
    sent, densest = endpoint_tallies(lanes)
    throttled_by: dict[str, int] = {}
    for (_, name), (_, throttled) in lanes.items():
        if throttled:
            throttled_by[name] = throttled_by.get(name, 0) + throttled
    everything = LaneAudit(accepted=[t for times, _ in lanes.values() for t in times])
    refused: dict[str, int] = {}
    for (_, name), count in audit["refused"].items():
        refused[name] = refused.get(name, 0) + count
    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
    expected_keys = setup.masters * setup.subaccounts * (1 + setup.extra_keys)
    return {
        "setup": (
            f"{setup.masters} masters ({setup.unified_masters} unified) x "
            f"{setup.subaccounts} sub-accounts x "
            f"(1 + {setup.extra_keys}) keys, IP budget {'on' if setup.ip_budget else 'off'}, "
            f"{'in process' if setup.in_process else 'loopback'}"
            f"{', clock sync' if setup.sync_clock else ''}"
            f"{', UIDs in clear in batch answers' if setup.clear_uids else ''}"
            f", {setup.egresses} egress proxies, IP budget {setup.ip_policy.value} "
            f"{setup.ip_rate:g}/s"
        ),
        "makespan_s": round(makespan, 2),
        "bound_s": round(bound, 2),
        "ratio": round(makespan / bound, 3),
        "ratio_physical": round(makespan / physical, 3),
        "ratio_with_uid_reads": round(makespan / max(uid_masked, ip_term), 3),
        "per_uid_bound_s": (round(uid_physical, 2), round(uid_margin, 2)),
        "per_uid_bound_with_uid_reads_s": round(uid_masked, 2),
        "ip_term_s": round(ip_term, 2),
        "necessary_requests": setup.necessary_requests,
        "requests_sent": sum(sent.values()) + sum(refused.values()),
        "requests_by_egress": audit.get("by_egress", []),
        "requests_by_endpoint": sent,
        "refused_by_endpoint": refused,
        "429s": sum(throttled for _, throttled in lanes.values()),
        "429s_by_endpoint": throttled_by,
        "densest_window_by_endpoint": densest,
        "densest_window_all": everything.max_in_window(),
        "complete": audit["keys"] == expected_keys
        and audit["subaccounts"] == setup.masters * setup.subaccounts
        and set(statuses) == {Status.CREATED.value},
        "statuses": statuses,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--masters", type=int, default=100)
    parser.add_argument("--subaccounts", type=int, default=20, help="per master (at most 20)")
    parser.add_argument("--extra-keys", type=int, default=1, help="per sub-account (at most 9)")
    parser.add_argument(
        "--ip-budget",
        choices=("on", "off"),
        default="on",
        help="the scheduler's per-IP budget (95/s) and the emulator's IP limit (6,000/min)",
    )
    parser.add_argument("--margin", type=float, default=0.05, help="the scheduler's margin")
    parser.add_argument(
        "--sync-clock", action="store_true", help="sync each client's clock first (as the CLI does)"
    )
    parser.add_argument("--in-process", action="store_true", help="no sockets, one process")
    parser.add_argument(
        "--clear-uids",
        action="store_true",
        help="the emulator shows new UIDs in the batch answer (no list read needed before keys)",
    )
    parser.add_argument(
        "--unified",
        type=float,
        default=0.0,
        help="the share of masters that are Unified Trading Accounts (0 to 1, interleaved)",
    )
    parser.add_argument(
        "--egresses",
        type=int,
        default=0,
        help="spread the masters over this many proxies on loopback, each its own IP (0: none)",
    )
    parser.add_argument(
        "--ip-rate", type=float, default=95.0, help="the IP budget's rate per second (95)"
    )
    parser.add_argument(
        "--ip-policy", choices=("even", "rolling"), default="even", help="the IP budget's policy"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path.cwd(),
        help="where the vault and journal are written (default: here, on disk)",
    )
    args = parser.parse_args(argv)
    if args.egresses and args.in_process:
        parser.error("--egresses needs sockets: leave out --in-process")
    setup = Setup(
        masters=args.masters,
        subaccounts=args.subaccounts,
        extra_keys=args.extra_keys,
        ip_budget=args.ip_budget == "on",
        margin=args.margin,
        sync_clock=args.sync_clock,
        in_process=args.in_process,
        clear_uids=args.clear_uids,
        workdir=args.workdir,
        unified=args.unified,
        egresses=args.egresses,
        ip_rate=args.ip_rate,
        ip_policy=IPPolicy(args.ip_policy),
    )
    return print_run(run, setup)


if __name__ == "__main__":
    sys.exit(main())
