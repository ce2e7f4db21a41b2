"""The exception tree and the classification of Bitget's answers."""

from __future__ import annotations

import pickle

import pytest

from bitget_keys import errors as e
from bitget_keys._error_codes import classify


@pytest.mark.parametrize(
    ("code", "message", "status", "expected"),
    [
        ("429", "Too Many Requests", 429, e.RateLimitExceededError),
        ("429", "Too Many Requests", 200, e.RateLimitExceededError),
        ("1001", "throttled", 200, e.RateLimitExceededError),
        ("50009", "too frequent", 400, e.RateLimitExceededError),
        ("40123", "Request Frequency Is Too High", 400, e.RateLimitExceededError),
        (None, "", 429, e.RateLimitExceededError),
        ("40009", "sign signature error", 400, e.AuthenticationError),
        ("40008", "Request timestamp expired", 400, e.ClockSkewError),
        ("40005", "Invalid ACCESS_TIMESTAMP", 400, e.ClockSkewError),
        ("40085", "Unified", 400, e.UnifiedAccountModeError),
        ("40032", "max sub-accounts", 400, e.QuotaExceededError),
        ("40071", "subName exist duplication", 400, e.ConflictError),
        ("40010", "Request timed out", 400, e.ServerError),
        ("31001", "The user is not a trader", 400, e.PermissionDeniedError),
        ("00001", "You have already created a Copy API Key.", 400, e.CopyAPIKeyExistsError),
        (
            "40732",
            "THIS INTERFACE IS ONLY APPLICABLE TO THE NEW COPY MODEL",
            400,
            e.CopyModelNotSupportedError,
        ),
        (None, "", 503, e.ServerError),
        (None, "", 401, e.AuthenticationError),
        (None, "", 403, e.PermissionDeniedError),
        (None, "", 404, e.InvalidRequestError),
        ("77777", "new code", 500, e.ServerError),
        ("77777", "new code", 200, e.APIError),
    ],
)
def test_classification(
    code: str | None, message: str, status: int, expected: type[e.APIError]
) -> None:
    """Message conditions first, then the body code, then the HTTP status."""
    assert classify(code, message, status) is expected


def test_tree() -> None:
    """The documented hierarchy holds, including the built-in bases."""
    assert issubclass(e.ValidationError, e.ConfigurationError)
    assert issubclass(e.ConfigurationError, ValueError)
    assert issubclass(e.ClientStateError, RuntimeError)
    assert issubclass(e.RequestTimeoutError, e.TransportError)
    assert issubclass(e.RequestTimeoutError, TimeoutError)
    assert issubclass(e.UnifiedAccountModeError, e.PermissionDeniedError)
    assert issubclass(e.CopyAPIKeyExistsError, e.QuotaExceededError)
    assert issubclass(e.ConflictError, e.InvalidRequestError)
    assert issubclass(e.VaultDamagedError, e.VaultError)
    assert issubclass(e.VaultWriteError, e.VaultError)
    assert issubclass(e.LockedError, e.ClientStateError)
    for name in e.__all__:
        obj = getattr(e, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, e.BitgetKeysError), name


@pytest.mark.parametrize(
    "error",
    [
        e.from_response(
            http_status=429, code="429", message="Too Many Requests", endpoint="/p", request_time=5
        ),
        e.RequestTimeoutError("/p", "timed out", maybe_sent=True),
        e.TransportError("/p", "refused", maybe_sent=False),
        e.ValidationError((e.Problem("label", "must be 1-20 characters"),), "Request"),
        e.ResponseDecodeError("/p", ("data.x: missing",)),
        e.RateLimitWaitTooLongError("/p", "42", 3.0, 1.0),
        e.VaultWriteError("keys.vault", "could not write", 28),
        e.VaultDamagedError("keys.vault", "damaged: line 3: torn"),
        e.JournalError("keys.state", "is locked by another program"),
        e.LockedError("keys.vault", "pid 1 on host h (bitget-keys apply p.toml), since t"),
    ],
)
def test_errors_pickle(error: e.BitgetKeysError) -> None:
    """Errors survive pickling (for process pools) with their fields and message."""
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args


def test_messages_are_readable() -> None:
    """str() of each error is a sentence, not a tuple."""
    api = e.from_response(http_status=400, code="40063", message="API exceeds", endpoint="/p")
    assert str(api) == "/p: HTTP 400, code 40063: API exceeds"
    wait = e.RateLimitWaitTooLongError("/p", "42", 3.0, 1.0)
    assert "3.000 s" in str(wait)
    assert "nothing was sent" in str(wait)
    validation = e.ValidationError((e.Problem("a", "x"), e.Problem("b", "y")), "R")
    assert str(validation) == "R: a: x; b: y"
    assert validation.fields == ("a", "b")
