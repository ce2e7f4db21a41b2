"""
The command line's configuration and outcomes: --version, global options after the
command, environment variables for paths, the plan on stdin, shell completion, exit
statuses, and errors that name the host and the account they concern.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl

import bitget_keys
from bitget_keys._transport import AiohttpTransport, host_described
from bitget_keys.cli import build_parser, main
from bitget_keys.cli.apply import apply_status
from bitget_keys.cli.environment import VARIABLES
from bitget_keys.cli.exits import AccountError, ExitCode, exit_code_for
from bitget_keys.errors import AuthenticationError, RateLimitBackendError, TransportError
from bitget_keys.provision.apply import ItemResult, Status
from bitget_keys.testing import Emulator, Limits
from tests.cli.test_cli_provision import (
    MASTER,
    PLAN,
    cli,
    environment,  # noqa: F401 - the fixture
)

ROOT = Path(__file__).parents[2]


def run_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bitget_keys", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


# -- --version, usage errors, global options ---------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"bitget-keys {bitget_keys.__version__}\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["launch"], "argument command: invalid choice: 'launch'"),
        (["apply"], "the following arguments are required: plan"),
        (["vault", "show"], "the following arguments are required: LABEL"),
        (["apply", "p.toml", "--drain-timeout", "soon"], "argument --drain-timeout: invalid"),
        (["completion", "tcsh"], "argument shell: invalid choice: 'tcsh'"),
    ],
)
def test_a_wrong_command_line_exits_64_with_argparse_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage errors exit 64 (not 2, which plan --detailed-exitcode gives "changes")."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 64
    err = capsys.readouterr().err
    assert err.startswith("usage: bitget-keys")
    assert f"error: {message}" in err


def test_a_wrong_command_line_exits_64_from_the_shell_too() -> None:
    done = run_cli("apply", "--no-such-option", "plan.toml")
    assert done.returncode == 64
    assert "bitget-keys: error: unrecognized arguments: --no-such-option" in done.stderr


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["vault", "list"], 0),
        (["-v", "vault", "list"], 1),
        (["vault", "list", "-v"], 1),
        (["vault", "-vv", "list"], 2),
        (["apply", "-v", "plan.toml"], 1),
        (["-vv", "apply", "plan.toml"], 2),
        (["apply", "plan.toml", "--verbose", "--verbose"], 2),
        (["plan", "-v", "plan.toml"], 1),
        (["completion", "-v", "bash"], 1),
    ],
)
def test_verbose_is_taken_before_or_after_the_command(argv: list[str], verbose: int) -> None:
    assert build_parser().parse_args(argv).verbose == verbose


def test_verbose_after_the_command_turns_on_debug_logging(tmp_path: Path) -> None:
    """-vv after the command logs what the client does (here: a refused connection)."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    env = {
        "DESK_A_API_KEY": MASTER.api_key,
        "DESK_A_SECRET_KEY": MASTER.secret_key.reveal(),
        "DESK_A_PASSPHRASE": MASTER.passphrase.reveal(),
    }
    quiet = run_cli("plan", str(plan), "--base-url", f"http://127.0.0.1:{free_port()}", env=env)
    loud = run_cli(
        "plan", str(plan), "--base-url", f"http://127.0.0.1:{free_port()}", "-vv", env=env
    )
    assert quiet.returncode == loud.returncode == 69
    assert "DEBUG " not in quiet.stderr
    assert "DEBUG bitget_keys" in loud.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_help_lists_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    epilog = capsys.readouterr().out.split("Exit status:", 1)[1]
    for member in ExitCode:
        assert re.search(rf"(?<!\d){member.value}(?!\d)", epilog), member


# -- environment variables ---------------------------------------------------------------


def test_vault_and_state_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITGET_KEYS_VAULT", "/srv/keys/desk.vault")
    monkeypatch.setenv("BITGET_KEYS_STATE", "/srv/keys/desk.state")
    parser = build_parser()
    applied = parser.parse_args(["apply", "plan.toml"])
    assert (applied.vault, applied.state) == (
        Path("/srv/keys/desk.vault"),
        Path("/srv/keys/desk.state"),
    )
    for command in (["list"], ["show", "x"], ["export"], ["check"], ["repair"]):
        assert parser.parse_args(["vault", *command]).vault == Path("/srv/keys/desk.vault")
    assert parser.parse_args(["plan", "plan.toml"]).vault == Path("/srv/keys/desk.vault")
    given = parser.parse_args(["apply", "plan.toml", "--vault", "v", "--state", "s"])
    assert (given.vault, given.state) == (Path("v"), Path("s"))
    monkeypatch.delenv("BITGET_KEYS_VAULT")
    monkeypatch.setenv("BITGET_KEYS_STATE", "")
    defaults = build_parser().parse_args(["apply", "plan.toml"])
    assert (defaults.vault, defaults.state) == (
        Path("bitget-keys.vault"),
        Path("bitget-keys.state"),
    )
    # plan reads a vault only when one is named, or bitget-keys.vault exists.
    assert build_parser().parse_args(["plan", "plan.toml"]).vault is None


def test_a_vault_command_opens_the_vault_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "a long vault passphrase")
    monkeypatch.setenv("BITGET_KEYS_VAULT", str(tmp_path / "from-env.vault"))
    assert main(["vault", "list"]) == ExitCode.NO_INPUT
    assert f"vault {tmp_path / 'from-env.vault'}: no vault here" in capfd.readouterr().err


def test_the_new_variables_are_in_the_table() -> None:
    names = {variable.name: variable for variable in VARIABLES}
    assert "--vault" in names["BITGET_KEYS_VAULT"].meaning
    assert "--state" in names["BITGET_KEYS_STATE"].meaning
    assert not names["BITGET_KEYS_VAULT"].secret


# -- the plan on stdin -------------------------------------------------------------------


@pytest.mark.usefixtures("environment")
async def test_plan_and_apply_read_the_plan_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        monkeypatch.setattr(sys, "stdin", io.StringIO(PLAN))
        assert await cli("plan", "-", "--base-url", emulator.base_url) == 0
        shown = capfd.readouterr().out
        assert '  + sub-account alpha\n      name  = "alphabot"\n' in shown
        assert "Plan: 3 to create, 0 to change, 0 to revoke." in shown
        monkeypatch.setattr(sys, "stdin", io.StringIO(PLAN))
        argv = ["apply", "-", "--base-url", emulator.base_url, "--json", "--yes", "--create-vault"]
        assert await cli(*argv) == 0
        rows = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
        assert {(r["target"], r["status"]) for r in rows} >= {
            ("alpha/trade", "created"),
            ("alpha/read", "created"),
        }
    assert (tmp_path / "bitget-keys.vault").exists()


@pytest.mark.usefixtures("environment")
def test_apply_from_stdin_needs_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """stdin holds the plan, so no one can answer the prompt there: refused before reading."""
    stdin = io.StringIO(PLAN)
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["apply", "-", "--base-url", "http://127.0.0.1:9"]) == ExitCode.USAGE
    err = capfd.readouterr().err
    assert "apply - reads the plan from stdin, so it cannot ask for confirmation there" in err
    assert "--yes" in err
    assert stdin.tell() == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == []


@pytest.mark.usefixtures("environment")
def test_stdin_cannot_hold_both_the_plan_and_the_vault_key(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Refused as usage, before stdin is read, wherever the key file's ``-`` comes from."""
    monkeypatch.delenv("BITGET_KEYS_VAULT_KEY", raising=False)
    for key_source, extra in ((None, ["--vault-key-file", "-"]), ("-", [])):
        if key_source is not None:
            monkeypatch.setenv("BITGET_KEYS_VAULT_KEY_FILE", key_source)
        stdin = io.StringIO(PLAN)
        monkeypatch.setattr(sys, "stdin", stdin)
        argv = ["apply", "-", "--yes", "--base-url", "http://127.0.0.1:9", *extra]
        assert main(argv) == ExitCode.USAGE
        assert "the vault key cannot come from there too" in capfd.readouterr().err
        assert stdin.tell() == 0


@pytest.mark.usefixtures("environment")
def test_a_saved_plan_on_stdin_is_refused_as_usage(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"format": "bitget-keys saved plan"}'))
    assert main(["apply", "-", "--yes", "--base-url", "http://127.0.0.1:9"]) == ExitCode.USAGE
    assert "a saved plan is applied from its file" in capfd.readouterr().err


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_an_invalid_plan_on_stdin_is_named_stdin(
    command: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PLAN.replace('"alphabot"', '"alpha"')))
    extra = ["--yes"] if command == "apply" else []
    assert main([command, "-", "--base-url", "http://127.0.0.1:9", *extra]) == 65
    err = capfd.readouterr().err
    assert "<stdin>: 1 problem(s)" in err
    assert "accounts[0].subaccounts[0].name: must be exactly 8 English letters" in err
    assert "line " in err


# -- shell completion --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "registers"),
    [
        (
            "bash",
            "complete -o nospace -o default -o bashdefault -F _python_argcomplete bitget-keys",
        ),
        ("zsh", "compdef _python_argcomplete bitget-keys"),
        ("fish", "complete --command bitget-keys"),
    ],
)
def test_completion_prints_each_shells_script(
    shell: str, registers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", shell]) == 0
    assert registers in capsys.readouterr().out


def complete(line: str, tmp_path: Path) -> list[str]:
    """What ``bitget-keys`` offers when the shell asks to complete ``line``."""
    answer = tmp_path / "completions"
    done = run_cli(
        env={
            "_ARGCOMPLETE": "1",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
            "_ARGCOMPLETE_IFS": "\n",
        }
    )
    assert done.returncode == 0, done.stderr
    return [word.strip() for word in answer.read_text().split("\n")]


@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("bitget-keys ap", ["apply"]),
        ("bitget-keys vault ch", ["check"]),
        ("bitget-keys apply --redis-f", ["--redis-fallback"]),
        ("bitget-keys completion f", ["fish"]),
    ],
)
def test_the_shell_is_offered_commands_and_options(
    line: str, offered: list[str], tmp_path: Path
) -> None:
    assert complete(line, tmp_path) == offered


# -- exit statuses -----------------------------------------------------------------------


def result(status: Status, target: str = "alpha/trade") -> ItemResult:
    return ItemResult(account="desk-a", kind="key", target=target, status=status)


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([], ExitCode.OK),
        ([Status.CREATED, Status.UNCHANGED, Status.MODIFIED], ExitCode.OK),
        ([Status.CREATED, Status.FAILED], ExitCode.PARTIAL),
        ([Status.UNCHANGED, Status.ORPHAN], ExitCode.PARTIAL),
        ([Status.CREATED, Status.UNKNOWN, Status.STOPPED], ExitCode.PARTIAL),
        ([Status.FAILED, Status.STOPPED], ExitCode.FAILED),
        ([Status.ORPHAN], ExitCode.FAILED),
        ([Status.CONFLICT], ExitCode.FAILED),
    ],
)
def test_apply_status_tells_done_partial_and_failed(statuses: list[Status], code: int) -> None:
    results = [result(status, f"alpha/k{n}") for n, status in enumerate(statuses)]
    assert apply_status(results) == code


def test_an_account_error_keeps_the_exit_status_of_its_cause() -> None:
    refused = AuthenticationError(400, "40006", "Invalid ACCESS_KEY", "/api/v2/user/x")
    unreachable = TransportError("/api/v2/public/time", "DNS lookup failed", maybe_sent=False)
    assert exit_code_for(AccountError("desk-a", refused)) == ExitCode.CONFIG
    assert exit_code_for(AccountError("desk-a", unreachable)) == ExitCode.UNAVAILABLE
    assert str(AccountError("desk-a", refused)).startswith("desk-a: /api/v2/user/x: HTTP 400")


# -- errors name the host and the account ------------------------------------------------


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize("command", ["plan", "apply"])
async def test_a_dns_failure_names_the_host_and_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], command: str
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    from tests.cli.test_cli_vault import Terminal

    # apply without --yes first shows the plan (as `plan` does), asking on a terminal.
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    extra = ["--create-vault"] if command == "apply" else []
    code = await cli(command, str(plan), "--base-url", "http://no-such-host.invalid", *extra)
    err = capfd.readouterr().err
    assert code == ExitCode.UNAVAILABLE, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("bitget-keys: desk-a: /api/v2/")
    assert "could not connect: DNS lookup failed for no-such-host.invalid;" in last
    assert "the request was not sent" in last
    assert "Bitget production" not in last


class _NoDNS(aiohttp.abc.AbstractResolver):
    """A resolver for which no name exists."""

    async def resolve(self, host: str, *_: Any, **__: Any) -> Any:
        raise OSError(socket.EAI_NONAME, f"no address for {host}")

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://api.bitget.com/api/v2/public/time", "api.bitget.com (Bitget production)"),
        ("https://staging.example/api/v2/public/time", "staging.example"),
    ],
)
async def test_a_dns_failure_says_when_the_host_is_bitget_production(url: str, named: str) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=_NoDNS()))
    transport = AiohttpTransport(session, timeout=aiohttp.ClientTimeout(total=5))
    try:
        with pytest.raises(TransportError) as raised:
            await transport.send("GET", yarl.URL(url), {}, None, endpoint="/api/v2/public/time")
    finally:
        await session.close()
    assert raised.value.maybe_sent is False
    assert raised.value.detail == f"could not connect: DNS lookup failed for {named}"


def test_only_the_production_host_is_called_production() -> None:
    assert host_described("api.bitget.com") == "api.bitget.com (Bitget production)"
    assert host_described("api.bitget.com.example") == "api.bitget.com.example"
    assert host_described("127.0.0.1") == "127.0.0.1"


@pytest.mark.usefixtures("environment")
async def test_a_refused_connection_names_the_host_and_port(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    port = free_port()
    assert await cli("plan", str(plan), "--base-url", f"http://127.0.0.1:{port}") == 69
    last = capfd.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("bitget-keys: desk-a: ")
    assert f"could not connect to 127.0.0.1:{port} (" in last


@pytest.mark.usefixtures("environment")
async def test_refused_credentials_name_the_account_in_plan_and_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Bitget refusing the master's key is a configuration error (78) naming the account."""
    from tests.cli.test_cli_vault import Terminal

    monkeypatch.setenv("DESK_A_PASSPHRASE", "NotThePassphrase1")
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli("plan", str(plan), "--base-url", emulator.base_url) == 78
        last = capfd.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("bitget-keys: desk-a: /api/v")
        assert "code 40012" in last
        monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
        argv = ["apply", str(plan), "--base-url", emulator.base_url, "--create-vault"]
        assert await cli(*argv) == 78
        out, err = capfd.readouterr()
        assert err.strip().splitlines()[-1].startswith("bitget-keys: desk-a: /api/v")
        assert "[y/N]" not in err
        assert emulator.exchange.subaccounts(MASTER.uid) == []
    assert "NotThePassphrase1" not in out + err


# -- --redis-fallback, --shard -----------------------------------------------------------


def test_the_redis_down_message_names_both_ways_to_fall_back() -> None:
    text = str(RateLimitBackendError("redis://h:6379/0", "ConnectionError: refused"))
    assert "fallback= of RedisRateLimitScheduler" in text
    assert "apply --redis-fallback FRACTION" in text


@pytest.mark.parametrize("value", ["0", "1.5", "half", "-0.2"])
def test_redis_fallback_must_be_a_fraction(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["apply", "plan.toml", "--redis", "redis://127.0.0.1:1/0", "--redis-fallback", value])
    assert exited.value.code == 64
    assert "argument --redis-fallback: expected a fraction" in capsys.readouterr().err


@pytest.mark.usefixtures("environment")
def test_redis_fallback_needs_redis(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    assert main(["apply", str(plan), "--yes", "--redis-fallback", "0.5"]) == 64
    assert "--redis-fallback paces while --redis is down: give --redis as well" in (
        capfd.readouterr().err
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plan.toml"]


@pytest.mark.usefixtures("environment")
async def test_apply_paces_locally_while_redis_is_down_with_redis_fallback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Redis unreachable: nothing is sent (69) unless --redis-fallback, which completes."""
    pytest.importorskip("redis")
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    redis = f"redis://127.0.0.1:{free_port()}/0"
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        base = ["apply", str(plan), "--base-url", emulator.base_url, "--json", "--yes"]
        base.append("--create-vault")
        failed = await cli(*base, "--redis", redis)
        out, err = capfd.readouterr()
        # Nothing was done, and the only reason is the Redis that shares the limits.
        assert failed == ExitCode.UNAVAILABLE, err
        assert emulator.exchange.subaccounts(MASTER.uid) == []
        assert "--redis-fallback" in out + err
        assert await cli(*base, "--redis", redis, "--redis-fallback", "1") == 0
        rows = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert {r["status"] for r in rows if r["kind"] == "key"} == {"created"}
    assert len(emulator.exchange.subaccounts(MASTER.uid)[0]["keys"]) == 2


@pytest.mark.usefixtures("environment")
def test_a_shard_that_holds_no_account_is_a_usage_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    argv = ["apply", str(plan), "--yes", "--base-url", "http://127.0.0.1:9", "--shard", "2/2"]
    assert main(argv) == 64
    err = capfd.readouterr().err
    assert f"shard 2/2 of {plan} holds no account (the plan has 1)" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plan.toml"]


@pytest.mark.usefixtures("environment")
async def test_apply_yes_exits_with_the_status_of_what_failed_every_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """
    With --yes (no review first), an apply whose every item failed for one reason exits
    with that reason's status: 69 when Bitget is unreachable, 78 when it refuses the
    master's credentials.
    """
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    files = ["--vault", str(tmp_path / "v"), "--state", str(tmp_path / "s"), "--create-vault"]
    unreachable = ["--base-url", f"http://127.0.0.1:{free_port()}"]
    assert await cli("apply", str(plan), "--yes", *unreachable, *files) == 69
    monkeypatch.setenv("DESK_A_SECRET_KEY", "not-the-secret-key")
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        code = await cli("apply", str(plan), "--yes", "--base-url", emulator.base_url, *files)
        assert code == 78, capfd.readouterr().err
        assert emulator.exchange.subaccounts(MASTER.uid) == []
