"""`ClientConfig`, and where a client finds Bitget (its base URL)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

import attrs
import yarl

from bitget_keys._transport import PRODUCTION_HOST, masked_proxy, parse_proxy
from bitget_keys.errors import ConfigurationError

__all__ = ["BASE_URL_ENV", "DEFAULT_BASE_URL", "ClientConfig", "resolve_base_url"]

#: Bitget's production API.
DEFAULT_BASE_URL: Final = f"https://{PRODUCTION_HOST}"
#: The environment variable that overrides the default base URL.
BASE_URL_ENV: Final = "BITGET_BASE_URL"

_Validator = Callable[[object, "attrs.Attribute[Any]", Any], None]


def _must(rule: str, holds: Callable[[Any], bool]) -> _Validator:
    """An attrs validator raising `ConfigurationError` "… must <rule> (got …)"."""

    def validate(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not holds(value):
            msg = f"ClientConfig.{attribute.name} must {rule} (got {value})"
            raise ConfigurationError(msg)

    return validate


_positive: Final = _must("be positive", lambda value: value > 0)
_optional_positive: Final = _must("be positive or None", lambda value: value is None or value > 0)
_not_negative: Final = _must("not be negative", lambda value: value >= 0)


def _proxy_url(_instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        parse_proxy(value, what=f"ClientConfig.{attribute.name}")


def _proxy_repr(value: str | None) -> str:
    return "None" if value is None else repr(masked_proxy(value))


@attrs.frozen(kw_only=True)
class ClientConfig:
    """How a `Client` talks to Bitget. Every field has a sensible default."""

    #: Seconds allowed to open a connection.
    connect_timeout: float = attrs.field(default=5.0, validator=_positive)
    #: Seconds allowed for one attempt, from sending to the last byte of the answer.
    request_timeout: float = attrs.field(default=15.0, validator=_positive)
    #: Sent as the ``locale`` header, as in every Bitget example.
    locale: str = "en-US"
    #: Stamp requests with Bitget's clock (measured from the public time endpoint).
    sync_clock: bool = True
    #: Seconds after which the clock offset is measured again.
    clock_resync_interval: float = attrs.field(default=300.0, validator=_positive)
    #: The longest a request may wait for its rate-limit slot; ``None`` waits as long
    #: as it takes. Past it, `RateLimitWaitTooLongError` is raised and nothing is sent.
    max_rate_limit_wait: float | None = attrs.field(default=None, validator=_optional_positive)
    #: How often a request whose connection could not be opened is tried again.
    max_connect_retries: int = attrs.field(default=2, validator=_not_negative)
    #: Seconds between those attempts.
    connect_retry_backoff: float = attrs.field(default=0.5, validator=_positive)
    #: An ``http://`` or ``https://`` proxy every request goes through, such as
    #: ``http://user:password@10.0.0.5:3128``; Bitget then counts the per-IP limit
    #: against the proxy's public address. The user name and password are secrets:
    #: reprs and messages show ``***``. SOCKS proxies are refused (aiohttp needs
    #: another library for them). ``None``: connect directly, or as the environment says
    #: with ``trust_env``.
    proxy: str | None = attrs.field(default=None, validator=_proxy_url, repr=_proxy_repr)
    #: Read ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (and ``~/.netrc``) as
    #: aiohttp's ``trust_env`` does; ``proxy`` wins over them.
    trust_env: bool = False


def resolve_base_url(base_url: str | None) -> str:
    """``base_url``, else ``$BITGET_BASE_URL``, else production; checked, no trailing ``/``."""
    url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    parsed = yarl.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        msg = f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL} (got {url!r})"
        raise ConfigurationError(msg)
    return url.rstrip("/")
