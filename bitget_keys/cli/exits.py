"""
The exit status of every ``bitget-keys`` command, and which error gives which.

Scripts and schedulers act on the status alone, so each class of failure has its own:
a typo in the command line is not a wrong vault key, a wrong vault key is not Bitget
being unreachable, and an apply that created half the plan is not one that sent
nothing. The codes from 64 up follow the BSD ``sysexits.h`` convention. `ExitCode`'s
members are the table the documentation shows; `exit_code_for` maps an error to its
code, in one place.
"""

from __future__ import annotations

import enum

from bitget_keys.errors import (
    AuthenticationError,
    BitgetKeysError,
    ClockSkewError,
    ConfigurationError,
    JournalError,
    LockedError,
    PermissionDeniedError,
    PlanError,
    RateLimitBackendError,
    RateLimitExceededError,
    ServerError,
    TransportError,
    VaultDamagedError,
    VaultKeyError,
    VaultMissingError,
    VaultWriteError,
)
from bitget_keys.provision.audit_log import AuditLogDamagedError, AuditLogWriteError

__all__ = ["AccountError", "ExitCode", "UsageError", "exit_code_for"]


class ExitCode(enum.IntEnum):
    """What a ``bitget-keys`` exit status means."""

    #: Done: every item created, changed or already as planned (``plan``: shown).
    OK = 0
    #: The command ran and something failed: apply got no item done (each one it
    #: reached failed, or was unknown or orphaned), ``vault check`` found damage,
    #: ``vault show`` matched no record, or an error no other code names.
    FAILED = 1
    #: ``plan --detailed-exitcode``: the plan would create, change or revoke something.
    CHANGES = 2
    #: Secrets that arrived could be written neither to the vault nor to any emergency
    #: vault: the keys exist on Bitget without a stored secret (the message names them).
    SECRETS_NOT_STORED = 3
    #: Apply ended with some items done and others failed, unknown or orphaned; a re-run
    #: reads live state and creates only what is missing.
    PARTIAL = 4
    #: Apply was declined at its prompt; nothing was created or changed.
    DECLINED = 5
    #: The command line is wrong: an unknown command or option, a bad value, options
    #: that cannot go together (``apply -`` without ``--yes``), a ``vault show`` LABEL
    #: that matches several keys, or an ``apply --shard`` that can hold no account.
    USAGE = 64
    #: The plan file (or another input file) breaks a rule; every problem is listed.
    INVALID_INPUT = 65
    #: A file the command needs does not exist: the plan, the vault, the audit log.
    NO_INPUT = 66
    #: Bitget (or the Redis that shares limits) could not be reached, timed out or
    #: failed on its side; the message names the host.
    UNAVAILABLE = 69
    #: The vault, the state file or the audit log could not be written (a full disk,
    #: an I/O error).
    IO_ERROR = 74
    #: Another run holds the vault's or the state file's lock: try again later, or
    #: pass ``--wait-lock``.
    LOCKED = 75
    #: Configuration: the vault key is missing or wrong, Bitget refused the
    #: credentials, or a setting is out of range.
    CONFIG = 78
    #: Interrupted by Ctrl-C (SIGINT).
    INTERRUPTED = 130
    #: The reader of the output went away (``bitget-keys vault list | head``).
    BROKEN_PIPE = 141
    #: Stopped by SIGTERM (after letting requests already sent finish).
    TERMINATED = 143


class UsageError(ConfigurationError):
    """The command line asks for something that cannot be done as given (exit `ExitCode.USAGE`)."""


class AccountError(BitgetKeysError):
    """
    An error met on behalf of one plan account, shown with the account's name first
    (``desk-a: ...``); its exit status is the error's own.
    """

    def __init__(self, account: str, error: BitgetKeysError) -> None:
        super().__init__(account, error)
        self.account = account
        self.error = error
        self.__cause__ = error

    def __str__(self) -> str:
        return f"{self.account}: {self.error}"


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit status for an error that ended a command."""
    if isinstance(exc, PlanError) and isinstance(exc.__cause__, OSError):
        # The plan file (or saved plan) could not be read at all: missing, a directory.
        return ExitCode.NO_INPUT
    if isinstance(exc, AccountError):
        exc = exc.error
    rules: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ExitCode], ...] = (
        (UsageError, ExitCode.USAGE),
        (PlanError, ExitCode.INVALID_INPUT),
        (LockedError, ExitCode.LOCKED),
        (VaultKeyError, ExitCode.CONFIG),
        ((VaultDamagedError, AuditLogDamagedError), ExitCode.INVALID_INPUT),
        ((VaultWriteError, JournalError, AuditLogWriteError), ExitCode.IO_ERROR),
        (
            (AuthenticationError, ClockSkewError, PermissionDeniedError, ConfigurationError),
            ExitCode.CONFIG,
        ),
        (
            (TransportError, ServerError, RateLimitExceededError, RateLimitBackendError),
            ExitCode.UNAVAILABLE,
        ),
        ((VaultMissingError, FileNotFoundError), ExitCode.NO_INPUT),
        (KeyboardInterrupt, ExitCode.INTERRUPTED),
        (BrokenPipeError, ExitCode.BROKEN_PIPE),
    )
    for kinds, code in rules:
        if isinstance(exc, kinds):
            return code
    return ExitCode.FAILED
