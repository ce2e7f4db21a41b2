"""
Reads that are tried again: a read changes nothing, so one that failed on Bitget's side
or lost its answer costs only the retry. And how an error reads in a result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from bitget_keys.errors import BitgetKeysError, ServerError, TransportError

__all__ = ["describe_error", "read_retrying"]

_log: Final = logging.getLogger("bitget_keys.apply")

T = TypeVar("T")

#: How often a read is tried in all, and the pause before the first retry (doubled each
#: time): enough to ride out a few lost answers, short enough not to stall the run.
_READ_ATTEMPTS: Final = 5


_READ_BACKOFF: Final = 0.2


def describe_error(exc: BaseException) -> str:
    """An error as a result's detail: our own errors' messages, else only the type."""
    return str(exc) if isinstance(exc, BitgetKeysError) else type(exc).__name__


async def read_retrying(call: Callable[[], Awaitable[T]]) -> T:
    """
    Run a read, and run it again after a failure a later attempt may not meet.

    Reads change nothing, so a lost answer or a server error costs only the retry; any
    other error (a refused key, a missing permission) would come back the same, and is
    raised at once.
    """
    for attempt in range(_READ_ATTEMPTS - 1):
        try:
            return await call()
        except (ServerError, TransportError) as exc:
            _log.debug("read failed (%s), trying again", describe_error(exc))
            await asyncio.sleep(_READ_BACKOFF * 2**attempt)
    return await call()
