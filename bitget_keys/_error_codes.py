"""
Bitget's documented error codes, and which exception class each error answer raises.

The table lives apart from `bitget_keys.errors` so the exception tree stays readable;
`classify` follows the order that module's docstring gives. A code missing here falls
back on the HTTP status.
"""

from __future__ import annotations

from typing import Final

from bitget_keys import errors
from bitget_keys.errors import (
    APIError,
    AuthenticationError,
    CopyAPIKeyExistsError,
    CopyModelNotSupportedError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitExceededError,
    ServerError,
)

__all__ = ["CODE_CLASSES", "classify"]

CODE_CLASSES: Final[dict[str, str]] = {
    # rate
    "429": "RateLimitExceededError",
    "1001": "RateLimitExceededError",
    "50009": "RateLimitExceededError",
    # auth
    "40001": "AuthenticationError",
    "40002": "AuthenticationError",
    "40003": "AuthenticationError",
    "40006": "AuthenticationError",
    "40009": "AuthenticationError",
    "40011": "AuthenticationError",
    "40012": "AuthenticationError",
    "40037": "AuthenticationError",
    "40041": "AuthenticationError",
    # clock
    "40004": "ClockSkewError",
    "40005": "ClockSkewError",
    "40008": "ClockSkewError",
    # permission, account type or state
    "40013": "PermissionDeniedError",
    "40014": "PermissionDeniedError",
    "40016": "PermissionDeniedError",
    "40018": "PermissionDeniedError",
    "40023": "PermissionDeniedError",
    "40024": "PermissionDeniedError",
    "40025": "PermissionDeniedError",
    "40026": "PermissionDeniedError",
    "40029": "PermissionDeniedError",
    "40031": "PermissionDeniedError",
    "40038": "PermissionDeniedError",
    "40048": "PermissionDeniedError",
    "40061": "PermissionDeniedError",
    "40068": "PermissionDeniedError",
    "40084": "ClassicAccountModeError",
    "40085": "UnifiedAccountModeError",
    "40199": "PermissionDeniedError",
    "31001": "PermissionDeniedError",
    "40732": "PermissionDeniedError",
    # invalid request
    "40007": "InvalidRequestError",
    "40017": "InvalidRequestError",
    "40019": "InvalidRequestError",
    "40020": "InvalidRequestError",
    "40028": "InvalidRequestError",
    "40036": "InvalidRequestError",
    "40040": "InvalidRequestError",
    "40054": "InvalidRequestError",
    "40055": "InvalidRequestError",
    "40056": "InvalidRequestError",
    "40057": "InvalidRequestError",
    "40058": "InvalidRequestError",
    "40059": "InvalidRequestError",
    "40064": "InvalidRequestError",
    "40065": "InvalidRequestError",
    "40066": "InvalidRequestError",
    "40070": "InvalidRequestError",
    # conflict
    "40060": "ConflictError",
    "40071": "ConflictError",
    "40107": "ConflictError",
    "40108": "ConflictError",
    # quota
    "40032": "QuotaExceededError",
    "40063": "QuotaExceededError",
    "40069": "QuotaExceededError",
    # server
    "40010": "ServerError",
    "40015": "ServerError",
    "40067": "ServerError",
    "40200": "ServerError",
    "45001": "ServerError",
    "40725": "ServerError",
    "40808": "ServerError",
}

_CODES: Final[dict[str, type[APIError]]] = {
    code: getattr(errors, name) for code, name in CODE_CLASSES.items()
}

# Conditions create-copy-api reports with no documented code; matched on the message,
# case-insensitively, whatever code comes with them.
_MESSAGES: Final[tuple[tuple[str, type[APIError]], ...]] = (
    ("already created a copy api key", CopyAPIKeyExistsError),
    ("only applicable to the new copy model", CopyModelNotSupportedError),
    ("request frequency is too high", RateLimitExceededError),
)


def _by_status(http_status: int) -> type[APIError]:
    if http_status == 429:
        return RateLimitExceededError
    if http_status >= 500:
        return ServerError
    if http_status == 401:
        return AuthenticationError
    if http_status == 403:
        return PermissionDeniedError
    if http_status >= 400:
        return InvalidRequestError
    return APIError


def classify(code: str | None, message: str, http_status: int) -> type[APIError]:
    """The exception class for an error answer (see the module docstring)."""
    lowered = message.lower()
    for fragment, cls in _MESSAGES:
        if fragment in lowered:
            return cls
    if code is not None and code in _CODES:
        return _CODES[code]
    return _by_status(http_status)
