"""The first key of a batch-created sub-account gets its sub-account UID in the vault."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitget_keys.provision.apply import Status
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, Limits
from tests.provision.test_apply import MASTERS, plan_data, run_apply

VAULT_KEY = "a long vault passphrase"


@pytest.mark.parametrize("keys", [1, 2])
async def test_first_keys_get_their_subaccount_uid(tmp_path: Path, keys: int) -> None:
    """
    Bitget masks the UID in the batch answer: the first key is stored at once without it,
    then stored again with it once the list names it; the vault reads one record per key,
    each with its sub-account's UID, and nothing else about the key changed.
    """
    limits = Limits(per_uid=False, ip_limit=None)
    assert limits.mask_batch_names
    emulator = Emulator(MASTERS[:1], limits=limits)
    results = await run_apply(emulator, tmp_path, plan_data(accounts=1, subaccounts=3, keys=keys))
    assert {r.status for r in results} == {Status.CREATED}
    vault = SecretsVault.open(tmp_path / "vault.bkv", VAULT_KEY)
    scan = vault.require_intact()
    by_key = {record.api_key: record for record in scan.records}
    subs = emulator.exchange.subaccounts(MASTERS[0].uid)
    assert len(by_key) == len(vault) == 3 * keys
    for sub in subs:
        for label, api_key in sub["keys"]:
            record = by_key[api_key]
            assert record.subaccount_uid == sub["uid"], (label, record)
            assert record.subaccount_name == sub["name"]
            assert record.secret().reveal() == emulator.exchange.secret_of(api_key)
    # Each first key was written twice: at once without its UID, then with it.
    first_keys = [
        api_key for sub in subs for label, api_key in sub["keys"] if label == sub["label"]
    ]
    assert len(first_keys) == 3
    stored_first = [e.record for e in scan.entries if e.record.api_key in first_keys]
    assert len(stored_first) == 6
    assert [r.subaccount_uid is None for r in stored_first].count(True) == 3
    for early in (r for r in stored_first if r.subaccount_uid is None):
        late = by_key[early.api_key]
        assert late.subaccount_uid is not None
        assert late.secret().reveal() == early.secret().reveal()
        assert late.to_dict(reveal=True) | {"subaccount_uid": None} == early.to_dict(reveal=True)
    assert len(scan.entries) == 3 * keys + 3


async def test_a_later_run_completes_first_keys_an_earlier_one_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A vault whose first keys lack their UID (written by a run that never learned it)
    gets them from the next run's read of live state, which creates nothing.
    """
    emulator = Emulator(MASTERS[:1], limits=Limits(per_uid=False, ip_limit=None))
    data = plan_data(accounts=1, subaccounts=2, keys=2)
    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "add_subaccount_uid", lambda *_: None)
        await run_apply(emulator, tmp_path, data)
    missing = [
        r.api_key
        for r in SecretsVault.open(tmp_path / "vault.bkv", VAULT_KEY).records()
        if r.subaccount_uid is None
    ]
    assert len(missing) == 2
    again = await run_apply(emulator, tmp_path, data)
    assert {r.status for r in again} == {Status.UNCHANGED}
    records = SecretsVault.open(tmp_path / "vault.bkv", VAULT_KEY).records()
    uids = {sub["name"]: sub["uid"] for sub in emulator.exchange.subaccounts(MASTERS[0].uid)}
    completed = {r.api_key: r for r in records}
    for api_key in missing:
        assert completed[api_key].subaccount_uid == uids[completed[api_key].subaccount_name]
    assert all(r.subaccount_uid is not None for r in completed.values())
