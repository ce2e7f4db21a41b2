"""
The live display of an apply run: `rich.progress` rows that fit the terminal.

One rich task per master account and one for all of them; rich computes each row's
rate and time remaining from the progress it is told (`Task.speed`,
`Task.time_remaining`), so this module does no such arithmetic. What it adds is the
fit:

- Height: when a row per master does not fit the terminal, only the masters that need
  a look (failed or interrupted ones, then those at work) get a row, up to the rows
  there are; the rest share one ``… N more`` row, and the overall row is always shown
  (`fit_rows`).
- Width: the bar takes what the data leaves, and is dropped when that is too little;
  then the rate and time columns go, before any count or state is cut (`fit_columns`).

Every text a row shows is set by `bitget_keys.provision.progress`, escaped there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import attrs
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

__all__ = ["LiveProgress", "RowState", "bar_width", "fit_columns", "fit_rows"]

#: Terminal lines the display leaves free below it (the summary line, the prompt).
SPARE_LINES: Final = 2
#: A bar narrower than this shows too little to be worth a column.
MIN_BAR: Final = 8
MAX_BAR: Final = 40
#: The widest an account name is shown; longer ones end in an ellipsis.
MAX_NAME: Final = 24
#: States of a row, as shown.
INTERRUPTED: Final = "interrupted"
DONE: Final = "done"
READING: Final = "reading"
CHECKING: Final = "checking"


@attrs.frozen
class RowState:
    """What deciding which rows to show needs of one master's row."""

    failed: bool
    #: At work: its totals are read or items are in, and it is not finished.
    active: bool
    #: Ended with everything done.
    finished: bool


def fit_rows(rows: Sequence[RowState], room: int) -> tuple[list[int], int]:
    """
    Which master rows to show in ``room`` lines, the overall row aside.

    Returns the indexes to show (in order) and how many are left out. When all fit, all
    are shown; otherwise one line goes to ``… N more`` and the rest to the rows that
    need a look most: failed or interrupted ones, then those at work, then those
    waiting; finished ones last.
    """
    if len(rows) <= room:
        return list(range(len(rows))), 0
    slots = max(room - 1, 0)

    def rank(index: int) -> tuple[int, int]:
        row = rows[index]
        level = 0 if row.failed else 1 if row.active else 3 if row.finished else 2
        return level, index

    shown = sorted(sorted(range(len(rows)), key=rank)[:slots])
    return shown, len(rows) - len(shown)


def bar_width(width: int, data: int) -> int:
    """The bar's width when ``data`` columns of text must fit in ``width``; 0: no bar."""
    left = min(width - data - 1, MAX_BAR)  # the bar's gap to the next column
    return left if left >= MIN_BAR else 0


class _NameColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        style = "bold" if task.fields.get("overall") else ""
        return Text(task.description, style=style, no_wrap=True, overflow="ellipsis")

    def get_table_column(self) -> Column:
        return Column(no_wrap=True, overflow="ellipsis", max_width=MAX_NAME)


class _ItemsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{task.total:.0f}"
        return Text(
            f"{task.completed:.0f}/{total}", style="bold" if task.fields.get("overall") else ""
        )


class _FailedColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        failed = int(task.fields.get("failed", 0))
        return Text(f"{failed} failed", style="red") if failed else Text("")


class _RateColumn(ProgressColumn):
    """Rich's own estimate of items per second (`Task.speed`)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None or task.fields.get("state") == INTERRUPTED:
            return Text("")
        return Text(f"{speed:.1f}/s", style="progress.data.speed")


class _TimeColumn(TimeRemainingColumn):
    """Rich's time remaining (the time taken once finished); nothing once interrupted."""

    def render(self, task: Task) -> Text:
        if task.fields.get("more") or task.fields.get("state") in {INTERRUPTED, READING}:
            return Text("")
        return super().render(task)


class LiveProgress(Progress):
    """
    `rich.progress.Progress` with a row per master and an overall row, fitted to the
    terminal's height and width each time it is drawn.
    """

    def __init__(
        self, console: Console, *, get_time: Callable[[], float], refresh_per_second: float
    ) -> None:
        self._bar = BarColumn(bar_width=MAX_BAR)
        self._data: tuple[ProgressColumn, ...] = (
            _ItemsColumn(),
            _FailedColumn(),
            _RateColumn(),
            _TimeColumn(compact=True, elapsed_when_finished=True),
            TextColumn("{task.fields[state]}"),
        )
        #: The overall row (rich draws once while being made, before it exists).
        self.overall: TaskID | None = None
        super().__init__(
            _NameColumn(),
            self._bar,
            *self._data,
            console=console,
            get_time=get_time,
            refresh_per_second=refresh_per_second,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.overall = self.add_task("all", total=None, overall=True, failed=0, state=READING)
        self._rows: dict[str, TaskID] = {}

    def row(self, name: str, description: str) -> TaskID:
        """The row of account ``name``, made (before the overall row) on first use."""
        if name not in self._rows:
            self._rows[name] = self.add_task(description, total=None, failed=0, state=READING)
        return self._rows[name]

    def set(
        self,
        task_id: TaskID,
        *,
        completed: int,
        total: int | None,
        failed: int,
        state: str,
    ) -> None:
        """Show one row's counts and state; a total that grew reopens a finished row."""
        with self._lock:
            task = self._tasks[task_id]
            if total is not None and completed < total:
                task.finished_time = None
        self.update(task_id, completed=completed, total=total, failed=failed, state=state)

    def get_renderables(self) -> list[RenderableType]:
        """One table: the master rows that fit, ``… N more``, and the overall row."""
        with self._lock:
            if self.overall is None:
                return []
            tasks = [task for task in self.tasks if not task.fields.get("overall")]
            overall = self._tasks[self.overall]
        room = max(self.console.height - SPARE_LINES - 1, 1)
        shown, hidden = fit_rows([_row_state(task) for task in tasks], room)
        rows = [tasks[index] for index in shown]
        if hidden:
            rows.append(self._more(tasks, shown, hidden))
        rows.append(overall)
        return [self._table(rows)]

    def _more(self, tasks: Sequence[Task], shown: Sequence[int], hidden: int) -> Task:
        """One row standing for the masters left out."""
        left = [task for index, task in enumerate(tasks) if index not in set(shown)]
        totals = [task.total for task in left]
        states = [task.fields.get("state") for task in left]
        counted = [(states.count(state), state) for state in (INTERRUPTED, DONE)]
        return Task(
            TaskID(-1),
            f"… {hidden} more",
            None if None in totals else sum(total or 0 for total in totals),
            sum(task.completed for task in left),
            _get_time=self.get_time,
            fields={
                "failed": sum(int(task.fields.get("failed", 0)) for task in left),
                "state": ", ".join(f"{n} {state}" for n, state in counted if n),
                "more": True,
            },
        )

    def _table(self, rows: Sequence[Task]) -> Table:
        data = [[column(task) for task in rows] for column in self._data]
        name = min(max((len(task.description) for task in rows), default=0), MAX_NAME)
        widths = [max((cell_width(cell) for cell in cells), default=0) for cells in data]
        kept, bar = fit_columns(self.console.width, name, widths, optional=_OPTIONAL)
        self._bar.bar_width = bar
        columns = [_NameColumn(), *([self._bar] if bar else [])]
        columns += [self._data[index] for index in kept]
        table = Table.grid(
            *(column.get_table_column().copy() for column in columns), padding=(0, 1)
        )
        for row, task in enumerate(rows):
            cells = [data[index][row] for index in kept]
            table.add_row(columns[0](task), *([self._bar(task)] if bar else []), *cells)
        return table


#: The data columns (by index: items, failed, rate, time, state) dropped when even
#: without the bar the rest does not fit, first to last: the estimates, not the counts.
_OPTIONAL: Final = (2, 3)


def fit_columns(
    width: int, name: int, widths: Sequence[int], *, optional: Sequence[int] = ()
) -> tuple[list[int], int]:
    """
    Which data columns to show beside a ``name`` column in ``width``, and the bar's width.

    Empty columns take no room. The bar gives way first (`bar_width`); then the
    ``optional`` columns go, in order, until the rest fits; the others always stay.
    """
    kept = [index for index, size in enumerate(widths) if size]

    def used(columns: Sequence[int]) -> int:
        return name + sum(widths[index] + 1 for index in columns)  # each after a gap

    for index in optional:
        if used(kept) <= width or index not in kept:
            continue
        kept.remove(index)
    return kept, bar_width(width, used(kept))


def cell_width(cell: RenderableType) -> int:
    return cell.cell_len if isinstance(cell, Text) else 0


def _row_state(task: Task) -> RowState:
    state = task.fields.get("state")
    return RowState(
        failed=bool(task.fields.get("failed")) or state == INTERRUPTED,
        active=state not in {READING, DONE} and task.completed > 0,
        finished=state == DONE,
    )
