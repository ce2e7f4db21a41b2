"""
`list_request`: the request a key-list method sends, however the caller named the
sub-account.

Every endpoint method takes its request model as ``request``; the key lists once took
a bare UID under the name of their model's field (``subaccount_uid``, ``sub_uid``).
They still take it, positionally as ``request`` or under that old keyword, which warns.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Protocol, TypeVar

import attrs

from bitget_keys import _endpoints as ep

__all__ = ["list_request"]


class _KeyListRequest(Protocol):
    __attrs_attrs__: ClassVar[Any]

    def __init__(self, **fields: str) -> None: ...


R = TypeVar("R", bound=_KeyListRequest)


def list_request(
    endpoint: ep.Endpoint, model: type[R], request: R | str | None, legacy: str | None
) -> R:
    """
    ``request`` as ``model`` (whose one field is the sub-account's UID): as given, or
    built from a bare UID, given positionally or (deprecated) under the field's name
    (``legacy``); ``endpoint``'s name is the method's.

    Raises:
        TypeError: no sub-account, two of them, or neither a ``model`` nor a string.
        ValidationError: the UID breaks the model's rules.
    """
    method, field = endpoint.name, attrs.fields(model)[0].name
    if legacy is not None:
        if request is not None:
            msg = f"{method}() got the sub-account twice: pass request= alone"
            raise TypeError(msg)
        warnings.warn(
            f"{method}({field}=...) is deprecated; pass the UID or a {model.__name__} "
            "as the first argument (request=)",
            DeprecationWarning,
            stacklevel=3,
        )
        request = legacy
    if isinstance(request, model):
        return request
    if isinstance(request, str):
        return model(**{field: request})
    msg = f"{method}() needs a {model.__name__} or a sub-account UID (got {type(request).__name__})"
    raise TypeError(msg)
