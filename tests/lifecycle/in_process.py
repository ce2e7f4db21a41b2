"""
apply and rotate in the test's own process, against the emulator's in-process transport
(no sockets), so a test can run them on the loop's fake clock or break them in between.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from bitget_keys import Client, ClientConfig, Credentials, RateLimitScheduler
from bitget_keys._client.clock import wall_clock_ms
from bitget_keys._gate import DispatchGate
from bitget_keys.lifecycle.rotation import RotationEvent, RotationSettings
from bitget_keys.lifecycle.rotation_journal import Rotation, RotationJournal
from bitget_keys.lifecycle.rotation_run import (
    Selector,
    held_records,
    master_contexts,
    run_rotations,
    survey,
)
from bitget_keys.provision.apply import ItemResult, apply_plan
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.plan import Plan
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator
from tests.lifecycle.rotation_harness import VAULT_KEY


class InProcess:
    """One plan's apply and rotations, with the vault and state file in ``folder``."""

    def __init__(
        self,
        emulator: Emulator,
        plan: Plan,
        folder: Path,
        *,
        wall: Callable[[], int] | None = None,
    ) -> None:
        self.emulator = emulator
        self.plan = plan
        self.folder = folder
        self.wall = wall
        self.scheduler = RateLimitScheduler(ip_budget=None)
        self.gate = DispatchGate()
        self.made: list[Client] = []
        self.masters = {account.name: self.client(account.credentials) for account in plan.accounts}
        self.events: list[RotationEvent] = []

    def client(self, credentials: Credentials) -> Client:
        self.made.append(
            Client(
                credentials,
                # From the address the plans' whitelists name, so new keys answer.
                transport=self.emulator.transport(client_ip="203.0.113.7"),
                scheduler=self.scheduler,
                config=ClientConfig(sync_clock=False),
                gate=self.gate,
                clock_ms=self.wall or wall_clock_ms,
            )
        )
        return self.made[-1]

    @property
    def vault(self) -> SecretsVault:
        return SecretsVault.open(self.folder / "keys.vault", VAULT_KEY)

    @property
    def state(self) -> Path:
        return self.folder / "keys.state"

    async def apply(self) -> list[ItemResult]:
        with Journal(self.state) as journal:
            return await apply_plan(
                self.plan, clients=lambda a: self.masters[a.name], vault=self.vault, journal=journal
            )

    async def rotate(
        self, *selectors: str, settings: RotationSettings | None = None, finish: bool = False
    ) -> list[RotationEvent]:
        vault = self.vault
        with (
            Journal(self.state) as journal,
            contextlib.closing(RotationJournal(self.state)) as rotations,
        ):
            context = master_contexts(
                ledger=Ledger(vault, journal),
                journal=rotations,
                settings=settings or RotationSettings(grace=0.0),
                key_client=lambda _, credentials: self.client(credentials),
                on_event=self.events.append,
                audit=None,
                gate=self.gate,
                records=held_records(vault.records()),
            )
            found = await survey(
                self.plan,
                context,
                lambda a: self.masters[a.name],
                selectors=[Selector.parse(text) for text in selectors],
                due=False,
                finish=finish,
                journal_unfinished=rotations.unfinished,
            )
            return await run_rotations(found)

    def rotations(self) -> list[Rotation]:
        with contextlib.closing(RotationJournal(self.state)) as journal:
            return list(journal.rotations())

    async def aclose(self) -> None:
        for client in self.made:
            await client.aclose()
