"""
Request and response models for Bitget's API-key endpoints.

Every class is a frozen, keyword-only attrs class with Python names; the wire names
live in the private converter. Collections are tuples. Secrets (passphrases, secret
keys) are `Secret` values, never printed.

Requests check every documented Bitget rule when they are built and raise
`ValidationError` listing each broken rule with its field, so nothing invalid is ever
sent. Responses accept values Bitget adds later: an unknown permission or status
becomes a pseudo-member of its enum rather than an error.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Final, Self, cast

import attrs

from bitget_keys._escape import escape, first_unprintable
from bitget_keys._secret import Secret, to_secret
from bitget_keys.errors import Problem, ValidationError

__all__ = [
    "AccountInfo",
    "BatchCreateVirtualSubaccountsRequest",
    "BrokerSubaccountAPIKey",
    "CopyAPIKey",
    "CreateBrokerSubaccountAPIKeyRequest",
    "CreateCopyAPIKeyRequest",
    "CreateVirtualSubaccountAPIKeyRequest",
    "CreateVirtualSubaccountsRequest",
    "CreatedVirtualSubaccount",
    "CreatedVirtualSubaccountAPIKey",
    "CreatedVirtualSubaccounts",
    "ListBrokerSubaccountAPIKeysRequest",
    "ListVirtualSubaccountAPIKeysRequest",
    "ListVirtualSubaccountsRequest",
    "ModifyBrokerSubaccountAPIKeyRequest",
    "ModifyVirtualSubaccountAPIKeyRequest",
    "NewVirtualSubaccount",
    "OpenStrEnum",
    "PermType",
    "Permission",
    "ServerTime",
    "SubaccountStatus",
    "VirtualSubaccount",
    "VirtualSubaccountAPIKey",
    "VirtualSubaccountPage",
    "ip_problem",
    "label_problem",
    "perm_type_problem",
    "subaccount_name_key",
    "subaccount_name_problem",
]


class OpenStrEnum(StrEnum):
    """A string enum that keeps unknown values (as pseudo-members) instead of failing."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        return member

    @property
    def known(self) -> bool:
        """Whether this value is one Bitget documents."""
        return self._name_ in type(self).__members__


class Permission(OpenStrEnum):
    """
    An API-key permission. Which values an endpoint takes differs by endpoint.

    User endpoints (virtual sub-accounts) document ``spot_trade``, ``margin_trade``,
    ``contract_trade``, ``transfer`` and ``read``; one version of the
    create-virtual-subaccount-apikey page documents the broker-style values too. Broker
    endpoints take ``contract_order``, ``contract_position``, ``spot_trade``,
    ``margin_trade``, ``copytrading_trade`` and ``wallet_transfer``.
    """

    SPOT_TRADE = "spot_trade"
    MARGIN_TRADE = "margin_trade"
    CONTRACT_TRADE = "contract_trade"
    TRANSFER = "transfer"
    READ = "read"
    CONTRACT_ORDER = "contract_order"
    CONTRACT_POSITION = "contract_position"
    COPYTRADING_TRADE = "copytrading_trade"
    WALLET_TRANSFER = "wallet_transfer"
    WALLET_WITHDRAW = "wallet_withdraw"


class PermType(OpenStrEnum):
    """Whether a key may write or only read."""

    READ_AND_WRITE = "read_and_write"
    READONLY = "readonly"


class SubaccountStatus(OpenStrEnum):
    """The state of a virtual sub-account."""

    NORMAL = "normal"
    FREEZE = "freeze"
    DELETED = "del"


_P = Permission
_PERMISSIONS: Final[dict[str, Permission]] = {member.value: member for member in Permission}

#: create-virtual-subaccount-apikey: the current doc's values and the broker-style
#: values of the other doc version, since which one the server enforces is unconfirmed.
VIRTUAL_KEY_PERMISSIONS: Final = frozenset(
    {
        _P.SPOT_TRADE,
        _P.MARGIN_TRADE,
        _P.CONTRACT_TRADE,
        _P.TRANSFER,
        _P.READ,
        _P.CONTRACT_ORDER,
        _P.CONTRACT_POSITION,
        _P.COPYTRADING_TRADE,
        _P.WALLET_TRANSFER,
        _P.WALLET_WITHDRAW,
    }
)
#: batch-create-subaccount-and-apikey.
BATCH_KEY_PERMISSIONS: Final = frozenset(
    {_P.SPOT_TRADE, _P.MARGIN_TRADE, _P.CONTRACT_TRADE, _P.READ}
)
#: modify-virtual-subaccount-apikey.
MODIFY_VIRTUAL_KEY_PERMISSIONS: Final = frozenset(
    {_P.SPOT_TRADE, _P.MARGIN_TRADE, _P.CONTRACT_TRADE, _P.TRANSFER, _P.READ}
)
#: Broker create and modify subaccount-apikey (never ``wallet_withdraw``).
BROKER_KEY_PERMISSIONS: Final = frozenset(
    {
        _P.CONTRACT_ORDER,
        _P.CONTRACT_POSITION,
        _P.SPOT_TRADE,
        _P.MARGIN_TRADE,
        _P.COPYTRADING_TRADE,
        _P.WALLET_TRANSFER,
    }
)

MAX_BATCH_ITEMS: Final = 5
#: Virtual sub-accounts a master account may have.
MAX_SUBACCOUNTS: Final = 20
#: API keys a virtual sub-account may have.
MAX_SUBACCOUNT_KEYS: Final = 10
MAX_IP_LIST: Final = 30
MAX_LIST_LIMIT: Final = 500
#: Labels on user endpoints: 1-20 characters (error 40056).
LABEL_MAX_LENGTH: Final = 20
#: Labels on ND-broker endpoints: "less than 20".
BROKER_LABEL_MAX_LENGTH: Final = 19

_PASSPHRASE: Final = re.compile(r"[A-Za-z0-9]+")
_SUBACCOUNT_NAME: Final = re.compile(r"[A-Za-z]{8}")
_UID: Final = re.compile(r"[0-9]{1,32}")

# A whitelist entry must be an address Bitget can see as a caller's public (egress) IP;
# anything else could never match. The test is the address's global-ness (IANA's
# special-purpose registry, as `ipaddress` knows it) plus multicast, which `ipaddress`
# counts as global although no caller ever has a multicast source address.
# Documentation ranges (TEST-NET-1/2/3) are not global either, but are allowed: they
# are what examples and tests write for "your public IP", and a real deployment never
# meets them, so refusing them would only break examples.
_DOCUMENTATION_NETWORKS: Final = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
)
# What to call an unusable address, for the message; the first match names it. An
# address that is not global but in none of these is "not a public address".
_UNUSABLE_NETWORKS: Final = (
    (ipaddress.ip_network("0.0.0.0/8"), "an unspecified ('this network') address"),
    (ipaddress.ip_network("10.0.0.0/8"), "a private (intranet) address"),
    (ipaddress.ip_network("172.16.0.0/12"), "a private (intranet) address"),
    (ipaddress.ip_network("192.168.0.0/16"), "a private (intranet) address"),
    (ipaddress.ip_network("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (ipaddress.ip_network("127.0.0.0/8"), "a loopback (host-internal) address"),
    (ipaddress.ip_network("169.254.0.0/16"), "a link-local address"),
    (ipaddress.ip_network("224.0.0.0/4"), "a multicast address"),
    (ipaddress.ip_network("255.255.255.255/32"), "the broadcast address"),
    (ipaddress.ip_network("240.0.0.0/4"), "a reserved address"),
    (ipaddress.ip_network("198.18.0.0/15"), "a benchmarking address"),
    (ipaddress.ip_network("192.0.0.0/24"), "an IETF protocol address"),
)


# -- rule checks: each appends the problems it finds, never the offending secret -------
# Plain appends rather than generators: validation runs on every request, and this is
# the cheapest way to collect every broken rule in Python.

Problems = list[Problem]


def _check_passphrase(out: Problems, field: str, value: Secret, min_length: int = 8) -> None:
    text = value.reveal()
    if not min_length <= len(text) <= 32 or not _PASSPHRASE.fullmatch(text):
        out.append(
            Problem(field, f"must be {min_length}-32 characters, English letters and digits only")
        )


_LABEL_RESERVED: Final = (
    ("/", "which joins a sub-account's label and a key's label"),
    ("\\", "which output uses to show escaped characters"),
)


def label_problem(value: object, max_length: int = LABEL_MAX_LENGTH) -> str | None:
    """
    Why ``value`` can't be a key's or a sub-account's label, or ``None`` when it can.

    Bitget documents only the length (1-20 on user endpoints, under 20 on broker ones).
    The rest keeps labels unambiguous, because labels are what identify items: a key is
    named ``SUB-LABEL/KEY-LABEL`` in output and in the vault, so a ``/`` would let two
    different keys share a name; and a label must print as written, so characters that
    output escapes (`bitget_keys._escape`), a backslash (which would read as an escape)
    and spaces at either end (invisible, and perhaps trimmed by Bitget) are refused.
    """
    if not isinstance(value, str):
        return "must be a string"
    if not 1 <= len(value) <= max_length:
        return f"must be 1-{max_length} characters (got {len(value)})"
    bad = first_unprintable(value)
    if bad is not None:
        return (
            f"must not contain {escape(bad)} (U+{ord(bad):04X}): control, format and "
            "separator characters other than the space would not print as written"
        )
    for char, why in _LABEL_RESERVED:
        if char in value:
            return f"must not contain {char!r}, {why}"
    if value != value.strip(" "):
        return "must not begin or end with a space"
    return None


def _check_label(
    out: Problems, field: str, value: str | None, max_length: int = LABEL_MAX_LENGTH
) -> None:
    if value is not None:
        rule = label_problem(value, max_length)
        if rule is not None:
            out.append(Problem(field, rule))


def _check_uid(out: Problems, field: str, value: object) -> None:
    if not isinstance(value, str) or not _UID.fullmatch(value):
        out.append(Problem(field, "must be a numeric UID"))


def _check_text(out: Problems, field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        out.append(Problem(field, "must not be empty"))


def subaccount_name_problem(value: object) -> str | None:
    """Why ``value`` can't be a virtual sub-account's name, or ``None`` when it can."""
    if not isinstance(value, str) or not _SUBACCOUNT_NAME.fullmatch(value):
        return f"must be exactly 8 English letters (got {value!r})"
    return None


def subaccount_name_key(name: str) -> str:
    """What makes two sub-account names the same one: Bitget ignores their case."""
    return name.lower()


def _check_name(out: Problems, field: str, value: object) -> None:
    rule = subaccount_name_problem(value)
    if rule is not None:
        out.append(Problem(field, rule))


@functools.lru_cache(maxsize=4096)
def _ip_verdict(value: str) -> str | None:
    # Cached: the same few egress IPs recur in every request of a provisioning run, and
    # parsing an address costs more than the rest of a request's validation.
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address"
    if address.version != 4:
        return f"{value!r}: only IPv4 addresses are known to work in a whitelist"
    if any(address in network for network in _DOCUMENTATION_NETWORKS):
        return None
    if address.is_global and not address.is_multicast:
        return None
    kind, where = "not a public address", ""
    for network, name in _UNUSABLE_NETWORKS:
        if address in network:
            kind, where = name, f" ({network})"
            break
    return (
        f"{value} is {kind}{where}; a whitelist must hold the public egress IP that Bitget "
        "sees, so this entry could never match"
    )


def ip_problem(value: object) -> str | None:
    """Why ``value`` can't be a whitelist entry, or ``None`` when it can."""
    return _ip_verdict(value) if isinstance(value, str) else "must be a string"


def _check_ip_list(out: Problems, field: str, values: tuple[str, ...] | None) -> None:
    if values is None:
        return
    if len(values) > MAX_IP_LIST:
        out.append(Problem(field, f"at most {MAX_IP_LIST} entries (got {len(values)})"))
    seen: set[str] = set()
    for index, value in enumerate(values):
        verdict = ip_problem(value)  # callers without type checking can pass anything
        if verdict is not None:
            out.append(Problem(f"{field}[{index}]", verdict))
            continue  # and it may not even be hashable
        if value in seen:
            out.append(Problem(f"{field}[{index}]", f"{value} is listed twice"))
        seen.add(value)


def _check_permissions(
    out: Problems,
    field: str,
    values: tuple[Permission, ...] | None,
    allowed: frozenset[Permission],
    *,
    required: bool,
) -> None:
    if values is None:
        return
    if required and not values:
        out.append(Problem(field, "must name at least one permission"))
    if len(set(values)) == len(values) and allowed.issuperset(values):
        return
    seen: set[Permission] = set()
    for index, value in enumerate(values):
        if value not in allowed:
            choices = ", ".join(sorted(allowed))
            out.append(
                Problem(f"{field}[{index}]", f"{value!s} is not valid here; one of: {choices}")
            )
        if value in seen:
            out.append(Problem(f"{field}[{index}]", f"{value!s} is listed twice"))
        seen.add(value)


def perm_type_problem(value: object) -> str | None:
    """Why ``value`` can't be a key's permission type, or ``None`` when it can."""
    choices = ", ".join(member.value for member in PermType)
    if not isinstance(value, str):
        return f"must be one of: {choices} (got {type(value).__name__} {value!r})"
    if not PermType(value).known:
        return f"{value} is not valid; one of: {choices}"
    return None


def _check_perm_type(
    out: Problems,
    field: str,
    perm_type: PermType | None,
    permissions: tuple[Permission, ...] | None,
    permissions_field: str,
) -> None:
    if perm_type is not None:
        rule = perm_type_problem(perm_type)
        if rule is not None:
            out.append(Problem(field, rule))
    perms = permissions or ()
    if Permission.WALLET_WITHDRAW in perms and perm_type is PermType.READONLY:
        out.append(
            Problem(permissions_field, "wallet_withdraw is not allowed with perm_type readonly")
        )
    if Permission.WALLET_TRANSFER in perms and perm_type is not PermType.READ_AND_WRITE:
        out.append(Problem(permissions_field, "wallet_transfer needs perm_type read_and_write"))


def _raise_if_any(subject: object, problems: Problems) -> None:
    if problems:
        raise ValidationError(tuple(problems), type(subject).__name__)


# -- converters ----------------------------------------------------------------------


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    checked: object = values  # a lone string is iterable too, and always a mistake here
    if isinstance(checked, str):
        msg = "expected a list of strings, not one string"
        raise TypeError(msg)
    return tuple(values)


def _optional_strings(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else _strings(values)


def permission(value: Permission | str) -> Permission:
    """The `Permission` for a wire value (a pseudo-member when Bitget adds one)."""
    # A dict lookup: calling an Enum class costs several times more, on every request.
    return _PERMISSIONS.get(value) or Permission(value)


def _permissions(values: Iterable[Permission | str]) -> tuple[Permission, ...]:
    checked: object = values  # a lone string is iterable too, and always a mistake here
    if isinstance(checked, str):
        msg = "expected a list of permissions, not one string"
        raise TypeError(msg)
    lookup = _PERMISSIONS.get
    return tuple([lookup(value) or Permission(value) for value in values])


def _optional_permissions(
    values: Iterable[Permission | str] | None,
) -> tuple[Permission, ...] | None:
    return None if values is None else _permissions(values)


def _perm_type(value: PermType | str) -> PermType:
    checked: object = value
    if not isinstance(checked, str):
        # Kept as given, for `_check_perm_type` to refuse with the field's name.
        return cast("PermType", checked)
    return PermType(value)


def _optional_perm_type(value: PermType | str | None) -> PermType | None:
    return None if value is None else _perm_type(value)


def _optional_status(value: SubaccountStatus | str | None) -> SubaccountStatus | None:
    return None if value is None else SubaccountStatus(value)


# -- requests ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateCopyAPIKeyRequest:
    """
    create-copy-api: the copy-trading API key of a new-model copy trader (once ever).

    The new key's whitelist and rights cannot be chosen.
    """

    passphrase: Secret = attrs.field(converter=to_secret, repr=False)

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        _check_passphrase(out, "passphrase", self.passphrase)
        _raise_if_any(self, out)


@attrs.frozen(kw_only=True)
class CreateVirtualSubaccountAPIKeyRequest:
    """
    create-virtual-subaccount-apikey: one more key for an existing virtual sub-account.

    ``ip_list`` is required because leaving it out gives the key an empty whitelist
    (usable from any IP); pass ``()`` to mean exactly that.
    """

    subaccount_uid: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    label: str
    ip_list: tuple[str, ...] = attrs.field(converter=_strings)
    permissions: tuple[Permission, ...] = attrs.field(converter=_permissions)
    perm_type: PermType | None = attrs.field(default=None, converter=_optional_perm_type)

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        _check_uid(out, "subaccount_uid", self.subaccount_uid)
        _check_passphrase(out, "passphrase", self.passphrase)
        _check_label(out, "label", self.label)
        _check_permissions(
            out, "permissions", self.permissions, VIRTUAL_KEY_PERMISSIONS, required=True
        )
        _check_perm_type(out, "perm_type", self.perm_type, self.permissions, "permissions")
        _check_ip_list(out, "ip_list", self.ip_list)
        _raise_if_any(self, out)


@attrs.frozen(kw_only=True)
class NewVirtualSubaccount:
    """One item of a batch-create: a virtual sub-account and its first key."""

    #: The sub-account's alias: exactly 8 English letters, unique across Bitget.
    name: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    #: The key's note; the batch response is matched back to items by this label.
    label: str
    permissions: tuple[Permission, ...] = attrs.field(converter=_permissions)
    ip_list: tuple[str, ...] = attrs.field(converter=_strings)

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        _check_name(out, "name", self.name)
        _check_passphrase(out, "passphrase", self.passphrase)
        _check_label(out, "label", self.label)
        _check_permissions(
            out, "permissions", self.permissions, BATCH_KEY_PERMISSIONS, required=True
        )
        _check_ip_list(out, "ip_list", self.ip_list)
        _raise_if_any(self, out)


def _items(values: Iterable[NewVirtualSubaccount]) -> tuple[NewVirtualSubaccount, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class BatchCreateVirtualSubaccountsRequest:
    """
    batch-create-subaccount-and-apikey: 1 to 5 virtual sub-accounts, each with a key.

    Labels must be unique within the batch: Bitget masks names and UIDs in the
    response, so the label is what ties each row back to its item.
    """

    items: tuple[NewVirtualSubaccount, ...] = attrs.field(converter=_items)

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        if not 1 <= len(self.items) <= MAX_BATCH_ITEMS:
            out.append(
                Problem("items", f"must hold 1-{MAX_BATCH_ITEMS} items (got {len(self.items)})")
            )
        names: set[str] = set()
        labels: set[str] = set()
        for index, entry in enumerate(self.items):
            item: object = entry  # callers without type checking can pass anything
            if not isinstance(item, NewVirtualSubaccount):
                out.append(Problem(f"items[{index}]", "must be a NewVirtualSubaccount"))
                continue
            if subaccount_name_key(item.name) in names:
                out.append(
                    Problem(f"items[{index}].name", f"{item.name!r} appears twice in the batch")
                )
            if item.label in labels:
                out.append(
                    Problem(
                        f"items[{index}].label",
                        f"{item.label!r} appears twice; labels must be unique within a batch",
                    )
                )
            names.add(subaccount_name_key(item.name))
            labels.add(item.label)
        _raise_if_any(self, out)


@attrs.frozen(kw_only=True)
class ModifyBrokerSubaccountAPIKeyRequest:
    """
    ND-broker modify-subaccount-apikey: replace a sub-account key's settings.

    ``permissions`` and ``perm_type`` replace the key's; ``ip_list`` replaces the
    whitelist when given (``None`` keeps it: Bitget cannot clear it here); ``label``
    replaces the note when given.
    """

    sub_uid: str
    api_key: str
    #: The passphrase of the key being modified.
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    permissions: tuple[Permission, ...] = attrs.field(converter=_permissions)
    perm_type: PermType = attrs.field(converter=_perm_type)
    label: str | None = None
    ip_list: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_strings)

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        _check_uid(out, "sub_uid", self.sub_uid)
        _check_text(out, "api_key", self.api_key)
        _check_passphrase(out, "passphrase", self.passphrase)
        _check_permissions(
            out, "permissions", self.permissions, BROKER_KEY_PERMISSIONS, required=True
        )
        _check_perm_type(out, "perm_type", self.perm_type, self.permissions, "permissions")
        _check_label(out, "label", self.label, max_length=BROKER_LABEL_MAX_LENGTH)
        if self.ip_list == ():
            out.append(
                Problem(
                    "ip_list", "an empty list means 'no change' to Bitget; pass None to keep it"
                )
            )
        _check_ip_list(out, "ip_list", self.ip_list)
        _raise_if_any(self, out)


@attrs.frozen(kw_only=True)
class CreateBrokerSubaccountAPIKeyRequest:
    """ND-broker create-subaccount-apikey: a key for a broker sub-account."""

    sub_uid: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    label: str
    perm_type: PermType = attrs.field(converter=_perm_type)
    permissions: tuple[Permission, ...] = attrs.field(converter=_permissions)
    ip_list: tuple[str, ...] = attrs.field(converter=_strings)

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        _check_uid(out, "sub_uid", self.sub_uid)
        _check_passphrase(out, "passphrase", self.passphrase, min_length=6)
        _check_label(out, "label", self.label, max_length=BROKER_LABEL_MAX_LENGTH)
        _check_permissions(
            out, "permissions", self.permissions, BROKER_KEY_PERMISSIONS, required=True
        )
        _check_perm_type(out, "perm_type", self.perm_type, self.permissions, "permissions")
        if not self.ip_list and self.perm_type is not PermType.READONLY:
            out.append(Problem("ip_list", "is required unless perm_type is readonly"))
        _check_ip_list(out, "ip_list", self.ip_list)
        _raise_if_any(self, out)


@attrs.frozen(kw_only=True)
class ModifyVirtualSubaccountAPIKeyRequest:
    """
    modify-virtual-subaccount-apikey: replace a virtual sub-account key's settings.

    ``ip_list`` is always sent in full (leaving it out may clear the whitelist).
    ``permissions=None`` keeps the key's rights; ``()`` removes them all, which is how
    a key is neutralised (there is no delete for virtual sub-account keys).
    """

    subaccount_uid: str
    api_key: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    label: str
    ip_list: tuple[str, ...] = attrs.field(converter=_strings)
    permissions: tuple[Permission, ...] | None = attrs.field(
        default=None, converter=_optional_permissions
    )

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        _check_uid(out, "subaccount_uid", self.subaccount_uid)
        _check_text(out, "api_key", self.api_key)
        _check_passphrase(out, "passphrase", self.passphrase)
        _check_label(out, "label", self.label)
        _check_permissions(
            out, "permissions", self.permissions, MODIFY_VIRTUAL_KEY_PERMISSIONS, required=False
        )
        _check_ip_list(out, "ip_list", self.ip_list)
        _raise_if_any(self, out)


@attrs.frozen(kw_only=True)
class CreateVirtualSubaccountsRequest:
    """create-virtual-subaccount: virtual sub-accounts without keys."""

    names: tuple[str, ...] = attrs.field(converter=_strings)

    def __attrs_post_init__(self) -> None:
        problems: list[Problem] = []
        if not self.names:
            problems.append(Problem("names", "must name at least one sub-account"))
        seen: set[str] = set()
        for index, name in enumerate(self.names):
            _check_name(problems, f"names[{index}]", name)
            if name.lower() in seen:
                problems.append(Problem(f"names[{index}]", f"{name!r} appears twice"))
            seen.add(name.lower())
        _raise_if_any(self, problems)


@attrs.frozen(kw_only=True)
class ListVirtualSubaccountAPIKeysRequest:
    """virtual-subaccount-apikey-list: the keys of one virtual sub-account."""

    subaccount_uid: str

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        _check_uid(out, "subaccount_uid", self.subaccount_uid)
        _raise_if_any(self, out)


@attrs.frozen(kw_only=True)
class ListBrokerSubaccountAPIKeysRequest:
    """ND-broker subaccount-apikey-list: the keys of one broker sub-account."""

    sub_uid: str

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        _check_uid(out, "sub_uid", self.sub_uid)
        _raise_if_any(self, out)


@attrs.frozen(kw_only=True)
class ListVirtualSubaccountsRequest:
    """virtual-subaccount-list: one page, newest first; page on with ``id_less_than``."""

    limit: int = 100
    id_less_than: str | None = None
    status: SubaccountStatus | None = attrs.field(default=None, converter=_optional_status)

    def __attrs_post_init__(self) -> None:
        problems: list[Problem] = []
        if not 1 <= self.limit <= MAX_LIST_LIMIT:
            problems.append(Problem("limit", f"must be 1-{MAX_LIST_LIMIT} (got {self.limit})"))
        if self.id_less_than is not None:
            _check_uid(problems, "id_less_than", self.id_less_than)
        if self.status is not None and self.status not in (
            SubaccountStatus.NORMAL,
            SubaccountStatus.FREEZE,
        ):
            problems.append(Problem("status", "must be normal or freeze"))
        _raise_if_any(self, problems)


# -- responses -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ServerTime:
    """Bitget's clock."""

    #: Server time in epoch milliseconds.
    server_time_ms: int

    @property
    def datetime(self) -> dt.datetime:
        """The server time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.server_time_ms / 1000, tz=dt.UTC)


@attrs.frozen(kw_only=True)
class AccountInfo:
    """Who the calling key belongs to."""

    #: The UID that owns the calling key; Bitget's rate limits count against it.
    user_id: str
    parent_id: str | None = None
    inviter_id: str | None = None
    trader_type: str | None = None
    authorities: tuple[str, ...] = ()
    ips: str | None = None


@attrs.frozen(kw_only=True)
class CopyAPIKey:
    """The copy-trading key create-copy-api made. Its secret is shown only this once."""

    api_key: str
    secret_key: Secret = attrs.field(repr=False)
    permissions: tuple[Permission, ...] = ()


@attrs.frozen(kw_only=True)
class CreatedVirtualSubaccountAPIKey:
    """A new virtual sub-account key. Its secret is shown only this once."""

    subaccount_uid: str
    label: str
    api_key: str
    secret_key: Secret = attrs.field(repr=False)
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CreatedVirtualSubaccount:
    """
    One row of a batch-create: a new virtual sub-account and its first key.

    Bitget may mask ``subaccount_name`` and ``subaccount_uid`` here; match rows to
    requests by ``label`` and read UIDs from the sub-account list.
    """

    subaccount_uid: str
    subaccount_name: str
    label: str
    api_key: str
    secret_key: Secret = attrs.field(repr=False)
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class VirtualSubaccountAPIKey:
    """A virtual sub-account key as listed (no secret) or as modified (secret, if sent)."""

    subaccount_uid: str
    api_key: str
    label: str = ""
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] = ()
    secret_key: Secret | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class BrokerSubaccountAPIKey:
    """An ND-broker sub-account key as created, modified or listed."""

    sub_uid: str
    api_key: str
    label: str = ""
    perm_type: PermType | None = None
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] = ()
    secret_key: Secret | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class VirtualSubaccount:
    """A virtual sub-account as listed."""

    subaccount_uid: str
    subaccount_name: str = ""
    label: str = ""
    status: SubaccountStatus | None = None
    permissions: tuple[Permission, ...] = ()
    created_time: dt.datetime | None = None
    updated_time: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class VirtualSubaccountPage:
    """One page of virtual-subaccount-list; ``end_id`` is the cursor for the next one."""

    subaccounts: tuple[VirtualSubaccount, ...] = ()
    end_id: str | None = None


@attrs.frozen(kw_only=True)
class CreatedVirtualSubaccounts:
    """The outcome of create-virtual-subaccount, per name."""

    successes: tuple[VirtualSubaccount, ...] = ()
    #: Names Bitget refused (alias taken, or the sub-account cap reached).
    failures: tuple[str, ...] = ()
