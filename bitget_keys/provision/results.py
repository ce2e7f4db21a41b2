"""
What an apply run says about each planned item: its identity, kind and status.

Results never carry a secret: an API key is an identifier, and a detail is an error
message, which never holds a request's headers or body.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs
import orjson

__all__ = ["ItemKey", "ItemKind", "ItemResult", "OnResult", "Status"]


class Status(enum.StrEnum):
    """What happened to one item."""

    CREATED = "created"
    MODIFIED = "modified"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    #: Sent, but no answer: it may exist. Live state decides on the next round or run.
    UNKNOWN = "unknown"
    #: Exists live, but its secret never reached the vault.
    ORPHAN = "orphan"
    #: The plan and live state disagree in a way only a person can settle.
    CONFLICT = "conflict"
    #: Not sent: the run stopped first (interrupted, or the vault or rate-limit backend
    #: failed). Nothing was created; a re-run creates it.
    STOPPED = "stopped"
    #: A key Bitget deleted (unified sub-account keys, broker keys).
    REVOKED = "revoked"
    #: A classic key stripped of every permission and bound to an unusable whitelist:
    #: Bitget has no delete for it.
    NEUTRALISED = "neutralised"
    FROZEN = "frozen"
    UNFROZEN = "unfrozen"


class ItemKind(enum.StrEnum):
    """What a planned item is."""

    SUBACCOUNT = "subaccount"
    KEY = "key"
    BROKER_KEY = "broker_key"
    COPY_KEY = "copy_key"
    #: A result about a whole master account (its live state could not be read).
    ACCOUNT = "account"
    #: A live key's revocation, named by its sub-account's label and its API key (keys
    #: to revoke may share a label, or be named by no plan).
    REVOKE = "revoke"


@attrs.frozen
class ItemKey:
    """
    Which planned item a result is about: a structured key, never a joined string.

    ``subaccount`` is the plan's sub-account label (a broker key's sub-account UID);
    ``key`` is the key's label (a broker key's API key, ``copy`` for the copy key, the
    account's name for an account-wide result).
    """

    kind: ItemKind
    subaccount: str | None = None
    key: str | None = None

    @property
    def target(self) -> str:
        """The item as shown, such as ``alpha/trade``."""
        return "/".join(part for part in (self.subaccount, self.key) if part is not None)

    def journal_target(self) -> str:
        """How the journal names the item (``copy`` as journals always have)."""
        if self.kind is ItemKind.COPY_KEY:
            return "copy"
        return orjson.dumps([self.kind.value, self.subaccount, self.key]).decode()


@attrs.frozen(kw_only=True)
class ItemResult:
    """The outcome for one planned item."""

    account: str
    #: ``subaccount``, ``key``, ``broker_key`` or ``copy_key``.
    kind: str
    #: The item's place in the plan, e.g. ``alpha/trade``.
    target: str
    status: Status
    api_key: str | None = None
    detail: str = ""
    #: The plan's sub-account label (a broker key's sub-account UID), when there is one.
    subaccount: str | None = None
    #: The key's label (a broker key's API key), when the item is a key.
    key: str | None = None
    #: The error that failed the item, when one did (for the exit status; never shown).
    error: BaseException | None = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready view (no secret is ever part of a result)."""
        return {
            "account": self.account,
            "kind": self.kind,
            "target": self.target,
            "subaccount": self.subaccount,
            "key": self.key,
            "status": self.status.value,
            "api_key": self.api_key,
            "detail": self.detail,
        }


OnResult = Callable[[ItemResult], None]
