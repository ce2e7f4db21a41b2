"""`Client`: one async method per Bitget endpoint, gathered from its endpoint families."""

from __future__ import annotations

from bitget_keys._client.api_v2_broker import V2BrokerEndpoints
from bitget_keys._client.api_v2_copy import V2CopyEndpoints
from bitget_keys._client.api_v2_user import V2UserEndpoints
from bitget_keys._client.api_v3_account import V3AccountEndpoints
from bitget_keys._client.api_v3_broker import V3BrokerEndpoints
from bitget_keys._client.api_v3_user import V3UserEndpoints

__all__ = ["Client"]


class Client(
    V2UserEndpoints,
    V2BrokerEndpoints,
    V2CopyEndpoints,
    V3AccountEndpoints,
    V3UserEndpoints,
    V3BrokerEndpoints,
):
    """
    An asyncio client for Bitget's API-key endpoints.

    A classic master's keys are served by the v2 methods, a unified (or hybrid) one's by
    the v3 ones (``*_uta_*``); `account_mode` tells which, learned once per UID.

    Use it as ``async with Client(credentials) as client:``. A session passed in is
    borrowed and never closed; otherwise the client makes one inside the running loop
    and closes it in `aclose`.

    Args:
        credentials: the calling key. Its UID keys the rate limits; when not given it
            is learned once from the account-info endpoint (a unified key, refused
            there, from the v3 settings: two requests).
        base_url: defaults to ``$BITGET_BASE_URL``, then ``https://api.bitget.com``.
        config: timeouts, clock and retry settings.
        session: an `aiohttp.ClientSession` to borrow.
        transport: a `Transport` to borrow instead of a session (tests, emulators).
        scheduler: what paces requests; by default one `RateLimitScheduler` shared by
            every client of the running loop, so clients of one UID share its budget.
        clock_ms: the wall clock in epoch milliseconds, for signing.
        server_clock: Bitget's clock offset, shared with other clients (see
            `ServerClock`); by default the running loop's for this base URL and
            ``clock_ms`` (`shared_server_clock`): clients starting together measure it
            with one request, and a client on its own ``clock_ms`` callable keeps its own.
        gate: stops new requests while letting those on the wire finish (see
            `DispatchGate`); share one between the clients of a run.
        account_modes: where account modes are kept by UID (see `AccountModes`); by
            default one shared by every client of the running loop, so a mode learned
            by one client of a UID serves them all.
        flow: whose turn this client's requests take on their lanes (any hashable): a
            lane serves its flows in turn, each in the order of its calls. By default
            the client itself, so two clients of one UID share its slots fairly; give
            clients one flow to queue their requests as one caller's.
        priority: a lane serves higher priorities first (default 0).
        observers: called with a `RequestEvent` for each attempt of each request: when
            it was asked for and sent, its round trip and outcome, never a secret. One
            that raises is logged and skipped (`bitget_keys.metrics` offers one).

    `bitget_keys.pacing` changes the flow, priority, wait limit and deadline of the
    calls made inside a block, whichever methods make them.

    Every endpoint method may raise, besides the errors its own docstring names:

    - `APIError` (a subclass where Bitget's code tells more): an error answer. An
      `AccountModeError` (40084 on a v3 endpoint, 40085 on a v2 one) carried nothing
      out and is never re-sent; the mode it shows is kept for the UID, so sending the
      operation once more through the other family is the caller's choice.
    - `TransportError`: no answer arrived. If its ``maybe_sent`` is true the request
      may have taken effect; a create is reconciled through the list endpoints, never
      blindly re-sent.
    - `ResponseDecodeError`: an answer of the wrong shape.
    - `DispatchStoppedError`: the client's `DispatchGate` stopped the request before
      it was sent; `RateLimitWaitTooLongError`: its slot was further off than
      ``ClientConfig.max_rate_limit_wait`` (or a `pacing` block's limit or deadline);
      `ClientStateError`: the client is closed.
    """

    __slots__ = ()
