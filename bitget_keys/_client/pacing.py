"""
What a request passes on its way out: the rate-limit scheduler, then the dispatch gate.

The scheduler (`bitget_keys.limits.Scheduler`; `bitget_keys.limits.shared_scheduler`,
one per event loop, unless a client is given its own) paces requests. `wait_for_slot`
and `put_on_wire` tell a `DispatchGate` where a request is, so that stopping a run
cancels only requests that have not left: one stopped while waiting raises
`DispatchStoppedError`; one abandoned on the wire raises `TransportError` with
``maybe_sent=True``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bitget_keys import _endpoints as ep
from bitget_keys._gate import DispatchGate
from bitget_keys._transport import RawResponse
from bitget_keys.errors import ClientStateError, DispatchStoppedError, TransportError

__all__ = ["put_on_wire", "wait_for_slot"]

T = TypeVar("T")


def _current_task() -> asyncio.Task[object]:
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - a client call always runs in a task
        msg = "a client call must run in an asyncio task"
        raise ClientStateError(msg)
    return task


async def wait_for_slot(
    gate: DispatchGate | None, endpoint: ep.Endpoint, paced: Callable[[], Awaitable[T]]
) -> T:
    """Wait for the slot and send (``paced``); a closed gate stops a request still waiting."""
    if gate is None:
        return await paced()
    change = endpoint.method != "GET"
    gate.check(change=change, endpoint=endpoint.path)
    task = _current_task()
    gate.waiting(task, change=change)
    try:
        return await paced()
    except asyncio.CancelledError:
        if not gate.stopped(task):
            raise
        task.uncancel()
        raise DispatchStoppedError(endpoint.path, gate.reason) from None
    finally:
        gate.left(task)


async def put_on_wire(
    gate: DispatchGate | None,
    endpoint: ep.Endpoint,
    send: Callable[[], Awaitable[RawResponse]],
) -> RawResponse:
    """Hand the request to the transport (``send``), telling the gate it is on the wire."""
    if gate is None:
        return await send()
    task = _current_task()
    change = endpoint.method != "GET"
    gate.sending(task, change=change, request=f"{endpoint.method} {endpoint.path}")
    try:
        return await send()
    except asyncio.CancelledError:
        if not gate.stopped(task):
            raise
        # The gate gave up on this answer: the request may have been carried out.
        task.uncancel()
        raise TransportError(
            endpoint.path, f"answer abandoned ({gate.reason})", maybe_sent=True
        ) from None
    finally:
        gate.answered(task, change=change)
