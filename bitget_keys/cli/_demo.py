"""
``bitget-keys demo``: provisioning at scale against the bundled emulator, on any machine.

It serves the emulator in process on a free loopback port, with Bitget's real limits
(each endpoint's per-UID rate, the per-IP limit, the quotas), makes up master accounts
there (every second one a Unified Trading Account, the others classic), writes an
example plan into a work directory, applies it with the progress display, applies it
again to show that nothing is left to do, and prints what the emulator saw: what it
holds, what was created on each kind of master, how many requests it accepted and
answered with 429, and the busiest second of each endpoint against Bitget's limit.

The plan names no mode: apply asks each master's and creates through its API family
(v2 for classic masters, v3 for unified ones), so one plan serves both.

Everything it writes stays in the work directory. The vault is opened with a fixed,
public, demo-only key (`DEMO_VAULT_KEY`), fine for made-up keys on an emulator and never
for real ones.
"""

from __future__ import annotations

import json
import random
import string
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

import attrs
from rich.console import Console
from rich.text import Text

from bitget_keys._client import Client, ClientConfig, ServerClock
from bitget_keys._endpoints import ACCOUNT_SETTINGS
from bitget_keys._gate import DispatchGate
from bitget_keys.cli._common import apply_with_progress
from bitget_keys.cli._demo_audit import (
    ModeSummary,
    busiest_seconds,
    count,
    create_requests,
    plural,
)
from bitget_keys.cli._signals import GracefulStop
from bitget_keys.errors import ConfigurationError
from bitget_keys.provision.apply import ItemResult, Status
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.plan import MAX_KEYS, MAX_SUBACCOUNTS, AccountSpec, load_plan
from bitget_keys.provision.progress import FAILURES, Mode, Reporter
from bitget_keys.provision.vault import VAULT_KEY_ENV, SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount, Limits

__all__ = [
    "DEMO_VAULT_KEY",
    "DemoSize",
    "DemoSummary",
    "ModeSummary",
    "example_plan",
    "master_mode",
    "run_demo",
    "subaccount_name",
]

#: The demo vault's key: public, demo-only. Never protect real secrets with it.
DEMO_VAULT_KEY: Final = "demo-only-vault-key-not-secret"

PLAN_FILE: Final = "demo-plan.toml"
VAULT_FILE: Final = "demo.vault"
STATE_FILE: Final = "demo.state"

#: The demo's kinds of master: (mode, the API family that serves it). Masters take them
#: in turn, so every demo of two masters or more has both.
MODES: Final = (("classic", "v2"), ("unified", "v3"))

#: The whitelist of every demo key: a documentation address (RFC 5737), not yours.
DEMO_IP: Final = "203.0.113.7"

#: The first key of each sub-account, then the second; further keys repeat the second,
#: numbered (``read3``, ``read4``, ...).
_KEY_SHAPES: Final = (
    ("trade", ["spot_trade"], None),
    ("read", ["read"], "readonly"),
)


@attrs.frozen(kw_only=True)
class DemoSize:
    """How much the demo provisions."""

    accounts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    subaccounts: int = attrs.field(
        default=20, validator=[attrs.validators.ge(1), attrs.validators.le(MAX_SUBACCOUNTS)]
    )
    keys: int = attrs.field(
        default=2, validator=[attrs.validators.ge(1), attrs.validators.le(MAX_KEYS)]
    )

    @property
    def planned_subaccounts(self) -> int:
        """Sub-accounts the plan asks for."""
        return self.accounts * self.subaccounts

    @property
    def planned_keys(self) -> int:
        """Keys the plan asks for."""
        return self.planned_subaccounts * self.keys


def _letters(number: int, width: int) -> str:
    text = ""
    for _ in range(width):
        number, digit = divmod(number, 26)
        text = string.ascii_lowercase[digit] + text
    return text


def subaccount_name(account: int, index: int) -> str:
    """The demo name (8 English letters, unique in the plan) of one sub-account."""
    return f"demo{_letters(account, 2)}{_letters(index, 2)}"


def _env_prefix(account: int) -> str:
    return f"DEMO_MASTER_{account + 1}"


def _master_name(account: int) -> str:
    return f"master-{account + 1}"


def master_mode(account: int) -> str:
    """The emulator mode of the demo's ``account``-th master (from 0): classic, then unified."""
    return MODES[account % len(MODES)][0]


_HEADER: Final = """\
# An example bitget-keys plan, written by `bitget-keys demo`.
#
# A plan says what should exist; `bitget-keys apply` creates only what is missing, so
# running it again changes nothing. `bitget-keys plan FILE` shows what apply would do.
#
# - Credentials are never written here. `credentials = "env:DEMO_MASTER_1"` reads
#   DEMO_MASTER_1_API_KEY, DEMO_MASTER_1_SECRET_KEY, DEMO_MASTER_1_PASSPHRASE (and the
#   optional DEMO_MASTER_1_UID) from the environment.
# - A sub-account's name is 8 English letters, unique across all of Bitget; its label
#   (1-20 characters, unique per master) is how apply recognises it later. Labels hold
#   no '/', backslash, edge spaces or control characters: they must print as written.
# - No account names a mode: apply asks Bitget whether each master is classic or a
#   Unified Trading Account and creates through that master's API, so this one plan
#   serves both (the demo's emulator makes master-2, master-4, ... unified).
# - On a classic master (v2) the first key of a sub-account is created with it
#   (batch-create, five per call, one call per second): spot_trade, margin_trade,
#   contract_trade or read, and no perm_type. Further keys are added one by one (five
#   per second) and may also have a perm_type ([defaults] perm_type applies to them only).
# - On a unified master (v3) create-sub makes the sub-account (its name, lowercased, is
#   the username; its label the note), then create-sub-api makes each key, the first
#   one too, each endpoint ten per second. The trading permissions become uta_trade; a
#   key with only read is a read_only key; perm_type readonly is read_only, else
#   read_write. A key's label is its note.
# - At most 20 sub-accounts per master and 10 keys per sub-account.
# - Passphrases are generated unless a key says `passphrase = "env:NAME"`; each new key's
#   secret and passphrase go to the encrypted vault the moment Bitget answers.
# - ip_list is the key's whitelist: your public egress IP. 203.0.113.7 is a documentation
#   address, fine for the emulator; put yours here for real.
"""


def example_plan(size: DemoSize) -> str:
    """The demo plan, as TOML with its explanatory header."""
    lines = [_HEADER, "[defaults]", f'ip_list = ["{DEMO_IP}"]', ""]
    for account in range(size.accounts):
        lines += [
            "[[accounts]]",
            f'name = "{_master_name(account)}"',
            f'credentials = "env:{_env_prefix(account)}"',
            "",
        ]
        for index in range(size.subaccounts):
            lines += [
                "[[accounts.subaccounts]]",
                f'name = "{subaccount_name(account, index)}"',
                f'label = "m{account + 1}-sub{index + 1:02d}"',
                "",
            ]
            for key in range(size.keys):
                label, permissions, perm_type = _KEY_SHAPES[min(key, len(_KEY_SHAPES) - 1)]
                if key >= len(_KEY_SHAPES):
                    label = f"{label}{key + 1}"
                lines += [
                    "[[accounts.subaccounts.keys]]",
                    f'label = "{label}"',
                    f"permissions = {json.dumps(permissions)}",
                ]
                if perm_type is not None:
                    lines.append(f'perm_type = "{perm_type}"')
                lines.append("")
    return "\n".join(lines)


def _workdir(workdir: Path | None) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="bitget-keys-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    taken = [name for name in (PLAN_FILE, VAULT_FILE, STATE_FILE) if (workdir / name).exists()]
    if taken:
        msg = (
            f"{workdir} already holds a demo ({', '.join(taken)}); "
            "choose another --workdir or remove them"
        )
        raise ConfigurationError(msg)
    return workdir


def _mode_summaries(
    masters: Sequence[EmulatorAccount],
    results: Sequence[ItemResult],
    emulator: Emulator,
) -> tuple[ModeSummary, ...]:
    """Per mode: its masters, what the first apply created there, and their requests."""
    modes = {_master_name(index): master.mode for index, master in enumerate(masters)}
    uids = {master.uid: master.mode for master in masters}
    summaries = []
    for mode, api in MODES:
        lanes = [lane for (uid, _), lane in emulator.audit.lanes.items() if uids.get(uid) == mode]
        own = [result for result in results if modes.get(result.account) == mode]
        summaries.append(
            ModeSummary(
                mode=mode,
                api=api,
                masters=sum(1 for master in masters if master.mode == mode),
                subaccounts=count(own, "subaccount", Status.CREATED),
                keys=count(own, "key", Status.CREATED),
                accepted=sum(len(lane.accepted) for lane in lanes),
                refused=sum(lane.rejected for lane in lanes),
            )
        )
    return tuple(summaries)


@attrs.frozen(kw_only=True)
class DemoSummary:
    """What the demo did and what the emulator saw."""

    size: DemoSize
    workdir: Path
    vault: Path
    created_subaccounts: int
    created_keys: int
    #: The same per mode of master (classic, then unified), with their requests.
    modes: tuple[ModeSummary, ...]
    #: Items of either apply that did not succeed.
    failed: int
    #: Items the second apply created or modified, and the create requests it sent.
    changed_on_rerun: int
    creates_on_rerun: int
    held_subaccounts: int
    held_keys: int
    vault_records: int
    accepted: int
    throttled: int
    refused: int
    #: Refusals of the account-mode question: apply asks each master once, and a classic
    #: one answers 40084, which is how apply tells it is classic.
    mode_probes: int
    #: Per endpoint: the most requests one UID got accepted in one window, and the limit.
    busiest: dict[str, tuple[int, int]]
    first_seconds: float
    second_seconds: float
    wall_seconds: float
    #: A signal stopped the demo (the second apply did not run).
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Everything planned exists, once, with its secret stored; the re-run did nothing."""
        return (
            not self.interrupted
            and self.failed == 0
            and self.changed_on_rerun == 0
            and self.creates_on_rerun == 0
            and self.held_subaccounts == self.size.planned_subaccounts
            and self.held_keys == self.size.planned_keys
            and self.vault_records == self.held_keys
        )

    @property
    def list_command(self) -> str:
        """The shell command that lists the demo vault."""
        return f"{VAULT_KEY_ENV}={DEMO_VAULT_KEY} bitget-keys vault list --vault {self.vault}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "ok": self.ok,
            "interrupted": self.interrupted,
            "workdir": str(self.workdir),
            "vault": str(self.vault),
            "created": {"subaccounts": self.created_subaccounts, "keys": self.created_keys},
            "modes": {summary.mode: summary.to_dict() for summary in self.modes},
            "failed": self.failed,
            "rerun": {"changed": self.changed_on_rerun, "create_requests": self.creates_on_rerun},
            "emulator": {"subaccounts": self.held_subaccounts, "keys": self.held_keys},
            "vault_records": self.vault_records,
            "requests": {
                "accepted": self.accepted,
                "throttled": self.throttled,
                "refused": self.refused,
                "refused_mode_probes": self.mode_probes,
            },
            "busiest_second": {
                name: {"accepted": densest, "limit": limit}
                for name, (densest, limit) in self.busiest.items()
            },
            "seconds": {
                "first_apply": round(self.first_seconds, 3),
                "second_apply": round(self.second_seconds, 3),
                "wall": round(self.wall_seconds, 3),
            },
        }

    def lines(self) -> list[str]:
        """The summary as text."""
        width = max((len(name) for name in self.busiest), default=0)
        first = (
            f"{self.created_subaccounts} sub-accounts and {self.created_keys} keys created, "
            f"{self.failed} failed, in {self.first_seconds:.1f} s"
        )
        second = (
            f"{self.changed_on_rerun} created or modified, {self.creates_on_rerun} create "
            f"requests, in {self.second_seconds:.1f} s"
        )
        if self.interrupted:
            second = "not run: the first was interrupted"
        held = f"holds {self.held_subaccounts} sub-accounts and {self.held_keys} keys"
        requests = (
            f"{self.accepted} accepted, {self.throttled} answered 429, {self.refused} refused"
        )
        if self.mode_probes:
            requests += (
                f" ({self.mode_probes} of them the mode question, which a classic master "
                "answers with 40084)"
            )
        stored = f"{self.vault_records} keys with their secrets, encrypted, in {self.vault}"
        return [
            "summary",
            f"  first apply:   {first}",
            *(
                f"  {summary.mode} ({summary.api}):".ljust(17) + summary.line()
                for summary in self.modes
            ),
            f"  second apply:  {second}",
            f"  emulator:      {held}",
            f"  requests:      {requests}",
            "  busiest second of one UID on each endpoint, against Bitget's limit:",
            *(
                f"    {name:<{width}}  {densest} of {limit}/s"
                for name, (densest, limit) in self.busiest.items()
            ),
            f"  wall time:     {self.wall_seconds:.1f} s",
            f"  vault:         {stored}",
            f"  list them:     {self.list_command}",
            "                 (a public, demo-only vault key: never use it for real secrets)",
            *(
                ["interrupted: the demo stopped before it ended"]
                if self.interrupted
                else []
                if self.ok
                else ["the demo did not end as expected: see the lines above"]
            ),
        ]


def _masters(size: DemoSize) -> tuple[list[EmulatorAccount], dict[str, str]]:
    """Made-up master accounts, and the environment their plan credentials read."""
    rng = random.SystemRandom()
    masters = [
        EmulatorAccount.generate(rng, mode=master_mode(index)) for index in range(size.accounts)
    ]
    environ: dict[str, str] = {}
    for index, master in enumerate(masters):
        prefix = _env_prefix(index)
        environ[f"{prefix}_API_KEY"] = master.api_key
        environ[f"{prefix}_SECRET_KEY"] = master.secret_key.reveal()
        environ[f"{prefix}_PASSPHRASE"] = master.passphrase.reveal()
        environ[f"{prefix}_UID"] = master.uid
    return masters, environ


class _Demo:
    """One demo run: the emulator, the work directory, and the output."""

    def __init__(  # noqa: PLR0917 - private; built in one place
        self,
        size: DemoSize,
        directory: Path,
        mode: Mode,
        out: TextIO,
        console: Console | None,
        clock: Callable[[], float],
    ) -> None:
        self.size = size
        self.directory = directory
        self.mode = mode
        self.out = out
        self.console = console
        self.clock = clock
        self.masters, self.environ = _masters(size)
        self.plan_path = directory / PLAN_FILE
        self.state = directory / STATE_FILE
        self.vault = SecretsVault.open(directory / VAULT_FILE, DEMO_VAULT_KEY)
        #: The exit status of a signal that stopped an apply (then the demo stops).
        self.interrupted: int | None = None

    def say(self, text: str = "") -> None:
        if self.mode is Mode.LIVE and self.console is not None:
            # Text, so that brackets in paths are not taken for markup.
            self.console.print(Text(text), soft_wrap=True)
        else:
            # With --json, stdout carries JSON only; the prose goes to stderr.
            stream = sys.stderr if self.mode is Mode.JSON else self.out
            print(text, file=stream, flush=True)

    def reporter(self) -> Reporter:
        # In plain-line mode the demo prints only the items that went wrong.
        return Reporter(self.mode, quiet=True, out=self.out, console=self.console, clock=self.clock)

    async def apply(self, emulator: Emulator, title: str) -> tuple[list[ItemResult], float]:
        """
        Apply the plan through the emulator; the results and the seconds it took, as
        the reporter measured them (the same figure its summary line states).

        Ctrl-C (or SIGTERM) stops it as it stops ``bitget-keys apply``: nothing new is
        sent, answers on the wire are awaited; `interrupted` then says why.
        """
        self.say(title)
        reporter = self.reporter()
        plan = load_plan(self.plan_path, environ=self.environ)
        clients: dict[str, Client] = {}
        server_clock = ServerClock()  # one time request for every master
        gate = DispatchGate()

        def client_for(account: AccountSpec) -> Client:
            if account.name not in clients:
                clients[account.name] = Client(
                    account.credentials,
                    base_url=emulator.base_url,
                    config=ClientConfig(),
                    server_clock=server_clock,
                    gate=gate,
                )
            return clients[account.name]

        try:
            with Journal(self.state) as journal, GracefulStop(gate, self.say) as stop:
                results = await apply_with_progress(
                    plan,
                    clients=client_for,
                    vault=self.vault,
                    journal=journal,
                    reporter=reporter,
                    gate=gate,
                )
        finally:
            for client in clients.values():
                await client.aclose()
        if stop.received is not None:
            self.interrupted = stop.exit_code
        self.say(reporter.summary())
        self.say()
        return results, reporter.elapsed

    async def run(self) -> DemoSummary:
        started = self.clock()
        self.plan_path.write_text(example_plan(self.size), encoding="utf-8")
        size = self.size
        # The default Limits are Bitget's: documented per-UID rates, 6,000 requests a
        # minute per IP with its lockout, 20 sub-accounts per master, 10 keys each.
        async with Emulator(self.masters, limits=Limits()) as emulator:
            self.say(
                f"bitget-keys demo: {plural(size.accounts, 'master account')} x "
                f"{plural(size.subaccounts, 'sub-account')} x {plural(size.keys, 'key')}, "
                f"against the bundled emulator at {emulator.base_url} (with Bitget's rate "
                "limits and quotas)"
            )
            self.say(f"work directory: {self.directory}")
            self.say(f"  {PLAN_FILE}  the example plan (its header explains the format)")
            self.say(f"  {VAULT_FILE}      the encrypted vault (demo-only key)")
            self.say(f"  {STATE_FILE}      the apply journal")
            self.say()
            first, first_seconds = await self.apply(emulator, "first apply: creating everything")
            creates_before = create_requests(emulator)
            second: list[ItemResult] = []
            second_seconds = 0.0
            if self.interrupted is None:
                second, second_seconds = await self.apply(
                    emulator, "second apply: the same plan again"
                )
            creates_on_rerun = create_requests(emulator) - creates_before
        held = [emulator.exchange.subaccounts(master.uid) for master in self.masters]
        audit = emulator.audit
        return DemoSummary(
            size=size,
            workdir=self.directory,
            vault=self.vault.path,
            created_subaccounts=count(first, "subaccount", Status.CREATED),
            created_keys=count(first, "key", Status.CREATED),
            modes=_mode_summaries(self.masters, first, emulator),
            failed=sum(1 for result in [*first, *second] if result.status in FAILURES),
            changed_on_rerun=sum(
                1 for result in second if result.status in {Status.CREATED, Status.MODIFIED}
            ),
            creates_on_rerun=creates_on_rerun,
            held_subaccounts=sum(len(subs) for subs in held),
            held_keys=sum(len(sub["keys"]) for subs in held for sub in subs),
            vault_records=sum(1 for _ in self.vault.records()),
            accepted=audit.accepted,
            throttled=audit.throttled,
            refused=sum(lane.rejected for lane in audit.lanes.values()),
            mode_probes=sum(
                lane.rejected
                for (_, name), lane in audit.lanes.items()
                if name == ACCOUNT_SETTINGS.name
            ),
            busiest=busiest_seconds(emulator),
            first_seconds=first_seconds,
            second_seconds=second_seconds,
            wall_seconds=self.clock() - started,
            interrupted=self.interrupted is not None,
        )


async def run_demo(
    size: DemoSize,
    *,
    mode: Mode,
    workdir: Path | None = None,
    out: TextIO | None = None,
    console: Console | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """
    Run the demo; 0 when everything planned was made once and a second apply did nothing.

    ``mode`` shows the items (live display, plain lines of what went wrong, or JSON
    lines, then a ``{"summary": ...}`` line); ``console`` is the live display's.

    Raises:
        ConfigurationError: ``workdir`` already holds a demo.
    """
    out = out if out is not None else sys.stdout
    if mode is Mode.LIVE and console is None:
        console = Console(file=out)
    demo = _Demo(size, _workdir(workdir), mode, out, console, clock)
    summary = await demo.run()
    if mode is Mode.JSON:
        print(json.dumps({"summary": summary.to_dict()}), file=out, flush=True)
    for line in summary.lines():
        demo.say(line)
    if demo.interrupted is not None:
        return demo.interrupted
    return 0 if summary.ok else 1
