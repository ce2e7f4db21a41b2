"""
``bitget-keys demo``: provisioning at scale against the bundled emulator, on any machine.

It serves the emulator in process on a free loopback port, with Bitget's real limits
(each endpoint's per-UID rate, the per-IP limit, the quotas), makes up master accounts
there, writes an example plan into a work directory, applies it with the progress
display, applies it again to show that nothing is left to do, and prints what the
emulator saw: what it holds, how many requests it accepted and answered with 429, and
the busiest second of each endpoint against Bitget's limit.

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
from bitget_keys._endpoints import ENDPOINTS
from bitget_keys.cli._common import apply_with_progress
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
    "example_plan",
    "run_demo",
    "subaccount_name",
]

#: The demo vault's key: public, demo-only. Never protect real secrets with it.
DEMO_VAULT_KEY: Final = "demo-only-vault-key-not-secret"

PLAN_FILE: Final = "demo-plan.toml"
VAULT_FILE: Final = "demo.vault"
STATE_FILE: Final = "demo.state"

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
# - The first key of a sub-account is created with it (batch-create, five per call, one
#   call per second): spot_trade, margin_trade, contract_trade or read, and no
#   perm_type. Further keys are added one by one (five per second) and may also have a
#   perm_type ([defaults] perm_type applies to them only).
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
            f'name = "master-{account + 1}"',
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _count(results: Sequence[ItemResult], kind: str, status: Status) -> int:
    return sum(1 for result in results if result.kind == kind and result.status is status)


def _create_requests(emulator: Emulator) -> int:
    return sum(
        len(lane.accepted)
        for (_, name), lane in emulator.audit.lanes.items()
        if ENDPOINTS[name].creates
    )


def _busiest_seconds(emulator: Emulator) -> dict[str, tuple[int, int]]:
    """Per endpoint: the most requests any UID got accepted in one window, and the limit."""
    busiest: dict[str, tuple[int, int]] = {}
    for (_, name), lane in emulator.audit.lanes.items():
        endpoint = ENDPOINTS[name]
        densest = lane.max_in_window(1000 * endpoint.window)
        if densest > busiest.get(name, (0, 0))[0]:
            busiest[name] = (densest, endpoint.rate)
    return dict(sorted(busiest.items()))


@attrs.frozen(kw_only=True)
class DemoSummary:
    """What the demo did and what the emulator saw."""

    size: DemoSize
    workdir: Path
    vault: Path
    created_subaccounts: int
    created_keys: int
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
    #: Per endpoint: the most requests one UID got accepted in one window, and the limit.
    busiest: dict[str, tuple[int, int]]
    first_seconds: float
    second_seconds: float
    wall_seconds: float

    @property
    def ok(self) -> bool:
        """Everything planned exists, once, with its secret stored; the re-run did nothing."""
        return (
            self.failed == 0
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
            "workdir": str(self.workdir),
            "vault": str(self.vault),
            "created": {"subaccounts": self.created_subaccounts, "keys": self.created_keys},
            "failed": self.failed,
            "rerun": {"changed": self.changed_on_rerun, "create_requests": self.creates_on_rerun},
            "emulator": {"subaccounts": self.held_subaccounts, "keys": self.held_keys},
            "vault_records": self.vault_records,
            "requests": {
                "accepted": self.accepted,
                "throttled": self.throttled,
                "refused": self.refused,
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
        held = f"holds {self.held_subaccounts} sub-accounts and {self.held_keys} keys"
        requests = (
            f"{self.accepted} accepted, {self.throttled} answered 429, {self.refused} refused"
        )
        stored = f"{self.vault_records} keys with their secrets, encrypted, in {self.vault}"
        return [
            "summary",
            f"  first apply:   {first}",
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
            *([] if self.ok else ["the demo did not end as expected: see the lines above"]),
        ]


def _masters(size: DemoSize) -> tuple[list[EmulatorAccount], dict[str, str]]:
    """Made-up master accounts, and the environment their plan credentials read."""
    rng = random.SystemRandom()
    masters = [EmulatorAccount.generate(rng) for _ in range(size.accounts)]
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
        """Apply the plan through the emulator; the results and the seconds it took."""
        self.say(title)
        reporter = self.reporter()
        started = self.clock()
        plan = load_plan(self.plan_path, environ=self.environ)
        clients: dict[str, Client] = {}
        server_clock = ServerClock()  # one time request for every master

        def client_for(account: AccountSpec) -> Client:
            if account.name not in clients:
                clients[account.name] = Client(
                    account.credentials,
                    base_url=emulator.base_url,
                    config=ClientConfig(),
                    server_clock=server_clock,
                )
            return clients[account.name]

        try:
            with Journal(self.state) as journal:
                results = await apply_with_progress(
                    plan, clients=client_for, vault=self.vault, journal=journal, reporter=reporter
                )
        finally:
            for client in clients.values():
                await client.aclose()
        self.say(reporter.summary())
        self.say()
        return results, self.clock() - started

    async def run(self) -> DemoSummary:
        started = self.clock()
        self.plan_path.write_text(example_plan(self.size), encoding="utf-8")
        size = self.size
        # The default Limits are Bitget's: documented per-UID rates, 6,000 requests a
        # minute per IP with its lockout, 20 sub-accounts per master, 10 keys each.
        async with Emulator(self.masters, limits=Limits()) as emulator:
            self.say(
                f"bitget-keys demo: {_plural(size.accounts, 'master account')} x "
                f"{_plural(size.subaccounts, 'sub-account')} x {_plural(size.keys, 'key')}, "
                f"against the bundled emulator at {emulator.base_url} (with Bitget's rate "
                "limits and quotas)"
            )
            self.say(f"work directory: {self.directory}")
            self.say(f"  {PLAN_FILE}  the example plan (its header explains the format)")
            self.say(f"  {VAULT_FILE}      the encrypted vault (demo-only key)")
            self.say(f"  {STATE_FILE}      the apply journal")
            self.say()
            first, first_seconds = await self.apply(emulator, "first apply: creating everything")
            creates_before = _create_requests(emulator)
            second, second_seconds = await self.apply(emulator, "second apply: the same plan again")
            creates_on_rerun = _create_requests(emulator) - creates_before
        held = [emulator.exchange.subaccounts(master.uid) for master in self.masters]
        audit = emulator.audit
        return DemoSummary(
            size=size,
            workdir=self.directory,
            vault=self.vault.path,
            created_subaccounts=_count(first, "subaccount", Status.CREATED),
            created_keys=_count(first, "key", Status.CREATED),
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
            busiest=_busiest_seconds(emulator),
            first_seconds=first_seconds,
            second_seconds=second_seconds,
            wall_seconds=self.clock() - started,
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
    return 0 if summary.ok else 1
