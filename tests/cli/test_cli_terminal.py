"""
``bitget-keys apply`` and ``demo`` in a real pseudo-terminal (`pexpect`), read back as
a terminal would show them (`pyte`): the live display fits an 80x24 screen with 40
masters, says interrupted after Ctrl-C, and ``--plain`` or ``NO_COLOR`` give plain lines
without a single escape code. Nothing here times the run: each step waits for what
the screen shows, with a generous timeout.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pexpect
import pyte
import pytest

from bitget_keys.testing import Emulator, EmulatorAccount, Limits

COLUMNS, LINES = 80, 24
VAULT_KEY = "a long vault passphrase"
#: Forty classic masters, the same in every run (one seeded generator).
_RNG = random.Random(16)
MASTERS = [EmulatorAccount.generate(_RNG) for _ in range(40)]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
ESCAPE = "\x1b"
#: A row of the display: name, counts M/N, ..., its state.
ROW = re.compile(r"^(?P<name>\S+)\s.*?(?P<done>\d+)/(?P<total>\d+|\?)\b(?P<rest>.*)$")
WAIT = 120.0


def plan_toml(masters: int, subaccounts: int) -> str:
    lines = ['[defaults]\nip_list = ["203.0.113.7"]\n']
    for a in range(masters):
        lines.append(f'[[accounts]]\nname = "desk{a}"\ncredentials = "env:DESK{a}"\n')
        for s in range(subaccounts):
            name = f"tty{LETTERS[a // 26]}{LETTERS[a % 26]}{LETTERS[s // 26]}{LETTERS[s % 26]}x"
            lines.append(
                f'[[accounts.subaccounts]]\nname = "{name}"\nlabel = "s{s}"\n\n'
                '[[accounts.subaccounts.keys]]\nlabel = "trade"\npermissions = ["spot_trade"]\n'
            )
    return "\n".join(lines)


def environment(masters: int, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NO_COLOR", "COLUMNS", "LINES", "FORCE_COLOR"}
    }
    env |= {"PYTHONPATH": str(Path.cwd()), "TERM": "xterm-256color"}
    env["BITGET_KEYS_VAULT_KEY"] = VAULT_KEY
    for i, master in enumerate(MASTERS[:masters]):
        env[f"DESK{i}_API_KEY"] = master.api_key
        env[f"DESK{i}_SECRET_KEY"] = master.secret_key.reveal()
        env[f"DESK{i}_PASSPHRASE"] = master.passphrase.reveal()
        env[f"DESK{i}_UID"] = master.uid
    return env | extra


class Terminal:
    """A command in an 80x24 pseudo-terminal, and the screen it draws."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.Stream(self.screen)
        self.raw = ""
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "bitget_keys", *argv],
            dimensions=(LINES, COLUMNS),
            env=env,
            encoding="utf-8",
            timeout=WAIT,
        )

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def read(self) -> bool:
        """Read what is there; False once the command has ended."""
        try:
            chunk = self.child.read_nonblocking(65536, timeout=0.2)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw += chunk
        self.stream.feed(chunk)
        return True

    def wait_for(self, shown: Callable[[list[str]], bool]) -> None:
        deadline = time.monotonic() + WAIT
        while not shown(self.lines()):
            if not self.read() or time.monotonic() > deadline:
                pytest.fail("the screen never showed it:\n" + "\n".join(self.lines()))

    def finish(self) -> int:
        while self.read():
            pass
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)


def rows(lines: Sequence[str]) -> list[re.Match[str]]:
    return [match for line in lines if (match := ROW.match(line))]


def overall(lines: Sequence[str]) -> re.Match[str] | None:
    found = [row for row in rows(lines) if row["name"] == "all"]
    return found[-1] if found else None


async def run_in_terminal(
    argv: Sequence[str], env: dict[str, str], steps: Callable[[Terminal], int]
) -> int:
    return await asyncio.to_thread(lambda: steps(Terminal(argv, env)))


def apply_argv(tmp_path: Path, emulator: Emulator, *extra: str) -> list[str]:
    return [
        "apply",
        str(tmp_path / "plan.toml"),
        "--vault",
        str(tmp_path / "v.vault"),
        "--state",
        str(tmp_path / "s.state"),
        "--base-url",
        emulator.base_url,
        "--yes",
        "--create-vault",
        *extra,
    ]


async def test_forty_masters_fit_an_80x24_screen(tmp_path: Path) -> None:
    """The overall row is on screen at the end, under ``… N more``; no line is wider than 80."""
    (tmp_path / "plan.toml").write_text(plan_toml(40, 2))

    def steps(terminal: Terminal) -> int:
        terminal.wait_for(lambda lines: overall(lines) is not None)
        return terminal_end(terminal)

    final: list[str] = []

    def terminal_end(terminal: Terminal) -> int:
        code = terminal.finish()
        final.extend(terminal.lines())
        for raw_line in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.raw)):
            assert len(raw_line) <= COLUMNS, raw_line
        return code

    limits = Limits(per_uid=False, ip_limit=None)
    async with Emulator(MASTERS, limits=limits) as emulator:
        code = await run_in_terminal(apply_argv(tmp_path, emulator), environment(40), steps)
    assert code == 0, "\n".join(final)
    last = overall(final)
    assert last is not None, "\n".join(final)
    assert (last["done"], last["total"]) == ("160", "160")  # 80 sub-accounts, 80 keys
    assert last["rest"].split()[-1] == "done"
    more = [row for row in rows(final) if row["name"] == "…"]
    assert len(more) == 1
    assert len(rows(final)) <= LINES - 1  # the summary line fits below
    assert any(line.startswith("160 created, 0 modified") for line in final)


async def test_ctrl_c_shows_interrupted_never_done(tmp_path: Path) -> None:
    """After Ctrl-C mid-run, masters not finished and the overall row say interrupted."""
    (tmp_path / "plan.toml").write_text(plan_toml(40, 12))
    final: list[str] = []

    def steps(terminal: Terminal) -> int:
        # Once every master's total is known and work has begun, but long before the
        # end: 40 masters x 12 sub-accounts at Bitget's one batch a second per master.
        def started(lines: list[str]) -> bool:
            row = overall(lines)
            return row is not None and row["total"] != "?" and int(row["done"]) > 0

        terminal.wait_for(started)
        terminal.child.sendintr()
        code = terminal.finish()
        final.extend(terminal.lines())
        return code

    async with Emulator(MASTERS, limits=Limits()) as emulator:
        code = await run_in_terminal(apply_argv(tmp_path, emulator), environment(40), steps)
    screen = "\n".join(final)
    assert code == 130, screen
    last = overall(final)
    assert last is not None, screen
    assert int(last["done"]) < int(last["total"]) == 40 * 24, screen
    assert last["rest"].split()[-1] == "interrupted", screen
    for row in rows(final):
        if row["total"] == "?" or int(row["done"]) < int(row["total"]):
            assert "done" not in row["rest"].split(), row.group(0)
    assert any(line.startswith("interrupted by SIGINT: ") for line in final), screen


@pytest.mark.parametrize(
    ("where", "extra_env"),
    [("after", {}), ("before", {}), (None, {"NO_COLOR": "1"})],
    ids=["--plain-after", "--plain-before", "NO_COLOR"],
)
async def test_plain_lines_without_escape_codes(
    tmp_path: Path, where: str | None, extra_env: dict[str, str]
) -> None:
    """--plain (before or after the command) or NO_COLOR: one line per item, no escapes."""
    (tmp_path / "plan.toml").write_text(plan_toml(3, 2))
    async with Emulator(MASTERS[:3], limits=Limits(per_uid=False)) as emulator:
        argv = apply_argv(tmp_path, emulator, *(["--plain"] if where == "after" else []))
        if where == "before":
            argv = ["--plain", *argv]
        raw: list[str] = []

        def steps(terminal: Terminal) -> int:
            code = terminal.finish()
            raw.append(terminal.raw)
            return code

        code = await run_in_terminal(argv, environment(3, **extra_env), steps)
    output = raw[0]
    assert code == 0, output
    assert ESCAPE not in output
    items = [line for line in output.splitlines() if ": created" in line]
    assert len(items) == 3 * 4  # per master: two sub-accounts, each with its key


async def test_demo_on_a_terminal_sends_what_it_sends_piped(tmp_path: Path) -> None:
    """
    The demo's requests on a terminal equal those of a piped run of the same size, and
    its summary states each apply's one measured duration.
    """
    args = ["demo", "--accounts", "4", "--subaccounts", "2", "--keys", "2", "--json"]

    def accepted(output: str) -> int:
        summary = [line for line in output.splitlines() if line.startswith('{"summary"')]
        return int(__import__("json").loads(summary[-1])["summary"]["requests"]["accepted"])

    piped = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bitget_keys",
        *args,
        "--workdir",
        str(tmp_path / "piped"),
        env=environment(0),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await piped.communicate()
    assert piped.returncode == 0

    live = ["demo", "--accounts", "4", "--subaccounts", "2", "--keys", "2"]
    raw: list[str] = []

    def steps(terminal: Terminal) -> int:
        code = terminal.finish()
        raw.append(terminal.raw)
        return code

    code = await run_in_terminal([*live, "--workdir", str(tmp_path / "tty")], environment(0), steps)
    assert code == 0, raw[0]
    assert ESCAPE in raw[0]  # the live display was drawn
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw[0])
    found = re.search(r"requests:\s+(\d+) accepted", text)
    assert found is not None, text
    # Every master's first read is the one apply uses: no request is added for the display.
    assert int(found[1]) == accepted(out.decode())
    lines = [line.strip() for line in re.split(r"[\r\n]+", text)]
    measured = [
        match[1] for line in lines if (match := re.match(r"\d+ created, .* in ([\d.]+) s$", line))
    ]
    stated = [
        match[1]
        for line in lines
        if (match := re.match(r"(?:first|second) apply: .* in ([\d.]+) s$", line))
    ]
    assert len(measured) == 2, text
    assert stated == measured


async def test_log_lines_go_above_the_live_display(tmp_path: Path) -> None:
    """-v on a terminal: each log line is printed whole above the rows, which stay intact."""
    (tmp_path / "plan.toml").write_text(plan_toml(3, 2))
    final: list[str] = []
    raw: list[str] = []

    def steps(terminal: Terminal) -> int:
        code = terminal.finish()
        final.extend(terminal.lines())
        raw.append(terminal.raw)
        return code

    async with Emulator(MASTERS[:3], limits=Limits(per_uid=False)) as emulator:
        code = await run_in_terminal(["-v", *apply_argv(tmp_path, emulator)], environment(3), steps)
    screen = "\n".join(final)
    assert code == 0, screen
    assert ESCAPE in raw[0]  # the live display was drawn
    logged = [line for line in final if line.startswith("INFO ")]
    # One record per item, each on its own line (rich's handler, above the rows).
    assert len(logged) == 12, screen
    assert all(
        re.search(r"bitget_keys\.apply: desk\d (subaccount|key) s\d", line) for line in logged
    )
    shown = [row["name"] for row in rows(final)]
    assert shown == ["desk0", "desk1", "desk2", "all"], screen
    assert final.index(logged[-1]) < min(final.index(row.group(0)) for row in rows(final))


async def test_demo_ctrl_c_stops_and_says_interrupted(tmp_path: Path) -> None:
    """Ctrl-C mid-demo: the apply drains and says interrupted; no second apply; exit 130."""
    argv = ["demo", "--accounts", "4", "--subaccounts", "20", "--keys", "2"]
    final: list[str] = []
    raw: list[str] = []

    def steps(terminal: Terminal) -> int:
        def started(lines: list[str]) -> bool:
            row = overall(lines)
            return row is not None and row["total"] != "?" and int(row["done"]) > 0

        terminal.wait_for(started)
        terminal.child.sendintr()
        code = terminal.finish()
        final.extend(terminal.lines())
        raw.append(terminal.raw)
        return code

    code = await run_in_terminal(
        [*argv, "--workdir", str(tmp_path / "demo")], environment(0), steps
    )
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw[0])
    assert code == 130, text
    assert "second apply: the same plan again" not in text
    assert re.search(r"^interrupted by SIGINT: \d+ created", text, re.MULTILINE), text
    assert "second apply:  not run: the first was interrupted" in text
    assert "interrupted: the demo stopped before it ended" in final


@pytest.mark.parametrize(
    ("plain", "extra_env"), [(True, {}), (False, {"NO_COLOR": "yes"})], ids=["--plain", "NO_COLOR"]
)
async def test_demo_plain_on_a_terminal(
    tmp_path: Path, plain: bool, extra_env: dict[str, str]
) -> None:
    """The demo with --plain or NO_COLOR on a terminal: its summary, and no escape code."""
    argv = ["demo", "--accounts", "2", "--subaccounts", "1", "--keys", "1"]
    argv += ["--workdir", str(tmp_path / "demo"), *(["--plain"] if plain else [])]
    raw: list[str] = []

    def steps(terminal: Terminal) -> int:
        code = terminal.finish()
        raw.append(terminal.raw)
        return code

    code = await run_in_terminal(argv, environment(0, **extra_env), steps)
    assert code == 0, raw[0]
    assert ESCAPE not in raw[0]
    assert "first apply:   2 sub-accounts and 2 keys created, 0 failed" in raw[0]


async def test_a_no_op_apply_on_a_terminal_reads_live_state_once(tmp_path: Path) -> None:
    """
    Without ``--yes`` on a terminal, apply reads live state to show what it would do;
    with nothing to do it asks nothing, and it starts from that read: each master's
    sub-account list is read once, as piped.
    """
    (tmp_path / "plan.toml").write_text(plan_toml(3, 2))

    def lists(emulator: Emulator) -> int:
        return sum(
            len(lane.accepted)
            for (_, name), lane in emulator.audit.lanes.items()
            if name == "list_virtual_subaccounts"
        )

    async with Emulator(MASTERS[:3], limits=Limits(per_uid=False, ip_limit=None)) as emulator:
        code = await run_in_terminal(
            apply_argv(tmp_path, emulator), environment(3), lambda terminal: terminal.finish()
        )
        assert code == 0
        before = lists(emulator)
        argv = [arg for arg in apply_argv(tmp_path, emulator) if arg != "--yes"]
        final: list[str] = []

        def steps(terminal: Terminal) -> int:
            code = terminal.finish()
            final.extend(terminal.lines())
            return code

        code = await run_in_terminal(argv, environment(3), steps)
        assert code == 0, "\n".join(final)
        assert any("No changes" in line for line in final), "\n".join(final)
        assert lists(emulator) - before == 3
