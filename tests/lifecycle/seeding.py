"""
Keys made "by hand": through a master's own client, as Bitget's web UI would make them,
so that ``import`` and ``inventory`` meet keys whose secrets bitget-keys never saw.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bitget_keys import Client, ClientConfig
from bitget_keys import models as m
from bitget_keys.cli import main
from bitget_keys.testing import Emulator, EmulatorAccount

CLASSIC = EmulatorAccount(
    uid="1000000011",
    api_key="bg_life_classic",
    secret_key="life-classic-master-secret",
    passphrase="LifeClassic1",
)
UNIFIED = EmulatorAccount(
    uid="1000000012",
    api_key="bg_life_unified",
    secret_key="life-unified-master-secret",
    passphrase="LifeUnified1",
    mode="unified",
)
VAULT_KEY = "a long vault passphrase"
HAND_PASSPHRASE = "HandMade12345"
PLAN_HEAD = """\
# Desks of the trading floor (this comment stays).
[defaults]
ip_list = ["203.0.113.7"]

[[accounts]]
name = "desk-c"
credentials = "env:CLASSIC"

# The planned classic sub-account.
[[accounts.subaccounts]]
name = "alphabot"
label = "alpha"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]

[[accounts]]
name = "desk-u"
credentials = "env:UNIFIED"
"""


def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for prefix, account in (("CLASSIC", CLASSIC), ("UNIFIED", UNIFIED)):
        monkeypatch.setenv(f"{prefix}_API_KEY", account.api_key)
        monkeypatch.setenv(f"{prefix}_SECRET_KEY", account.secret_key.reveal())
        monkeypatch.setenv(f"{prefix}_PASSPHRASE", account.passphrase.reveal())
        monkeypatch.setenv(f"{prefix}_UID", account.uid)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", VAULT_KEY)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("BITGET_KEYS_MAX_KEY_AGE", raising=False)


async def cli(*argv: str) -> int:
    """The command line, in a thread beside the emulator's loop (it runs its own)."""
    return await asyncio.to_thread(main, list(argv))


def master_client(emulator: Emulator, account: EmulatorAccount) -> Client:
    return Client(
        account.credentials, base_url=emulator.base_url, config=ClientConfig(sync_clock=False)
    )


async def hand_made_classic(emulator: Emulator, planned_uid: str | None) -> dict[str, str]:
    """
    On the classic master: a further key on the planned sub-account (when given), and a
    sub-account made by hand with two keys. Returns each hand-made key's API key by
    ``SUB/KEY``.
    """
    made: dict[str, str] = {}
    async with master_client(emulator, CLASSIC) as client:
        if planned_uid is not None:
            extra = await client.create_virtual_subaccount_api_key(
                m.CreateVirtualSubaccountAPIKeyRequest(
                    subaccount_uid=planned_uid,
                    passphrase=HAND_PASSPHRASE,
                    label="manual",
                    permissions=("spot_trade", "margin_trade"),
                    ip_list=("198.51.100.4",),
                    perm_type="read_and_write",
                )
            )
            made["alpha/manual"] = extra.api_key
        await client.batch_create_virtual_subaccounts(
            m.BatchCreateVirtualSubaccountsRequest(
                items=(
                    m.NewVirtualSubaccount(
                        name="handmade",
                        passphrase=HAND_PASSPHRASE,
                        label="hand",
                        permissions=("read",),
                        ip_list=("198.51.100.5", "198.51.100.6"),
                    ),
                )
            )
        )
        subs = [s async for s in client.iter_virtual_subaccounts()]
        hand = next(s for s in subs if s.label == "hand")
        bot = await client.create_virtual_subaccount_api_key(
            m.CreateVirtualSubaccountAPIKeyRequest(
                subaccount_uid=hand.subaccount_uid,
                passphrase=HAND_PASSPHRASE,
                label="bot",
                permissions=("spot_trade",),
                ip_list=(),
                perm_type="readonly",
            )
        )
        keys = await client.list_virtual_subaccount_api_keys(hand.subaccount_uid)
        made["hand/hand"] = next(k.api_key for k in keys if k.label == "hand")
        made["hand/bot"] = bot.api_key
    return made


async def hand_made_unified(emulator: Emulator, planned_uid: str | None) -> dict[str, str]:
    """The same on the unified master: v3 sub-accounts and keys made by hand."""
    made: dict[str, str] = {}
    async with master_client(emulator, UNIFIED) as client:
        if planned_uid is not None:
            extra = await client.create_uta_subaccount_api_key(
                m.CreateUTASubaccountAPIKeyRequest(
                    sub_uid=planned_uid,
                    note="manual",
                    type="read_write",
                    passphrase=HAND_PASSPHRASE,
                    permissions=("uta_trade",),
                    ips=("198.51.100.4",),
                )
            )
            made["omega/manual"] = extra.api_key
        sub = await client.create_uta_subaccount(
            m.CreateUTASubaccountRequest(username="handsome", note="hand")
        )
        for note, type_, permissions, ips in (
            ("watch", "read_only", ("uta_trade",), ("198.51.100.5",)),
            ("admin", "read_write", ("uta_trade", "uta_mgt"), ()),
        ):
            key = await client.create_uta_subaccount_api_key(
                m.CreateUTASubaccountAPIKeyRequest(
                    sub_uid=sub.sub_uid,
                    note=note,
                    type=type_,
                    passphrase=HAND_PASSPHRASE,
                    permissions=permissions,
                    ips=ips,
                )
            )
            made[f"hand/{note}"] = key.api_key
    return made
