"""
`Client`: one async method per Bitget endpoint.

Anything that fails after the bytes may have left raises an error that says the outcome
is unknown (`TransportError.maybe_sent`); creates must be reconciled through the list
endpoints, never blindly re-sent.

The modules:

- `config`: `ClientConfig` and the base URL; `clock`: `ServerClock` and the loop's
  shared one (`shared_server_clock`).
- `pacing`: the `Scheduler` protocol and the dispatch gate's bookkeeping;
  `call_pacing`: `bitget_keys.pacing()`, a block's flow, priority and deadline for
  every call in it (not re-exported here: ``_client.pacing`` is the module above).
- `core`: `ClientCore`, state and lifecycle (``UNOPENED -> OPENED -> CLOSED``).
- `sending`: `SendingCore._call`, the one path every request takes: Bitget's clock,
  signing, the rate-limit scheduler, the gate, the transport, decoding, and the only
  re-sends (a connection that never opened, a 40008 after resyncing the clock).
- `api_<version>_<family>`: one class per Bitget endpoint family, each a
  `SendingCore` whose methods are one `_call` each (``api_v2_user``,
  ``api_v2_broker``, ``api_v2_copy``, ``api_v3_account``, ``api_v3_user``,
  ``api_v3_broker``), all of them `Client`'s bases in `client`.
- `outcomes`: `require_success`, for answers that can say "failure" under a success code.
- `observe`: `RequestEvent` and `RequestObserver`, what ``Client(observers=...)`` is
  shown of each attempt, and the `RequestWatch` `_call` stamps it with.
- `modes`: `AccountModes`, each UID's account mode (classic: v2; unified or hybrid:
  v3), shared by the clients of a loop.
"""

from __future__ import annotations

from bitget_keys._client.call_pacing import Pacing
from bitget_keys._client.client import Client
from bitget_keys._client.clock import ServerClock as ServerClock
from bitget_keys._client.clock import shared_server_clock
from bitget_keys._client.config import BASE_URL_ENV as BASE_URL_ENV
from bitget_keys._client.config import DEFAULT_BASE_URL, ClientConfig
from bitget_keys._client.modes import AccountModes, shared_account_modes
from bitget_keys.limits import Scheduler, shared_scheduler

__all__ = [
    "DEFAULT_BASE_URL",
    "AccountModes",
    "Client",
    "ClientConfig",
    "Pacing",
    "Scheduler",
    "shared_account_modes",
    "shared_scheduler",
    "shared_server_clock",
]
