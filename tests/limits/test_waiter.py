"""`Waiter`, the scheduler's per-request awaitable, driven by real asyncio tasks."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from bitget_keys.limits.waiter import Waiter
from tests.limits.scheduling import PyTask

CTask: Any = asyncio.Task

#: Every test runs with asyncio's C task and with its pure-Python one.
TASKS = pytest.mark.parametrize("task_type", [CTask, PyTask], ids=["c-task", "python-task"])

TaskType = Callable[..., asyncio.Future[Any]]


async def wait(waiter: Waiter, log: list[str]) -> str:
    log.append("waiting")
    try:
        await waiter
    except asyncio.CancelledError as exc:
        log.append(f"cancelled {exc.args}")
        raise
    log.append("granted")
    return "went on"


def start(task_type: TaskType, coro: Any) -> asyncio.Future[Any]:
    return task_type(coro, loop=asyncio.get_running_loop())


async def turns(count: int = 3) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


@TASKS
async def test_grant_wakes_the_task_on_a_later_turn(task_type: TaskType) -> None:
    waiter, log = Waiter(asyncio.get_running_loop()), list[str]()
    task = start(task_type, wait(waiter, log))
    await turns()
    assert log == ["waiting"]
    assert not waiter.done()
    waiter.grant()
    assert log == ["waiting"]  # never woken from inside grant()
    assert await task == "went on"
    assert log == ["waiting", "granted"]
    assert waiter.done()
    assert not waiter.cancelled()


@TASKS
async def test_cancelling_the_task_cancels_the_waiter_with_its_message(
    task_type: TaskType,
) -> None:
    waiter, log = Waiter(asyncio.get_running_loop()), list[str]()
    task = start(task_type, wait(waiter, log))
    await turns()
    task.cancel("caller gave up")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waiter.cancelled()
    assert log == ["waiting", "cancelled ('caller gave up',)"]
    with pytest.raises(asyncio.InvalidStateError):
        waiter.grant()


@TASKS
async def test_cancel_after_grant_still_cancels_the_task(task_type: TaskType) -> None:
    """As with a future: the waiter stays granted, the task gets CancelledError."""
    waiter, log = Waiter(asyncio.get_running_loop()), list[str]()
    task = start(task_type, wait(waiter, log))
    await turns()
    waiter.grant()
    assert task.cancel()
    assert not waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waiter.done()
    assert not waiter.cancelled()
    assert log == ["waiting", "cancelled ()"]


@TASKS
async def test_timeout_around_the_await(task_type: TaskType) -> None:
    waiter = Waiter(asyncio.get_running_loop())

    async def bounded() -> None:
        async with asyncio.timeout(0.001):
            await waiter

    with pytest.raises(TimeoutError):
        await start(task_type, bounded())
    assert waiter.cancelled()


@TASKS
async def test_the_task_keeps_its_context(task_type: TaskType) -> None:
    name: contextvars.ContextVar[str] = contextvars.ContextVar("name")
    waiter = Waiter(asyncio.get_running_loop())

    async def named() -> str:
        name.set("inside")
        await waiter
        return name.get()

    task = start(task_type, named())
    await turns()
    waiter.grant()
    assert await task == "inside"


async def test_future_protocol_edges() -> None:
    loop = asyncio.get_running_loop()
    waiter = Waiter(loop)
    is_future: Callable[[object], bool] = asyncio.isfuture  # a TypeGuard for Future
    assert is_future(waiter)
    assert waiter.get_loop() is loop
    assert repr(waiter) == "<Waiter waiting>"
    with pytest.raises(asyncio.InvalidStateError):
        waiter.result()
    woken: list[Waiter] = []
    waiter.add_done_callback(woken.append)
    with pytest.raises(RuntimeError, match="one task"):
        waiter.add_done_callback(woken.append)
    waiter.grant()
    assert repr(waiter) == "<Waiter granted>"
    assert woken == []
    await turns(1)
    assert woken == [waiter]
    waiter.result()  # granted: returns, raises nothing
    with pytest.raises(asyncio.InvalidStateError):
        waiter.grant()

    late = Waiter(loop)
    assert late.cancel("late")
    assert repr(late) == "<Waiter cancelled>"
    late.add_done_callback(woken.append)  # done already: scheduled, not called now
    assert woken == [waiter]
    await turns(1)
    assert woken == [waiter, late]
    with pytest.raises(asyncio.CancelledError):
        late.result()


@pytest.mark.parametrize("registered", [True, False], ids=["woken-early", "no-task"])
async def test_stepping_a_waiting_waiter_again_is_refused(registered: bool) -> None:
    """A waiter stepped again while it still waits says so, as a future does."""
    waiter = Waiter(asyncio.get_running_loop())
    steps = waiter.__await__()
    assert next(steps) is waiter
    if registered:  # what a task does; without it, whatever drives the await is no task
        waiter._asyncio_future_blocking = False
        waiter.add_done_callback(lambda _: None)
    with pytest.raises(RuntimeError, match="await wasn't used"):
        next(steps)


async def test_each_result_raises_a_new_cancelled_error() -> None:
    """Like a future, it keeps only the message: no traceback, so no caller frames."""
    waiter = Waiter(asyncio.get_running_loop())
    waiter.cancel("why")
    raised = []
    for _ in range(2):
        with pytest.raises(asyncio.CancelledError) as error:
            waiter.result()
        raised.append(error.value)
    assert raised[0] is not raised[1]
    assert [error.args for error in raised] == [("why",), ("why",)]


async def test_callbacks_can_be_removed_and_keep_their_context() -> None:
    loop = asyncio.get_running_loop()
    name: contextvars.ContextVar[str] = contextvars.ContextVar("name", default="granter")
    seen: list[str] = []

    def record(_: Waiter) -> None:
        seen.append(name.get())

    waiter = Waiter(loop)
    token = name.set("registrar")
    waiter.add_done_callback(record)  # no context given: the registrar's, as a future
    name.reset(token)
    assert waiter.remove_done_callback(lambda _: None) == 0  # not the callback
    waiter.grant()
    await turns(1)
    assert seen == ["registrar"]

    removed = Waiter(loop)
    removed.add_done_callback(record)
    assert removed.remove_done_callback(record) == 1
    assert removed.remove_done_callback(record) == 0
    removed.grant()
    await turns(1)
    assert seen == ["registrar"]


async def test_smaller_than_a_future() -> None:
    """The point of the class: a queued request costs less than a future and its iterator."""
    loop = asyncio.get_running_loop()
    assert not hasattr(Waiter(loop), "__dict__")
    count = 1_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        waiters = [Waiter(loop) for _ in range(count)]
        per_waiter = (tracemalloc.get_traced_memory()[0] - before) / count
        futures = [loop.create_future() for _ in range(count)]
        iterators = [future.__await__() for future in futures]
        per_future = (tracemalloc.get_traced_memory()[0] - before) / count - per_waiter
    finally:
        tracemalloc.stop()
    assert len(waiters) == len(iterators)
    # The list's own slot (8 bytes) is in both figures.
    assert per_waiter <= 90
    assert per_future > per_waiter + 80, (per_future, per_waiter, sys.version)
