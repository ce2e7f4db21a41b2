"""
How an error of a create or read becomes an item's outcome.

A create whose answer never came may still have taken effect (*unknown*); one that
certainly never left (the run stopped it, or it got no rate-limit slot) created nothing.
"""

from __future__ import annotations

from typing import Final

from bitget_keys._gate import DispatchGate
from bitget_keys.errors import (
    AccountInTransitionError,
    AccountModeError,
    APIError,
    AuthenticationError,
    DispatchStoppedError,
    InvalidRequestError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitBackendError,
    RateLimitWaitTooLongError,
    ServerError,
    TransportError,
)
from bitget_keys.provision.retrying import describe_error

__all__ = [
    "EXPECTED",
    "NOT_SENT",
    "ambiguous",
    "not_sent_detail",
    "refused",
    "stop_on_backend_failure",
]


def ambiguous(exc: BaseException) -> bool:
    """Whether a failed create may still have taken effect."""
    if isinstance(exc, TransportError):
        return exc.maybe_sent
    return isinstance(exc, ServerError)


def refused(exc: BaseException) -> bool:
    """
    Whether Bitget refused a create for a reason a later round of the same run would
    meet again (a name taken, a quota, a rule, a permission or the credentials): the
    item is reported failed once and not sent again. Server errors, 429s and lost
    answers are tried again; a refusal naming the account's mode is handled apart.
    """
    kinds = (InvalidRequestError, QuotaExceededError, PermissionDeniedError, AuthenticationError)
    return isinstance(exc, kinds) and not isinstance(exc, AccountModeError)


#: Errors of a request that certainly never left: the run stopped it, or it never got
#: a rate-limit slot.
NOT_SENT: Final = (DispatchStoppedError, RateLimitBackendError, RateLimitWaitTooLongError)

#: Every error a create or read can end with that becomes a result.
EXPECTED: Final = (APIError, TransportError, AccountInTransitionError, *NOT_SENT)


def stop_on_backend_failure(gate: DispatchGate, exc: BaseException) -> None:
    """A failing rate-limit backend would fail every further request: stop sending."""
    if isinstance(exc, RateLimitBackendError):
        gate.close(f"the rate-limit backend failed: {exc.detail}")


def not_sent_detail(exc: BaseException) -> str:
    """The error's description, saying so when the request never left."""
    detail = describe_error(exc)
    return f"not sent: {detail}" if isinstance(exc, NOT_SENT) else detail
