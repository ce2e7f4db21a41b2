"""The command line, run as a user runs it."""

from __future__ import annotations

import os
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
    """A broken accounts file exits 78 (configuration) with a message naming the file."""
    broken = tmp_path / "accounts.toml"
    broken.write_text('[[accounts]]\nuid = "1"\n')
    result = subprocess.run(
        [sys.executable, "-m", "bitget_keys", "emulator", "--accounts", str(broken)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 78
    assert "accounts.toml" in result.stderr
    assert "api_key" in result.stderr


def test_accounts_file_typos_are_refused(tmp_path: Path) -> None:
    """Unknown keys, string booleans and unknown copy models are errors, not silently read."""
    from bitget_keys.errors import ConfigurationError
    from bitget_keys.testing._accounts_file import load_accounts_file as _load_accounts

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

    monkeypatch.setattr("bitget_keys.cli.vault.run_list", reader_left)
    assert main(["vault", "list", "--vault", "nowhere.vault"]) == 141
    assert "Traceback" not in capfd.readouterr().err


ACCOUNT = '[[accounts]]\nuid = "1"\napi_key = "k"\nsecret_key = "s"\npassphrase = "p"\n'


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("accounts = 5\n", "accounts must be an array of tables", id="accounts-int"),
        pytest.param("accounts = [5]\n", "accounts[0] must be a table", id="account-int"),
        pytest.param(
            ACCOUNT.replace('api_key = "k"', "api_key = 5"),
            "accounts[0].api_key must be a string, not int",
            id="api-key-int",
        ),
        pytest.param(
            ACCOUNT.replace('uid = "1"', "uid = true"),
            "accounts[0].uid must be a string or an integer, not bool",
            id="uid-bool",
        ),
        pytest.param(
            ACCOUNT.replace('secret_key = "s"', "secret_key = [1]"),
            "accounts[0].secret_key must be a string, not list",
            id="secret-list",
        ),
        pytest.param(
            ACCOUNT + "ip_list = [203]\n",
            "accounts[0].ip_list must be a list of strings",
            id="ip-list-ints",
        ),
        pytest.param(
            ACCOUNT + 'broker_subaccounts = "x"\n',
            "accounts[0].broker_subaccounts must be a list, not str",
            id="broker-subaccounts-string",
        ),
        pytest.param(
            ACCOUNT + '[[accounts.broker_subaccounts]]\napi_key = "b"\npassphrase = "SubPass1"\n',
            "accounts[0].broker_subaccounts[0] lacks sub_uid",
            id="broker-subaccount-no-uid",
        ),
        pytest.param(
            ACCOUNT + "[[accounts.broker_subaccounts]]\nsub_uid = 5\napi_key = 7\n"
            'passphrase = "SubPass1"\n',
            "accounts[0].broker_subaccounts[0].api_key must be a string",
            id="broker-subaccount-api-key-int",
        ),
        pytest.param(
            ACCOUNT + '[[accounts.broker_subaccounts]]\nsub_uid = "5"\napi_key = "b"\n'
            'passphrase = "SubPass1"\npermissions = "spot_trade"\n',
            "broker_subaccounts[0].permissions must be a list",
            id="broker-subaccount-permissions-string",
        ),
        pytest.param(
            ACCOUNT + '[[accounts.broker_subaccounts]]\nsub_uid = "5"\napi_key = "b"\n'
            'passphrase = "SubPass1"\ncolour = "red"\n',
            "broker_subaccounts[0] has unknown keys: colour",
            id="broker-subaccount-typo",
        ),
    ],
)
def test_accounts_file_of_the_wrong_shape_is_a_clear_error(
    tmp_path: Path, text: str, fragment: str
) -> None:
    """Wrong types anywhere in the accounts file name the file and the field."""
    from bitget_keys.errors import ConfigurationError
    from bitget_keys.testing._accounts_file import load_accounts_file as _load_accounts

    path = tmp_path / "accounts.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as info:
        _load_accounts(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


def test_accounts_file_with_broker_subaccounts_loads(tmp_path: Path) -> None:
    """The checked shape is the documented one: a broker with a seeded sub-account key."""
    from bitget_keys.testing._accounts_file import load_accounts_file as _load_accounts

    path = tmp_path / "accounts.toml"
    path.write_text(
        ACCOUNT.replace('uid = "1"', "uid = 1000000002") + "broker = true\n"
        '[[accounts.broker_subaccounts]]\nsub_uid = "5550001"\napi_key = "bg_sub"\n'
        'passphrase = "SubKeyPass1"\npermissions = ["spot_trade"]\nperm_type = "readonly"\n'
    )
    accounts, seeds = _load_accounts(path)
    assert (accounts[0].uid, accounts[0].broker) == ("1000000002", True)
    assert [row["sub_uid"] for row in seeds["1000000002"]] == ["5550001"]


def test_accounts_file_that_is_not_utf8(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An accounts file in another encoding exits 78 with one clear line, no traceback."""
    path = tmp_path / "accounts.toml"
    path.write_bytes(ACCOUNT.replace('"k"', '"k\xe9"').encode("latin-1"))
    assert main(["emulator", "--accounts", str(path)]) == 78
    err = capfd.readouterr().err
    assert "not UTF-8" in err
    assert str(path) in err
    assert "Traceback" not in err


def test_error_messages_are_one_escaped_line(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A path (or any quoted value) holding a newline or ESC can't forge a line of stderr."""
    path = tmp_path / "gone\nbitget-keys: all fine\x1b[2J.toml"
    assert main(["emulator", "--accounts", str(path)]) == 78
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    assert "\x1b" not in err
    assert "gone\\nbitget-keys: all fine\\x1b[2J.toml" in err


def test_printed_credentials_are_escaped(tmp_path: Path) -> None:
    """An accounts file's values print escaped: one line per account, whatever they hold."""
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNT.replace('"k"', '"k\\nuid=666 api_key=forged\\u202e"'))
    process = start("--accounts", str(path), "--print-credentials")
    try:
        assert process.stdout is not None
        process.stdout.readline()
        line = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=10)
    assert line == "uid=1 api_key=k\\nuid=666 api_key=forged\\u202e secret_key=s passphrase=p\n"
    assert "forged" not in rest


@pytest.mark.parametrize(
    "argv", [["--help"], ["vault", "list", "--vault", "missing.vault"]], ids=["help", "vault-list"]
)
def test_light_commands_do_not_load_the_emulator_redis_or_the_demo(
    argv: list[str], tmp_path: Path
) -> None:
    """Each command is imported when it runs: --help and vault list load no web server."""
    probe = (
        "import sys\n"
        "from bitget_keys.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('aiohttp.web', 'redis', 'bitget_keys.cli._demo', 'bitget_keys.testing')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis' or m in heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
