"""`Client`: one async method per Bitget endpoint, gathered from its endpoint families."""

from __future__ import annotations

from bitget_keys._client.api_v2_broker import V2BrokerEndpoints
from bitget_keys._client.api_v2_copy import V2CopyEndpoints
from bitget_keys._client.api_v2_user import V2UserEndpoints

__all__ = ["Client"]


class Client(V2UserEndpoints, V2BrokerEndpoints, V2CopyEndpoints):
    """
    An asyncio client for Bitget's API-key endpoints.

    Use it as ``async with Client(credentials) as client:``. A session passed in is
    borrowed and never closed; otherwise the client makes one inside the running loop
    and closes it in `aclose`.

    Args:
        credentials: the calling key. Its UID keys the rate limits; when not given it
            is learned once from the account-info endpoint.
        base_url: defaults to ``$BITGET_BASE_URL``, then ``https://api.bitget.com``.
        config: timeouts, clock and retry settings.
        session: an `aiohttp.ClientSession` to borrow.
        transport: a `Transport` to borrow instead of a session (tests, emulators).
        scheduler: what paces requests; by default one `RateLimitScheduler` shared by
            every client of the running loop, so clients of one UID share its budget.
        clock_ms: the wall clock in epoch milliseconds, for signing.
        server_clock: Bitget's clock offset, shared with other clients (see
            `ServerClock`); by default the client keeps its own, on ``clock_ms``.
        gate: stops new requests while letting those on the wire finish (see
            `DispatchGate`); share one between the clients of a run.

    Every endpoint method may raise, besides the errors its own docstring names:

    - `APIError` (a subclass where Bitget's code tells more): an error answer.
    - `TransportError`: no answer arrived. If its ``maybe_sent`` is true the request
      may have taken effect; a create is reconciled through the list endpoints, never
      blindly re-sent.
    - `ResponseDecodeError`: an answer of the wrong shape.
    - `DispatchStoppedError`: the client's `DispatchGate` stopped the request before
      it was sent; `RateLimitWaitTooLongError`: its slot was further off than
      ``ClientConfig.max_rate_limit_wait``; `ClientStateError`: the client is closed.
    """

    __slots__ = ()
