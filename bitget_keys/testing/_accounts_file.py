"""
The accounts file of ``bitget-keys emulator --accounts``: master accounts to serve, in TOML.

Every problem is a `ConfigurationError` naming the file and the field, never a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from bitget_keys.errors import (
    ConfigurationError,
)
from bitget_keys.testing._accounts import EmulatorAccount

_ACCOUNT_KEYS = frozenset(
    {
        "uid",
        "api_key",
        "secret_key",
        "passphrase",
        "broker",
        "copy_trader",
        "unified",
        "mode",
        "ip_list",
        "broker_subaccounts",
    }
)


_BROKER_SUBACCOUNT_KEYS = frozenset(
    {
        "sub_uid",
        "api_key",
        "secret_key",
        "passphrase",
        "label",
        "permissions",
        "ip_list",
        "perm_type",
    }
)


# What each setting of the accounts file must be; the rest of a row is checked by
# `EmulatorAccount` itself. A UID may be written as a TOML integer too.
_ACCOUNT_TYPES: dict[str, tuple[type, ...]] = {
    "uid": (str, int),
    "api_key": (str,),
    "secret_key": (str,),
    "passphrase": (str,),
    "broker": (bool,),
    "copy_trader": (str,),
    "unified": (bool,),
    "mode": (str,),
    "ip_list": (list,),
    "broker_subaccounts": (list,),
    "sub_uid": (str, int),
    "label": (str,),
    "permissions": (list,),
    "perm_type": (str,),
}


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}


_REQUIRED_ACCOUNT_KEYS = ("uid", "api_key", "secret_key", "passphrase")


_REQUIRED_BROKER_KEYS = ("sub_uid", "api_key", "passphrase")


def _check_row(
    path: Path, where: str, row: object, known: frozenset[str], required: tuple[str, ...]
) -> dict[str, Any]:
    """One table of the accounts file, with known keys of the right types."""
    if not isinstance(row, dict):
        msg = f"{path}: {where} must be a table"
        raise ConfigurationError(msg)
    unknown = sorted(set(row) - known)
    if unknown:
        msg = f"{path}: {where} has unknown keys: {', '.join(unknown)}"
        raise ConfigurationError(msg)
    missing = [key for key in required if key not in row]
    if missing:
        msg = f"{path}: {where} lacks {', '.join(missing)}"
        raise ConfigurationError(msg)
    for key, value in row.items():
        types = _ACCOUNT_TYPES[key]
        # bool is an int to Python, never a UID.
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong:
            allowed = " or ".join(_TYPE_NAMES[kind] for kind in types)
            msg = f"{path}: {where}.{key} must be {allowed}, not {type(value).__name__}"
            raise ConfigurationError(msg)
        if key in {"ip_list", "permissions"} and not all(isinstance(v, str) for v in value):
            msg = f"{path}: {where}.{key} must be a list of strings"
            raise ConfigurationError(msg)
    return row


def load_accounts_file(path: Path) -> tuple[list[EmulatorAccount], dict[str, list[dict[str, Any]]]]:
    """
    The master accounts of an accounts file, and each one's broker sub-account rows.

    Raises:
        ConfigurationError: the file can't be read, or breaks a rule (named with its field).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"{path}: cannot read the accounts file ({exc})"
        raise ConfigurationError(msg) from exc
    except UnicodeDecodeError as exc:
        msg = f"{path}: cannot read the accounts file (not UTF-8 text: byte {exc.start})"
        raise ConfigurationError(msg) from exc
    rows = data.get("accounts", [])
    if not isinstance(rows, list):
        msg = f"{path}: accounts must be an array of tables ([[accounts]])"
        raise ConfigurationError(msg)
    accounts, seeds = [], {}
    for index, entry in enumerate(rows):
        where = f"accounts[{index}]"
        row = _check_row(path, where, entry, _ACCOUNT_KEYS, _REQUIRED_ACCOUNT_KEYS)
        subs = row.get("broker_subaccounts", [])
        seeds[str(row["uid"])] = [
            _check_row(
                path,
                f"{where}.broker_subaccounts[{sub_index}]",
                sub,
                _BROKER_SUBACCOUNT_KEYS,
                _REQUIRED_BROKER_KEYS,
            )
            for sub_index, sub in enumerate(subs)
        ]
        try:
            accounts.append(
                EmulatorAccount(
                    uid=str(row["uid"]),
                    api_key=row["api_key"],
                    secret_key=row["secret_key"],
                    passphrase=row["passphrase"],
                    broker=row.get("broker", False),
                    copy_trader=row.get("copy_trader"),
                    unified=row.get("unified"),
                    mode=row.get("mode", "unified" if row.get("unified") else "classic"),
                    ip_list=row.get("ip_list", ()),
                )
            )
        except (TypeError, ValueError) as exc:
            msg = f"{path}: {where}: {exc}"
            raise ConfigurationError(msg) from exc
    if not accounts:
        msg = f"{path}: no [[accounts]]"
        raise ConfigurationError(msg)
    return accounts, seeds
