"""
The domain rules every request model checks: names, labels, UIDs, passphrases,
whitelists (IPs) and the permission sets each endpoint takes.

Each ``check_*`` appends the problems it finds to a list, never the offending secret;
`raise_if_any` turns the list into one `ValidationError` naming every broken rule.
The ``*_problem`` functions answer for one value, for callers that check values of
their own (a provisioning plan checks its labels and names with them).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Final

from bitget_keys._escape import escape, first_unprintable
from bitget_keys._secret import Secret
from bitget_keys.errors import Problem, ValidationError
from bitget_keys.models.common import Permission, PermType, UTAKeyType

__all__ = [
    "BATCH_KEY_PERMISSIONS",
    "BROKER_KEY_PERMISSIONS",
    "BROKER_LABEL_MAX_LENGTH",
    "LABEL_MAX_LENGTH",
    "MAX_BATCH_ITEMS",
    "MAX_IP_LIST",
    "MAX_LIST_LIMIT",
    "MAX_SUBACCOUNTS",
    "MAX_SUBACCOUNT_KEYS",
    "MODIFY_VIRTUAL_KEY_PERMISSIONS",
    "SUBACCOUNT_PERMISSIONS",
    "UTA_BROKER_KEY_PERMISSIONS",
    "UTA_KEY_PERMISSIONS",
    "UTA_MAX_LIST_LIMIT",
    "UTA_NOTE_MAX_LENGTH",
    "UTA_USERNAME_MAX_LENGTH",
    "VIRTUAL_KEY_PERMISSIONS",
    "Checked",
    "Problems",
    "check_ip_list",
    "check_label",
    "check_name",
    "check_passphrase",
    "check_perm_type",
    "check_permissions",
    "check_text",
    "check_uid",
    "check_uta_key_note",
    "check_uta_key_type",
    "check_uta_note",
    "check_uta_username",
    "ip_problem",
    "label_problem",
    "perm_type_problem",
    "raise_if_any",
    "subaccount_name_key",
    "subaccount_name_problem",
]

_P = Permission


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


#: modify-virtual-subaccount: the rights of a virtual sub-account itself (not of a key).
SUBACCOUNT_PERMISSIONS: Final = frozenset({_P.SPOT_TRADE, _P.CONTRACT_TRADE, _P.READ})


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
#: v3 create-sub-api and update-sub-api: the only values documented for sub-account keys.
UTA_KEY_PERMISSIONS: Final = frozenset({_P.UTA_MGT, _P.UTA_TRADE})
#: v3 ND-broker keys: UTA trading and management, and withdrawals.
UTA_BROKER_KEY_PERMISSIONS: Final = frozenset({_P.UTA_MGT, _P.UTA_TRADE, _P.WITHDRAW})
#: v3 lists: at most 100 rows per page.
UTA_MAX_LIST_LIMIT: Final = 100


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
#: v3 create-sub: "lowercase letters only, ≤ 20 characters".
UTA_USERNAME_MAX_LENGTH: Final = 20
_UTA_USERNAME: Final = re.compile(r"[a-z]+")
#: v3 create-sub: a sub-account's note, "≤ 50 characters".
UTA_NOTE_MAX_LENGTH: Final = 50
#: v3 create-sub-api: a key's note starts with a letter, then letters, digits, - and _.
#: (The doc's list of punctuation reads "[-,_]"; whether the comma is allowed is unclear,
#: so it is refused: a note Bitget might refuse is caught here instead.)
_UTA_KEY_NOTE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


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


# Plain appends rather than generators: validation runs on every request, and this is
# the cheapest way to collect every broken rule in Python.

Problems = list[Problem]


def check_passphrase(out: Problems, field: str, value: Secret, min_length: int = 8) -> None:
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


def check_label(
    out: Problems, field: str, value: str | None, max_length: int = LABEL_MAX_LENGTH
) -> None:
    if value is not None:
        rule = label_problem(value, max_length)
        if rule is not None:
            out.append(Problem(field, rule))


def check_uid(out: Problems, field: str, value: object) -> None:
    if not isinstance(value, str) or not _UID.fullmatch(value):
        out.append(Problem(field, "must be a numeric UID"))


def check_text(out: Problems, field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        out.append(Problem(field, "must not be empty"))


def check_uta_username(out: Problems, field: str, value: object) -> None:
    if not isinstance(value, str) or not (
        len(value) <= UTA_USERNAME_MAX_LENGTH and _UTA_USERNAME.fullmatch(value)
    ):
        out.append(Problem(field, f"must be 1-{UTA_USERNAME_MAX_LENGTH} lowercase English letters"))


def check_uta_note(out: Problems, field: str, value: object) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > UTA_NOTE_MAX_LENGTH):
        out.append(Problem(field, f"must be at most {UTA_NOTE_MAX_LENGTH} characters"))


def check_uta_key_note(out: Problems, field: str, value: object) -> None:
    if not isinstance(value, str) or not _UTA_KEY_NOTE.fullmatch(value):
        out.append(
            Problem(
                field,
                "must start with an English letter, then letters, digits, '-' or '_'",
            )
        )


def check_uta_key_type(out: Problems, field: str, value: object) -> None:
    # The enum keeps values it does not know (answers may carry new ones); a request
    # may only send the documented ones.
    if not isinstance(value, UTAKeyType) or not value.known:
        choices = ", ".join(sorted(UTAKeyType))
        out.append(Problem(field, f"{value!s} is not valid here; one of: {choices}"))


def subaccount_name_problem(value: object) -> str | None:
    """Why ``value`` can't be a virtual sub-account's name, or ``None`` when it can."""
    if not isinstance(value, str) or not _SUBACCOUNT_NAME.fullmatch(value):
        return f"must be exactly 8 English letters (got {value!r})"
    return None


def subaccount_name_key(name: str) -> str:
    """What makes two sub-account names the same one: Bitget ignores their case."""
    return name.lower()


def check_name(out: Problems, field: str, value: object) -> None:
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


def check_ip_list(out: Problems, field: str, values: tuple[str, ...] | None) -> None:
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


def check_permissions(
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


def check_perm_type(
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


def raise_if_any(subject: object, problems: Problems) -> None:
    if problems:
        raise ValidationError(tuple(problems), type(subject).__name__)


class Checked:
    """
    Base of the request models: building one checks every rule, and raises one
    `ValidationError` listing each broken rule with its field, so nothing invalid is
    ever sent.
    """

    __slots__ = ()

    def __attrs_post_init__(self) -> None:
        out: Problems = []
        self._check(out)
        raise_if_any(self, out)

    def _check(self, out: Problems) -> None:
        """Append a `Problem` to ``out`` for each broken rule."""
        raise NotImplementedError
