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
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount, Limits, Unpaced

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


def test_rate_and_eta_follow_the_clock() -> None:
    """Rate is items per second since the start; ETA is what remains at that rate."""
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
    assert snapshot.rate == 2.0
    assert snapshot.eta == 3.0
    assert not snapshot.finished
    clock.now += 2  # nothing more arrives: the rate halves and the ETA doubles
    assert tracker.snapshot().rate == 1.0
    assert tracker.snapshot().eta == 6.0


def test_no_rate_before_the_first_item() -> None:
    """Without an item (or without time passing) there is no rate and no ETA."""
    clock = FakeClock()
    tracker = ProgressTracker({"a": 2}, clock=clock)
    assert (tracker.snapshot().rate, tracker.snapshot().eta) == (None, None)
    tracker.record(result("a"))
    assert (tracker.snapshot().rate, tracker.snapshot().eta) == (None, None)
    clock.now += 0.5
    assert tracker.snapshot().rate == 2.0
    assert tracker.snapshot().eta == 0.5


def test_unchanged_results_are_not_work() -> None:
    """An item that was already there moves no bar; every kind of failure counts as failed."""
    tracker = ProgressTracker({"a": 5}, clock=FakeClock())
    tracker.record(result("a", Status.UNCHANGED))
    assert tracker.snapshot().overall.done == 0
    for status in (Status.FAILED, Status.UNKNOWN, Status.ORPHAN, Status.CONFLICT):
        tracker.record(result("a", status))
    tracker.record(result("a", Status.MODIFIED))
    assert attrs.astuple(tracker.snapshot().accounts[0]) == ("a", 5, 4, 5)


def test_unexpected_items_grow_the_totals() -> None:
    """More results than planned, or from an unplanned account, never overflow a row."""
    clock = FakeClock()
    tracker = ProgressTracker({"a": 1}, clock=clock)
    clock.now += 1
    for _ in range(3):
        tracker.record(result("a"))
    tracker.record(result("z", Status.ORPHAN))
    snapshot = tracker.snapshot()
    assert [attrs.astuple(t) for t in snapshot.accounts] == [("a", 3, 0, 3), ("z", 1, 1, 1)]
    assert snapshot.overall.total == 4
    assert snapshot.eta == 0.0


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
    assert [attrs.astuple(t) for t in snapshot.accounts] == [("a", 2, 0, 2), ("b", 0, 0, 0)]
    assert snapshot.finished
    assert snapshot.elapsed == 4.0
    assert snapshot.rate == 0.5
    assert snapshot.eta == 0.0


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
    """What the display shows comes from ItemResult, which has no field for a secret."""
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
    }
    assert not any(field.type in (Secret, "Secret", "Secret | None") for field in fields.values())


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
    assert "desk-a\\x1b[31m" in shown[shown.rindex("account") :]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_text_is_one_printable_line(text: str) -> None:
    """Whatever the text, escaped it prints as itself: one line, no control or format codes."""
    shown = escape(text)
    assert shown.isprintable()
    assert (shown == text) == text.isprintable()


def test_live_display_rows_failures_and_summary() -> None:
    """The live table has a row per account and an overall row; failures print above it."""
    clock = FakeClock()
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    with Reporter(Mode.LIVE, planned={"desk-a": 2, "desk-b": 1}, console=console, clock=clock) as r:
        clock.now += 3
        r.on_result(result("desk-a", Status.CREATED, "alpha/trade"))
        r.on_result(result("desk-a", Status.CREATED, "alpha/read"))
        r.on_result(
            ItemResult(
                account="desk-b",
                kind="key",
                target="beta/trade",
                status=Status.FAILED,
                detail="[bold]not markup[/bold]",
            )
        )
    shown = buffer.getvalue()
    final = shown[shown.rindex("account") :]
    assert "desk-a" in final
    assert "2/2" in final
    assert "1/1" in final
    assert "3/3" in final
    assert "1.0/s" in final
    assert "done in 0:03" in final
    assert "desk-b: key beta/trade: failed ([bold]not markup[/bold])" in shown
    assert r.summary() == "2 created, 0 modified, 0 unchanged, 1 failed in 3.0 s"


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
    final = buffer.getvalue()
    final = final[final.rindex("account") :]
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
