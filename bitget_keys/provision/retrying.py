"""
Reads that are tried again: a read changes nothing, so one that failed on Bitget's side
or lost its answer costs only the retry. And how an error reads in a result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from bitget_keys.errors import BitgetKeysError, RequestTimeoutError, ServerError, TransportError

__all__ = ["describe_error", "read_retrying"]

_log: Final = logging.getLogger("bitget_keys.apply")

T = TypeVar("T")

#: How often a read is tried in all, and the pause before the first retry (doubled each
#: time): enough to ride out a few lost answers, short enough not to stall the run.
_READ_ATTEMPTS: Final = 5


_READ_BACKOFF: Final = 0.2
#: How many of a read's attempts may time out: each costs the client's whole request
#: timeout, and a server that let two pass without a word is not answering; the item is
#: then reported failed instead of the run staying silent for minutes.
_READ_TIMEOUTS: Final = 2


def describe_error(exc: BaseException) -> str:
    """An error as a result's detail: our own errors' messages, else only the type."""
    return str(exc) if isinstance(exc, BitgetKeysError) else type(exc).__name__


async def read_retrying(call: Callable[[], Awaitable[T]]) -> T:
    """
    Run a read, and run it again after a failure a later attempt may not meet.

    Reads change nothing, so a lost answer or a server error costs only the retry; any
    other error (a refused key, a missing permission) would come back the same, and is
    raised at once. A timeout is tried again only once, with a warning, since each one
    took a whole request timeout.
    """
    timeouts = 0
    for attempt in range(_READ_ATTEMPTS - 1):
        try:
            return await call()
        except (ServerError, TransportError) as exc:
            pause = _READ_BACKOFF * 2**attempt
            if not isinstance(exc, RequestTimeoutError):
                _log.debug("read failed (%s), trying again", describe_error(exc))
            else:
                timeouts += 1
                if timeouts >= _READ_TIMEOUTS:
                    raise
                _log.warning("no answer to a read (%s); trying it once more", exc.detail)
            await asyncio.sleep(pause)
    return await call()
