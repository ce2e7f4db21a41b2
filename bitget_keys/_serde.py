"""
The one cattrs converter between our models and Bitget's JSON, and envelope handling.

`configure_converter` adds these rules to a converter (`make_converter` builds one):

- Field names are camelCase on the wire (``ip_list`` -> ``ipList``), renamed by hook
  factories; names Bitget spells irregularly are listed in `_WIRE_NAMES` and
  `_CLASS_WIRE_NAMES`. The first spelling is the one sent; every spelling is accepted.
- Request fields that are ``None`` are left out of the body or query. (Fields whose
  omission would change meaning are required in the models, so ``None`` never means
  anything else.)
- Responses ignore unknown fields; a missing or mistyped field raises
  `ResponseDecodeError` naming it.
- IDs arrive as strings or numbers and become ``str``; ``serverTime`` and ``cTime`` may be
  strings and become ``int`` / aware UTC ``datetime``; a permission list that arrives as
  one comma-joined string is split, and so is v3 account-info's whitelist (``ips``).
- `Secret` values travel as plain strings on the wire and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, get_args, get_origin

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter as make_json_converter

from bitget_keys import models as m
from bitget_keys._secret import Secret
from bitget_keys.errors import (
    SUCCESS_CODE,
    ResponseDecodeError,
    from_response,
)

__all__ = [
    "CONVERTER",
    "Envelope",
    "configure_converter",
    "decode",
    "encode_body",
    "make_converter",
    "query_params",
]

T = TypeVar("T")

# Spellings used the same way across endpoints.
_WIRE_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "subaccount_uid": ("subAccountUid",),
    "subaccount_name": ("subAccountName",),
    "permissions": ("permList",),
    "created_time": ("cTime",),
    "updated_time": ("uTime",),
    "server_time_ms": ("serverTime",),
    "subaccounts": ("subAccountList",),
    "names": ("subAccountList",),
}

_SUBACCOUNT_API_KEY: Final = ("subAccountApiKey", "apiKey", "apikey")

# Spellings particular to one class; the first is the one sent.
_CLASS_WIRE_NAMES: Final[dict[type, dict[str, tuple[str, ...]]]] = {
    # create-copy-api answers with `apikey`, `secret` and `permissions`.
    m.CopyAPIKey: {
        "api_key": ("apikey", "apiKey"),
        "secret_key": ("secret", "secretKey"),
        "permissions": ("permissions", "permList"),
    },
    # The user endpoints call the key `subAccountApiKey`; one doc example says `apiKey`.
    m.CreatedVirtualSubaccountAPIKey: {"api_key": _SUBACCOUNT_API_KEY},
    m.CreatedVirtualSubaccount: {"api_key": _SUBACCOUNT_API_KEY},
    m.VirtualSubaccountAPIKey: {"api_key": _SUBACCOUNT_API_KEY},
    m.ModifyVirtualSubaccountAPIKeyRequest: {"api_key": ("subAccountApiKey",)},
    # The broker pages say `apikey` in their tables and `apiKey` in their examples.
    m.BrokerSubaccountAPIKey: {"api_key": ("apiKey", "apikey")},
    m.ModifyBrokerSubaccountAPIKeyRequest: {"api_key": ("apiKey",)},
    m.DeleteBrokerSubaccountAPIKeyRequest: {"api_key": ("apiKey",)},
    m.NewVirtualSubaccount: {"name": ("subAccountName",)},
    # create-virtual-subaccount misspells `subaAccount...` in every doc version.
    m.VirtualSubaccount: {
        "subaccount_uid": ("subAccountUid", "subaAccountUid"),
        "subaccount_name": ("subAccountName", "subaAccountName"),
    },
    m.CreatedVirtualSubaccounts: {
        "successes": ("successList",),
        "failures": ("failureList",),
    },
    # The v3 user endpoints say `permissions`; their tables spell the key `apikey`.
    m.CreateUTASubaccountAPIKeyRequest: {"permissions": ("permissions",)},
    m.UpdateUTASubaccountAPIKeyRequest: {"permissions": ("permissions",)},
    m.CreatedUTASubaccountAPIKey: {
        "api_key": ("apiKey", "apikey"),
        "permissions": ("permissions",),
    },
    m.UTASubaccountAPIKey: {
        "api_key": ("apiKey", "apikey"),
        "permissions": ("permissions",),
        "created_time": ("ts",),
    },
    m.DeleteUTASubaccountAPIKeyRequest: {"api_key": ("apiKey",)},
    # v3 account-info: the page says `uid`, an SDK `userId`.
    m.UTAAccountInfo: {"uid": ("uid", "userId"), "permissions": ("permissions",)},
    m.UTASubaccount: {"created_time": ("createdTime",), "updated_time": ("updatedTime",)},
    m.UTASubaccountPage: {"subaccounts": ("list",)},
    m.UTASubaccountAPIKeyPage: {"keys": ("items",)},
    # The v3 broker pages keep the v2 broker names.
    m.UTABrokerSubaccountAPIKey: {"api_key": ("apiKey", "apikey")},
    m.ModifyUTABrokerSubaccountAPIKeyRequest: {"api_key": ("apiKey",)},
    m.DeleteUTABrokerSubaccountAPIKeyRequest: {"api_key": ("apiKey",)},
}


def _to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _wire_names(cl: type, field: str) -> tuple[str, ...]:
    return _CLASS_WIRE_NAMES.get(cl, {}).get(field) or _WIRE_NAMES.get(field) or (_to_camel(field),)


# -- scalar hooks ----------------------------------------------------------------------


def _structure_str(value: object, _: type) -> str:
    # IDs come as strings or numbers; anything else (null, lists) is a shape error.
    if type(value) is str or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    msg = f"expected a string, got {type(value).__name__}"
    raise ValueError(msg)


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    msg = f"expected an integer, got {type(value).__name__}"
    raise ValueError(msg)


def _structure_bool(value: object, _: type) -> bool:
    # Bitget documents some flags as strings ("true"/"false") and sends booleans in its
    # examples; bool("false") would be True, so strings are read by value.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    msg = f"expected a boolean, got {value!r}"
    raise ValueError(msg)


def _structure_enum(value: object, cl: type[m.OpenStrEnum]) -> m.OpenStrEnum:
    if not isinstance(value, str):
        msg = f"expected a string, got {type(value).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - cattrs reports ValueErrors by path
    return cl(value)


def _structure_secret(value: object, _: type) -> Secret:
    if isinstance(value, str):
        return Secret(value)
    msg = f"expected a string, got {type(value).__name__}"
    raise ValueError(msg)


def _structure_optional_secret(value: object, _: type) -> Secret | None:
    # Some list answers mask a key's secret as asterisks: that is no secret, and a
    # Secret holding it would look like a real one until revealed.
    if value is None or (isinstance(value, str) and (not value or set(value) == {"*"})):
        return None
    return _structure_secret(value, Secret)


def _structure_datetime(value: object, _: type) -> dt.datetime:
    return dt.datetime.fromtimestamp(_structure_int(value, int) / 1000, tz=dt.UTC)


def _structure_permissions(value: object, _: type) -> tuple[m.Permission, ...]:
    # One doc example sends ["spot_trade,contract_trade"]: split joined strings.
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        msg = f"expected a list of permissions, got {type(value).__name__}"
        raise TypeError(msg)
    result: list[m.Permission] = []
    for item in items:
        if not isinstance(item, str):
            msg = f"expected a permission string, got {type(item).__name__}"
            raise TypeError(msg)
        if "," in item:
            result.extend(m.permission(part.strip()) for part in item.split(",") if part.strip())
        else:
            result.append(m.permission(item))
    return tuple(result)


def _structure_update_ips(value: object, _: type) -> m.ClearWhitelist | tuple[str, ...]:
    # update-sub-api reads an empty `ips` as "delete the whitelist": that is the one
    # meaning the model gives CLEAR_WHITELIST; any other list is the new whitelist.
    if value == []:
        return m.CLEAR_WHITELIST
    if not isinstance(value, list | tuple):
        msg = f"expected a list, got {type(value).__name__}"
        raise TypeError(msg)
    return tuple([_structure_str(item, str) for item in value])


def _split_ips(value: object) -> object:
    # v3 account-info sends the whitelist as one comma-separated string.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _is_homogeneous_tuple(cl: Any) -> bool:
    args = get_args(cl)
    return get_origin(cl) is tuple and len(args) == 2 and args[1] is Ellipsis


def _make_tuple_structure(
    converter: cattrs.Converter,
) -> Callable[[Any], Callable[[Any, type], Any]]:
    def factory(cl: Any) -> Callable[[Any, type], Any]:
        inner = get_args(cl)[0]
        hook = converter.get_structure_hook(inner)

        def structure(value: Any, _: type) -> tuple[Any, ...]:
            # A lone string is iterable too; never read "abc" as ("a", "b", "c").
            if not isinstance(value, list | tuple):
                msg = f"expected a list, got {type(value).__name__}"
                raise TypeError(msg)
            return tuple([hook(item, inner) for item in value])

        return structure

    return factory


def _structure_created_subaccounts(
    converter: cattrs.Converter,
) -> Callable[[Any, type], m.CreatedVirtualSubaccounts]:
    successes = converter.get_structure_hook(tuple[m.VirtualSubaccount, ...])

    def structure(value: Any, _: type) -> m.CreatedVirtualSubaccounts:
        if not isinstance(value, Mapping):
            msg = "expected an object"
            raise ValueError(msg)  # noqa: TRY004 - cattrs reports ValueErrors by path
        failures = []
        for row in value.get("failureList") or ():
            name = (
                row.get("subaAccountName", row.get("subAccountName"))
                if isinstance(row, Mapping)
                else row
            )
            failures.append(_structure_str(name, str))
        return m.CreatedVirtualSubaccounts(
            successes=successes(value.get("successList") or [], tuple[m.VirtualSubaccount, ...]),
            failures=tuple(failures),
        )

    return structure


# -- class hooks -------------------------------------------------------------------------


def _is_model(cl: Any) -> bool:
    """Whether ``cl`` is one of `bitget_keys.models` (defined in one of its modules)."""
    module = getattr(cl, "__module__", None) or ""
    return attrs.has(cl) and module.startswith(f"{m.__name__}.")


def _make_structure(
    converter: cattrs.Converter, *, forbid_extra_keys: bool
) -> Callable[[Any], Callable[[Any, type], Any]]:
    def factory(cl: Any) -> Callable[[Any, type], Any]:
        attrs.resolve_types(cl)
        names = {field.name: _wire_names(cl, field.name) for field in attrs.fields(cl)}
        overrides: dict[str, Any] = {
            field: override(rename=spellings[0]) for field, spellings in names.items()
        }
        structure = make_dict_structure_fn(
            cl, converter, _cattrs_forbid_extra_keys=forbid_extra_keys, **overrides
        )
        aliases = [(spellings[0], spellings[1:]) for spellings in names.values() if spellings[1:]]
        split_ips = cl is m.UTAAccountInfo
        if not aliases and not split_ips:
            return structure

        def structure_with_aliases(value: Any, _: type) -> Any:
            if isinstance(value, dict):
                for primary, others in aliases:
                    if primary not in value:
                        # Copy before renaming: never change the caller's dict.
                        value = dict(value)
                        for other in others:
                            if other in value:
                                value[primary] = value.pop(other)
                                break
                if split_ips and isinstance(value.get("ips"), str):
                    value = dict(value) | {"ips": _split_ips(value["ips"])}
            return structure(value, cl)

        return structure_with_aliases

    return factory


def _make_unstructure(converter: cattrs.Converter) -> Callable[[Any], Callable[[Any], Any]]:
    def factory(cl: Any) -> Callable[[Any], Any]:
        attrs.resolve_types(cl)
        overrides: dict[str, Any] = {
            field.name: override(rename=_wire_names(cl, field.name)[0])
            for field in attrs.fields(cl)
        }
        unstructure = make_dict_unstructure_fn(cl, converter, **overrides)

        def unstructure_without_none(value: Any) -> dict[str, Any]:
            return {key: item for key, item in unstructure(value).items() if item is not None}

        return unstructure_without_none

    return factory


def configure_converter(converter: cattrs.Converter, *, forbid_extra_keys: bool = False) -> None:
    """
    Teach ``converter`` Bitget's wire format (the rules in this module's docstring).

    ``forbid_extra_keys`` makes structuring refuse unknown fields: off for responses
    (Bitget adds fields), on where requests are parsed strictly (the emulator).
    """
    # Type hooks dispatch on the most specific class, so our StrEnums need their own
    # hook beside the one for `str`.
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(m.OpenStrEnum, _structure_enum)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(Secret, _structure_secret)
    converter.register_unstructure_hook(Secret, Secret.reveal)
    converter.register_structure_hook_func(lambda t: t == Secret | None, _structure_optional_secret)
    # update-sub-api deletes a whitelist on an empty `ips`; only CLEAR_WHITELIST sends one.
    converter.register_unstructure_hook(m.ClearWhitelist, lambda _: [])
    converter.register_structure_hook(dt.datetime, _structure_datetime)
    converter.register_unstructure_hook(dt.datetime, lambda value: int(value.timestamp() * 1000))
    converter.register_structure_hook_factory(
        _is_homogeneous_tuple, _make_tuple_structure(converter)
    )
    # Registered after the tuple factory, so it wins for permission lists.
    converter.register_structure_hook_func(
        lambda t: t == tuple[m.Permission, ...], _structure_permissions
    )
    converter.register_structure_hook_func(
        lambda t: t == (m.ClearWhitelist | tuple[str, ...]), _structure_update_ips
    )
    converter.register_unstructure_hook(
        m.BatchCreateVirtualSubaccountsRequest,
        lambda request: [converter.unstructure(item) for item in request.items],
    )
    converter.register_structure_hook(
        m.BatchCreateVirtualSubaccountsRequest,
        lambda value, _: m.BatchCreateVirtualSubaccountsRequest(
            items=converter.structure(value, list[m.NewVirtualSubaccount])
        ),
    )
    converter.register_structure_hook_factory(
        _is_model, _make_structure(converter, forbid_extra_keys=forbid_extra_keys)
    )
    converter.register_unstructure_hook_factory(_is_model, _make_unstructure(converter))
    converter.register_structure_hook(
        m.CreatedVirtualSubaccounts, _structure_created_subaccounts(converter)
    )


def make_converter(
    *, forbid_extra_keys: bool = False, detailed_validation: bool = True
) -> cattrs.Converter:
    """
    A new converter with `configure_converter`'s rules.

    ``detailed_validation`` makes errors name every bad field, at some cost in speed.
    """
    converter = make_json_converter(detailed_validation=detailed_validation)
    configure_converter(converter, forbid_extra_keys=forbid_extra_keys)
    return converter


#: The converter the client uses.
CONVERTER: Final = make_converter(detailed_validation=False)
# Structuring a good answer doesn't need cattrs' detailed validation, which costs about
# half the time; a bad answer is structured again with it, to name the bad fields.
_DETAILED: Final = make_converter()


def encode_body(request: object) -> bytes:
    """
    The exact bytes sent (and signed) for a request: compact JSON, serialised once.

    Keys keep the model's field order; non-ASCII text is sent as UTF-8.
    """
    return orjson.dumps(CONVERTER.unstructure(request))


def query_params(request: object) -> dict[str, str]:
    """The query parameters of a GET request, ``None`` fields left out."""
    raw = CONVERTER.unstructure(request)
    return {key: str(value) for key, value in raw.items()}


@attrs.frozen
class Envelope:
    """Bitget's answer with its envelope removed."""

    data: Any
    #: Bitget's ``requestTime`` (epoch ms), when present.
    request_time: int | None


def _error_message(raw: bytes, http_status: int) -> str:
    return f"HTTP {http_status} without a Bitget envelope ({len(raw)} bytes)"


def _optional_int(value: object) -> int | None:
    try:
        return _structure_int(value, int) if value else None
    except ValueError:
        return None


def unwrap(raw: bytes, *, http_status: int, endpoint: str) -> Envelope:
    """
    Check Bitget's envelope and return its data, or raise the matching `APIError`.

    The body is parsed whatever the status, and its ``code`` decides.

    Raises:
        APIError: (a subclass of) for any error code or error status.
        ResponseDecodeError: a success status whose body is not an envelope.
    """
    return Envelope(*_unwrap(raw, http_status=http_status, endpoint=endpoint))


def _unwrap(raw: bytes, *, http_status: int, endpoint: str) -> tuple[Any, int | None]:
    """`unwrap` without building an `Envelope`: the data and ``requestTime``."""
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if type(body) is dict and body.get("code") == SUCCESS_CODE:
        # The common case, kept short: it runs for every successful request.
        request_time = body.get("requestTime")
        if type(request_time) is not int:
            request_time = _optional_int(request_time)
        return body.get("data"), request_time
    if not isinstance(body, dict) or "code" not in body:
        if 200 <= http_status < 300:
            raise ResponseDecodeError(endpoint, ("the body is not a Bitget JSON envelope",))
        raise from_response(
            http_status=http_status,
            code=None,
            message=_error_message(raw, http_status),
            endpoint=endpoint,
        )
    code = str(body["code"])
    message = body.get("msg")
    message = message if isinstance(message, str) else ""
    request_time = _optional_int(body.get("requestTime"))
    if code != SUCCESS_CODE:
        raise from_response(
            http_status=http_status,
            code=code,
            message=message,
            endpoint=endpoint,
            request_time=request_time,
        )
    return body.get("data"), request_time


def structure(data: Any, cl: type[T], *, endpoint: str) -> T:
    """
    Structure an envelope's data into ``cl``.

    Raises:
        ResponseDecodeError: a field is missing or has the wrong type.
    """
    try:
        return CONVERTER.structure(data, cl)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError):
        pass
    try:
        return _DETAILED.structure(data, cl)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            problems = tuple(cattrs.transform_error(exc, path="data"))
        else:
            problems = (f"data: {type(exc).__name__}",)
        raise ResponseDecodeError(endpoint, problems) from exc


def decode(raw: bytes, cl: type[T], *, http_status: int, endpoint: str) -> tuple[T, int | None]:
    """`unwrap` then `structure`: the typed data and Bitget's ``requestTime``."""
    data, request_time = _unwrap(raw, http_status=http_status, endpoint=endpoint)
    return structure(data, cl, endpoint=endpoint), request_time
