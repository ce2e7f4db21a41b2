"""
Showing an apply run as it goes: a pure tracker, and the three ways results are shown.

`ProgressTracker` counts item results per master account against the work the plan's
diff announced; it does no I/O and keeps no rate: the live display's `rich.progress`
estimates rate and time left from the counts. Only *work* counts: a result that says an
item was already there (``unchanged``) moves no bar, and one that was not sent because
the run stopped (``stopped``) is not done. When apply's rounds report more items than
were planned (an orphan found on the way, a conflict), the totals grow; when they
report fewer, a run that ended closes every row at what was done. A run that was
interrupted closes nothing: its rows keep their planned totals and say
``interrupted``, never ``done``.

`Reporter` shows each result as it arrives, in one of three `Mode` s:

- ``JSON``: one JSON object per line (``ItemResult.to_dict``), for programs.
- ``LINES``: one plain line per item, for pipes, files, ``--plain`` and ``NO_COLOR``;
  no escape codes, ever.
- ``LIVE``: on a terminal, a row per master account and an overall row, fitted to the
  screen (`bitget_keys.provision.progress_display`); items that did not succeed are
  printed above it as they come.

Results carry no secret (an API key is an identifier; details are error messages,
which never hold request headers or bodies), and nothing else reaches the display.
What a result holds is shown escaped in the plain and live modes (JSON escapes it
anyway), so a name, label or detail can never forge a line or move the cursor.

This module only listens: apply calls `Reporter.on_result`; it never drives an apply or
reads live state (the planned totals come from the caller, see `planned_items`).
"""

from __future__ import annotations

import enum
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final, Self, TextIO

import attrs
from rich.console import Console
from rich.text import Text

from bitget_keys._escape import escape
from bitget_keys.provision.diff import AccountDiff
from bitget_keys.provision.preview import preview_of
from bitget_keys.provision.progress_display import (
    CHECKING,
    DONE,
    INTERRUPTED,
    READING,
    LiveProgress,
)
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
]

#: Set to anything but empty, it asks for output without colour or other escape codes
#: (https://no-color.org): plain lines on a terminal too.
NO_COLOR_ENV: Final = "NO_COLOR"

#: Results that need a person's attention; every other status is a success.
FAILURES: Final = frozenset(
    {Status.FAILED, Status.UNKNOWN, Status.ORPHAN, Status.CONFLICT, Status.STOPPED}
)

#: How often the live display redraws (its rate and time left move between results).
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
    #: Items not sent because the run stopped: not done, and not counted in ``done``.
    stopped: int = 0
    #: Items planned; ``None`` while live state is being read.
    total: int | None

    @property
    def remaining(self) -> int:
        """Items not finished yet (0 while the total is unknown)."""
        return max((self.total or 0) - self.done, 0)


@attrs.frozen(kw_only=True)
class Snapshot:
    """Everything the display shows, at one moment."""

    accounts: tuple[Tally, ...]
    overall: Tally
    #: Seconds since the tracker started (frozen once finished).
    elapsed: float
    finished: bool
    #: The run stopped before it ended (a signal, an error): what is not done stays so.
    interrupted: bool = False

    def state(self, row: Tally) -> str:
        """What a row says beside its counts: ``interrupted``, ``done``, ``reading``..."""
        unfinished = row.total is None or row.done < row.total
        if self.interrupted and (unfinished or row is self.overall):
            return INTERRUPTED
        if self.finished:
            return DONE
        if row.total is None:
            return READING
        return CHECKING if row.done >= row.total else ""


@attrs.define
class _Count:
    done: int = 0
    failed: int = 0
    stopped: int = 0
    total: int | None = None


class ProgressTracker:
    """
    Counts results per account against planned totals; pure, except for its clock.

    The rate and the time left are not counted here: the live display's `rich.progress`
    estimates them from the counts. Safe to read from another thread while results are
    recorded.
    """

    __slots__ = ("_clock", "_counts", "_finished_at", "_interrupted", "_lock", "_started")

    def __init__(
        self,
        planned: Mapping[str, int | None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._counts = {
            name: _Count(total=None if total is None else max(total, 0))
            for name, total in planned.items()
        }
        self._started = clock()
        self._finished_at: float | None = None
        self._interrupted = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        overall = self.snapshot().overall
        return (
            f"<ProgressTracker {overall.done}/{overall.total} failed={overall.failed} "
            f"accounts={len(self._counts)}>"
        )

    def expect(self, name: str, total: int) -> None:
        """Account ``name``'s planned work is known (it may have results already)."""
        with self._lock:
            count = self._counts.setdefault(name, _Count())
            count.total = max(total, count.done, 0)

    def record(self, result: ItemResult) -> Tally:
        """Count one result (``unchanged`` is not work); the account's row as it is now."""
        with self._lock:
            # An account no plan announced has planned nothing: its total follows.
            count = self._counts.setdefault(result.account, _Count(total=0))
            if result.status is Status.STOPPED:
                count.stopped += 1
            elif result.status is not Status.UNCHANGED:
                count.done += 1
                count.failed += result.status in FAILURES
                if count.total is not None:
                    # More results than planned: the total follows, so no bar overflows.
                    count.total = max(count.total, count.done)
            return _tally(result.account, count)

    def finish(self, *, interrupted: bool = False) -> None:
        """
        Stop the clock. A run that ended closes every row at what was done; an
        interrupted one leaves each total as planned, so what was not done shows.
        Idempotent.
        """
        with self._lock:
            self._interrupted = self._interrupted or interrupted
            if not self._interrupted:
                for count in self._counts.values():
                    count.total = count.done
            if self._finished_at is None:
                self._finished_at = self._clock()

    def snapshot(self) -> Snapshot:
        """The current counts."""
        with self._lock:
            rows = tuple(_tally(name, count) for name, count in self._counts.items())
            finished_at = self._finished_at
            interrupted = self._interrupted
        now = finished_at if finished_at is not None else self._clock()
        totals = [row.total for row in rows]
        overall = Tally(
            name="all",
            done=sum(row.done for row in rows),
            failed=sum(row.failed for row in rows),
            stopped=sum(row.stopped for row in rows),
            total=None if None in totals else sum(total or 0 for total in totals),
        )
        return Snapshot(
            accounts=rows,
            overall=overall,
            elapsed=max(now - self._started, 0.0),
            finished=finished_at is not None,
            interrupted=interrupted,
        )


def _tally(name: str, count: _Count) -> Tally:
    return Tally(
        name=name, done=count.done, failed=count.failed, stopped=count.stopped, total=count.total
    )


# -- showing results -------------------------------------------------------------------


class Mode(enum.Enum):
    """How results are shown."""

    JSON = "json"
    LINES = "lines"
    LIVE = "live"


def choose_mode(
    *,
    json_lines: bool,
    stream: TextIO,
    plain: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Mode:
    """
    JSON when asked; the live display on a terminal; plain lines anywhere else.

    ``plain`` (``--plain``) and a non-empty ``NO_COLOR`` ask for plain lines on a
    terminal too: the live display cannot draw without escape codes, and these ask for
    output that holds none.
    """
    if json_lines:
        return Mode.JSON
    environ = os.environ if environ is None else environ
    if plain or environ.get(NO_COLOR_ENV):
        return Mode.LINES
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


class Reporter:
    """
    Shows each result as it arrives; use it as a context manager around the run.

    The run's duration is measured once, from entering to leaving (`elapsed`), and the
    summary states it. Leaving on an exception, or after `interrupt`, ends the run as
    interrupted: rows not done say so, and so does the summary.

    Args:
        mode: JSON lines, plain lines, or the live display.
        planned: work items per account (see `planned_items`); ``None`` for an account
            whose live state is still to be read. Only the display uses it.
        quiet: in ``LINES`` mode, print only the items that did not succeed.
        out: where JSON and plain lines go.
        console: the live display's console (a terminal on stdout by default).
        clock: the tracker's clock, and the display's.
    """

    __slots__ = (
        "_clock",
        "_console",
        "_display",
        "_out",
        "mode",
        "quiet",
        "reason",
        "results",
        "tracker",
    )

    def __init__(
        self,
        mode: Mode,
        *,
        planned: Mapping[str, int | None] | None = None,
        quiet: bool = False,
        out: TextIO | None = None,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.quiet = quiet
        self._out = out if out is not None else sys.stdout
        self._console = console
        self._display: LiveProgress | None = None
        self._clock = clock
        self.tracker = ProgressTracker(planned or {}, clock=clock)
        self.results: list[ItemResult] = []
        #: Why the run was interrupted, once it was.
        self.reason: str | None = None

    def __repr__(self) -> str:
        return f"<Reporter {self.mode.value} results={len(self.results)} {self.tracker!r}>"

    @property
    def console(self) -> Console:
        """The live display's console."""
        if self._console is None:
            self._console = Console(file=self._out)
        return self._console

    @property
    def elapsed(self) -> float:
        """Seconds the run took (so far): the one duration the summary states."""
        return self.tracker.snapshot().elapsed

    def expect(self, planned: Mapping[str, int | None]) -> None:
        """Count afresh against ``planned``, from now (before the run starts)."""
        self.tracker = ProgressTracker(planned, clock=self._clock)

    def expect_account(self, name: str, total: int) -> None:
        """Account ``name``'s planned work is known now (its live state was read)."""
        self.tracker.expect(name, total)
        self._show(name)

    def interrupt(self, reason: str) -> None:
        """The run was stopped before it ended; leaving shows it interrupted."""
        self.reason = self.reason or reason

    def __enter__(self) -> Self:
        self.tracker = ProgressTracker(
            {row.name: row.total for row in self.tracker.snapshot().accounts}, clock=self._clock
        )
        if self.mode is Mode.LIVE:
            self._display = LiveProgress(
                self.console, get_time=self._clock, refresh_per_second=_REFRESH_PER_SECOND
            )
            for row in self.tracker.snapshot().accounts:
                self._show(row.name)
            self._display.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self.interrupt(
                "stopped by an error" if issubclass(exc_type, Exception) else "interrupted"
            )
        self.tracker.finish(interrupted=self.reason is not None)
        display = self._display
        if display is not None:
            for row in self.tracker.snapshot().accounts:
                self._show(row.name)
            display.refresh()
            display.stop()
            self._display = None

    def _show(self, name: str) -> None:
        """Bring account ``name``'s row and the overall row up to date on the display."""
        display = self._display
        if display is None or display.overall is None:
            return
        snapshot = self.tracker.snapshot()
        for row in snapshot.accounts:
            if row.name == name:
                display.set(
                    display.row(row.name, escape(row.name)),
                    completed=row.done,
                    total=row.total,
                    failed=row.failed,
                    state=snapshot.state(row),
                )
        overall = snapshot.overall
        display.set(
            display.overall,
            completed=overall.done,
            total=overall.total,
            failed=overall.failed,
            state=snapshot.state(overall),
        )

    def _line(self, text: str) -> None:
        # One write per line: commands run side by side in one process (threads sharing
        # stdout) never splice their lines.
        self._out.write(text + "\n")
        self._out.flush()

    def on_result(self, result: ItemResult) -> None:
        """The applier's callback: count the result and show it."""
        self.results.append(result)
        self.tracker.record(result)
        if self.mode is Mode.JSON:
            self._line(json.dumps(result.to_dict()))
        elif self.mode is Mode.LINES:
            if not self.quiet or result.status in FAILURES:
                self._line(format_line(result))
        else:
            self._show(result.account)
            if result.status in FAILURES and result.status is not Status.STOPPED:
                # Above the live rows; Text, so brackets in a message are not markup.
                self.console.print(Text(format_line(result), style="red"))

    def summary(self) -> str:
        """
        One line: how many items ended in each status, how long it took, and whether
        the run was interrupted.
        """
        counts = dict.fromkeys(Status, 0)
        for result in self.results:
            counts[result.status] += 1
        always = {Status.CREATED, Status.MODIFIED, Status.UNCHANGED, Status.FAILED}
        shown = [f"{counts[s]} {s.value}" for s in Status if counts[s] or s in always]
        line = f"{', '.join(shown)} in {self.elapsed:.1f} s"
        if self.reason is None:
            return line
        reason = escape(self.reason)
        return f"{reason if reason.startswith(INTERRUPTED) else f'interrupted ({reason})'}: {line}"
