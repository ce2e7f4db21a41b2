"""The exit status table and the environment variable table the docs show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bitget_keys
from bitget_keys.cli.environment import VARIABLES
from bitget_keys.cli.exits import AccountError, ExitCode, UsageError, exit_code_for
from bitget_keys.errors import (
    AuthenticationError,
    ConfigurationError,
    JournalError,
    LockedError,
    PlanError,
    Problem,
    RateLimitBackendError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    VaultDamagedError,
    VaultError,
    VaultKeyError,
    VaultMissingError,
    VaultWriteError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (PlanError((Problem("accounts[0].name", "is required"),), "plan.toml"), 65),
        (LockedError("vault.lock", "held by pid 1"), 75),
        (VaultKeyError("v", "the vault key is wrong"), 78),
        (VaultMissingError("v", "no vault here"), 66),
        (VaultDamagedError("v", "line 3 altered"), 65),
        (VaultWriteError("v", "No space left on device", 28), 74),
        (JournalError("s", "not a database"), 74),
        (ConfigurationError("no vault key"), 78),
        (UsageError("apply - needs --yes"), 64),
        (AccountError("desk-a", VaultKeyError("v", "wrong")), 78),
        (AuthenticationError(400, "40006", "Invalid ACCESS_KEY", "/api/v2/user/x"), 78),
        (TransportError("GET /api/v2/public/time", "DNS lookup failed", maybe_sent=False), 69),
        (RequestTimeoutError("POST /x", "timed out", maybe_sent=True), 69),
        (ServerError(500, None, "busy", "/api/v2/user/x"), 69),
        (RateLimitBackendError("redis://h:6379/0", "ConnectionError"), 69),
        (VaultError("v", "cannot read: Permission denied"), 1),
        (KeyboardInterrupt(), 130),
        (RuntimeError("anything else"), 1),
    ],
)
def test_each_error_class_has_its_exit_code(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_exit_codes_are_distinct_and_documented() -> None:
    codes = [member.value for member in ExitCode]
    assert len(codes) == len(set(codes))
    source = Path(bitget_keys.__file__).with_name("cli").joinpath("exits.py").read_text()
    for member in ExitCode:
        # Every member carries its meaning as a comment, which the docs table shows.
        assert re.search(rf"#: [^\n]+\n(?:    #: [^\n]+\n)*    {member.name} = ", source), member


def test_every_environment_variable_read_is_in_the_table() -> None:
    """A variable named anywhere in the package is listed, with what it sets."""
    names = {variable.name for variable in VARIABLES}
    package = Path(bitget_keys.__file__).parent
    used = set()
    for path in package.rglob("*.py"):
        used |= set(re.findall(r'"(BITGET_(?:KEYS_)?[A-Z_]+)"', path.read_text()))
    assert used
    assert used <= names, used - names
    assert all(variable.meaning for variable in VARIABLES)


def test_a_plan_file_that_cannot_be_read_is_missing_input(tmp_path: Path) -> None:
    """A missing plan file, or a directory in its place, exits 66; a broken one 65."""
    from bitget_keys.cli import main

    assert main(["plan", str(tmp_path / "missing.toml")]) == 66
    assert main(["apply", str(tmp_path), "--yes"]) == 66
    (tmp_path / "broken.toml").write_text("[[accounts]\n")
    assert main(["plan", str(tmp_path / "broken.toml")]) == 65
