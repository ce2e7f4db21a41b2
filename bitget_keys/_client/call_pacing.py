"""
`pacing`: how the requests made inside a block are paced, whichever methods make them.

A `Client` paces every request under its own ``flow`` and ``priority`` (see `Client`)
and waits at most ``ClientConfig.max_rate_limit_wait`` for a slot. A block changes
that for the calls made inside it, in this task and in the tasks it starts (they copy
the context when created), without a keyword on every endpoint method::

    with bitget_keys.pacing(priority=10, timeout=2.0):
        await client.modify_broker_subaccount_api_key(request)

Blocks nest: ``flow``, ``priority`` and ``max_wait`` given by the inner block replace
the outer ones (and the client's); deadlines only ever tighten, so a call inside both
blocks must be sent by the earlier of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Hashable, Iterator
from contextvars import ContextVar
from typing import Final

import attrs

from bitget_keys.errors import ConfigurationError

__all__ = [
    "Pacing",
    "RunPacing",
    "check_flow",
    "check_priority",
    "current_pacing",
    "pacing",
    "run_pacing",
]


@attrs.frozen(kw_only=True)
class Pacing:
    """What the enclosing `pacing` blocks set; ``None`` leaves it to the client."""

    #: Whose turn a request takes on its lane (`Scheduler.run`'s ``flow``).
    flow: Hashable | None = None
    #: Higher goes first on its lane.
    priority: int | None = None
    #: Seconds each request may wait for its slot; ``math.inf`` waits as long as it
    #: takes, even on a client whose config sets a limit.
    max_wait: float | None = None
    #: The ``loop.time()`` by which each request must be sent (the tightest of the
    #: blocks' ``deadline`` and ``timeout``).
    deadline: float | None = None


@attrs.frozen(kw_only=True)
class RunPacing:
    """The keywords one request passes to `Scheduler.run`."""

    flow: Hashable
    priority: int
    max_wait: float | None
    deadline: float | None


_UNSET: Final = Pacing()
_CURRENT: Final[ContextVar[Pacing | None]] = ContextVar("bitget_keys_pacing", default=None)


def current_pacing() -> Pacing:
    """What the `pacing` blocks around the running code set (nothing outside any)."""
    return _CURRENT.get() or _UNSET


def _got(value: object) -> str:
    return f"got {type(value).__name__} {value!r}"


def check_priority(owner: str, value: object) -> int:
    """``value`` as a priority, or `ConfigurationError` naming ``owner``'s field."""
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{owner}(priority=...) must be an int ({_got(value)})"
        raise ConfigurationError(msg)
    return value


def check_flow(owner: str, value: object) -> Hashable:
    """``value`` as a flow: any hashable object, as lanes key their queues by it."""
    try:
        hash(value)
    except TypeError:
        msg = f"{owner}(flow=...) must be hashable ({_got(value)})"
        raise ConfigurationError(msg) from None
    return value


def _seconds(field: str, value: object, *, infinite: bool = False) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or math.isnan(number) or number <= 0 or (number == math.inf and not infinite):
        rule = "a positive number of seconds" + (" (math.inf: no limit)" if infinite else "")
        msg = f"pacing({field}=...) must be {rule} ({_got(value)})"
        raise ConfigurationError(msg)
    return float(number)


def _loop_time(field: str) -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        msg = f"pacing({field}=...) needs a running event loop, whose time it is measured on"
        raise ConfigurationError(msg) from None


def _tightest(*deadlines: float | None) -> float | None:
    given = [deadline for deadline in deadlines if deadline is not None]
    return min(given) if given else None


@contextlib.contextmanager
def pacing(
    *,
    priority: int | None = None,
    flow: Hashable | None = None,
    max_wait: float | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
) -> Iterator[Pacing]:
    """
    Pace every request sent inside the block as given; yield what now applies.

    Args:
        priority: higher goes first on its lane (clients default to 0).
        flow: whose turn a request takes on its lane; lanes serve flows in turn, each
            in the order of its calls (a client's default flow is the client).
        max_wait: seconds each request may wait for its slot, instead of the client's
            ``ClientConfig.max_rate_limit_wait``; ``math.inf`` for no limit.
        timeout: seconds from entering the block by which each request must be sent;
            the block's deadline is fixed on entry, as with `asyncio.timeout`.
        deadline: the same as an absolute ``asyncio.get_running_loop().time()``.

    A request that cannot get its slot in time fails at once with
    `RateLimitWaitTooLongError`, which gives the predicted wait; nothing is sent.

    Raises:
        ConfigurationError: a value out of range (the message names the field), or
            ``timeout``/``deadline`` given with no running event loop.
    """
    if priority is not None:
        check_priority("pacing", priority)
    if flow is not None:
        check_flow("pacing", flow)
    if max_wait is not None:
        _seconds("max_wait", max_wait, infinite=True)
    by_timeout = None
    if timeout is not None:
        by_timeout = _loop_time("timeout") + _seconds("timeout", timeout)
    if deadline is not None:
        given: object = deadline  # callers without type checking can pass anything
        real = isinstance(given, int | float) and not isinstance(given, bool)
        if not real or not math.isfinite(deadline):
            msg = f"pacing(deadline=...) must be a finite loop.time() value ({_got(deadline)})"
            raise ConfigurationError(msg)
        _loop_time("deadline")
    outer = current_pacing()
    inner = Pacing(
        flow=outer.flow if flow is None else flow,
        priority=outer.priority if priority is None else priority,
        max_wait=outer.max_wait if max_wait is None else float(max_wait),
        deadline=_tightest(outer.deadline, deadline, by_timeout),
    )
    token = _CURRENT.set(inner)
    try:
        yield inner
    finally:
        _CURRENT.reset(token)


def run_pacing(flow: Hashable, priority: int, max_wait: float | None) -> RunPacing:
    """A request's keywords for `Scheduler.run`: the blocks' settings over the client's."""
    block = current_pacing()
    wait = max_wait if block.max_wait is None else block.max_wait
    return RunPacing(
        flow=flow if block.flow is None else block.flow,
        priority=priority if block.priority is None else block.priority,
        max_wait=None if wait is None or wait == math.inf else wait,
        deadline=block.deadline,
    )
