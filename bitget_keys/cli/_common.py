"""What several commands share: the vault passphrase, opening a vault, locks, clients."""

from __future__ import annotations

import getpass
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bitget_keys._client import Client, ClientConfig, Scheduler, ServerClock
from bitget_keys._client.observe import RequestObserver
from bitget_keys._gate import DispatchGate
from bitget_keys.cli._vault_key import VAULT_KEY_FILE_ENV, key_from_sources
from bitget_keys.errors import (
    ConfigurationError,
    VaultMissingError,
)
from bitget_keys.provision.apply import ItemResult, apply_plan
from bitget_keys.provision.files import refuse_directory
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.lock import FileLock, LockHolder, describe
from bitget_keys.provision.plan import AccountSpec, Plan
from bitget_keys.provision.preview import plan_work
from bitget_keys.provision.progress import Mode, Reporter
from bitget_keys.provision.vault import (
    VAULT_KEY_ENV,
    SecretsVault,
    VaultRecord,
    VaultScan,
)

#: Where ``apply --redis`` comes from when it is not given.
REDIS_URL_ENV = "BITGET_KEYS_REDIS_URL"


#: Where ``apply --egress`` comes from when it is not given.
EGRESS_ENV = "BITGET_KEYS_EGRESS"


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def ask_secret(prompt: str) -> str:
    try:
        return getpass.getpass(prompt)
    except EOFError:
        return ""


def vault_passphrase(path: Path, *, new: bool, key_file: str | None = None) -> str:
    """
    The vault passphrase: from ``key_file`` (``--vault-key-file``; ``-`` is stdin),
    ``$BITGET_KEYS_VAULT_KEY`` or ``$BITGET_KEYS_VAULT_KEY_FILE``, else asked for on
    the terminal (see `key_from_sources`).

    A new vault's passphrase is asked for twice, and the two must match; it is checked
    for length before anything is created.
    """
    key = key_from_sources(key_file)
    if key:
        if new:
            SecretsVault.check_new_passphrase(key)
        return key
    if not stdin_is_terminal():
        msg = (
            f"no vault key: set {VAULT_KEY_ENV} to the vault passphrase (or "
            f"{VAULT_KEY_FILE_ENV} to a file holding it, or pass --vault-key-file), "
            "or run from a terminal to be asked for it"
        )
        raise ConfigurationError(msg)
    if not new:
        key = ask_secret(f"Passphrase of the vault {path}: ")
        if not key:
            msg = f"no vault passphrase given (or set {VAULT_KEY_ENV})"
            raise ConfigurationError(msg)
        return key
    return ask_new_passphrase(
        f"Passphrase for the new vault {path}",
        "The same passphrase again: ",
        "the two passphrases differ; no vault was created",
    )


def ask_new_passphrase(prompt: str, again: str, differ: str) -> str:
    """
    A new passphrase, asked twice on the terminal: at least 12 characters, both the same.

    Raises:
        ConfigurationError: it is too short, or the two answers differ (``differ`` says so).
    """
    key = ask_secret(f"{prompt} (12 characters or more): ")
    SecretsVault.check_new_passphrase(key)
    if key != ask_secret(again):
        raise ConfigurationError(differ)
    return key


def open_vault(path: Path, key_file: str | None = None) -> SecretsVault:
    """Open the existing vault at ``path`` (reading never creates one)."""
    refuse_directory(path, "vault")
    if not SecretsVault.exists(path):
        raise VaultMissingError(str(path), "no vault here (apply --create-vault creates one)")
    return SecretsVault.open(path, vault_passphrase(path, new=False, key_file=key_file))


def repair_hint(path: Path) -> str:
    return f"`bitget-keys vault repair --vault {shlex.quote(str(path))}`"


def intact_records(vault: SecretsVault) -> tuple[VaultRecord, ...]:
    """The vault's intact records; any damage is named on stderr, with how to repair it."""
    scan = vault.scan()
    warn_damage(vault.path, scan)
    return scan.records


def warn_damage(path: Path, scan: VaultScan) -> None:
    if scan.clean:
        return
    print(
        f"bitget-keys: warning: vault {path} is damaged: {len(scan.damage)} damaged line(s); "
        f"using its {len(scan.entries)} intact record(s)",
        file=sys.stderr,
    )
    for damage in scan.damage:
        print(f"bitget-keys: warning:   {damage}", file=sys.stderr)
    print(
        f"bitget-keys: {repair_hint(path)} recovers every intact record into a repaired vault",
        file=sys.stderr,
    )


async def take_lock(lock: FileLock, *, wait: bool) -> None:
    """Take ``lock`` now, or (``wait``) once its holder lets go, saying so once."""
    if not wait:
        lock.acquire()
        return

    def waiting(holder: LockHolder | None) -> None:
        print(
            f"bitget-keys: waiting for {lock.path}, in use by {describe(holder)}",
            file=sys.stderr,
            flush=True,
        )

    await lock.acquire_waiting(on_wait=waiting)


#: Where a master's requests go: the scheduler that paces them, the proxy (if any), and
#: the observers of that way out (beside those every client has).
Route = Callable[[AccountSpec], tuple[Scheduler | None, str | None, Sequence[RequestObserver]]]


def make_clients(
    base_url: str | None,
    scheduler: Scheduler | None = None,
    gate: DispatchGate | None = None,
    observers: Sequence[RequestObserver] = (),
    *,
    route: Route | None = None,
) -> tuple[dict[str, Client], Any]:
    """
    One client per plan account, made on first use: paced by ``scheduler`` directly, or
    by the scheduler, through the proxy and watched by the observers ``route`` gives the
    account (and by ``observers``).
    """
    clients: dict[str, Client] = {}
    # Measured once for every master: Bitget's time endpoint allows 20/s per IP.
    server_clock = ServerClock()

    def client_for(account: AccountSpec) -> Client:
        if account.name not in clients:
            pacing, proxy, watching = route(account) if route else (scheduler, None, ())
            clients[account.name] = Client(
                account.credentials,
                base_url=base_url,
                config=ClientConfig(proxy=proxy),
                scheduler=pacing,
                server_clock=server_clock,
                gate=gate,
                observers=(*observers, *watching),
            )
        return clients[account.name]

    return clients, client_for


async def apply_with_progress(
    plan: Plan,
    *,
    clients: Callable[[AccountSpec], Client],
    reporter: Reporter,
    vault: SecretsVault | None = None,
    journal: Journal | None = None,
    ledger: Ledger | None = None,
    gate: DispatchGate | None = None,
) -> list[ItemResult]:
    """
    Apply ``plan`` (see `apply_plan`), showing each result through ``reporter``.

    For the live display the planned totals are read first (as ``plan`` does), with a
    spinner; the other modes need no totals and start at once.
    """
    ledger = Ledger.of(ledger, vault, journal)
    if reporter.mode is Mode.LIVE:
        with reporter.console.status("reading live state"):
            reporter.expect(await plan_work(plan, clients, ledger.vault))
    with reporter:
        return await apply_plan(
            plan, clients=clients, ledger=ledger, gate=gate, on_result=reporter.on_result
        )
