"""
The create flows of an apply round: one function per kind of planned item.

Each sends its request only while the run is still sending, journals its intent first,
stores a new secret (`AccountReport.persist`) before the item is journalled as done or
reported, and marks what an unknown outcome may have changed as stale in the round's
`KnownState`, so the round reads it again.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from bitget_keys import models as m
from bitget_keys._secret import Secret
from bitget_keys.errors import CopyAPIKeyExistsError
from bitget_keys.provision.diff import MissingKey
from bitget_keys.provision.family import NewKey, UnifiedAPI
from bitget_keys.provision.journal import Outcome
from bitget_keys.provision.outcomes import (
    EXPECTED,
    ambiguous,
    refused,
    stop_on_backend_failure,
)
from bitget_keys.provision.plan import BrokerKeySpec, KeySpec, SubaccountSpec
from bitget_keys.provision.preview import copy_key_accounts
from bitget_keys.provision.results import ItemKey, ItemKind, Status
from bitget_keys.provision.retrying import describe_error
from bitget_keys.provision.revoke_flows import failure_status
from bitget_keys.provision.vault import VaultRecord

if TYPE_CHECKING:
    from bitget_keys.provision.account_run import AccountRun

__all__ = [
    "Created",
    "copy_key",
    "create_key",
    "create_subaccounts",
    "create_unified_subaccount",
    "first_key",
    "generate_passphrase",
    "modify_broker_key",
]

#: An answer that carries a new key's secret.
_Answer = m.CopyAPIKey | NewKey | m.CreatedVirtualSubaccount

_PASSPHRASE_ALPHABET: Final = string.ascii_letters + string.digits


def generate_passphrase(length: int = 24) -> Secret:
    """A random passphrase Bitget accepts: letters and digits, with at least one of each."""
    while True:
        text = "".join(secrets.choice(_PASSPHRASE_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in text) and any(c.isalpha() for c in text):
            return Secret(text)


@attrs.frozen(kw_only=True)
class Created:
    """A sub-account whose batch answer arrived: its first key is in the vault."""

    spec: SubaccountSpec
    row: m.CreatedVirtualSubaccount


def first_key(uid: str, created: Created) -> m.VirtualSubaccountAPIKey:
    # Batch-create gives the first key the sub-account's label.
    return m.VirtualSubaccountAPIKey(
        subaccount_uid=uid,
        api_key=created.row.api_key,
        label=created.spec.label,
        permissions=created.row.permissions,
        ip_list=created.row.ip_list,
    )


def _record(run: AccountRun, created: _Answer, passphrase: Secret, **item: Any) -> str:
    """Store a new key's secret (see `AccountReport.persist`); return the result's detail."""
    return run.out.persist(
        VaultRecord(
            account=run.account.name,
            master_uid=run.master_uid,
            api_key=created.api_key,
            secret_key=created.secret_key,
            passphrase=passphrase,
            api_family=run.api.family,
            **item,
        )
    )


def _key_record(  # noqa: PLR0917 - every part of the record
    run: AccountRun,
    sub: SubaccountSpec,
    key: KeySpec,
    created: _Answer,
    passphrase: Secret,
    subaccount_uid: str | None,
) -> str:
    """
    Store a new sub-account key; return the result's detail.

    A first key's sub-account UID is ``None`` when the batch answer masked it: the
    record names the sub-account by its name and label instead.
    """
    made = created if isinstance(created, NewKey) and run.api.family == "v3" else None
    return _record(
        run,
        created,
        passphrase,
        kind="virtual_subaccount_key",
        label=key.label,
        subaccount_uid=subaccount_uid,
        subaccount_name=sub.name,
        subaccount_label=sub.label,
        # What the key was made with: a unified key has the mapped rights, not the plan's.
        permissions=[str(p) for p in (key.permissions if made is None else made.permissions)],
        ip_list=key.ip_list if made is None else made.ip_list,
        perm_type=created.perm_type if isinstance(created, NewKey) else None,
    )


async def create_subaccounts(run: AccountRun, batch: Sequence[SubaccountSpec]) -> list[Created]:
    """Create one batch; return the sub-accounts whose answer arrived."""
    out = run.out
    if not out.sending:
        for sub in batch:
            out.stopped(ItemKey(ItemKind.SUBACCOUNT, sub.label))
        return []
    passphrases = {sub.label: sub.keys[0].passphrase or generate_passphrase() for sub in batch}
    request = m.BatchCreateVirtualSubaccountsRequest(
        items=[
            m.NewVirtualSubaccount(
                name=sub.name,
                passphrase=passphrases[sub.label],
                label=sub.label,
                permissions=sub.keys[0].permissions,
                ip_list=sub.keys[0].ip_list,
            )
            for sub in batch
        ]
    )
    entries = {sub.label: out.begin(ItemKey(ItemKind.SUBACCOUNT, sub.label)) for sub in batch}
    try:
        rows = await run.client.batch_create_virtual_subaccounts(request)
    except EXPECTED as exc:
        run.known.stale_list |= ambiguous(exc)
        for sub in batch:
            out.create_failed(entries[sub.label], ItemKey(ItemKind.SUBACCOUNT, sub.label), exc)
        return []
    by_label = {row.label: row for row in rows}
    created = []
    # Every secret of the answer is stored before any item of it is reported.
    details = {
        sub.label: _key_record(
            run,
            sub,
            sub.keys[0],
            row,
            passphrases[sub.label],
            row.subaccount_uid if row.subaccount_uid.isdigit() else None,
        )
        for sub in batch
        if (row := by_label.get(sub.label)) is not None
    }
    for sub in batch:
        item = ItemKey(ItemKind.SUBACCOUNT, sub.label)
        row = by_label.get(sub.label)
        if row is None:
            # Bitget answered but left this item out: treat as unknown until listed.
            detail = "missing from the batch answer"
            run.known.stale_list = True
            out.journal.settle(entries[sub.label], Outcome.UNKNOWN, detail=detail)
            out.report(item, Status.UNKNOWN, detail=detail)
            continue
        first = ItemKey(ItemKind.KEY, sub.label, sub.keys[0].label)
        out.created(entries[sub.label], item, row.api_key)
        out.report(first, Status.CREATED, api_key=row.api_key, detail=details[sub.label])
        created.append(Created(spec=sub, row=row))
    return created


async def create_key(run: AccountRun, missing: MissingKey) -> None:
    """Create a further key of a sub-account that exists."""
    key: KeySpec = missing.key
    item = ItemKey(ItemKind.KEY, missing.subaccount.label, key.label)
    out = run.out
    if not out.sending:
        out.stopped(item)
        return
    passphrase = key.passphrase or generate_passphrase()
    entry = out.begin(item)
    try:
        created = await run.api.create_key(missing.subaccount_uid, key, passphrase)
    except EXPECTED as exc:
        if ambiguous(exc):
            run.known.stale_keys.add(missing.subaccount_uid)
        out.create_failed(entry, item, exc)
        return
    detail = _key_record(run, missing.subaccount, key, created, passphrase, missing.subaccount_uid)
    out.created(entry, item, created.api_key, detail)
    run.known.add_key(
        m.VirtualSubaccountAPIKey(
            subaccount_uid=missing.subaccount_uid,
            api_key=created.api_key,
            label=key.label,
            permissions=created.permissions,
            ip_list=created.ip_list,
        )
    )


async def create_unified_subaccount(run: AccountRun, api: UnifiedAPI, sub: SubaccountSpec) -> None:
    """
    Create one unified sub-account (v3 create-sub), then all its keys at once.

    create-sub makes no key, so it carries no secret: an answer that never came loses
    nothing, and the round's list read settles whether it exists.
    """
    item = ItemKey(ItemKind.SUBACCOUNT, sub.label)
    out = run.out
    if not out.sending:
        out.stopped(item)
        return
    entry = out.begin(item)
    try:
        created = await api.create_subaccount(sub)
    except EXPECTED as exc:
        run.known.stale_list |= ambiguous(exc)
        out.create_failed(entry, item, exc)
        return
    out.journal.settle(entry, Outcome.DONE)
    out.report(item, Status.CREATED, detail=f"sub-account {created.sub_uid}")
    run.known_subaccount(created.sub_uid, created.username, sub)
    run.start_keys(created.sub_uid, sub, sub.keys)


def _modify_request(spec: BrokerKeySpec) -> m.ModifyBrokerSubaccountAPIKeyRequest:
    """The request that gives a broker key the settings its spec names (same fields)."""
    fields = attrs.fields(m.ModifyBrokerSubaccountAPIKeyRequest)
    return m.ModifyBrokerSubaccountAPIKeyRequest(**{f.name: getattr(spec, f.name) for f in fields})


async def modify_broker_key(run: AccountRun, spec: BrokerKeySpec) -> None:
    """Give an existing broker sub-account key the plan's settings."""
    item = ItemKey(ItemKind.BROKER_KEY, spec.sub_uid, spec.api_key)
    out = run.out
    if not out.sending:
        out.stopped(item)
        return
    try:
        await run.client.modify_broker_subaccount_api_key(_modify_request(spec))
    except EXPECTED as exc:
        # A modify sets absolute values, so whatever its outcome, the next round
        # reads the key again and sends it once more only if it still differs.
        stop_on_backend_failure(out.gate, exc)
        unknown = ambiguous(exc)
        if unknown:
            run.known.stale_broker_keys.add(spec.sub_uid)
        if refused(exc):
            out.refused.add(item)
        status = failure_status(exc)
        out.report(item, status, api_key=spec.api_key, detail=describe_error(exc), error=exc)
        return
    run.known.modified(spec)
    out.report(item, Status.MODIFIED, api_key=spec.api_key)


def _copy_key_settled(run: AccountRun, item: ItemKey) -> bool:
    """Report the copy key if it exists or may exist: it is created once per trader, ever."""
    out = run.out
    held = {record.account for record in run.ledger.unsaved if record.kind == "copy_key"}
    if run.account.name in copy_key_accounts(run.ledger.vault) | held:
        out.report(item, Status.UNCHANGED)
        return True
    previous = [
        e for e in out.journal.unsettled(run.account.name) if e.target == item.journal_target()
    ]
    if previous:
        # An earlier attempt whose answer was lost may have made it, and then its
        # secret is gone. Never try again.
        out.report(
            item,
            Status.UNKNOWN,
            detail="an earlier attempt got no answer; check the trader's copy key on Bitget",
        )
        return True
    return False


async def copy_key(run: AccountRun) -> None:
    """Create the trader's copy-trading key, unless it exists or may exist."""
    if not run.account.copy_api_key:
        return
    item = ItemKey(ItemKind.COPY_KEY, key="copy")
    out = run.out
    if _copy_key_settled(run, item):
        return
    if not out.sending:
        out.stopped(item)
        return
    passphrase = run.account.copy_passphrase or generate_passphrase()
    entry = out.begin(item)
    try:
        created = await run.client.create_copy_api_key(
            m.CreateCopyAPIKeyRequest(passphrase=passphrase)
        )
    except CopyAPIKeyExistsError as exc:
        out.journal.settle(entry, Outcome.FAILED, detail=describe_error(exc))
        out.report(item, Status.ORPHAN, detail=describe_error(exc))
        return
    except EXPECTED as exc:
        out.create_failed(entry, item, exc)
        return
    permissions = [str(p) for p in created.permissions]
    detail = _record(
        run, created, passphrase, kind="copy_key", label="copy", permissions=permissions
    )
    out.created(entry, item, created.api_key, detail)
