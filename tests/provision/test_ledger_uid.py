"""`Ledger.add_subaccount_uid`: a first key's record completed with its UID, never at a secret's cost."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import attrs
import pytest

from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.provision.vault_kdf import FAST_INSECURE
from tests.provision.test_vault import KEY, record


def no_room(_descriptor: int, _data: memoryview) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_the_uid_is_stored_with_the_key_once_known(tmp_path: Path) -> None:
    """Written at once without the UID; stored again with it; other keys are left alone."""
    vault = SecretsVault.open(tmp_path / "v.vault", KEY, kdf=FAST_INSECURE)
    first = attrs.evolve(record("first"), subaccount_uid=None)
    other = record("other")
    with Journal(tmp_path / "s.state") as journal:
        ledger = Ledger(vault, journal)
        assert ledger.persist(first)
        assert ledger.persist(other)
        assert len(SecretsVault.open(vault.path, KEY).scan().entries) == 2
        ledger.add_subaccount_uid(first.api_key, "2000000042")
        ledger.add_subaccount_uid(first.api_key, "2000000042")  # once only
        ledger.add_subaccount_uid(other.api_key, "2000000099")  # it had its UID
    scan = SecretsVault.open(vault.path, KEY).require_intact()
    assert len(scan.entries) == 3
    assert scan.records == (attrs.evolve(first, subaccount_uid="2000000042"), other)


def test_a_held_record_is_completed_in_memory(tmp_path: Path) -> None:
    """The vault failed: the held record itself gets the UID; nothing is held twice."""
    vault = SecretsVault.open(tmp_path / "v.vault", KEY, kdf=FAST_INSECURE, writer=no_room)
    first = attrs.evolve(record("first"), subaccount_uid=None)
    with Journal(tmp_path / "s.state") as journal:
        ledger = Ledger(vault, journal)
        assert not ledger.persist(first)
        ledger.add_subaccount_uid(first.api_key, "2000000042")
    assert ledger.unsaved == [attrs.evolve(first, subaccount_uid="2000000042")]


def test_a_failed_uid_write_is_logged_not_held(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The secret is stored; the vault fails afterwards: the UID is lost, with a warning."""
    vault = SecretsVault.open(tmp_path / "v.vault", KEY, kdf=FAST_INSECURE)
    first = attrs.evolve(record("first"), subaccount_uid=None)
    with Journal(tmp_path / "s.state") as journal:
        ledger = Ledger(vault, journal)
        assert ledger.persist(first)
        vault.writer = no_room
        ledger.add_subaccount_uid(first.api_key, "2000000042")
    assert ledger.unsaved == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(
        "sub-account UID 2000000042 of key bg_first is not in the vault" in w for w in warnings
    )
    assert list(SecretsVault.open(vault.path, KEY).records()) == [first]
