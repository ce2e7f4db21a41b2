"""The command line, run as a user runs it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bitget_keys import Client, ClientConfig, Credentials
from bitget_keys.cli import main


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bitget_keys", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_emulator_command_serves_until_terminated(tmp_path: Path) -> None:
    """`bitget-keys emulator` prints its URL, answers a client, and exits cleanly on SIGTERM."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        '[[accounts]]\nuid = "1000000001"\napi_key = "bg_cli"\n'
        'secret_key = "cli-secret-0001"\npassphrase = "CliPass123"\n'
    )
    process = start("--accounts", str(accounts))
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        credentials = Credentials("bg_cli", "cli-secret-0001", "CliPass123")
        async with Client(credentials, base_url=base_url, config=ClientConfig()) as client:
            assert (await client.account_info()).user_id == "1000000001"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "cli-secret-0001" not in out + err
    assert "CliPass123" not in out + err


def test_print_credentials_only_when_asked() -> None:
    """Generated secrets are printed with --print-credentials, never without."""
    for flag, shown in (("--print-credentials", True), ("", False)):
        process = start(*([flag] if flag else []))
        try:
            assert process.stdout is not None
            process.stdout.readline()
            lines = [process.stdout.readline() for _ in range(3)] if shown else []
        finally:
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=10)
        if shown:
            assert all("secret_key=" in line and "passphrase=" in line for line in lines)
        else:
            assert "secret_key=" not in out


def test_bad_accounts_file_is_a_clear_error(tmp_path: Path) -> None:
    """A broken accounts file exits 2 with a message naming the file."""
    broken = tmp_path / "accounts.toml"
    broken.write_text('[[accounts]]\nuid = "1"\n')
    result = subprocess.run(
        [sys.executable, "-m", "bitget_keys", "emulator", "--accounts", str(broken)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "accounts.toml" in result.stderr
    assert "api_key" in result.stderr


def test_accounts_file_typos_are_refused(tmp_path: Path) -> None:
    """Unknown keys, string booleans and unknown copy models are errors, not silently read."""
    from bitget_keys.cli import _load_accounts
    from bitget_keys.errors import ConfigurationError

    base = '[[accounts]]\nuid = "1"\napi_key = "k"\nsecret_key = "s"\npassphrase = "p"\n'
    for extra, fragment in (
        ("unifed = true\n", "unknown keys: unifed"),
        ('broker = "false"\n', "broker must be true or false"),
        ('copy_trader = "newer"\n', "copy_trader"),
        ('ip_list = "203.0.113.7"\n', "ip_list"),
    ):
        path = tmp_path / "accounts.toml"
        path.write_text(base + extra)
        with pytest.raises(ConfigurationError, match=fragment):
            _load_accounts(path)
    path.write_text(base + 'copy_trader = "none"\n')
    assert _load_accounts(path)[0][0].copy_trader is None


def test_a_closed_pipe_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`bitget-keys vault list | head`: the reader leaving is not an error with a traceback."""

    async def reader_left(_args: object) -> int:
        raise BrokenPipeError

    monkeypatch.setattr("bitget_keys.cli.run_vault_list", reader_left)
    assert main(["vault", "list", "--vault", "nowhere.vault"]) == 141
    assert "Traceback" not in capfd.readouterr().err
