"""
The exceptions `bitget_keys` raises, and how Bitget's answers map onto them.

Every exception derives from `BitgetKeysError`::

    BitgetKeysError
    ├── ClientStateError (+RuntimeError)     used before open, after aclose, or reopened
    │   └── LockedError                      another run holds a vault's or state file's lock
    ├── ConfigurationError (+ValueError)     bad settings or credentials
    │   └── ValidationError                  a request breaks a documented Bitget rule
    │       └── PlanError                    a plan file breaks a rule (every problem listed)
    ├── SecretNotHeldError                   an imported key: the vault holds no secret for it
    ├── PassphraseNotHeldError               a classic key can't be changed without it
    ├── KeyNotVerifiedError                  a new key did not prove itself by signing
    ├── VaultError                           wrong vault key, unreadable or unwritable vault
    │   ├── VaultKeyError                    the vault passphrase is wrong
    │   ├── VaultMissingError                no vault at the path given
    │   ├── VaultDamagedError                damaged header or records (`vault repair`)
    │   └── VaultWriteError                  a record could not be stored; the caller keeps it
    ├── JournalError                         the state file is unusable (not SQLite, locked)
    ├── TransportError                       no usable response; maybe_sent tells if it left
    │   └── RequestTimeoutError (+TimeoutError)
    ├── APIError                             Bitget answered with an error envelope or status
    │   ├── AuthenticationError              40001-40003, 40006, 40009, 40011, 40012, 40037, 40041
    │   ├── ClockSkewError                   40005, 40008
    │   ├── PermissionDeniedError            40014, 40018, 40038, 40029, 40048, ...
    │   │   ├── AccountModeError             the account's mode does not serve this API family
    │   │   │   ├── ClassicAccountModeError  40084: v3 (UTA) endpoints refuse classic masters
    │   │   │   └── UnifiedAccountModeError  40085: classic v2 endpoints refuse UTA masters
    │   │   └── CopyModelNotSupportedError   "only applicable to the new Copy model"
    │   ├── InvalidRequestError              40017, 40019, 40020, 40055, 40056, 40070, ...
    │   │   └── ConflictError                already exists: 40060, 40071, 40107, 40108
    │   ├── QuotaExceededError               40032, 40063, 40069
    │   │   └── CopyAPIKeyExistsError        "You have already created a Copy API Key"
    │   ├── RateLimitExceededError           HTTP 429, body code "429", 1001, 50009
    │   └── ServerError                      5xx, 40010, 40015, 40067, 40200, 45001, ...
    ├── ResponseDecodeError                  the response does not have the documented shape
    ├── AccountInTransitionError             the master is switching modes; nothing was sent
    ├── RateLimitWaitTooLongError            a slot would come later than the caller allows
    ├── RateLimitBackendError                the shared limiter (Redis) failed; nothing was sent
    └── DispatchStoppedError                 a DispatchGate stopped the request; nothing was sent

How an answer is classified (`from_response`):

1. The body is always parsed, whatever the HTTP status.
2. If it carries a Bitget ``code``, the code decides (``"00000"`` is success, even
   under an unusual status). The two create-copy-api conditions that have no documented
   code are recognised by their message text, whatever code comes with them.
3. Without a code, the HTTP status decides: 429 rate limited, 5xx server, other 4xx
   invalid request.
4. A code nobody documented falls back on the HTTP status the same way, and on
   `APIError` itself when the status says nothing.

No exception ever holds a request header or body: only the endpoint's path, the HTTP
status, Bitget's code and message, and Bitget's ``requestTime``.
"""

from __future__ import annotations

from typing import Final

import attrs

from bitget_keys._escape import escape

__all__ = [
    "APIError",
    "AccountInTransitionError",
    "AccountModeError",
    "AuthenticationError",
    "BitgetKeysError",
    "ClassicAccountModeError",
    "ClientStateError",
    "ClockSkewError",
    "ConfigurationError",
    "ConflictError",
    "CopyAPIKeyExistsError",
    "CopyModelNotSupportedError",
    "DispatchStoppedError",
    "InvalidRequestError",
    "JournalError",
    "KeyNotVerifiedError",
    "LockedError",
    "PassphraseNotHeldError",
    "PermissionDeniedError",
    "PlanError",
    "Problem",
    "QuotaExceededError",
    "RateLimitBackendError",
    "RateLimitExceededError",
    "RateLimitWaitTooLongError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "SecretNotHeldError",
    "ServerError",
    "TransportError",
    "UnifiedAccountModeError",
    "ValidationError",
    "VaultDamagedError",
    "VaultError",
    "VaultKeyError",
    "VaultMissingError",
    "VaultWriteError",
    "from_response",
]


class BitgetKeysError(Exception):
    """Root of every exception this library raises."""


class ClientStateError(BitgetKeysError, RuntimeError):
    """A client (or another stateful object) was used in a state that forbids it."""


@attrs.define(slots=False, eq=False)
class LockedError(ClientStateError):
    """
    Another run holds the lock of a vault or state file; nothing was done.

    ``holder`` is what that run wrote into the lock file (its pid, host, command and
    since when), or says that it could not be read.
    """

    #: The file the lock protects (the vault or the state file).
    path: str
    #: Who holds it, such as ``pid 4242 on host build-1 (bitget-keys apply plan.toml) since ...``.
    holder: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.path, self.holder)

    def __str__(self) -> str:
        return (
            f"{self.path} is in use by another run: {self.holder}; wait for it to finish "
            "(or let this run wait for it with --wait-lock)"
        )


class ConfigurationError(BitgetKeysError, ValueError):
    """Settings or credentials are missing or inconsistent."""


@attrs.frozen
class Problem:
    """One broken rule: which field, and what the rule is."""

    #: The field, in the library's Python spelling (``label``, ``items[2].name``).
    field: str
    #: The rule in words, never the offending secret value.
    rule: str

    def __str__(self) -> str:
        # One line, whatever the plan or the request held: a field named by a plan's
        # key, or a rule quoting a value, can't forge a line of output.
        return escape(f"{self.field}: {self.rule}")


@attrs.define(slots=False, eq=False)
class ValidationError(ConfigurationError):
    """
    A request breaks one or more documented Bitget rules; nothing was sent.

    Every broken rule is listed, each naming its field.
    """

    problems: tuple[Problem, ...]
    #: The request class (or other object) that was being built.
    subject: str = ""

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.problems, self.subject)

    def __str__(self) -> str:
        where = f"{self.subject}: " if self.subject else ""
        return where + "; ".join(str(problem) for problem in self.problems)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the fields that broke a rule, in order."""
        return tuple(problem.field for problem in self.problems)


class PlanError(ValidationError):
    """A plan file is unreadable or breaks rules; each problem names its location."""

    def __str__(self) -> str:
        lines = [f"{escape(self.subject)}: {len(self.problems)} problem(s)"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


@attrs.define(slots=False, eq=False)
class PassphraseNotHeldError(BitgetKeysError):
    """
    A classic key can't be changed through the API: its passphrase is not held.

    Bitget's modify takes the key's passphrase; a key made elsewhere (imported) has
    none in the vault. Nothing was sent: change or delete it in Bitget's web UI.
    """

    api_key: str
    #: What could not be done: ``neutralise``, ``modify``.
    action: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.api_key, self.action)

    def __str__(self) -> str:
        return (
            f"cannot {self.action} {self.api_key}: its passphrase is not held (the key was "
            "made elsewhere); do it in Bitget's web UI"
        )


@attrs.define(slots=False, eq=False)
class KeyNotVerifiedError(BitgetKeysError):
    """A new key did not prove itself: Bitget did not accept a request signed with it."""

    subaccount_uid: str
    detail: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.subaccount_uid, self.detail)

    def __str__(self) -> str:
        return f"new key of sub-account {self.subaccount_uid} not verified: {self.detail}"


@attrs.define(slots=False, eq=False)
class SecretNotHeldError(BitgetKeysError):
    """
    The vault knows the key but not its secret: it was imported (made elsewhere).

    Rotating the key replaces it with one whose secret the vault holds.
    """

    api_key: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.api_key)

    def __str__(self) -> str:
        return (
            f"the secret of {self.api_key} is not held (the key was imported); "
            "rotate it to get a key whose secret is held"
        )


@attrs.define(slots=False, eq=False)
class VaultError(BitgetKeysError):
    """The secrets vault can't be opened, read or written."""

    path: str
    detail: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.path, self.detail)

    def __str__(self) -> str:
        return f"vault {self.path}: {self.detail}"


class VaultKeyError(VaultError):
    """The passphrase given does not open the vault (its key check does not decrypt)."""


class VaultMissingError(VaultError):
    """No vault exists at the path given (commands that read a vault never create one)."""


class VaultDamagedError(VaultError):
    """
    The vault file is damaged: its header, or records that are torn, altered, missing,
    repeated or out of order. ``detail`` lists each damaged line; the intact records can
    still be read one by one (`SecretsVault.scan`) and recovered (`bitget-keys vault
    repair`).
    """


@attrs.define(slots=False, eq=False)
class VaultWriteError(VaultError):
    """
    A record could not be stored (a full disk, an I/O error): it is NOT in the vault.

    The vault is left as it was before the write; the caller still holds the record and
    must keep it (retry, or write it to a rescue vault elsewhere).
    """

    #: The OS error number (``errno.ENOSPC`` for a full disk), when there was one.
    errno: int | None = None

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.path, self.detail, self.errno)


@attrs.define(slots=False, eq=False)
class JournalError(BitgetKeysError):
    """The provisioning state file (SQLite) can't be opened, read or written."""

    path: str
    detail: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.path, self.detail)

    def __str__(self) -> str:
        return f"state file {self.path}: {self.detail}"


@attrs.define(slots=False, eq=False)
class TransportError(BitgetKeysError):
    """
    No usable HTTP response arrived.

    ``maybe_sent`` is ``False`` only when the request certainly never left (the
    connection could not be opened). When it is ``True`` the outcome is unknown: the
    server may have carried the request out. Never re-send a create in that case;
    read the list endpoints first.
    """

    endpoint: str
    detail: str
    maybe_sent: bool

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.endpoint, self.detail, self.maybe_sent)

    def __str__(self) -> str:
        if self.maybe_sent:
            outcome = (
                "the outcome is unknown: the request may have reached Bitget and taken "
                "effect; check the list endpoints before trying again"
            )
        else:
            outcome = "the request was not sent"
        return f"{self.endpoint}: {self.detail}; {outcome}"

    @property
    def outcome_unknown(self) -> bool:
        """Whether Bitget may have carried the request out."""
        return self.maybe_sent


@attrs.define(slots=False, eq=False)
class RequestTimeoutError(TransportError, TimeoutError):
    """The request timed out; after sending, its outcome is unknown."""


@attrs.define(slots=False, eq=False)
class APIError(BitgetKeysError):
    """Bitget answered with an error."""

    #: The HTTP status of the answer.
    http_status: int
    #: Bitget's code (a string such as ``"40009"``), or ``None`` when the body had none.
    code: str | None
    #: Bitget's message, as sent.
    message: str
    #: The endpoint's path, such as ``/api/v2/user/create-virtual-subaccount-apikey``.
    endpoint: str
    #: Bitget's ``requestTime`` in epoch milliseconds, when the body had one.
    request_time: int | None = None

    def __attrs_post_init__(self) -> None:
        Exception.__init__(
            self, self.http_status, self.code, self.message, self.endpoint, self.request_time
        )

    def __str__(self) -> str:
        code = f"code {self.code}" if self.code is not None else "no code"
        text = f"{self.endpoint}: HTTP {self.http_status}, {code}: {self.message}"
        hint = self.hint()
        return f"{text} ({hint})" if hint else text

    def hint(self) -> str:
        """What the user can do about it, in one sentence (empty when obvious)."""
        return ""


class AuthenticationError(APIError):
    """The calling key, its signature or its passphrase was refused."""


class ClockSkewError(APIError):
    """The request's timestamp was malformed or too far from Bitget's clock."""

    def hint(self) -> str:
        return "the local clock is more than 30 s away from Bitget's; resync it"


class PermissionDeniedError(APIError):
    """The calling key or account is not allowed to do this."""


class AccountModeError(PermissionDeniedError):
    """
    The calling key's account is in a mode that the endpoint's API family does not serve.

    Bitget refused the request without carrying it out, so sending the same operation
    through the other family is safe. Bitget keys these on the numeric code; the texts
    have been seen swapped in the wild.
    """

    #: The mode the refusal shows the account is in: ``"classic"`` or ``"unified"``.
    mode: str = ""
    #: The API family that serves this account: ``"v2"`` or ``"v3"``.
    family: str = ""


class ClassicAccountModeError(AccountModeError):
    """40084: the account is a classic one, which the v3 (Unified Trading Account) API refuses."""

    mode = "classic"
    family = "v2"

    def hint(self) -> str:
        return (
            "this account is in Classic Account mode, which the v3 (Unified Trading Account) "
            "endpoints do not serve: nothing was carried out; use the v2 "
            "methods (create_virtual_subaccount_api_key and the like), which the library "
            "picks by itself after `await client.account_mode()`, or upgrade the account to "
            "Unified mode"
        )


class UnifiedAccountModeError(AccountModeError):
    """40085: the account is a Unified Trading Account, which the classic v2 API refuses."""

    mode = "unified"
    family = "v3"

    def hint(self) -> str:
        return (
            "this account is in Unified Account mode, which the classic v2 endpoints do not "
            "serve: nothing was carried out; use the v3 "
            "methods (create_uta_subaccount_api_key and the like), which the library picks by "
            "itself after `await client.account_mode()`; `bitget-keys apply` does this per "
            "master"
        )


class CopyModelNotSupportedError(PermissionDeniedError):
    """create-copy-api refused an old-model copy trader."""

    def hint(self) -> str:
        return "only new-model copy traders can create a Copy API key"


class InvalidRequestError(APIError):
    """Bitget refused the request's content."""


class ConflictError(InvalidRequestError):
    """The thing to create already exists (a name or alias is taken)."""


class QuotaExceededError(APIError):
    """An account quota is used up (sub-accounts, keys per sub-account)."""


class CopyAPIKeyExistsError(QuotaExceededError):
    """This trader already has its one Copy API key."""

    def hint(self) -> str:
        return "a trader can create only one Copy API key, ever"


class RateLimitExceededError(APIError):
    """Bitget throttled the request; it was not carried out."""


class ServerError(APIError):
    """Bitget failed on its side; for a create the outcome is unknown."""


@attrs.define(slots=False, eq=False)
class ResponseDecodeError(BitgetKeysError):
    """The response did not have the documented shape."""

    endpoint: str
    problems: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.endpoint, self.problems)

    def __str__(self) -> str:
        return f"{self.endpoint}: unexpected response: " + "; ".join(self.problems)


@attrs.define(slots=False, eq=False)
class AccountInTransitionError(BitgetKeysError):
    """
    The master account is between modes (upgrading to unified, or switching back to
    classic), which Bitget says takes about a minute; nothing was sent.
    """

    #: Bitget's name for the transition: ``upgrading`` or ``switching``.
    mode: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.mode)

    def __str__(self) -> str:
        return (
            f"the account is {self.mode} between classic and unified mode (about a minute "
            "on Bitget's side): nothing was sent; try again once it has finished"
        )


@attrs.define(slots=False, eq=False)
class RateLimitWaitTooLongError(BitgetKeysError):
    """The next free slot is further away than the caller is willing to wait."""

    endpoint: str
    uid: str
    wait: float
    max_wait: float

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.endpoint, self.uid, self.wait, self.max_wait)

    def __str__(self) -> str:
        return (
            f"{self.endpoint} for UID {self.uid}: the next slot is {self.wait:.3f} s away, "
            f"more than the allowed {self.max_wait:.3f} s; nothing was sent"
        )


@attrs.define(slots=False, eq=False)
class RateLimitBackendError(BitgetKeysError):
    """
    The shared rate-limit backend (Redis) could not hand out a slot; nothing was sent.

    Raised by `bitget_keys.redis_limits.RedisRateLimitScheduler` when Redis is
    unreachable, times out or fails, unless a local fallback was configured. ``backend``
    names the server without credentials; the request was never sent, so it is safe to
    try again once the backend is back.
    """

    #: The backend's address with any password masked, such as ``redis://:***@host:6379/0``.
    backend: str
    #: What went wrong, such as ``ConnectionError: Connection refused``.
    detail: str
    #: The endpoint's path and the lane's UID, when a request was waiting for its slot.
    endpoint: str = ""
    uid: str = ""

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.backend, self.detail, self.endpoint, self.uid)

    def __str__(self) -> str:
        where = f"{self.endpoint} for UID {self.uid}: " if self.endpoint else ""
        return (
            f"{where}the shared rate-limit backend {self.backend} failed ({self.detail}); "
            "no request was sent (check that Redis is reachable, or let each process "
            "pace itself locally while it is down: fallback= of RedisRateLimitScheduler, "
            "or apply --redis-fallback FRACTION on the command line)"
        )


#: Bitget's success code.
SUCCESS_CODE: Final = "00000"


def from_response(
    *,
    http_status: int,
    code: str | None,
    message: str,
    endpoint: str,
    request_time: int | None = None,
) -> APIError:
    """Build the exception for an error answer."""
    # The code table names these classes, so it is read once they exist.
    from bitget_keys._error_codes import classify  # noqa: PLC0415

    cls = classify(code, message, http_status)
    return cls(http_status, code, message, endpoint, request_time)


@attrs.define(slots=False, eq=False)
class DispatchStoppedError(BitgetKeysError):
    """
    The request was stopped before it was sent, by its client's `DispatchGate`.

    Nothing left: it is safe to send it again later. ``reason`` says why the gate was
    closed (an interruption, a failing vault or rate-limit backend).
    """

    endpoint: str
    reason: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.endpoint, self.reason)

    def __str__(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.endpoint}: not sent, sending has stopped{why}"
