"""
`DispatchGate`: stop sending new requests without abandoning the ones on the wire.

A program that creates keys must be able to stop (Ctrl-C, SIGTERM, a failing disk or
rate-limit backend) without losing a key Bitget has just made: its secret is shown once,
in the answer to a request that is already on its way. Cancelling that request's task
would throw the answer away. The gate tells the two kinds of request apart:

- *waiting*: inside `Client`, queued for a rate-limit slot (or between retries). Nothing
  has left yet, so stopping it is free: it raises `DispatchStoppedError`.
- *on the wire*: its bytes have been handed to the transport. Its answer is awaited
  (`drain`) and the caller gets it as usual, so a secret in it is stored.

`close` stops changes (every method but GET) and lets reads through, so a stopping
program can still read the list endpoints to reconcile what it does not know. `abort`
stops everything: requests on the wire are abandoned and raise `TransportError` with
``maybe_sent=True`` (their outcome is unknown), waiting ones raise
`DispatchStoppedError`.

One gate is shared by every client of a run (``Client(..., gate=gate)``); it belongs to
the event loop it is first used on. Waiting requests are stopped by cancelling their
task with a message of the gate's own, which `Client` turns back into an exception,
so the task itself goes on.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Final

from bitget_keys.errors import DispatchStoppedError

__all__ = ["DispatchGate", "GateState"]

#: The cancel message of a request the gate stopped (compared by identity of value).
STOPPED: Final = "bitget-keys: stopped by its dispatch gate"


class GateState(enum.Enum):
    """What the gate lets through."""

    OPEN = "open"
    #: Reads only; changes waiting for a slot are stopped, those on the wire finish.
    CLOSED = "closed"
    #: Nothing; requests on the wire are abandoned.
    ABORTED = "aborted"


class DispatchGate:
    """
    Whether a request may still be sent; which requests are on the wire.

    Not thread-safe: use it from the event loop its clients run on.
    """

    __slots__ = ("_idle", "_on_wire", "_reason", "_state", "_stopped", "_waiting")

    def __init__(self) -> None:
        self._state = GateState.OPEN
        self._reason = ""
        #: Tasks inside a client call, not sending: task -> whether it is a change.
        self._waiting: dict[asyncio.Task[object], bool] = {}
        #: Tasks whose request is on the wire: task -> "METHOD /path".
        self._on_wire: dict[asyncio.Task[object], str] = {}
        #: Tasks this gate cancelled and that have not seen it yet.
        self._stopped: set[asyncio.Task[object]] = set()
        self._idle: asyncio.Event | None = None

    def __repr__(self) -> str:
        return (
            f"<DispatchGate {self._state.value} waiting={len(self._waiting)} "
            f"on_wire={len(self._on_wire)}>"
        )

    @property
    def state(self) -> GateState:
        """Open, closed to changes, or aborted."""
        return self._state

    @property
    def reason(self) -> str:
        """Why the gate was closed ("" while open)."""
        return self._reason

    @property
    def on_wire(self) -> list[str]:
        """The requests whose answers are awaited, as ``METHOD /path``."""
        return list(self._on_wire.values())

    def close(self, reason: str) -> None:
        """
        Send no further change: stop every waiting change; reads still go.

        Requests on the wire go on; `drain` waits for them. Closing again (or after
        `abort`) keeps the first reason.
        """
        if self._state is GateState.OPEN:
            self._state = GateState.CLOSED
            self._reason = reason
        for task, change in list(self._waiting.items()):
            if change:
                self._stop(task)

    def abort(self, reason: str) -> None:
        """Send nothing more, and give up on the answers still on the wire."""
        if self._state is not GateState.ABORTED:
            self._reason = self._reason or reason
            self._state = GateState.ABORTED
        for task in [*self._waiting, *self._on_wire]:
            self._stop(task)

    async def drain(self) -> None:
        """Wait until no request is on the wire (bound it with `asyncio.timeout`)."""
        while self._on_wire:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()

    # -- used by Client ---------------------------------------------------------------

    def admits(self, *, change: bool) -> bool:
        """Whether a request of this kind may start now."""
        if self._state is GateState.OPEN:
            return True
        return self._state is GateState.CLOSED and not change

    def check(self, *, change: bool, endpoint: str) -> None:
        """Raise `DispatchStoppedError` unless a request of this kind may start."""
        if not self.admits(change=change):
            raise DispatchStoppedError(endpoint, self._reason)

    def waiting(self, task: asyncio.Task[object], *, change: bool) -> None:
        """``task`` entered a client call and waits for its slot."""
        self._waiting[task] = change

    def sending(self, task: asyncio.Task[object], *, change: bool, request: str) -> None:
        """``task`` hands its request to the transport now (raises if it may not)."""
        self.check(change=change, endpoint=request)
        self._waiting.pop(task, None)
        self._on_wire[task] = request

    def answered(self, task: asyncio.Task[object], *, change: bool) -> None:
        """``task``'s request is no longer on the wire (it may be retried: waiting)."""
        self._on_wire.pop(task, None)
        self._waiting[task] = change
        if not self._on_wire and self._idle is not None:
            self._idle.set()

    def left(self, task: asyncio.Task[object]) -> None:
        """``task`` returned from its client call."""
        self._waiting.pop(task, None)
        self._stopped.discard(task)

    def stopped(self, task: asyncio.Task[object]) -> bool:
        """
        Whether ``task``'s cancellation came from this gate; forget it if so.

        The caller then uncancels the task and raises the gate's exception instead.
        """
        if task in self._stopped:
            self._stopped.discard(task)
            return True
        return False

    def _stop(self, task: asyncio.Task[object]) -> None:
        if task not in self._stopped and not task.done():
            self._stopped.add(task)
            task.cancel(STOPPED)
