"""The emulated exchange's master accounts: who may call, and as what kind of account."""

from __future__ import annotations

import random
import string
from collections.abc import Iterable
from typing import Any, Final

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys._signing import Credentials

__all__ = ["ACCOUNT_MODES", "ALPHANUMERIC", "EmulatorAccount", "SubaccountCaller"]

#: The characters of generated identifiers and secrets.
ALPHANUMERIC: Final = string.ascii_letters + string.digits

#: A master's account mode: which API family (v2 classic, v3 unified) serves it.
ACCOUNT_MODES: Final = ("classic", "unified")


def _addresses(values: Iterable[str]) -> tuple[str, ...]:
    # A lone string is iterable too: "1.2.3.4" would become a whitelist of characters.
    if isinstance(values, str):
        msg = "ip_list must be a list of addresses, not one string"
        raise TypeError(msg)
    return tuple(values)


def _copy_model(value: str | None) -> str | None:
    # The accounts file spells a non-trader "none"; anything else but the two models is a typo.
    if value is None or value == "none":
        return None
    if value not in ("new", "old"):
        msg = f"copy_trader must be 'none', 'new' or 'old' (got {value!r})"
        raise ValueError(msg)
    return value


def _default_mode(account: EmulatorAccount) -> str:
    return "unified" if account._unified else "classic"  # noqa: SLF001 - its own field


def _check_mode(_account: EmulatorAccount, _attribute: object, value: str) -> None:
    if value not in ACCOUNT_MODES:
        msg = f"mode must be 'classic' or 'unified' (got {value!r})"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class EmulatorAccount:
    """A master account of the emulated exchange and its one API key."""

    uid: str
    api_key: str
    secret_key: Secret = attrs.field(converter=to_secret, repr=False)
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    #: An ND broker may use the broker endpoints.
    broker: bool = False
    #: ``"new"`` or ``"old"`` copy-trading model, or ``None`` for a non-trader.
    copy_trader: str | None = attrs.field(default=None, converter=_copy_model)
    #: ``unified=True`` is the older spelling of ``mode="unified"``; read `mode`.
    _unified: bool | None = attrs.field(default=None, alias="unified", repr=False, eq=False)
    #: ``"classic"`` masters get 40084 from the v3 endpoints, ``"unified"`` (UTA)
    #: masters 40085 from the v2 ones.
    mode: str = attrs.field(
        default=attrs.Factory(_default_mode, takes_self=True), validator=_check_mode
    )
    #: The calling key's IP whitelist; empty allows any IP. Others get 40038.
    ip_list: tuple[str, ...] = attrs.field(default=(), converter=_addresses)

    def __attrs_post_init__(self) -> None:
        if self._unified is not None and self._unified != (self.mode == "unified"):
            msg = f"unified={self._unified} contradicts mode={self.mode!r}"
            raise ValueError(msg)
        # Settled into `mode`: a copy made with attrs.evolve(mode=...) must not meet
        # the old flag again.
        object.__setattr__(self, "_unified", None)

    @property
    def unified(self) -> bool:
        """Whether the master is a Unified Trading Account (``mode == "unified"``)."""
        return self.mode == "unified"

    @property
    def credentials(self) -> Credentials:
        """Credentials for a `Client` that signs as this account."""
        return Credentials(self.api_key, self.secret_key, self.passphrase, uid=self.uid)

    @classmethod
    def generate(cls, rng: random.Random, **settings: Any) -> EmulatorAccount:
        """A fresh account with random identifiers and secrets."""
        uid = str(rng.randrange(10**9, 10**10))
        text = "".join(rng.choice(ALPHANUMERIC) for _ in range(32))
        return cls(
            uid=uid,
            api_key=f"bg_{text[:24].lower()}",
            secret_key=text,
            passphrase="".join(rng.choice(ALPHANUMERIC) for _ in range(16)) + "a1",
            **settings,
        )


@attrs.frozen(kw_only=True)
class SubaccountCaller(EmulatorAccount):
    """
    A virtual sub-account's key signing a request: ``uid`` is the sub-account's (its
    requests count against it), ``mode`` and the family it is served by are its
    master's, ``ip_list`` and ``passphrase`` are the key's own.
    """

    #: The master the sub-account belongs to.
    master_uid: str
    #: The key's rights as the master's key list shows them; none for a neutralised key.
    permissions: tuple[str, ...] = ()
    #: ``read_and_write``/``readonly`` (v2) or ``read_write``/``read_only`` (v3).
    perm_type: str | None = None
