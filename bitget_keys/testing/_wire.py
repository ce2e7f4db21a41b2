"""
What the emulated exchange reads and writes: the request as it arrived, refusals, envelopes.

Requests are read strictly, as Bitget does: a query is ``k=v`` parts with no key twice,
a body is JSON that structures into the endpoint's request model with no extra keys,
and the first broken rule picks the Bitget code of the refusal.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

import attrs
import cattrs
import orjson

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._serde import make_converter
from bitget_keys.errors import ValidationError

__all__ = [
    "BY_PATH",
    "NO_DATA",
    "Answer",
    "Refused",
    "Request",
    "parse_query",
    "structure",
]

_STRICT: Final = make_converter(forbid_extra_keys=True)
#: Every endpoint by (method, path), as a request names it.
BY_PATH: Final[dict[tuple[str, str], ep.Endpoint]] = {
    (e.method, e.path): e for e in ep.ENDPOINTS.values()
}
#: What a handler returns for an answer without a ``data`` field at all.
NO_DATA: Final = object()


@attrs.frozen
class Answer:
    """An HTTP answer: status and JSON body."""

    status: int
    #: May carry a created key's secret and passphrase: kept out of the repr.
    body: bytes = attrs.field(repr=False)

    @classmethod
    def envelope(cls, status: int, code: str, msg: str, wall_ms: int, data: Any) -> Answer:
        """
        Bitget's envelope around ``data``, stamped with the exchange's wall clock;
        `NO_DATA` leaves the field out.
        """
        body = {"code": code, "msg": msg, "requestTime": wall_ms, "data": data}
        if data is NO_DATA:
            del body["data"]
        return cls(status, orjson.dumps(body))


@attrs.frozen(kw_only=True)
class Request:
    """One request exactly as it arrived: raw path, raw query and the body's bytes."""

    method: str
    path: str
    query: str
    #: The caller's passphrase and signature, and the passphrases of keys being created,
    #: are in these two: kept out of the repr.
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    client_ip: str


class Refused(Exception):  # noqa: N818 - control flow inside the emulator, never raised out
    """The exchange answers with this Bitget code instead of carrying the request out."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.status = status


def too_many_requests() -> Refused:
    """The 429 every rate limit answers with."""
    return Refused("429", "Too Many Requests", 429)


def parse_query(query: str) -> dict[str, str]:
    """
    The query's parameters, strictly: every part is ``k=v``, no key twice.

    Percent-escapes are decoded here, after the signature was checked on the raw text.
    """
    malformed = "Parameter verification failed (malformed query string)"
    params: dict[str, str] = {}
    if not query:
        return params
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        if not sep or not key or key in params:
            raise Refused("40017", malformed)
        try:
            params[urllib.parse.unquote(key, errors="strict")] = urllib.parse.unquote(
                value, errors="strict"
            )
        except UnicodeDecodeError as exc:
            raise Refused("40017", malformed) from exc
    return params


def parse_body(body: bytes) -> Any:
    """A POST body's JSON; anything else is 40017."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused("40017", "Parameter verification failed (body is not JSON)") from exc


def structure(payload: Any, cl: type[Any]) -> Any:
    """``payload`` as the request model ``cl``, strictly; a broken rule is its Bitget code."""
    # Every request but the batch is a JSON object; cattrs would fail on `.keys()`.
    if cl is not m.BatchCreateVirtualSubaccountsRequest and not isinstance(payload, dict):
        raise Refused("40017", "Parameter verification failed (the body must be an object)")
    try:
        return _STRICT.structure(payload, cl)
    except ValidationError as exc:
        raise Refused(_code_for(exc, cl), f"Parameter verification failed: {exc}") from exc
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            inner = _first_validation_error(exc)
            if inner is not None:
                message = f"Parameter verification failed: {inner}"
                raise Refused(_code_for(inner, cl), message) from exc
            detail = "; ".join(cattrs.transform_error(exc))
        else:
            detail = type(exc).__name__
        raise Refused("40017", f"Parameter verification failed ({detail})") from exc


def _first_validation_error(exc: BaseException) -> ValidationError | None:
    if isinstance(exc, ValidationError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _first_validation_error(inner)
        if found is not None:
            return found
    return None


def _code_for(exc: ValidationError, cl: type[Any]) -> str:
    """The Bitget code for the first broken rule, as Bitget would report it."""
    # The v3 pages list no codes of their own; the unified error table has one for
    # every broken rule: 40017 Parameter verification failed.
    if cl.__module__.startswith(f"{m.__name__}.uta"):
        return "40017"
    problem = exc.problems[0]
    field = problem.field.rsplit(".", 1)[-1].split("[")[0]
    if field in ("name", "names") and "twice" in problem.rule:
        return "40071"
    return {
        "name": "40055",
        "names": "40055",
        "label": "40056",
        "passphrase": "40070",
        "items": "40058",
    }.get(field, "40017")
