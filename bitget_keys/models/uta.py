"""
Unified Trading Account (v3) sub-accounts and their API keys: the user endpoints.

Every account opened since May 2026 is a UTA; its keys get 40085 from the v2 user
endpoints and use these instead. The rules checked here are the ones Bitget documents
for ``/api/v3/user/create-sub`` and ``/api/v3/user/create-sub-api``; where the docs are
unclear the stricter reading is taken, so that a request Bitget might refuse is caught
before it is sent.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys.errors import Problem
from bitget_keys.models import _convert as c
from bitget_keys.models._rules import (
    UTA_KEY_PERMISSIONS,
    Checked,
    Problems,
    check_ip_list,
    check_passphrase,
    check_permissions,
    check_text,
    check_uid,
    check_uta_key_note,
    check_uta_key_type,
    check_uta_note,
    check_uta_username,
)
from bitget_keys.models.common import Permission, SubaccountMode, UTAKeyType

__all__ = [
    "CLEAR_WHITELIST",
    "ClearWhitelist",
    "CreateUTASubaccountAPIKeyRequest",
    "CreateUTASubaccountRequest",
    "CreatedUTASubaccount",
    "CreatedUTASubaccountAPIKey",
    "DeleteUTASubaccountAPIKeyRequest",
    "UpdateUTASubaccountAPIKeyRequest",
]


@attrs.frozen(kw_only=True)
class CreateUTASubaccountRequest(Checked):
    """
    v3 create-sub: one virtual sub-account of a unified (or hybrid) master.

    ``username`` becomes the sub-account's virtual email; ``account_mode`` (classic or
    unified) is honoured only under a unified or hybrid master.
    """

    username: str
    account_mode: SubaccountMode | None = attrs.field(
        default=None, converter=attrs.converters.optional(SubaccountMode)
    )
    note: str | None = None

    def _check(self, out: Problems) -> None:
        check_uta_username(out, "username", self.username)
        check_uta_note(out, "note", self.note)


@attrs.frozen(kw_only=True)
class CreatedUTASubaccount:
    """A new v3 sub-account as create-sub answers it."""

    sub_uid: str
    #: The virtual email made from the username (``name@virtual-bitget.com``).
    username: str
    status: str | None = None
    note: str | None = None


@attrs.frozen(kw_only=True)
class CreateUTASubaccountAPIKeyRequest(Checked):
    """
    v3 create-sub-api: an API key for a virtual sub-account of a unified master.

    ``ips`` is required, as Bitget documents it; ``()`` sends an empty list, whose
    effect Bitget does not document.
    """

    sub_uid: str
    note: str
    type: UTAKeyType = attrs.field(converter=UTAKeyType)
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    permissions: tuple[Permission, ...] = attrs.field(converter=c.permissions)
    ips: tuple[str, ...] = attrs.field(converter=c.strings)

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        check_uta_key_note(out, "note", self.note)
        check_uta_key_type(out, "type", self.type)
        check_passphrase(out, "passphrase", self.passphrase)
        check_permissions(out, "permissions", self.permissions, UTA_KEY_PERMISSIONS, required=True)
        check_ip_list(out, "ips", self.ips)


@attrs.frozen(kw_only=True)
class CreatedUTASubaccountAPIKey:
    """A new v3 sub-account key. Its secret (``secret`` on the wire) is shown only this once."""

    api_key: str
    secret: Secret = attrs.field(repr=False)
    note: str | None = None
    type: UTAKeyType | None = None
    permissions: tuple[Permission, ...] = ()
    ips: tuple[str, ...] = ()


@attrs.frozen
class ClearWhitelist:
    """
    What `UpdateUTASubaccountAPIKeyRequest` sends as ``ips`` to delete a key's whitelist.

    On update-sub-api an omitted ``ips`` keeps the whitelist and an empty one deletes it,
    the opposite of v2's modify. An empty tuple is refused, so that clearing is never
    the accident of an empty list: use `CLEAR_WHITELIST`.
    """

    def __repr__(self) -> str:
        return "CLEAR_WHITELIST"


#: ``ips=CLEAR_WHITELIST`` on `UpdateUTASubaccountAPIKeyRequest` deletes the key's whitelist.
CLEAR_WHITELIST = ClearWhitelist()


def _update_ips(
    value: ClearWhitelist | Iterable[str] | None,
) -> ClearWhitelist | tuple[str, ...] | None:
    if value is None or isinstance(value, ClearWhitelist):
        return value
    return c.strings(value)


@attrs.frozen(kw_only=True)
class UpdateUTASubaccountAPIKeyRequest(Checked):
    """
    v3 update-sub-api: change a unified sub-account key's rights or whitelist.

    ``type`` and ``permissions`` are sent together or not at all. ``ips``: ``None``
    (the default) keeps the whitelist, a list replaces it, `CLEAR_WHITELIST` deletes
    it. Bitget does not say whether ``passphrase`` must be the key's own or sets a new
    one. The key's note can't be changed.
    """

    api_key: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    type: UTAKeyType | None = attrs.field(
        default=None, converter=attrs.converters.optional(UTAKeyType)
    )
    permissions: tuple[Permission, ...] | None = attrs.field(
        default=None, converter=c.optional_permissions
    )
    ips: ClearWhitelist | tuple[str, ...] | None = attrs.field(default=None, converter=_update_ips)

    def _check(self, out: Problems) -> None:
        check_text(out, "api_key", self.api_key)
        check_passphrase(out, "passphrase", self.passphrase)
        if (self.type is None) != (self.permissions is None):
            missing = "permissions" if self.permissions is None else "type"
            out.append(Problem(missing, "type and permissions are changed together: give both"))
        if self.type is not None:
            check_uta_key_type(out, "type", self.type)
        check_permissions(out, "permissions", self.permissions, UTA_KEY_PERMISSIONS, required=True)
        if isinstance(self.ips, tuple):
            if not self.ips:
                out.append(
                    Problem(
                        "ips",
                        "an empty list deletes the whitelist: pass CLEAR_WHITELIST to mean "
                        "that, or leave ips out to keep it",
                    )
                )
            check_ip_list(out, "ips", self.ips)


@attrs.frozen(kw_only=True)
class DeleteUTASubaccountAPIKeyRequest(Checked):
    """v3 delete-sub-api: a unified sub-account's key stops working at once."""

    api_key: str

    def _check(self, out: Problems) -> None:
        check_text(out, "api_key", self.api_key)
