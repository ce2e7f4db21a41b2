"""API keys of an ND broker's sub-accounts (v2 broker endpoints)."""

from __future__ import annotations

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys.errors import Problem
from bitget_keys.models import _convert as c
from bitget_keys.models._rules import (
    BROKER_KEY_PERMISSIONS,
    BROKER_LABEL_MAX_LENGTH,
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
    "BrokerSubaccountAPIKey",
    "CreateBrokerSubaccountAPIKeyRequest",
    "DeleteBrokerSubaccountAPIKeyRequest",
    "ListBrokerSubaccountAPIKeysRequest",
    "ModifyBrokerSubaccountAPIKeyRequest",
]


@attrs.frozen(kw_only=True)
class CreateBrokerSubaccountAPIKeyRequest(Checked):
    """ND-broker create-subaccount-apikey: a key for a broker sub-account."""

    sub_uid: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    label: str
    perm_type: PermType = attrs.field(converter=c.perm_type)
    permissions: tuple[Permission, ...] = attrs.field(converter=c.permissions)
    ip_list: tuple[str, ...] = attrs.field(converter=c.strings)

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        check_passphrase(out, "passphrase", self.passphrase, min_length=6)
        check_label(out, "label", self.label, max_length=BROKER_LABEL_MAX_LENGTH)
        check_permissions(
            out, "permissions", self.permissions, BROKER_KEY_PERMISSIONS, required=True
        )
        check_perm_type(out, "perm_type", self.perm_type, self.permissions, "permissions")
        if not self.ip_list and self.perm_type is not PermType.READONLY:
            out.append(Problem("ip_list", "is required unless perm_type is readonly"))
        check_ip_list(out, "ip_list", self.ip_list)


@attrs.frozen(kw_only=True)
class ModifyBrokerSubaccountAPIKeyRequest(Checked):
    """
    ND-broker modify-subaccount-apikey: replace a sub-account key's settings.

    ``permissions`` replace the key's; ``perm_type`` replaces its type when given
    (``None`` leaves it out of the body, as Bitget's docs mark it optional, and the key
    keeps its type). Since the kept type is not known here, ``wallet_transfer`` needs
    ``perm_type`` read_and_write given. ``ip_list`` replaces the whitelist when given
    (``None`` keeps it: Bitget cannot clear it here); ``label`` replaces the note when
    given.
    """

    sub_uid: str
    api_key: str
    #: The passphrase of the key being modified.
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    permissions: tuple[Permission, ...] = attrs.field(converter=c.permissions)
    perm_type: PermType | None = attrs.field(default=None, converter=c.optional_perm_type)
    label: str | None = None
    ip_list: tuple[str, ...] | None = attrs.field(default=None, converter=c.optional_strings)

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        check_text(out, "api_key", self.api_key)
        check_passphrase(out, "passphrase", self.passphrase)
        check_permissions(
            out, "permissions", self.permissions, BROKER_KEY_PERMISSIONS, required=True
        )
        check_perm_type(out, "perm_type", self.perm_type, self.permissions, "permissions")
        check_label(out, "label", self.label, max_length=BROKER_LABEL_MAX_LENGTH)
        if self.ip_list == ():
            out.append(
                Problem(
                    "ip_list", "an empty list means 'no change' to Bitget; pass None to keep it"
                )
            )
        check_ip_list(out, "ip_list", self.ip_list)


@attrs.frozen(kw_only=True)
class DeleteBrokerSubaccountAPIKeyRequest(Checked):
    """
    ND-broker delete-subaccount-apikey: the key stops working. The one key delete the
    v2 API has (a virtual sub-account's key can only be neutralised).
    """

    sub_uid: str
    api_key: str

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        check_text(out, "api_key", self.api_key)


@attrs.frozen(kw_only=True)
class ListBrokerSubaccountAPIKeysRequest(Checked):
    """ND-broker subaccount-apikey-list: the keys of one broker sub-account."""

    sub_uid: str

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)


@attrs.frozen(kw_only=True)
class BrokerSubaccountAPIKey:
    """An ND-broker sub-account key as created, modified or listed."""

    sub_uid: str
    api_key: str
    label: str = ""
    perm_type: PermType | None = None
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] = ()
    secret_key: Secret | None = attrs.field(default=None, repr=False)
