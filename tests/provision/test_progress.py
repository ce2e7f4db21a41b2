"""The progress tracker's arithmetic, the three ways results are shown, and apply's display."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from bitget_keys import Client, ClientConfig
from bitget_keys import models as m
from bitget_keys._escape import escape
from bitget_keys._secret import Secret
from bitget_keys.cli import main
from bitget_keys.cli._common import apply_with_progress
from bitget_keys.provision.apply import ItemResult, Status
from bitget_keys.provision.diff import AccountDiff, Conflict, MissingKey
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.plan import (
    AccountSpec,
    BrokerKeySpec,
    KeySpec,
    SubaccountSpec,
    parse_plan,
)
from bitget_keys.provision.preview import preview_of
from bitget_keys.provision.progress import (
    Mode,
    ProgressTracker,
    Reporter,
    choose_mode,
    format_line,
    planned_items,
)
from bitget_keys.provision.progress_display import RowState, bar_width, fit_rows
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount, Limits, Unpaced
from tests.screen import screen_lines, screen_text

ESCAPE = "\x1b"
MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_progress_master",
    secret_key="progress-master-secret",
    passphrase="ProgressMaster1",
)
ENV = {
    "DESK_A_API_KEY": MASTER.api_key,
    "DESK_A_SECRET_KEY": MASTER.secret_key.reveal(),
    "DESK_A_PASSPHRASE": MASTER.passphrase.reveal(),
    "DESK_A_UID": MASTER.uid,
}
PLAN = {
    "defaults": {"ip_list": ["203.0.113.7"]},
    "accounts": [
        {
            "name": "desk-a",
            "credentials": "env:DESK_A",
            "subaccounts": [
                {
                    "name": "alphabot",
                    "label": "alpha",
                    "keys": [
                        {"label": "trade", "permissions": ["spot_trade"]},
                        {"label": "read", "permissions": ["read"]},
                    ],
                }
            ],
        }
    ],
}


class FakeClock:
    """Seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def result(account: str, status: Status = Status.CREATED, target: str = "s/k") -> ItemResult:
    return ItemResult(account=account, kind="key", target=target, status=status, api_key="bg_x")


def test_counts_follow_the_results_and_the_clock() -> None:
    """Each row counts what is done and failed against its total; elapsed follows the clock."""
    clock = FakeClock()
    tracker = ProgressTracker({"a": 4, "b": 6}, clock=clock)
    clock.now += 2
    for _ in range(3):
        tracker.record(result("a"))
    tracker.record(result("b", Status.FAILED))
    snapshot = tracker.snapshot()
    assert [(t.name, t.done, t.failed, t.total) for t in snapshot.accounts] == [
        ("a", 3, 0, 4),
        ("b", 1, 1, 6),
    ]
    assert (snapshot.overall.done, snapshot.overall.failed, snapshot.overall.total) == (4, 1, 10)
    assert snapshot.elapsed == 2.0
    assert not snapshot.finished
    assert [snapshot.state(row) for row in snapshot.accounts] == ["", ""]
    clock.now += 2
    assert tracker.snapshot().elapsed == 4.0


def test_totals_unknown_while_reading() -> None:
    """A master still being read has no total, nor has the overall row, until it is read."""
    tracker = ProgressTracker({"a": None, "b": 2}, clock=FakeClock())
    snapshot = tracker.snapshot()
    assert snapshot.overall.total is None
    assert [snapshot.state(row) for row in snapshot.accounts] == ["reading", ""]
    tracker.record(result("b"))
    tracker.expect("a", 3)
    snapshot = tracker.snapshot()
    assert (snapshot.overall.done, snapshot.overall.total) == (1, 5)
    tracker.record(result("b"))
    snapshot = tracker.snapshot()
    assert [snapshot.state(row) for row in snapshot.accounts] == ["", "checking"]


def test_an_interrupted_run_keeps_its_totals_and_is_never_done() -> None:
    """
    Stopped items are not done; an interrupted finish closes no row, and every row not
    done (and the overall row) says interrupted, where a run that ended says done.
    """
    clock = FakeClock()
    tracker = ProgressTracker({"a": 60, "b": 2, "c": None}, clock=clock)
    for _ in range(37):
        tracker.record(result("a"))
    for _ in range(23):
        tracker.record(result("a", Status.STOPPED))
    tracker.record(result("b"))
    tracker.record(result("b"))
    clock.now += 3
    tracker.finish(interrupted=True)
    snapshot = tracker.snapshot()
    assert [(t.done, t.stopped, t.total) for t in snapshot.accounts] == [
        (37, 23, 60),
        (2, 0, 2),
        (0, 0, None),
    ]
    assert [snapshot.state(row) for row in snapshot.accounts] == [
        "interrupted",
        "done",
        "interrupted",
    ]
    assert snapshot.state(snapshot.overall) == "interrupted"
    assert (snapshot.overall.done, snapshot.overall.total) == (39, None)
    assert snapshot.interrupted
    assert snapshot.elapsed == 3.0


def test_unchanged_results_are_not_work() -> None:
    """An item that was already there moves no bar; every kind of failure counts as failed."""
    tracker = ProgressTracker({"a": 5}, clock=FakeClock())
    tracker.record(result("a", Status.UNCHANGED))
    assert tracker.snapshot().overall.done == 0
    for status in (Status.FAILED, Status.UNKNOWN, Status.ORPHAN, Status.CONFLICT):
        tracker.record(result("a", status))
    tracker.record(result("a", Status.MODIFIED))
    assert attrs.astuple(tracker.snapshot().accounts[0]) == ("a", 5, 4, 0, 5)


def test_unexpected_items_grow_the_totals() -> None:
    """More results than planned, or from an unplanned account, never overflow a row."""
    clock = FakeClock()
    tracker = ProgressTracker({"a": 1}, clock=clock)
    clock.now += 1
    for _ in range(3):
        tracker.record(result("a"))
    tracker.record(result("z", Status.ORPHAN))
    snapshot = tracker.snapshot()
    assert [attrs.astuple(t) for t in snapshot.accounts] == [
        ("a", 3, 0, 0, 3),
        ("z", 1, 1, 0, 1),
    ]
    assert snapshot.overall.total == 4
    assert snapshot.overall.remaining == 0


def test_finish_closes_every_row_and_stops_the_clock() -> None:
    """Fewer results than planned: finish ends each row at what was done, and time stops."""
    clock = FakeClock()
    tracker = ProgressTracker({"a": 5, "b": 0}, clock=clock)
    clock.now += 4
    tracker.record(result("a"))
    tracker.record(result("a"))
    tracker.finish()
    clock.now += 10
    tracker.finish()  # idempotent: the first finish time stays
    snapshot = tracker.snapshot()
    assert [attrs.astuple(t) for t in snapshot.accounts] == [
        ("a", 2, 0, 0, 2),
        ("b", 0, 0, 0, 0),
    ]
    assert snapshot.finished
    assert snapshot.elapsed == 4.0
    assert [snapshot.state(row) for row in snapshot.accounts] == ["done", "done"]


def test_planned_items_counts_what_the_results_will_report() -> None:
    """A new sub-account reports itself and each key; everything else one result each."""
    trade = KeySpec(label="trade", permissions=(m.Permission.SPOT_TRADE,), ip_list=())
    read = KeySpec(label="read", permissions=(m.Permission.READ,), ip_list=())
    two = SubaccountSpec(name="alphabot", label="alpha", keys=(trade, read))
    one = SubaccountSpec(name="betabots", label="beta", keys=(trade,))
    broker = BrokerKeySpec(
        sub_uid="5550001",
        api_key="bg_sub",
        passphrase="SubKeyPass1",
        permissions=(m.Permission.SPOT_TRADE,),
        perm_type=m.PermType.READONLY,
    )
    diff = AccountDiff(
        account="a",
        new_subaccounts=(two, one),
        new_keys=(MissingKey(subaccount=two, subaccount_uid="7000000001", key=read),),
        broker_changes=(broker,),
        conflicts=(Conflict("one", "label clash"),),
    )
    assert planned_items(diff) == 3 + 2 + 1 + 1 + 1
    assert planned_items(diff, copy_key=True) == 9
    assert planned_items(AccountDiff(account="a")) == 0
    # The same preview gives plan's lines: one per change, the conflict last.
    preview = preview_of(diff, copy_key=True)
    assert preview.lines() == [
        "create sub-account alpha (alphabot), 2 key(s)",
        "create sub-account beta (betabots), 1 key(s)",
        "create key alpha/read",
        "modify broker key 5550001/bg_sub",
        "create copy key",
        "conflict: label clash",
    ]
    assert preview.changes_anything
    nothing = preview_of(AccountDiff(account="a", conflicts=(Conflict("one", "clash"),)))
    assert nothing.lines() == ["conflict: clash"]
    assert not nothing.changes_anything
    assert preview_of(AccountDiff(account="a")).lines() == ["up to date"]


def test_choose_mode() -> None:
    """JSON when asked; the live display only on a terminal; plain lines elsewhere."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert choose_mode(json_lines=True, stream=Terminal()) is Mode.JSON
    assert choose_mode(json_lines=False, stream=Terminal()) is Mode.LIVE
    assert choose_mode(json_lines=False, stream=io.StringIO()) is Mode.LINES


def test_item_results_carry_no_secret() -> None:
    """
    What the display shows comes from ItemResult, which has no field for a secret; the
    error that failed an item (kept for the exit status) is in neither its dict nor its
    repr.
    """
    fields = attrs.fields_dict(ItemResult)
    assert set(fields) == {
        "account",
        "kind",
        "target",
        "subaccount",
        "key",
        "status",
        "api_key",
        "detail",
        "error",
    }
    assert not any(field.type in (Secret, "Secret", "Secret | None") for field in fields.values())
    failed = ItemResult(
        account="a",
        kind="key",
        target="alpha/trade",
        status=Status.FAILED,
        error=RuntimeError("the failure"),
    )
    assert "error" not in failed.to_dict()
    assert "the failure" not in repr(failed)


def test_plain_lines_json_lines_and_quiet_lines() -> None:
    """LINES prints one plain line per item (quiet: failures only); JSON one object each."""
    results = [
        result("a", Status.CREATED, "alpha/trade"),
        ItemResult(
            account="a", kind="key", target="alpha/read", status=Status.FAILED, detail="boom"
        ),
    ]
    outputs = {}
    for mode, quiet in ((Mode.LINES, False), (Mode.LINES, True), (Mode.JSON, False)):
        out = io.StringIO()
        with Reporter(mode, quiet=quiet, out=out, clock=FakeClock()) as reporter:
            for item in results:
                reporter.on_result(item)
        outputs[mode, quiet] = out.getvalue()
    assert outputs[Mode.LINES, False] == (
        "a: key alpha/trade: created\na: key alpha/read: failed (boom)\n"
    )
    assert outputs[Mode.LINES, True] == "a: key alpha/read: failed (boom)\n"
    rows = [json.loads(line) for line in outputs[Mode.JSON, False].splitlines()]
    assert rows == [item.to_dict() for item in results]
    assert not any(ESCAPE in text for text in outputs.values())
    assert format_line(results[1]) == "a: key alpha/read: failed (boom)"


# What a hostile name, label or detail could try: end the line and forge another, clear
# the screen or set the terminal's title, or reverse the text shown after it.
FORGED = "x\ndesk-a: key alpha/trade: created"
HOSTILE_DETAIL = f"boom{FORGED}\r\x1b[2J\x1b]0;pwned\x07\u202edeliaf\u2028\x00"


def hostile_results() -> list[ItemResult]:
    return [
        ItemResult(
            account="desk-a\x1b[31m",
            kind="key",
            target="alpha/\u202ekey",
            status=Status.FAILED,
            detail=HOSTILE_DETAIL,
        ),
        result("desk-b", Status.CREATED, "beta/trade"),
    ]


def test_plain_lines_escape_what_results_hold() -> None:
    """A detail, label or name with a newline, ESC or U+202E can't forge or hide a line."""
    out = io.StringIO()
    with Reporter(Mode.LINES, out=out, clock=FakeClock()) as reporter:
        for item in hostile_results():
            reporter.on_result(item)
    lines = out.getvalue().split("\n")
    assert lines[-1] == ""  # each line ends with its newline, and there are exactly two
    assert len(lines) == 3
    assert lines[0] == (
        "desk-a\\x1b[31m: key alpha/\\u202ekey: failed (boomx\\ndesk-a: key alpha/trade: "
        "created\\r\\x1b[2J\\x1b]0;pwned\\x07\\u202edeliaf\\u2028\\x00)"
    )
    assert lines[1] == "desk-b: key beta/trade: created"
    assert all(line.isprintable() for line in lines)


def test_json_lines_keep_what_results_hold_exactly() -> None:
    """JSON escapes by itself: one object per line, and the detail decodes unchanged."""
    out = io.StringIO()
    with Reporter(Mode.JSON, out=out, clock=FakeClock()) as reporter:
        for item in hostile_results():
            reporter.on_result(item)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [row["detail"] for row in rows] == [HOSTILE_DETAIL, ""]


def test_live_display_escapes_names_and_failures() -> None:
    """The live table's account names and the failures above it are escaped too."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    planned = {"desk-a\x1b[31m": 1, "desk-b": 1}
    with Reporter(Mode.LIVE, planned=planned, console=console, clock=FakeClock()) as reporter:
        for item in hostile_results():
            reporter.on_result(item)
    shown = buffer.getvalue()
    for raw in ("\u202e", "\u2028", "\x00", "\x07", "\x1b[31m", "\x1b[2J", "\ndesk-a: key"):
        assert raw not in shown
    assert "failed (boomx\\ndesk-a: key alpha/trade: created\\r\\x1b[2J" in shown
    assert "desk-a\\x1b[31m" in screen_text(shown, columns=200, lines=40)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_text_is_one_printable_line(text: str) -> None:
    """Whatever the text, escaped it prints as itself: one line, no control or format codes."""
    shown = escape(text)
    assert shown.isprintable()
    assert (shown == text) == text.isprintable()


def test_live_display_rows_failures_and_summary() -> None:
    """
    A row per account and an overall row, with rich's rate and the time taken once done;
    failures print above the rows, and the summary states the one measured duration.
    """
    clock = FakeClock()
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, height=24, color_system=None)
    with Reporter(Mode.LIVE, planned={"desk-a": 2, "desk-b": 1}, console=console, clock=clock) as r:
        clock.now += 1
        r.on_result(result("desk-a", Status.CREATED, "alpha/trade"))
        clock.now += 1
        r.on_result(result("desk-a", Status.CREATED, "alpha/read"))
        clock.now += 1
        r.on_result(
            ItemResult(
                account="desk-b",
                kind="key",
                target="beta/trade",
                status=Status.FAILED,
                detail="[bold]not markup[/bold]",
            )
        )
    lines = [line for line in screen_lines(buffer.getvalue(), columns=120) if line]
    assert lines[0] == "desk-b: key beta/trade: failed ([bold]not markup[/bold])"
    rows = [line.split() for line in lines[1:]]
    assert [row[0] for row in rows] == ["desk-a", "desk-b", "all"]
    assert [row[-1] for row in rows] == ["done", "done", "done"]
    assert "2/2" in rows[0]
    assert rows[1][2:5] == ["1/1", "1", "failed"]
    assert "3/3" in rows[2]
    assert "1.0/s" in rows[2]  # rich's estimate: 2 items in the 2 s after the first
    assert "00:03" in rows[2]  # the time taken, once done
    assert r.elapsed == 3.0
    assert r.summary() == "2 created, 0 modified, 0 unchanged, 1 failed in 3.0 s"


def test_live_display_after_an_interruption() -> None:
    """Leaving on Ctrl-C: unfinished rows and the overall row say interrupted, not done."""
    clock = FakeClock()
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, height=24, color_system=None)
    reporter = Reporter(
        Mode.LIVE, planned={"desk-a": 60, "desk-b": 1}, console=console, clock=clock
    )

    def interrupted_run() -> None:
        with reporter:
            for _ in range(37):
                clock.now += 0.1
                reporter.on_result(result("desk-a"))
            reporter.on_result(result("desk-b"))
            reporter.on_result(result("desk-a", Status.STOPPED))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_run()
    rows = [line.split() for line in screen_lines(buffer.getvalue(), columns=100) if line]
    assert [(row[0], row[2], row[-1]) for row in rows] == [
        ("desk-a", "37/60", "interrupted"),
        ("desk-b", "1/1", "done"),
        ("all", "38/61", "interrupted"),
    ]
    assert reporter.summary().startswith("interrupted: 38 created,")
    assert "1 stopped" in reporter.summary()


async def test_apply_with_the_live_display_against_the_emulator(tmp_path: Path) -> None:
    """The totals come from the live diff, the display ends complete, and shows no secret."""
    emulator = Emulator([MASTER], limits=Limits(per_uid=False))
    plan = parse_plan(PLAN, environ=ENV)
    client = Client(
        MASTER.credentials,
        transport=emulator.transport(),
        scheduler=Unpaced(),
        config=ClientConfig(sync_clock=False),
    )

    def client_for(_: AccountSpec) -> Client:
        return client

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    vault = SecretsVault.open(tmp_path / "v.vault", "a long vault passphrase")
    reporter = Reporter(Mode.LIVE, console=console)
    with Journal(tmp_path / "s.state") as journal:
        results = await apply_with_progress(
            plan, clients=client_for, vault=vault, journal=journal, reporter=reporter
        )
    await client.aclose()
    assert reporter.tracker.snapshot().overall.total == 3  # a sub-account and its two keys
    final = screen_text(buffer.getvalue(), columns=120)
    assert "desk-a" in final
    assert "3/3" in final
    created = [item.api_key for item in results if item.kind == "key"]
    secrets = [emulator.exchange.secret_of(key or "") or "" for key in created]
    assert all(secrets)
    records = list(vault.records())
    shown = buffer.getvalue()
    for secret in [
        *secrets,
        *(record.passphrase.reveal() for record in records if record.passphrase),
        MASTER.secret_key.reveal(),
        MASTER.passphrase.reveal(),
    ]:
        assert secret not in shown


async def requests_per_endpoint(tmp_path: Path, mode: Mode) -> list[dict[str, int]]:
    """Two applies of the plan (creating, then nothing to do): each one's requests."""
    emulator = Emulator([MASTER], limits=Limits(per_uid=False))
    plan = parse_plan(PLAN, environ=ENV)
    vault = SecretsVault.open(tmp_path / f"{mode.value}.vault", "a long vault passphrase")
    runs = []
    for _ in range(2):
        before = {name: len(lane.accepted) for (_, name), lane in emulator.audit.lanes.items()}
        client = Client(
            MASTER.credentials,
            transport=emulator.transport(),
            scheduler=Unpaced(),
            config=ClientConfig(sync_clock=False),
        )
        console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
        reporter = Reporter(mode, console=console, out=io.StringIO())

        def client_for(_: AccountSpec, client: Client = client) -> Client:
            return client

        with Journal(tmp_path / f"{mode.value}.state") as journal:
            await apply_with_progress(
                plan, clients=client_for, vault=vault, journal=journal, reporter=reporter
            )
        await client.aclose()
        runs.append(
            {
                name: len(lane.accepted) - before.get(name, 0)
                for (_, name), lane in emulator.audit.lanes.items()
                if len(lane.accepted) > before.get(name, 0)
            }
        )
    return runs


async def test_the_live_display_costs_no_request(tmp_path: Path) -> None:
    """
    The live display's totals come from the one read of live state apply then starts
    from (``first_live``): it sends exactly the requests plain lines do, endpoint by
    endpoint, creating or with nothing to do.
    """
    live = await requests_per_endpoint(tmp_path, Mode.LIVE)
    lines = await requests_per_endpoint(tmp_path, Mode.LINES)
    assert live == lines
    assert live[1]["list_virtual_subaccounts"] == 1  # the no-op run reads the list once


async def test_apply_command_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bitget-keys apply` on a terminal draws the live display and ends with a summary."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "a long vault passphrase")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[defaults]\nip_list = ["203.0.113.7"]\n\n[[accounts]]\nname = "desk-a"\n'
        'credentials = "env:DESK_A"\n\n[[accounts.subaccounts]]\nname = "alphabot"\n'
        'label = "alpha"\n\n[[accounts.subaccounts.keys]]\nlabel = "trade"\n'
        'permissions = ["spot_trade"]\n'
    )

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    argv = [
        "apply",
        str(plan),
        "--vault",
        str(tmp_path / "v"),
        "--create-vault",
        "--state",
        str(tmp_path / "s"),
        "--yes",
    ]
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        code = await asyncio.to_thread(main, [*argv, "--base-url", emulator.base_url])
    shown = terminal.getvalue()
    assert code == 0
    assert ESCAPE in shown  # drawn for a terminal
    assert "2/2" in shown
    assert "2 created, 0 modified, 0 unchanged, 0 failed in" in shown
    assert MASTER.secret_key.reveal() not in shown


def test_fit_rows_keeps_what_needs_a_look() -> None:
    """All rows when they fit; else failed, then working, then waiting, then finished ones."""
    finished = RowState(failed=False, active=False, finished=True)
    working = RowState(failed=False, active=True, finished=False)
    waiting = RowState(failed=False, active=False, finished=False)
    failed = RowState(failed=True, active=False, finished=True)
    rows = [finished, working, waiting, failed, finished, working]
    assert fit_rows(rows, 6) == ([0, 1, 2, 3, 4, 5], 0)
    # Four lines: three rows and "… 3 more"; shown in plan order.
    assert fit_rows(rows, 4) == ([1, 3, 5], 3)
    assert fit_rows(rows, 5) == ([1, 2, 3, 5], 2)
    assert fit_rows(rows, 1) == ([], 6)


def test_bar_width_gives_way_to_the_data() -> None:
    """The bar takes what the data leaves, up to 40 columns, and goes below 8."""
    assert bar_width(120, 50) == 40
    assert bar_width(60, 40) == 19
    assert bar_width(50, 41) == 8
    assert bar_width(50, 42) == 0


def live_rows(console: Console, planned: dict[str, int], done: dict[str, int]) -> str:
    clock = FakeClock()
    with Reporter(Mode.LIVE, planned=planned, console=console, clock=clock) as reporter:
        for name, count in done.items():
            for _ in range(count):
                clock.now += 0.25
                reporter.on_result(result(name))
        reporter.interrupt("interrupted by SIGINT")
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_forty_masters_collapse_to_fit_24_rows() -> None:
    """40 masters on 24 rows: the rows that fit, one for the rest, and the overall row."""
    console = Console(
        file=io.StringIO(), force_terminal=True, width=80, height=24, color_system=None
    )
    planned = {f"master-{i}": 10 for i in range(40)}
    done = {f"master-{i}": 10 if i % 3 else 4 for i in range(40)}
    output = live_rows(console, planned, done)
    lines = [line for line in screen_lines(output) if line]
    assert len(lines) <= 24 - 2  # room left for the summary line and the prompt
    names = [line.split()[0] for line in lines]
    assert names[-1] == "all"
    assert lines[-1].split()[2:4] == ["316/400", "interrupted"]
    assert names[-2] == "…"
    # Every interrupted master (every third) is shown; finished ones fill the rest.
    shown = [name for name in names if name.startswith("master-")]
    assert {f"master-{i}" for i in range(0, 40, 3)} <= set(shown)
    assert len(shown) == 24 - 2 - 2
    more = lines[-2].split()
    assert more[:3] == ["…", "20", "more"]
    assert more[-3:] == ["200/200", "20", "done"]  # those left out are finished ones


@pytest.mark.parametrize(
    ("width", "bar", "rate"), [(60, True, True), (38, False, True), (30, False, False)]
)
def test_narrow_terminals_lose_the_bar_before_the_data(width: int, bar: bool, rate: bool) -> None:
    """
    At 60 columns the bar shrinks; narrower, it goes; narrower still, the rate goes:
    the counts and states stay whole.
    """
    console = Console(
        file=io.StringIO(), force_terminal=True, width=width, height=24, color_system=None
    )
    output = live_rows(console, {"desk-a": 60, "desk-b": 2}, {"desk-a": 37, "desk-b": 2})
    lines = [line for line in screen_lines(output, columns=width) if line]
    assert all(len(line) <= width for line in lines)
    assert [(line.split()[0], line.split()[-1]) for line in lines] == [
        ("desk-a", "interrupted"),
        ("desk-b", "done"),
        ("all", "interrupted"),
    ]
    assert "37/60" in lines[0]
    assert "39/62" in lines[2]
    assert ("━" in output) == bar
    assert ("/s" in lines[1]) == rate
