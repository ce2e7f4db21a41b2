"""
`Client`: one async method per Bitget endpoint.

Lifecycle::

    UNOPENED --async with / first request--> OPENED --aclose()--> CLOSED
    second __aenter__, or any use after CLOSED -> ClientStateError

Every signed request is stamped with Bitget's clock: the offset is measured from the
public time endpoint (round-trip midpoint) before the first signed request, refreshed
every ``clock_resync_interval`` seconds, and re-measured once when Bitget answers 40008.

Every request goes through a rate-limit scheduler (`bitget_keys.limits`), keyed by the
UID that owns the calling key, so every client of a UID shares one budget. The
scheduler re-queues a throttled request (429); the client itself re-sends only what
certainly did not take effect: a connection that could not be opened, and a 40008
after resyncing.
Anything that fails after the bytes may have left raises an error that says the outcome
is unknown (`TransportError.maybe_sent`); creates must be reconciled through the list
endpoints, never blindly re-sent.

The modules:

- `config`: `ClientConfig` and the base URL; `clock`: `ServerClock`.
- `pacing`: the `Scheduler` protocol and the dispatch gate's bookkeeping.
- `core`: `ClientCore`, state and lifecycle; `sending`: `SendingCore._call`, the one
  path every request takes (clock, signing, scheduler, gate, transport, decoding).
- `api_<version>_<family>`: one class per Bitget endpoint family, each a
  `SendingCore` whose methods are one `_call` each (``api_v2_user``,
  ``api_v2_broker``, ``api_v2_copy``); a new family (the v3 unified-account ones) is
  one more such module, added to `Client`'s bases in `client`.
"""

from __future__ import annotations

from bitget_keys._client.client import Client
from bitget_keys._client.clock import ServerClock as ServerClock
from bitget_keys._client.config import BASE_URL_ENV as BASE_URL_ENV
from bitget_keys._client.config import DEFAULT_BASE_URL, ClientConfig
from bitget_keys._client.pacing import Scheduler, shared_scheduler

__all__ = ["DEFAULT_BASE_URL", "Client", "ClientConfig", "Scheduler", "shared_scheduler"]
