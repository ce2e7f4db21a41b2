"""
Unified Trading Account (v3) sub-accounts and their API keys: the user endpoints.

Every account opened since May 2026 is a UTA; its keys get 40085 from the v2 user
endpoints and use these instead. The rules checked here are the ones Bitget documents
for ``/api/v3/user/create-sub`` and ``/api/v3/user/create-sub-api``; where the docs are
unclear the stricter reading is taken, so that a request Bitget might refuse is caught
before it is sent.
"""

from __future__ import annotations

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys.models import _convert as c
from bitget_keys.models._rules import (
    UTA_KEY_PERMISSIONS,
    Checked,
    Problems,
    check_ip_list,
    check_passphrase,
    check_permissions,
    check_uid,
    check_uta_key_note,
    check_uta_key_type,
    check_uta_note,
    check_uta_username,
)
from bitget_keys.models.common import Permission, SubaccountMode, UTAKeyType

__all__ = [
    "CreateUTASubaccountAPIKeyRequest",
    "CreateUTASubaccountRequest",
    "CreatedUTASubaccount",
    "CreatedUTASubaccountAPIKey",
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
