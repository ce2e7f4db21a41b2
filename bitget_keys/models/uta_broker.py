"""
Unified Trading Account (v3) ND-broker keys: create, modify, delete and query a broker
sub-account's key.

The v3 broker pages keep the v2 broker field names (``label``, ``ipList``,
``permType``, ``permList``, ``secretKey``) with unified permission values. What they
leave unsaid is handled the safe way: the passphrase follows the v2 broker rule (6-32
letters and digits); an empty list on modify, whose effect Bitget does not document,
is refused (leave the field out to keep the value).
"""

from __future__ import annotations

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys.errors import Problem
from bitget_keys.models import _convert as c
from bitget_keys.models._rules import (
    BROKER_LABEL_MAX_LENGTH,
    UTA_BROKER_KEY_PERMISSIONS,
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
    "CreateUTABrokerSubaccountAPIKeyRequest",
    "DeleteUTABrokerSubaccountAPIKeyRequest",
    "ModifyUTABrokerSubaccountAPIKeyRequest",
    "UTABrokerSubaccountAPIKey",
]

_BROKER_PASSPHRASE_MIN: int = 6


def _check_withdraw(
    out: Problems, perm_type: PermType | None, permissions: tuple[Permission, ...] | None
) -> None:
    if Permission.WITHDRAW in (permissions or ()) and perm_type is not PermType.READ_AND_WRITE:
        out.append(Problem("permissions", "withdraw needs perm_type read_and_write"))


@attrs.frozen(kw_only=True)
class CreateUTABrokerSubaccountAPIKeyRequest(Checked):
    """v3 broker create-sub-apikey: a key for an ND broker's unified sub-account."""

    sub_uid: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    label: str
    perm_type: PermType = attrs.field(converter=c.perm_type)
    permissions: tuple[Permission, ...] = attrs.field(converter=c.permissions)
    ip_list: tuple[str, ...] = attrs.field(default=(), converter=c.strings)

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        check_passphrase(out, "passphrase", self.passphrase, min_length=_BROKER_PASSPHRASE_MIN)
        check_label(out, "label", self.label, max_length=BROKER_LABEL_MAX_LENGTH)
        check_permissions(
            out, "permissions", self.permissions, UTA_BROKER_KEY_PERMISSIONS, required=True
        )
        check_perm_type(out, "perm_type", self.perm_type, self.permissions, "permissions")
        _check_withdraw(out, self.perm_type, self.permissions)
        check_ip_list(out, "ip_list", self.ip_list)


@attrs.frozen(kw_only=True)
class ModifyUTABrokerSubaccountAPIKeyRequest(Checked):
    """
    v3 broker modify-sub-apikey: change what is given, keep what is ``None``.

    The passphrase is the key's own. ``perm_type`` and ``permissions`` go together, so
    a withdraw right is never left on a read-only key by accident.
    """

    sub_uid: str
    api_key: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    label: str | None = None
    perm_type: PermType | None = attrs.field(default=None, converter=c.optional_perm_type)
    permissions: tuple[Permission, ...] | None = attrs.field(
        default=None, converter=c.optional_permissions
    )
    ip_list: tuple[str, ...] | None = attrs.field(default=None, converter=c.optional_strings)

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        check_text(out, "api_key", self.api_key)
        check_passphrase(out, "passphrase", self.passphrase, min_length=_BROKER_PASSPHRASE_MIN)
        check_label(out, "label", self.label, max_length=BROKER_LABEL_MAX_LENGTH)
        if (self.perm_type is None) != (self.permissions is None):
            missing = "permissions" if self.permissions is None else "perm_type"
            out.append(Problem(missing, "perm_type and permissions are changed together"))
        check_permissions(
            out, "permissions", self.permissions, UTA_BROKER_KEY_PERMISSIONS, required=True
        )
        check_perm_type(out, "perm_type", self.perm_type, self.permissions, "permissions")
        _check_withdraw(out, self.perm_type, self.permissions)
        if self.ip_list == ():
            out.append(
                Problem(
                    "ip_list",
                    "Bitget does not document what an empty list does here; "
                    "pass None to keep the whitelist",
                )
            )
        check_ip_list(out, "ip_list", self.ip_list)


@attrs.frozen(kw_only=True)
class DeleteUTABrokerSubaccountAPIKeyRequest(Checked):
    """v3 broker delete-sub-apikey: the key stops working at once."""

    sub_uid: str
    api_key: str

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        check_text(out, "api_key", self.api_key)


@attrs.frozen(kw_only=True)
class UTABrokerSubaccountAPIKey:
    """
    A v3 broker sub-account key as create, modify and query answer it.

    ``secret_key`` is present on create and on query (Bitget shows it there), absent on
    modify. ``perm_type`` may arrive as ``read_and_write``/``readonly`` or as
    ``read_write``/``read_only``: both are kept as sent.
    """

    sub_uid: str
    api_key: str
    label: str = ""
    perm_type: PermType | None = None
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] | None = None
    secret_key: Secret | None = attrs.field(default=None, repr=False)
