"""
Asyncio client and provisioning tools for Bitget API-key management.

bitget-keys creates and manages Bitget API keys at scale: virtual sub-accounts and
their keys, ND-broker keys and copy-trading keys, on classic (v2) and Unified Trading
Account (v3) masters, for trading systems that ``await`` it and for operators who
provision hundreds of sub-accounts with the ``bitget-keys`` command line
(``plan``, ``apply``, ``vault``, ``demo``).

The main names:

- `Client`: one method per Bitget endpoint, each taking a request model from
  `bitget_keys.models` that checks Bitget's documented rules before anything is sent.
  It signs exactly what it sends, keeps Bitget's clock, and never re-sends a request
  that may have taken effect. `Credentials` holds a key (``Credentials.from_env()``),
  `ClientConfig` the timeouts, retries and proxy, `Secret` every secret (printed as
  ``********``).
- `RateLimitScheduler`: one fair lane per (account UID, endpoint) and a per-IP budget;
  clients share one per event loop unless given their own. `pacing` sets priority,
  flow and deadline for the calls inside a block; `bitget_keys.limits` has the rest,
  and `bitget_keys.redis_limits` shares the limits between processes through Redis.
- `bitget_keys.errors`: every exception, rooted at `BitgetKeysError`; a
  `TransportError` says whether the request may have been sent (``maybe_sent``).
- `bitget_keys.testing`: a strict emulator of Bitget's key-management API for your
  tests; `bitget_keys.metrics`: Prometheus metrics of a scheduler and its clients.
- The extension points: `Scheduler` (what paces a client's requests) and `Transport`
  (what sends them); `RequestObserver` sees every request as a `RequestEvent`.

Documentation (getting started, the provisioning walkthrough, the plan file, the
command line, the library guide and the API reference) is in the ``docs/`` directory
of https://github.com/bitget-keys/bitget-keys; ``bitget-keys COMMAND --help`` describes
each command. Everything with a leading underscore may change without notice.
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
