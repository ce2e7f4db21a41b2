"""
Showing an apply run as it goes: a pure tracker, and the three ways results are shown.

`ProgressTracker` counts item results per master account against the work the plan's
diff announced, and derives the overall rate and ETA from a clock it is given; it does
no I/O, so its arithmetic is tested with a fake clock. Only *work* counts: a result
that says an item was already there (``unchanged``) moves no bar. When apply's rounds
report more items than were planned (an orphan found on the way, a conflict), the
totals grow; when they report fewer, `ProgressTracker.finish` closes every row at what
was done, so the display always ends complete.

`Reporter` shows each result as it arrives, in one of three `Mode` s:

- ``JSON``: one JSON object per line (``ItemResult.to_dict``), for programs.
- ``LINES``: one plain line per item, for pipes and files; no escape codes, ever.
- ``LIVE``: on a terminal, a rich table with one row per master account and an overall
  row with rate and ETA; items that did not succeed are printed above it as they come.

Results carry no secret (an API key is an identifier; details are error messages,
which never hold request headers or bodies), and nothing else reaches the display.
What a result holds is shown escaped in the plain and live modes (JSON escapes it
anyway), so a name, label or detail can never forge a line or move the cursor.

This module only listens: apply calls `Reporter.on_result`; it never drives an apply or
reads live state (the planned totals come from `bitget_keys.provision.preview`).
"""

from __future__ import annotations

import enum
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final, Self, TextIO

import attrs
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bitget_keys._escape import escape
from bitget_keys.provision.diff import AccountDiff
from bitget_keys.provision.preview import preview_of
from bitget_keys.provision.results import ItemResult, Status

__all__ = [
    "FAILURES",
    "Mode",
    "ProgressTracker",
    "Reporter",
    "Snapshot",
    "Tally",
    "choose_mode",
    "format_line",
    "planned_items",
    "render",
]

#: Results that need a person's attention; every other status is a success.
FAILURES: Final = frozenset(
    {Status.FAILED, Status.UNKNOWN, Status.ORPHAN, Status.CONFLICT, Status.STOPPED}
)

#: How often the live display redraws (the rate and ETA move between results, too).
_REFRESH_PER_SECOND: Final = 4


def planned_items(diff: AccountDiff, *, copy_key: bool = False) -> int:
    """How many results of work one account's diff will produce (see `preview_of`)."""
    return preview_of(diff, copy_key=copy_key).work


@attrs.frozen(kw_only=True)
class Tally:
    """One row of the display: a master account, or all of them."""

    name: str
    #: Items finished, successfully or not.
    done: int
    failed: int
    total: int

    @property
    def remaining(self) -> int:
        """Items not finished yet."""
        return max(self.total - self.done, 0)


@attrs.frozen(kw_only=True)
class Snapshot:
    """Everything the display shows, at one moment."""

    accounts: tuple[Tally, ...]
    overall: Tally
    #: Seconds since the tracker started (frozen once finished).
    elapsed: float
    #: Items per second since the start; ``None`` before the first item.
    rate: float | None
    #: Seconds left at that rate; ``None`` while the rate is unknown, 0 when done.
    eta: float | None
    finished: bool


@attrs.define
class _Count:
    done: int = 0
    failed: int = 0
    total: int = 0


class ProgressTracker:
    """
    Counts results per account against planned totals; pure, except for its clock.

    Safe to read from another thread (the live display redraws from one) while results
    are recorded.
    """

    __slots__ = ("_clock", "_counts", "_finished_at", "_lock", "_started")

    def __init__(
        self, planned: Mapping[str, int], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._counts = {name: _Count(total=max(total, 0)) for name, total in planned.items()}
        self._started = clock()
        self._finished_at: float | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        overall = self.snapshot().overall
        return (
            f"<ProgressTracker {overall.done}/{overall.total} failed={overall.failed} "
            f"accounts={len(self._counts)}>"
        )

    def record(self, result: ItemResult) -> None:
        """Count one result; ``unchanged`` results are not work and count for nothing."""
        if result.status is Status.UNCHANGED:
            return
        with self._lock:
            count = self._counts.setdefault(result.account, _Count())
            count.done += 1
            count.failed += result.status in FAILURES
            # More results than planned: the total follows, so no bar overflows.
            count.total = max(count.total, count.done)

    def finish(self) -> None:
        """Close every row at what was done, and stop the clock. Idempotent."""
        with self._lock:
            for count in self._counts.values():
                count.total = count.done
            if self._finished_at is None:
                self._finished_at = self._clock()

    def snapshot(self) -> Snapshot:
        """The current counts, rate and ETA."""
        with self._lock:
            rows = tuple(
                Tally(name=name, done=count.done, failed=count.failed, total=count.total)
                for name, count in self._counts.items()
            )
            finished_at = self._finished_at
        now = finished_at if finished_at is not None else self._clock()
        elapsed = max(now - self._started, 0.0)
        overall = Tally(
            name="all",
            done=sum(row.done for row in rows),
            failed=sum(row.failed for row in rows),
            total=sum(row.total for row in rows),
        )
        rate = overall.done / elapsed if overall.done and elapsed > 0 else None
        if overall.remaining == 0:
            eta: float | None = 0.0
        elif rate is None:
            eta = None
        else:
            eta = overall.remaining / rate
        return Snapshot(
            accounts=rows,
            overall=overall,
            elapsed=elapsed,
            rate=rate,
            eta=eta,
            finished=finished_at is not None,
        )


# -- showing results -------------------------------------------------------------------


class Mode(enum.Enum):
    """How results are shown."""

    JSON = "json"
    LINES = "lines"
    LIVE = "live"


def choose_mode(*, json_lines: bool, stream: TextIO) -> Mode:
    """JSON when asked; the live display on a terminal; plain lines anywhere else."""
    if json_lines:
        return Mode.JSON
    isatty = getattr(stream, "isatty", None)
    return Mode.LIVE if callable(isatty) and isatty() else Mode.LINES


def format_line(result: ItemResult) -> str:
    """
    One result as a plain line: ``account: kind target: status (detail)``.

    Always one line, as written: names, labels and details come from the plan and from
    Bitget, so their control characters are shown escaped (`bitget_keys._escape`).
    """
    detail = f" ({result.detail})" if result.detail else ""
    return escape(f"{result.account}: {result.kind} {result.target}: {result.status}{detail}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render(snapshot: Snapshot) -> Table:
    """The live table: one row per account, then the overall row with rate and ETA."""
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("account", no_wrap=True)
    table.add_column("progress", width=30)
    table.add_column("items", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("rate", justify="right", no_wrap=True)
    table.add_column("ETA", justify="right", no_wrap=True)

    def bar(row: Tally) -> ProgressBar:
        # An account with nothing to do is complete, not empty.
        total = row.total or 1
        return ProgressBar(total=total, completed=row.done if row.total else 1, width=30)

    def failed(row: Tally) -> Text:
        return Text(str(row.failed), style="red" if row.failed else "dim")

    for row in snapshot.accounts:
        name = Text(escape(row.name))
        table.add_row(name, bar(row), f"{row.done}/{row.total}", failed(row), "", "")
    overall = snapshot.overall
    rate = "-" if snapshot.rate is None else f"{snapshot.rate:.1f}/s"
    if snapshot.finished:
        eta = f"done in {_duration(snapshot.elapsed)}"
    elif overall.remaining == 0:
        # Every planned item is in; apply is reading live state to confirm.
        eta = "checking"
    else:
        eta = _duration(snapshot.eta)
    table.add_row(
        Text(overall.name, style="bold"),
        bar(overall),
        Text(f"{overall.done}/{overall.total}", style="bold"),
        failed(overall),
        rate,
        eta,
        end_section=False,
    )
    return table


class Reporter:
    """
    Shows each result as it arrives; use it as a context manager around the run.

    Args:
        mode: JSON lines, plain lines, or the live display.
        planned: work items per account (see `planned_items`); only the display uses it.
        quiet: in ``LINES`` mode, print only the items that did not succeed.
        out: where JSON and plain lines go.
        console: the live display's console (a terminal on stdout by default).
        clock: the tracker's clock.
    """

    __slots__ = ("_clock", "_console", "_live", "_out", "mode", "quiet", "results", "tracker")

    def __init__(
        self,
        mode: Mode,
        *,
        planned: Mapping[str, int] | None = None,
        quiet: bool = False,
        out: TextIO | None = None,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.quiet = quiet
        self._out = out if out is not None else sys.stdout
        self._console = console
        self._live: Live | None = None
        self._clock = clock
        self.tracker = ProgressTracker(planned or {}, clock=clock)
        self.results: list[ItemResult] = []

    def __repr__(self) -> str:
        return f"<Reporter {self.mode.value} results={len(self.results)} {self.tracker!r}>"

    def expect(self, planned: Mapping[str, int]) -> None:
        """Start counting afresh against ``planned`` (the clock starts now, too)."""
        self.tracker = ProgressTracker(planned, clock=self._clock)

    @property
    def console(self) -> Console:
        """The live display's console."""
        if self._console is None:
            self._console = Console(file=self._out)
        return self._console

    def __enter__(self) -> Self:
        if self.mode is Mode.LIVE:
            self._live = Live(
                console=self.console,
                get_renderable=lambda: render(self.tracker.snapshot()),
                refresh_per_second=_REFRESH_PER_SECOND,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.tracker.finish()
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def on_result(self, result: ItemResult) -> None:
        """The applier's callback: count the result and show it."""
        self.results.append(result)
        self.tracker.record(result)
        if self.mode is Mode.JSON:
            print(json.dumps(result.to_dict()), file=self._out, flush=True)
        elif self.mode is Mode.LINES:
            if not self.quiet or result.status in FAILURES:
                print(format_line(result), file=self._out, flush=True)
        elif result.status in FAILURES:
            # Above the live table; Text, so brackets in a message are not markup.
            self.console.print(Text(format_line(result), style="red"))

    def summary(self) -> str:
        """One line: how many items ended in each status, and how long it took."""
        counts = dict.fromkeys(Status, 0)
        for result in self.results:
            counts[result.status] += 1
        always = {Status.CREATED, Status.MODIFIED, Status.UNCHANGED, Status.FAILED}
        shown = [f"{counts[s]} {s.value}" for s in Status if counts[s] or s in always]
        return f"{', '.join(shown)} in {self.tracker.snapshot().elapsed:.1f} s"
