"""
`GracefulStop`: what ``bitget-keys apply`` does on SIGINT (Ctrl-C) and SIGTERM.

A key's secret is shown once, in the answer to the request that created it, so an
interrupted run must not walk away from answers already on their way. The first signal
closes the run's `DispatchGate`: nothing new is sent, requests still waiting for a
rate-limit slot are dropped (they never left), and the answers of requests on the wire
are awaited for at most ``drain`` seconds, with a countdown, so their secrets are
stored. The run then reads again what unknown outcomes may have changed and reports
every item. A second signal, or the end of the countdown, aborts: answers still
outstanding are abandoned and their items reported as unknown. The countdown bounds
the whole stop, reads included, so the run ends within ``drain`` seconds of the signal
(plus a retry's pause) whatever Bitget or a proxy does.

The exit status is 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a
shell reports a process killed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

from bitget_keys._gate import DispatchGate, GateState

__all__ = ["DRAIN_SECONDS", "GracefulStop"]

#: How long a stopping run waits for answers already on their way, by default.
DRAIN_SECONDS: Final = 30.0
_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """
    Turn SIGINT and SIGTERM into a drained stop of ``gate``, while in its ``with``.

    Args:
        gate: the run's gate, shared by its clients.
        say: shows one line to the operator.
        drain: seconds to wait for answers on the wire after the first signal.
    """

    __slots__ = ("_countdown", "_drain", "_gate", "_installed", "_loop", "_say", "received")

    def __init__(
        self, gate: DispatchGate, say: Callable[[str], None], *, drain: float = DRAIN_SECONDS
    ) -> None:
        self._gate = gate
        self._say = say
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._installed: list[signal.Signals] = []
        self._countdown: asyncio.Task[None] | None = None
        #: The first signal received, if any.
        self.received: signal.Signals | None = None

    def __repr__(self) -> str:
        got = self.received.name if self.received is not None else "none"
        return f"<GracefulStop received={got} {self._gate!r}>"

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal's number, once one was received."""
        return None if self.received is None else 128 + int(self.received)

    def __enter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            # Only the main thread may handle signals (a program may run the command
            # line in another thread): then the process keeps its own handlers.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self.on_signal, sig)
                self._installed.append(sig)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None:
            for sig in self._installed:
                self._loop.remove_signal_handler(sig)
        self._installed.clear()
        if self._countdown is not None:
            self._countdown.cancel()

    def on_signal(self, sig: signal.Signals) -> None:
        """Handle one signal: the first drains, the next aborts."""
        if self.received is None:
            self.received = sig
            self._gate.close(f"interrupted by {sig.name}")
            loop = self._loop or asyncio.get_running_loop()
            self._countdown = loop.create_task(self._wait_for_answers(sig))
            return
        if self._gate.state is not GateState.ABORTED:
            outstanding = len(self._gate.on_wire)
            self._gate.abort(f"{sig.name} again: answers abandoned")
            self._say(
                f"{sig.name} again: stopping now; {outstanding} answer(s) abandoned, "
                "their items are reported as unknown"
            )

    async def _wait_for_answers(self, sig: signal.Signals) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._drain
        waiting = len(self._gate.on_wire)
        self._say(
            f"{sig.name}: stopping; nothing new is sent. Waiting up to {self._drain:.0f} s "
            f"for {waiting} answer(s) already on their way, so their secrets are stored "
            f"({sig.name} again to stop at once)"
        )
        # The countdown bounds the whole stop, not one look at the wire: a read re-sent
        # after the wire was empty for a moment (a connect retry, a reconciling read)
        # would otherwise run unbounded. It ends early only when the run ends (`__exit__`).
        while self._gate.state is not GateState.ABORTED:
            left = deadline - loop.time()
            if left <= 0:
                abandoned = len(self._gate.on_wire)
                self._gate.abort(f"no answer within {self._drain:.0f} s of {sig.name}")
                self._say(
                    f"gave up on {abandoned} answer(s) after {self._drain:.0f} s; "
                    "stopping now, unfinished items are reported as unknown"
                )
                return
            await asyncio.sleep(min(1.0, left))
            if self._gate.on_wire:
                self._say(
                    f"  waiting for {len(self._gate.on_wire)} answer(s), "
                    f"{max(deadline - loop.time(), 0):.0f} s left"
                )
