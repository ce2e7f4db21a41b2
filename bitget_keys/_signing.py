"""
Credentials and request signing: pure functions, no I/O, no clock of their own.

Bitget signs ``timestamp + METHOD + path [+ "?" + query] + body`` with HMAC-SHA256
keyed by the secret's UTF-8 bytes, and sends the digest in standard base64. The query
is sorted by key and joined raw (``k=v&k=v``, no percent-encoding), and the body is the
exact string that goes on the wire; the client serialises once, signs that string and
sends those bytes.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys.errors import ConfigurationError

__all__ = ["Credentials", "build_query", "prehash", "sign", "signed_headers"]

# Query values go on the wire unencoded (that is what Bitget verifies), so they may only
# hold characters that need no percent-encoding in a URL query.
_SAFE_QUERY_TEXT: Final = re.compile(r"[A-Za-z0-9_.~-]*")


def _non_empty(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    text = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(text, str) or not text.strip():
        msg = f"Credentials.{attribute.name} must be a non-empty string"
        raise ConfigurationError(msg)


def _optional_uid(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.isdigit()):
        msg = "Credentials.uid must be the account's numeric UID as a string, or None"
        raise ConfigurationError(msg)


@attrs.frozen(kw_only=False)
class Credentials:
    """
    An API key, its secret and its passphrase, and optionally the UID that owns it.

    The secret and passphrase are kept as `Secret` and never printed. When ``uid`` is
    not given, the client learns it once from the account-info endpoint; it keys the
    rate limits, which Bitget counts per owning UID.
    """

    api_key: str = attrs.field(validator=_non_empty)
    secret_key: Secret = attrs.field(converter=to_secret, validator=_non_empty, repr=False)
    passphrase: Secret = attrs.field(converter=to_secret, validator=_non_empty, repr=False)
    uid: str | None = attrs.field(default=None, validator=_optional_uid)

    @property
    def signing_key(self) -> bytes:
        """The HMAC key: the secret's UTF-8 bytes. Keep it out of logs."""
        return self.secret_key.reveal().encode()

    @classmethod
    def from_env(
        cls, prefix: str = "BITGET", environ: Mapping[str, str] | None = None
    ) -> Credentials:
        """
        Read ``{prefix}_API_KEY``, ``{prefix}_SECRET_KEY``, ``{prefix}_PASSPHRASE`` and
        the optional ``{prefix}_UID``.

        Raises:
            ConfigurationError: a required variable is missing or empty.
        """
        env = os.environ if environ is None else environ
        names = {
            "api_key": f"{prefix}_API_KEY",
            "secret_key": f"{prefix}_SECRET_KEY",
            "passphrase": f"{prefix}_PASSPHRASE",
        }
        missing = [name for name in names.values() if not env.get(name)]
        if missing:
            msg = "missing environment variables: " + ", ".join(missing)
            raise ConfigurationError(msg)
        return cls(
            api_key=env[names["api_key"]],
            secret_key=env[names["secret_key"]],
            passphrase=env[names["passphrase"]],
            uid=env.get(f"{prefix}_UID") or None,
        )


def build_query(params: Mapping[str, str | int] | None) -> str:
    """
    The raw query string Bitget signs and receives: keys sorted, ``k=v`` joined by ``&``.

    Parameters whose value is ``None`` are left out by the caller. Raises `ValueError`
    for text that would need percent-encoding, because Bitget verifies the signature
    against the query exactly as received.
    """
    if not params:
        return ""
    parts = []
    for key in sorted(params):
        value = str(params[key])
        if not _SAFE_QUERY_TEXT.fullmatch(key) or not _SAFE_QUERY_TEXT.fullmatch(value):
            msg = f"query parameter {key!r} holds characters that would need URL encoding"
            raise ValueError(msg)
        parts.append(f"{key}={value}")
    return "&".join(parts)


def prehash(timestamp_ms: str, method: str, path: str, query: str = "", body: str = "") -> str:
    """The exact string Bitget signs."""
    return timestamp_ms + method.upper() + path + (f"?{query}" if query else "") + body


def sign(secret: str | Secret, message: str | bytes) -> str:
    """Base64 HMAC-SHA256 of ``message`` keyed by the secret's UTF-8 bytes (44 chars)."""
    key = secret.reveal() if isinstance(secret, Secret) else secret
    data = message.encode() if isinstance(message, str) else message
    return base64.b64encode(hmac.digest(key.encode(), data, "sha256")).decode("ascii")


def signed_headers(
    credentials: Credentials,
    *,
    timestamp_ms: int,
    method: str,
    path: str,
    query: str = "",
    body: str | bytes = b"",
    locale: str = "en-US",
) -> dict[str, str]:
    """
    The headers of a signed request, ``Content-Type`` included.

    ``body`` is the exact text or bytes that will be sent.
    """
    timestamp = str(timestamp_ms)
    raw_body = body.encode() if isinstance(body, str) else body
    # The same prehash as `prehash`, built inline: this runs for every request.
    head = (
        f"{timestamp}{method.upper()}{path}?{query}"
        if query
        else f"{timestamp}{method.upper()}{path}"
    )
    digest = hmac.digest(credentials.signing_key, head.encode() + raw_body, "sha256")
    return {
        "ACCESS-KEY": credentials.api_key,
        "ACCESS-SIGN": base64.b64encode(digest).decode("ascii"),
        "ACCESS-TIMESTAMP": timestamp,
        "ACCESS-PASSPHRASE": credentials.passphrase.reveal(),
        "Content-Type": "application/json",
        "locale": locale,
    }
