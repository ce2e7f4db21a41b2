"""
What can be done to a key or sub-account that exists, in whichever family serves it.

The lifecycle commands (rotate, revoke and prune, freeze, drift repair) act on live
keys through these functions, so each rule of each family has one place:

- **Modify** sends the key's complete settings: the v2 modify replaces the whitelist
  with what it is sent (leaving it out may clear it), and v3's update-sub-api takes the
  permission type and permissions together. v2 cannot change a key's permission type.
- **Revoke** deletes a unified key (``delete-sub-api``: it stops working at once).
  Bitget offers no delete for a classic sub-account's key, so a classic key is
  *neutralised* instead: modified to hold no permission and a whitelist no caller can
  match (`NEUTRAL_IP_LIST`). It still occupies one of its sub-account's 10 key slots
  and stays listed; only Bitget's web UI deletes it. Modifying needs the key's
  passphrase: a classic key whose passphrase the vault does not hold (one made
  elsewhere and imported) cannot be neutralised through the API.
- **Freeze** uses v3 ``freeze-sub`` or v2 ``modify-virtual-subaccount`` (which takes
  the sub-account's permissions too: they are sent unchanged).
- **Verify** signs a request with a new key: its account-info endpoint answers with
  the key's own UID once the key has reached Bitget's gateways. Until then Bitget
  answers 40006 (unknown key), so that is retried with backoff up to a deadline. A
  40038 (the calling host is not in the key's whitelist) is checked after the key, its
  passphrase and the signature, so it proves them right: the key is verified, and the
  result says that this host may not use it.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import Final

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys._secret import Secret
from bitget_keys.errors import (
    AuthenticationError,
    KeyNotVerifiedError,
    PassphraseNotHeldError,
    PermissionDeniedError,
)
from bitget_keys.provision.family import ClassicAPI, UnifiedAPI
from bitget_keys.provision.plan import KeySpec
from bitget_keys.provision.plan_modes import unified_key

__all__ = [
    "NEUTRAL_IP_LIST",
    "RevokeHow",
    "Verification",
    "is_neutralised",
    "modify_key",
    "revoke_broker_key",
    "revoke_key",
    "set_frozen",
    "verify_key",
]

#: The whitelist a neutralised classic key is bound to: 192.0.2.1 is in TEST-NET-1, a
#: range reserved for documentation and never routed on the internet, so no caller's
#: address can match it.
NEUTRAL_IP_LIST: Final = ("192.0.2.1",)

#: The Bitget code of a request signed by a key it does not know (yet).
_UNKNOWN_KEY: Final = "40006"
#: The Bitget code of a caller whose address is not in the key's whitelist.
_NOT_WHITELISTED: Final = "40038"


class RevokeHow(enum.StrEnum):
    """How a key was revoked."""

    #: Bitget removed it (unified keys, broker keys).
    DELETED = "deleted"
    #: Stripped of every permission and bound to `NEUTRAL_IP_LIST` (classic keys).
    NEUTRALISED = "neutralised"


def is_neutralised(key: m.VirtualSubaccountAPIKey) -> bool:
    """Whether a listed key is a neutralised classic key: no rights, unusable whitelist."""
    return not key.permissions and tuple(key.ip_list) == NEUTRAL_IP_LIST


async def modify_key(
    api: ClassicAPI | UnifiedAPI,
    live: m.VirtualSubaccountAPIKey,
    key: KeySpec,
    passphrase: Secret,
) -> m.VirtualSubaccountAPIKey:
    """
    Give the live key ``live`` the plan's permissions, whitelist (complete) and type.

    Returns the key as Bitget answered (v3: as asked, where its answer leaves a field out).
    """
    if isinstance(api, UnifiedAPI):
        settings = unified_key(key)
        answer = await api.client.update_uta_subaccount_api_key(
            m.UpdateUTASubaccountAPIKeyRequest(
                api_key=live.api_key,
                passphrase=passphrase,
                type=settings.type,
                permissions=settings.permissions,
                ips=settings.ips or m.CLEAR_WHITELIST,
            )
        )
        return attrs.evolve(
            live,
            permissions=answer.permissions or settings.permissions,
            ip_list=answer.ips if answer.ips or not settings.ips else settings.ips,
        )
    modified = await api.client.modify_virtual_subaccount_api_key(
        m.ModifyVirtualSubaccountAPIKeyRequest(
            subaccount_uid=live.subaccount_uid,
            api_key=live.api_key,
            passphrase=passphrase,
            label=live.label,
            ip_list=key.ip_list,
            permissions=key.permissions,
        )
    )
    return attrs.evolve(live, permissions=modified.permissions, ip_list=modified.ip_list)


async def revoke_key(
    api: ClassicAPI | UnifiedAPI,
    live: m.VirtualSubaccountAPIKey,
    passphrase: Secret | None,
) -> RevokeHow:
    """
    Revoke a sub-account key: delete it (unified) or neutralise it (classic).

    Raises:
        PassphraseNotHeldError: a classic key whose passphrase is not given; nothing
            was sent.
    """
    if isinstance(api, UnifiedAPI):
        await api.client.delete_uta_subaccount_api_key(
            m.DeleteUTASubaccountAPIKeyRequest(api_key=live.api_key)
        )
        return RevokeHow.DELETED
    if passphrase is None:
        raise PassphraseNotHeldError(live.api_key, "neutralise")
    await api.client.modify_virtual_subaccount_api_key(
        m.ModifyVirtualSubaccountAPIKeyRequest(
            subaccount_uid=live.subaccount_uid,
            api_key=live.api_key,
            passphrase=passphrase,
            label=live.label,
            ip_list=NEUTRAL_IP_LIST,
            permissions=(),
        )
    )
    return RevokeHow.NEUTRALISED


async def revoke_broker_key(client: Client, family: str, sub_uid: str, api_key: str) -> RevokeHow:
    """Delete an ND-broker sub-account's key (both families can)."""
    if family == "v3":
        await client.delete_uta_broker_subaccount_api_key(
            m.DeleteUTABrokerSubaccountAPIKeyRequest(sub_uid=sub_uid, api_key=api_key)
        )
    else:
        await client.delete_broker_subaccount_api_key(
            m.DeleteBrokerSubaccountAPIKeyRequest(sub_uid=sub_uid, api_key=api_key)
        )
    return RevokeHow.DELETED


async def set_frozen(
    api: ClassicAPI | UnifiedAPI, subaccount: m.VirtualSubaccount, *, frozen: bool
) -> None:
    """Freeze (or unfreeze) a sub-account; a classic one keeps its permissions."""
    if isinstance(api, UnifiedAPI):
        operation = "freeze" if frozen else "unfreeze"
        await api.client.freeze_uta_subaccount(
            m.FreezeUTASubaccountRequest(sub_uid=subaccount.subaccount_uid, operation=operation)
        )
        return
    await api.client.modify_virtual_subaccount(
        m.ModifyVirtualSubaccountRequest(
            subaccount_uid=subaccount.subaccount_uid,
            permissions=subaccount.permissions,
            status=m.SubaccountStatus.FREEZE if frozen else m.SubaccountStatus.NORMAL,
        )
    )


@attrs.frozen(kw_only=True)
class Verification:
    """A new key that signed a request Bitget accepted as its own."""

    #: The UID Bitget answered with (the sub-account's).
    user_id: str
    #: ``False``: Bitget refused this host by the key's whitelist (40038), which it
    #: checks after the key, passphrase and signature; the key itself is right.
    usable_here: bool
    #: How many requests it took (more than one: the key had not propagated yet).
    attempts: int
    #: Seconds from the first attempt to the answer.
    waited: float


async def _whoami(client: Client, family: str) -> str:
    if family == "v3":
        return (await client.account_info_v3()).uid
    return (await client.account_info()).user_id


async def verify_key(
    client: Client,
    family: str,
    subaccount_uid: str,
    *,
    patience: float = 120.0,
    first_delay: float = 0.5,
    max_delay: float = 8.0,
    clock: Callable[[], float] | None = None,
) -> Verification:
    """
    Sign a request with the key ``client`` holds until Bitget knows it (up to ``patience`` s).

    ``client`` must be made with the new key's credentials (its UID the sub-account's,
    so the request is paced on the sub-account's lane).

    ``clock`` measures the patience (default: the running loop's clock, which the
    backoff sleeps on too).

    Raises:
        KeyNotVerifiedError: Bitget still did not know the key after ``patience``
            seconds, or answered for another account.
    """
    clock = clock or asyncio.get_running_loop().time
    started = clock()
    attempts = 0
    delay = first_delay
    while True:
        attempts += 1
        try:
            user_id = await _whoami(client, family)
            usable = True
        except PermissionDeniedError as exc:
            if exc.code != _NOT_WHITELISTED:
                raise
            user_id, usable = subaccount_uid, False
        except AuthenticationError as exc:
            if exc.code != _UNKNOWN_KEY:
                raise
            if clock() - started + delay > patience:
                raise KeyNotVerifiedError(
                    subaccount_uid,
                    f"Bitget still did not know the key after {attempts} attempts "
                    f"over {clock() - started:.1f} s",
                ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        if user_id != subaccount_uid:
            raise KeyNotVerifiedError(
                subaccount_uid, f"the key belongs to UID {user_id}, not to the sub-account"
            )
        return Verification(
            user_id=user_id, usable_here=usable, attempts=attempts, waited=clock() - started
        )
