"""
Makespan of rotating keys, against the bound Bitget's limits allow.

``M`` masters, each with ``S`` sub-accounts of ``K`` keys (the keys seeded into the
emulator and the vault, as an earlier apply would have left them), all rotated by one
run with no grace, through `survey` and `run_rotations` (what ``bitget-keys rotate
--grace 0s`` runs), all masters at once through one `RateLimitScheduler`.

One rotation sends, per key: the create (on the master's UID), one signed check with
the new key (account info, on the *sub-account's* UID: v2 1/s, v3 5/s), and the revoke
(v2 neutralise = modify, v3 delete-sub-api, on the master's UID); per sub-account, two
reads of its key list (before: which key is the old one, and the 10-key count; after
the creates: the new keys' rights and whitelist as Bitget lists them); per master, the
account-settings call that tells its mode (the plan does not pin it) and one read of
its sub-account list. Those are the **necessary requests**; anything beyond them
(retries, 429s) is the tool's own cost.

The bound is the larger of two terms:

- **Per UID**: for every lane (UID, endpoint) the run uses, the requests it must carry
  at the endpoint's documented rate, as early as allowed: ``(n - 1) / rate``; the
  master's create and revoke lanes carry ``S·K`` each, its key-list lane ``2·S``, each
  sub-account's account-info lane ``K``. The largest is the term (printed at the
  scheduler's 5% margin too).
- **Per IP**: the necessary requests through one IP budget: evenly paced, ``n / rate``
  (95/s by default); rolling, ``window`` for each whole ``limit`` before the last.

At 50 masters x 10 sub-accounts x 2 keys the IP term dominates (4,100 requests at
95/s: 43.2 s; the busiest UID lane needs 3.8 s). The makespan runs from the survey's
first request to the last rotation's end; the clients' and vault's set-up are outside.
The emulator runs in a child process serving HTTP on 127.0.0.1 (``--in-process``: its
in-process transport)::

    python benchmarks/rotation_makespan.py --masters 50 --subaccounts 10 --keys 2
    python benchmarks/rotation_makespan.py --masters 50 --subaccounts 10 --keys 2 --unified 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from benchmarks import _emulator_child as child
from benchmarks.provision_makespan import _name, ip_bound, is_unified, masters
from bitget_keys import Client, ClientConfig, Credentials
from bitget_keys import _endpoints as ep
from bitget_keys._gate import DispatchGate
from bitget_keys.lifecycle.rotation import KEY_KIND, RotationEvent, RotationSettings
from bitget_keys.lifecycle.rotation_journal import RotationJournal
from bitget_keys.lifecycle.rotation_run import (
    Selector,
    held_records,
    master_contexts,
    run_rotations,
    survey,
)
from bitget_keys.limits import IPBudget, IPPolicy
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.plan import Plan, parse_plan
from bitget_keys.provision.vault import SecretsVault, VaultRecord
from bitget_keys.testing import Emulator, EmulatorAccount, LaneAudit, Limits

VAULT_KEY = "benchmark vault passphrase"
IP_LIST = ("203.0.113.7",)
PERMISSIONS = ("spot_trade", "read")


@attrs.frozen(kw_only=True)
class Setup:
    masters: int
    subaccounts: int
    keys: int
    unified: float = 0.0
    ip_budget: bool = True
    ip_rate: float = 95.0
    ip_policy: IPPolicy = IPPolicy.EVEN
    margin: float = 0.05
    in_process: bool = False
    workdir: Path = attrs.field(factory=Path.cwd)

    @property
    def budget(self) -> IPBudget:
        return IPBudget(rate=self.ip_rate, policy=self.ip_policy)

    @property
    def rotations(self) -> int:
        return self.masters * self.subaccounts * self.keys

    def requests_of(self, index: int) -> int:
        """The necessary requests of master ``index`` (see the module's docstring)."""
        del index  # the same for both families
        return 2 + 2 * self.subaccounts + 3 * self.subaccounts * self.keys

    @property
    def necessary_requests(self) -> int:
        return sum(self.requests_of(i) for i in range(self.masters))


def lanes_of(setup: Setup, *, unified: bool) -> dict[str, tuple[int, int]]:
    """Each endpoint's lane of one master (or of one of its sub-accounts): (requests, rate)."""
    keys = setup.subaccounts * setup.keys
    names = (
        (
            "create_uta_subaccount_api_key",
            "delete_uta_subaccount_api_key",
            "list_uta_subaccount_api_keys",
            "account_info_v3",
        )
        if unified
        else (
            "create_virtual_subaccount_api_key",
            "modify_virtual_subaccount_api_key",
            "list_virtual_subaccount_api_keys",
            "account_info",
        )
    )
    counts = (keys, keys, 2 * setup.subaccounts, setup.keys)
    return {
        name: (count, ep.ENDPOINTS[name].rate) for name, count in zip(names, counts, strict=True)
    }


def per_uid_bound(setup: Setup, margin: float) -> float:
    """The busiest lane's last request, each lane sent as early as its rate allows."""
    kinds = {is_unified(i, setup.unified) for i in range(setup.masters)}
    return max(
        (count - 1) / rate * (1 + margin)
        for unified in kinds
        for count, rate in lanes_of(setup, unified=unified).values()
    )


def seed(emulator: Emulator, setup: Setup) -> list[dict[str, Any]]:
    """The sub-accounts and keys an apply would have made, as if made in the web UI."""
    exchange = emulator.exchange
    made = []
    for a, master in enumerate(emulator.accounts):
        for s in range(setup.subaccounts):
            name = _name(a * setup.subaccounts + s)
            sub_uid = exchange.add_subaccount(master.uid, name, f"s{s}")
            for k in range(setup.keys):
                label = f"s{s}" if k == 0 and not master.unified else f"k{k}"
                passphrase = f"Seeded{a}x{s}x{k}"
                key = exchange.add_key(
                    master.uid,
                    sub_uid,
                    label=label,
                    permissions=PERMISSIONS,
                    ip_list=IP_LIST,
                    passphrase=passphrase,
                    perm_type="read_write" if master.unified else None,
                )
                made.append(
                    {
                        "account": f"desk{a}",
                        "master_uid": master.uid,
                        "api_key": key["api_key"],
                        "secret_key": key["secret_key"],
                        "passphrase": passphrase,
                        "label": label,
                        "subaccount_uid": sub_uid,
                        "subaccount_name": name,
                        "subaccount_label": f"s{s}",
                        "api_family": "v3" if master.unified else "v2",
                    }
                )
    return made


def build_plan(setup: Setup, accounts: list[EmulatorAccount]) -> Plan:
    environ: dict[str, str] = {}
    rows = []
    for a, master in enumerate(accounts):
        prefix = f"ROT{a}"
        environ |= child.master_environ(prefix, master)
        subs = [
            {
                "name": _name(a * setup.subaccounts + s),
                "label": f"s{s}",
                "keys": [
                    {"label": f"k{k}", "permissions": list(PERMISSIONS)} for k in range(setup.keys)
                ],
            }
            for s in range(setup.subaccounts)
        ]
        rows.append({"name": f"desk{a}", "credentials": f"env:{prefix}", "subaccounts": subs})
    data = {"defaults": {"ip_list": list(IP_LIST), "perm_type": "read_and_write"}, "accounts": rows}
    return parse_plan(data, environ=environ)


def emulator_for(setup: Setup) -> Emulator:
    return Emulator(
        masters(setup.masters, setup.unified),
        limits=Limits(ip_limit=6000 if setup.ip_budget else None),
    )


def _serve(setup: Setup) -> child.Serve:
    """The seeded emulator, in the child process."""

    async def serve(stack: contextlib.AsyncExitStack) -> tuple[Any, Callable[[], dict[str, Any]]]:
        emulator = await stack.enter_async_context(emulator_for(setup))
        return (emulator.base_url, seed(emulator, setup)), lambda: child.lane_audit(emulator)

    return serve


async def rotate(
    setup: Setup, target: str | Emulator, seeded: Sequence[dict[str, Any]], workdir: Path
) -> tuple[float, list[RotationEvent]]:
    """Rotate every key; return the makespan and each rotation's outcome."""
    accounts = masters(setup.masters, setup.unified)
    plan = build_plan(setup, accounts)
    pacing = child.scheduler(margin=setup.margin, budget=setup.budget if setup.ip_budget else None)
    config = ClientConfig(sync_clock=False, request_timeout=60)
    made: list[Client] = []

    def client(credentials: Credentials) -> Client:
        where: dict[str, Any] = (
            {"transport": target.transport()}
            if isinstance(target, Emulator)
            else {"base_url": target}
        )
        made.append(Client(credentials, scheduler=pacing, config=config, gate=gate, **where))
        return made[-1]

    vault = SecretsVault.open(workdir / "bench.vault", VAULT_KEY)
    for row in seeded:
        vault.append(VaultRecord(kind=KEY_KIND, **row))
    gate = DispatchGate()
    clients = {account.name: client(account.credentials) for account in plan.accounts}
    records = held_records(vault.records())
    settings = RotationSettings(grace=0.0)
    with (
        Journal(workdir / "bench.state") as journal,
        contextlib.closing(RotationJournal(workdir / "bench.state")) as rotations,
    ):
        ledger = Ledger(vault, journal)

        context = master_contexts(
            ledger=ledger,
            journal=rotations,
            settings=settings,
            key_client=lambda _, credentials: client(credentials),
            on_event=lambda _: None,
            audit=None,
            gate=gate,
            records=records,
        )
        started = time.perf_counter()
        found = await survey(
            plan,
            context,
            lambda account: clients[account.name],
            selectors=[Selector("*", "*", "*")],
            due=False,
            finish=False,
            journal_unfinished=rotations.unfinished,
        )
        outcomes = await run_rotations(found)
        makespan = time.perf_counter() - started
    for each in made:
        await each.aclose()
    return makespan, outcomes


def run(setup: Setup) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-rotation-", dir=setup.workdir) as directory:
        workdir = Path(directory)

        async def in_process() -> tuple[tuple[float, list[RotationEvent]], dict[str, Any]]:
            emulator = emulator_for(setup)
            seeded = seed(emulator, setup)
            measured = await rotate(setup, emulator, seeded, workdir)
            return measured, child.lane_audit(emulator)

        def drive(hello: tuple[str, list[dict[str, Any]]]) -> tuple[float, list[RotationEvent]]:
            base_url, seeded = hello
            return asyncio.run(rotate(setup, base_url, seeded, workdir))

        (makespan, outcomes), audit = child.measure(
            in_process=in_process if setup.in_process else None, serve=_serve(setup), drive=drive
        )
    return report(setup, makespan, outcomes, audit)


def report(
    setup: Setup, makespan: float, outcomes: list[RotationEvent], audit: dict[str, Any]
) -> dict[str, Any]:
    lanes: dict[tuple[str, str], tuple[list[float], int]] = audit["lanes"]
    uid_physical = per_uid_bound(setup, 0.0)
    uid_margin = per_uid_bound(setup, setup.margin)
    ip_term = ip_bound(setup.budget, setup.necessary_requests) if setup.ip_budget else 0.0
    physical = max(uid_physical, ip_term)
    sent, densest = child.endpoint_tallies(lanes)
    refused = sum(audit["refused"].values())
    unified = sum(is_unified(i, setup.unified) for i in range(setup.masters))
    statuses: dict[str, int] = {}
    for event in outcomes:
        statuses[str(event.outcome)] = statuses.get(str(event.outcome), 0) + 1
    return {
        "setup": (
            f"{setup.masters} masters ({unified} unified) x {setup.subaccounts} "
            f"sub-accounts x {setup.keys} keys = "
            f"{setup.rotations} rotations, grace 0, IP budget "
            f"{f'{setup.ip_policy.value} {setup.ip_rate:g}/s' if setup.ip_budget else 'off'}, "
            f"{'in process' if setup.in_process else 'loopback'}"
        ),
        "makespan_s": round(makespan, 2),
        "bound_s": round(physical, 2),
        "ratio": round(makespan / physical, 3),
        "per_uid_bound_s": (round(uid_physical, 2), round(uid_margin, 2)),
        "ip_term_s": round(ip_term, 2),
        "necessary_requests": setup.necessary_requests,
        "requests_sent": sum(sent.values()) + refused,
        "requests_by_endpoint": sent,
        "429s": sum(throttled for _, throttled in lanes.values()),
        "densest_window_by_endpoint": densest,
        "densest_window_all": LaneAudit(
            accepted=[t for times, _ in lanes.values() for t in times]
        ).max_in_window(),
        "complete": statuses == {"done": setup.rotations},
        "statuses": statuses,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--masters", type=int, default=50)
    parser.add_argument("--subaccounts", type=int, default=10, help="per master (at most 20)")
    parser.add_argument("--keys", type=int, default=2, help="per sub-account (at most 9)")
    parser.add_argument("--unified", type=float, default=0.0, help="share of unified masters")
    parser.add_argument("--ip-budget", choices=("on", "off"), default="on")
    parser.add_argument("--ip-rate", type=float, default=95.0)
    parser.add_argument("--ip-policy", choices=("even", "rolling"), default="even")
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    setup = Setup(
        masters=args.masters,
        subaccounts=args.subaccounts,
        keys=args.keys,
        unified=args.unified,
        ip_budget=args.ip_budget == "on",
        ip_rate=args.ip_rate,
        ip_policy=IPPolicy(args.ip_policy),
        margin=args.margin,
        in_process=args.in_process,
        workdir=args.workdir,
    )
    return child.print_run(run, setup)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
