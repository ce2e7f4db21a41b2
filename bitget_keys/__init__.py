"""
Asyncio client and provisioning tools for Bitget API-key management.

The public surface is re-exported here; `bitget_keys.models`, `bitget_keys.errors` and
`bitget_keys.testing` are public modules too. Everything with a leading underscore may
change without notice.
"""

from __future__ import annotations

import logging
from typing import Any

from bitget_keys._client import (
    DEFAULT_BASE_URL,
    Client,
    ClientConfig,
    Pacing,
    Scheduler,
    ServerClock,
)
from bitget_keys._client.call_pacing import pacing
from bitget_keys._client.observe import RequestEvent, RequestObserver, RequestOutcome
from bitget_keys._endpoints import EndpointName
from bitget_keys._gate import DispatchGate, GateState
from bitget_keys._secret import Secret
from bitget_keys._signing import Credentials
from bitget_keys._transport import AiohttpTransport, RawResponse, Transport
from bitget_keys.limits import RateLimitScheduler

__all__ = [
    "DEFAULT_BASE_URL",
    "AiohttpTransport",
    "Client",
    "ClientConfig",
    "Credentials",
    "DispatchGate",
    "EndpointName",
    "GateState",
    "Pacing",
    "RateLimitScheduler",
    "RawResponse",
    "RequestEvent",
    "RequestObserver",
    "RequestOutcome",
    "Scheduler",
    "Secret",
    "ServerClock",
    "Transport",
    "pacing",
]


# A library's logs are its user's to route: nothing is printed unless they configure
# logging (the command line does).
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415

        return version("bitget-keys")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
