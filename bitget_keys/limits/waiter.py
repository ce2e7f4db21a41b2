"""
`Waiter`: the smallest awaitable that suspends exactly one task until it is granted.

A request queued in `bitget_keys.limits.RateLimitScheduler` costs its waiter and a list
slot, so the waiter's size is the scheduler's memory per queued request. An
`asyncio.Future` with the iterator that ``await`` makes for it costs 183 bytes; this
object costs 72, because it holds only what one waiting task needs and is its own
``await`` iterator.

It speaks asyncio's protocol for future-like objects (what `asyncio.isfuture` tests
for, and what `asyncio.Task` drives): awaiting it yields the waiter itself with
``_asyncio_future_blocking`` set; the task then registers its wake-up through
`add_done_callback`, calls `result` when woken (which returns, or raises the
`asyncio.CancelledError` that cancelled the waiter), and calls `cancel` when the task
itself is cancelled. Like a future, a waiter wakes its task through ``loop.call_soon``,
never from inside `grant` or `cancel`.

Unlike a future, a waiter has one callback (one waiting task), no exceptions and no
result value: it is granted or cancelled, once. Like a future, a cancelled waiter keeps
only the message and raises a new `asyncio.CancelledError` each time, so a waiter left
in a queue after its caller gave up holds none of the caller's frames.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Generator
from typing import Any, cast

__all__ = ["Waiter"]


class Waiter:
    """One waiting task's place in a queue: granted once, or cancelled once."""

    __slots__ = ("_asyncio_future_blocking", "_callback", "_context", "_loop", "_state")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: None while waiting, True once granted, or once cancelled the arguments of
        #: its CancelledError (the message, if any).
        self._state: bool | tuple[Any, ...] | None = None
        self._callback: Callable[[Waiter], object] | None = None
        self._context: contextvars.Context | None = None
        #: asyncio's marker of a future-like object yielded to its task (see module doc).
        self._asyncio_future_blocking = False

    def __repr__(self) -> str:
        state = self._state
        word = "waiting" if state is None else "granted" if state is True else "cancelled"
        return f"<Waiter {word}>"

    # -- the queue's side --------------------------------------------------------------

    def grant(self) -> None:
        """Let the waiting task go on; raises `asyncio.InvalidStateError` if it is done."""
        if self._state is not None:
            raise asyncio.InvalidStateError(f"{self!r} was already granted or cancelled")
        self._state = True
        self._schedule()

    # -- asyncio's future protocol -----------------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._state is not None

    def cancelled(self) -> bool:
        return type(self._state) is tuple

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel a waiting waiter and wake its task with `asyncio.CancelledError`."""
        if self._state is not None:
            return False
        self._state = () if msg is None else (msg,)
        self._schedule()
        return True

    def result(self) -> None:
        state = self._state
        if state is None:
            raise asyncio.InvalidStateError(f"{self!r} is not done")
        if type(state) is tuple:
            raise asyncio.CancelledError(*state)

    def add_done_callback(
        self,
        fn: Callable[[Waiter], object],
        *,
        context: contextvars.Context | None = None,
    ) -> None:
        if self._callback is not None:
            raise RuntimeError(f"{self!r} wakes one task and has its callback already")
        self._callback = fn
        self._context = contextvars.copy_context() if context is None else context
        if self._state is not None:
            self._schedule()

    def remove_done_callback(self, fn: Callable[[Waiter], object]) -> int:
        """Forget ``fn`` if it is the callback; return how many were removed (0 or 1)."""
        if self._callback is None or self._callback != fn:
            return 0
        self._callback = self._context = None
        return 1

    def __await__(self) -> Generator[Any, None, None]:
        # Its own iterator, so that awaiting it allocates nothing.
        return cast("Generator[Any, None, None]", self)

    __iter__ = __await__

    def __next__(self) -> Waiter:
        if self._state is None:
            if self._callback is not None or self._asyncio_future_blocking:
                # Stepped again while it still waits: the task was woken by something
                # else, or whatever drives the await is not an asyncio task.
                raise RuntimeError(f"{self!r}: await wasn't used with a task")
            self._asyncio_future_blocking = True
            return self
        self.result()
        raise StopIteration

    def _schedule(self) -> None:
        callback = self._callback
        if callback is not None:
            context = self._context
            self._callback = self._context = None
            self._loop.call_soon(callback, self, context=context)
