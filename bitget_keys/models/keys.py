"""API keys of virtual sub-accounts (v2 user endpoints) and of copy traders."""

from __future__ import annotations

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys.models import _convert as c
from bitget_keys.models._rules import (
    MODIFY_VIRTUAL_KEY_PERMISSIONS,
    VIRTUAL_KEY_PERMISSIONS,
    Checked,
    Problems,
    check_ip_list,
    check_label,
    check_passphrase,
    check_perm_type,
    check_permissions,
    check_text,
    check_uid,
)
from bitget_keys.models.common import Permission, PermType

__all__ = [
    "CopyAPIKey",
    "CreateCopyAPIKeyRequest",
    "CreateVirtualSubaccountAPIKeyRequest",
    "CreatedVirtualSubaccountAPIKey",
    "ListVirtualSubaccountAPIKeysRequest",
    "ModifyVirtualSubaccountAPIKeyRequest",
    "VirtualSubaccountAPIKey",
]


@attrs.frozen(kw_only=True)
class CreateCopyAPIKeyRequest(Checked):
    """
    create-copy-api: the copy-trading API key of a new-model copy trader (once ever).

    The new key's whitelist and rights cannot be chosen.
    """

    passphrase: Secret = attrs.field(converter=to_secret, repr=False)

    def _check(self, out: Problems) -> None:
        check_passphrase(out, "passphrase", self.passphrase)


@attrs.frozen(kw_only=True)
class CreateVirtualSubaccountAPIKeyRequest(Checked):
    """
    create-virtual-subaccount-apikey: one more key for an existing virtual sub-account.

    ``ip_list`` is required because leaving it out gives the key an empty whitelist
    (usable from any IP); pass ``()`` to mean exactly that.
    """

    subaccount_uid: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    label: str
    ip_list: tuple[str, ...] = attrs.field(converter=c.strings)
    permissions: tuple[Permission, ...] = attrs.field(converter=c.permissions)
    perm_type: PermType | None = attrs.field(default=None, converter=c.optional_perm_type)

    def _check(self, out: Problems) -> None:
        check_uid(out, "subaccount_uid", self.subaccount_uid)
        check_passphrase(out, "passphrase", self.passphrase)
        check_label(out, "label", self.label)
        check_permissions(
            out, "permissions", self.permissions, VIRTUAL_KEY_PERMISSIONS, required=True
        )
        check_perm_type(out, "perm_type", self.perm_type, self.permissions, "permissions")
        check_ip_list(out, "ip_list", self.ip_list)


@attrs.frozen(kw_only=True)
class ModifyVirtualSubaccountAPIKeyRequest(Checked):
    """
    modify-virtual-subaccount-apikey: replace a virtual sub-account key's settings.

    ``ip_list`` is always sent in full (leaving it out may clear the whitelist).
    ``permissions=None`` keeps the key's rights; ``()`` removes them all, which is how
    a key is neutralised (there is no delete for virtual sub-account keys).
    """

    subaccount_uid: str
    api_key: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    label: str
    ip_list: tuple[str, ...] = attrs.field(converter=c.strings)
    permissions: tuple[Permission, ...] | None = attrs.field(
        default=None, converter=c.optional_permissions
    )

    def _check(self, out: Problems) -> None:
        check_uid(out, "subaccount_uid", self.subaccount_uid)
        check_text(out, "api_key", self.api_key)
        check_passphrase(out, "passphrase", self.passphrase)
        check_label(out, "label", self.label)
        check_permissions(
            out, "permissions", self.permissions, MODIFY_VIRTUAL_KEY_PERMISSIONS, required=False
        )
        check_ip_list(out, "ip_list", self.ip_list)


@attrs.frozen(kw_only=True)
class ListVirtualSubaccountAPIKeysRequest(Checked):
    """virtual-subaccount-apikey-list: the keys of one virtual sub-account."""

    subaccount_uid: str

    def _check(self, out: Problems) -> None:
        check_uid(out, "subaccount_uid", self.subaccount_uid)


@attrs.frozen(kw_only=True)
class CopyAPIKey:
    """The copy-trading key create-copy-api made. Its secret is shown only this once."""

    api_key: str
    secret_key: Secret = attrs.field(repr=False)
    permissions: tuple[Permission, ...] = ()


@attrs.frozen(kw_only=True)
class CreatedVirtualSubaccountAPIKey:
    """A new virtual sub-account key. Its secret is shown only this once."""

    subaccount_uid: str
    label: str
    api_key: str
    secret_key: Secret = attrs.field(repr=False)
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class VirtualSubaccountAPIKey:
    """
    A virtual sub-account key as listed (no secret) or as modified (secret, if sent).

    Provisioning shows a unified master's keys in this shape too: their ``type`` is
    ``perm_type`` and their listed ``ts`` is ``created_time``.
    """

    subaccount_uid: str
    api_key: str
    label: str = ""
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] = ()
    #: ``read_and_write``/``readonly`` (v2, where a list shows it) or
    #: ``read_write``/``read_only`` (a unified key's ``type``); ``None``: not shown.
    perm_type: str | None = None
    #: When the key was made, in epoch ms, where Bitget tells it (the v3 key list).
    created_time: int | None = None
    secret_key: Secret | None = attrs.field(default=None, repr=False)
