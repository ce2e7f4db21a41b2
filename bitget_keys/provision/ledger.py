"""
`Ledger`: where an apply run writes down what it did, and keeps what it could not.

A created key's secret is shown once, in the answer that created it. The ledger stores
it in the vault (`SecretsVault.append`, fsynced) the moment the answer arrives, before
anything else happens to that item. When the vault cannot be written (a full disk, an
I/O error), the record is *held in memory* instead, never dropped, and the ledger's
``on_vault_failure`` callback runs, so that the run stops sending new creates at once:
every further key would only add to what must be rescued. At the end of the run
`Ledger.flush` tries the vault again; whatever still cannot be stored is handed to the
caller in `SecretsNotStoredError`, whose records must be saved somewhere else (the
command line offers an emergency vault on another path, encrypted with the same vault
passphrase).

The journal is written here too: an intent before its request is sent, and its outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

import attrs

from bitget_keys._secret import Secret
from bitget_keys.errors import VaultError
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.vault import SecretsVault, VaultRecord

__all__ = ["Ledger", "SecretsNotStoredError", "rescue"]

_log: Final = logging.getLogger("bitget_keys.apply")

#: How often `Ledger.flush` tries the vault again, and the pause between tries (doubled
#: each time): a disk that a log rotation or a cleanup frees within seconds is waited
#: for; one that stays full is reported.
FLUSH_ATTEMPTS: Final = 4
FLUSH_BACKOFF: Final = 0.5


@attrs.define(slots=False, eq=False)
class SecretsNotStoredError(VaultError):
    """
    Keys were created, but their secrets could not be written to the vault.

    ``records`` holds them (secrets masked in every repr); save them elsewhere before
    the process exits, or they are lost: Bitget never shows a secret again.
    """

    records: tuple[VaultRecord, ...] = attrs.field(default=(), repr=False)
    #: Why the last write failed.
    cause: str = ""

    def __str__(self) -> str:
        keys = ", ".join(record.api_key for record in self.records)
        return (
            f"vault {self.path}: {len(self.records)} created key(s) whose secrets could "
            f"not be written ({self.cause}): {keys}"
        )


class Ledger:
    """
    The vault and the journal of one run, and the secrets held while the vault fails.

    Args:
        vault: where secrets go.
        journal: where intents and outcomes go.
        on_vault_failure: called once, with the error, the first time a secret has to
            be held in memory; the run stops sending creates.
        sleep: how `flush` waits between attempts (a fake in tests).
    """

    __slots__ = (
        "_failed",
        "_sleep",
        "_without_uid",
        "journal",
        "on_vault_failure",
        "unsaved",
        "vault",
        "vault_keys",
    )

    def __init__(
        self,
        vault: SecretsVault,
        journal: Journal,
        *,
        on_vault_failure: Callable[[VaultError], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.vault = vault
        self.journal = journal
        self.on_vault_failure = on_vault_failure
        self._sleep = sleep
        self._failed: VaultError | None = None
        #: Records whose secrets arrived but are not in the vault yet, oldest first.
        self.unsaved: list[VaultRecord] = []
        #: API keys whose secrets are in the vault, or held in ``unsaved``.
        stored = tuple(vault.records())
        self.vault_keys: set[str] = {record.api_key for record in stored}
        #: Keys stored without their sub-account's UID (Bitget masked it), by API key:
        #: this run's, and those an earlier run stored but did not live to complete.
        self._without_uid: dict[str, VaultRecord] = {
            record.api_key: record
            for record in stored
            if record.subaccount_uid is None and record.subaccount_name is not None
        }

    @classmethod
    def of(
        cls, ledger: Ledger | None, vault: SecretsVault | None, journal: Journal | None
    ) -> Ledger:
        """``ledger``, or a new one of ``vault`` and ``journal``: callers give one or both."""
        if ledger is not None:
            return ledger
        if vault is None or journal is None:
            msg = "give vault= and journal=, or ledger="
            raise TypeError(msg)
        return cls(vault, journal)

    def __repr__(self) -> str:
        return f"<Ledger {self.vault!r} unsaved={len(self.unsaved)}>"

    def persist(self, record: VaultRecord) -> bool:
        """
        Store ``record`` in the vault; hold it in memory if that fails.

        Synchronous on purpose: nothing else in the run sends while a secret is made
        durable. Returns whether it reached the vault.
        """
        self.vault_keys.add(record.api_key)
        if record.subaccount_uid is None and record.subaccount_name is not None:
            self._without_uid[record.api_key] = record
        if not self.unsaved:
            try:
                self.vault.append(record)
            except VaultError as exc:
                self._hold(record, exc)
                return False
            return True
        # Records stay in arrival order: once one is held, later ones queue behind it.
        self._hold(record, None)
        return False

    def add_subaccount_uid(self, api_key: str, uid: str) -> None:
        """
        A key stored without its sub-account's UID (masked in the answer that created
        it) is stored again with it; readers take the later record in the first's place.

        The secret went to the vault first, on its own; this only adds to it, so a
        failed write is logged, never held (the key's secret is safe either way).
        """
        record = self._without_uid.pop(api_key, None)
        if record is None:
            return
        completed = attrs.evolve(record, subaccount_uid=uid)
        for index, held in enumerate(self.unsaved):
            if held.api_key == api_key:
                self.unsaved[index] = completed
                return
        try:
            self.vault.append(completed)
        except VaultError as exc:
            _log.warning(
                "the sub-account UID %s of key %s is not in the vault: %s", uid, api_key, exc.detail
            )

    def _hold(self, record: VaultRecord, exc: VaultError | None) -> None:
        self.unsaved.append(record)
        _log.error(
            "the secret of %s is held in memory: the vault could not be written", record.api_key
        )
        if exc is not None and self._failed is None:
            self._failed = exc
            if self.on_vault_failure is not None:
                self.on_vault_failure(exc)

    async def flush(
        self, *, attempts: int = FLUSH_ATTEMPTS, backoff: float = FLUSH_BACKOFF
    ) -> None:
        """
        Write every held record to the vault, trying ``attempts`` times.

        Raises:
            SecretsNotStoredError: some records still could not be written; they are
                in its ``records`` (and still in ``unsaved``).
        """
        for attempt in range(attempts):
            if not self.unsaved:
                return
            if attempt:
                await self._sleep(backoff * 2 ** (attempt - 1))
            self._write_held()
        if self.unsaved:
            cause = str(self._failed.detail) if self._failed is not None else "unknown"
            raise SecretsNotStoredError(
                str(self.vault.path), "secrets not stored", tuple(self.unsaved), cause
            )

    def _write_held(self) -> None:
        while self.unsaved:
            try:
                self.vault.append(self.unsaved[0])
            except VaultError as exc:
                self._failed = exc
                _log.warning("the vault is still not writable: %s", exc.detail)
                return
            self.unsaved.pop(0)


def rescue(records: Sequence[VaultRecord], path: Path, passphrase: Secret) -> None:
    """
    Write ``records`` to a new emergency vault at ``path``, under the vault passphrase.

    It is a vault like any other (`bitget-keys vault list --vault PATH` reads it).

    Raises:
        VaultError: ``path`` exists already, or could not be written.
    """
    vault = SecretsVault.create_rescue(path, passphrase)
    for record in records:
        vault.append(record)
