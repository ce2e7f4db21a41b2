"""
A saved plan (``plan --out FILE``): what was reviewed, so that ``apply FILE`` applies
exactly that, or refuses.

The file is one JSON object: ``format`` (`MAGIC`, by which apply tells it from a TOML
plan, whatever its name), ``version``, ``sha256`` and ``body``. The body holds the plan
file's text as it was read (credentials stay ``env:`` references, resolved again when
apply runs: a saved plan holds no secret), the Bitget root it was read against, the
live state each account was compared with (sub-accounts, keys by label with their
permissions and whitelists, broker keys' settings) and the changes computed from it.
``sha256`` is the digest of the body's canonical JSON: a damaged or edited file is
refused. It is a check against damage, not a signature: whoever can write the file can
write a matching digest, so keep it where only its owner can (it is written 0600).

`stale` compares the saved live state with what apply reads again, naming everything
that moved; apply runs only when nothing did and the changes it computes are the saved
ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from bitget_keys import models as m
from bitget_keys.errors import PlanError, Problem
from bitget_keys.provision.diff import LiveState
from bitget_keys.provision.plan import Plan, parse_plan
from bitget_keys.provision.plan_changes import AccountChanges, Summary
from bitget_keys.provision.plan_lines import locate

__all__ = [
    "MAGIC",
    "SavedPlan",
    "changes_json",
    "is_saved_plan",
    "read_saved_plan",
    "snapshot",
    "stale",
    "write_saved_plan",
]

#: The ``format`` of a saved plan's JSON object.
MAGIC: Final = "bitget-keys saved plan"
VERSION: Final = 1


def _subaccount(sub: m.VirtualSubaccount) -> dict[str, Any]:
    status = None if sub.status is None else str(sub.status)
    return {
        "uid": sub.subaccount_uid,
        "name": sub.subaccount_name,
        "label": sub.label,
        "status": status,
    }


def _key(key: m.VirtualSubaccountAPIKey | m.BrokerSubaccountAPIKey) -> dict[str, Any]:
    found: dict[str, Any] = {
        "api_key": key.api_key,
        "label": key.label,
        "permissions": sorted(str(p) for p in key.permissions),
        "ip_list": sorted(key.ip_list),
    }
    if isinstance(key, m.BrokerSubaccountAPIKey):
        found["perm_type"] = None if key.perm_type is None else str(key.perm_type)
    return found


def _keys(
    by_uid: Mapping[str, Iterable[m.VirtualSubaccountAPIKey | m.BrokerSubaccountAPIKey]],
) -> dict[str, list[dict[str, Any]]]:
    return {
        uid: sorted((_key(key) for key in keys), key=lambda key: key["api_key"])
        for uid, keys in sorted(by_uid.items())
    }


def snapshot(family: str | None, live: LiveState, master_uid: str = "") -> dict[str, Any]:
    """
    What apply's decisions rest on, as JSON: the master (its UID, so that a saved plan
    never goes to another master whose credentials the plan's ``env:`` names now give),
    the family and live state (no times).
    """
    return {
        "master_uid": master_uid,
        "family": family,
        "subaccounts": sorted(
            (_subaccount(sub) for sub in live.subaccounts), key=lambda sub: sub["uid"]
        ),
        "keys": _keys(live.keys),
        "broker_keys": _keys(live.broker_keys),
    }


def changes_json(accounts: Iterable[AccountChanges]) -> list[dict[str, Any]]:
    return [change.to_json() for account in accounts for change in account.changes]


def _digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@attrs.frozen(kw_only=True)
class SavedPlan:
    """A saved plan as read back, its digest checked."""

    path: str
    #: The plan file's text, as it was reviewed.
    plan_text: str
    #: Where the plan file was read from (to name it in messages).
    source: str
    base_url: str | None
    created: str
    #: Each account's `snapshot`, by account name.
    live: Mapping[str, Any]
    changes: Sequence[Mapping[str, Any]]

    def plan(self, environ: Mapping[str, str] | None = None) -> Plan:
        """The saved plan text, checked and with its credentials resolved now."""
        data = tomllib.loads(self.plan_text)
        try:
            plan = parse_plan(data, environ=environ, source=self.source)
        except PlanError as exc:
            raise PlanError(locate(exc.problems, self.plan_text), self.source) from None
        return attrs.evolve(plan, source=None)


def write_saved_plan(
    path: str | os.PathLike[str],
    *,
    plan_text: str,
    source: str,
    base_url: str | None,
    live: Mapping[str, Any],
    accounts: Sequence[AccountChanges],
    summary: Summary,
) -> None:
    """
    Write the saved plan whole: a temporary file (0600) beside ``path``, fsynced, then
    renamed over it, so that a reader sees either no file or all of it.
    """
    body = {
        "plan": {"source": source, "text": plan_text},
        "base_url": base_url,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "live": dict(live),
        "changes": changes_json(accounts),
        "notices": [notice.to_json() for account in accounts for notice in account.notices],
        "summary": summary.to_json(),
    }
    document = {"format": MAGIC, "version": VERSION, "sha256": _digest(body), "body": body}
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        # mkstemp creates the file 0600: readable by its owner only, as the vault is.
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def is_saved_plan(path: str | os.PathLike[str]) -> bool:
    """
    Whether ``path`` holds a saved plan rather than a TOML plan, by its content: a TOML
    document never begins with ``{``, a saved plan always does.
    """
    try:
        with Path(path).open("rb") as file:
            head = file.read(64)
    except OSError:
        return False  # the plan loader names the problem
    return head.lstrip().startswith(b"{")


def _damaged(path: str, why: str) -> PlanError:
    rule = f"damaged saved plan ({why}); save it again with `bitget-keys plan --out`"
    return PlanError((Problem(path, rule),), path)


def read_saved_plan(path: str | os.PathLike[str]) -> SavedPlan:
    """
    Read a saved plan and check its digest.

    Raises:
        PlanError: it can't be read, is not a saved plan of this version, or its
            digest does not match its content.
    """
    where = str(path)
    try:
        document = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise PlanError((Problem(where, f"cannot read: {exc.strerror}"),), where) from exc
    except orjson.JSONDecodeError as exc:
        raise _damaged(where, f"not valid JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != MAGIC:
        raise _damaged(where, "not a bitget-keys saved plan")
    if document.get("version") != VERSION:
        raise _damaged(
            where, f"version {document.get('version')!r}; this bitget-keys reads {VERSION}"
        )
    body = document.get("body")
    if not isinstance(body, dict) or document.get("sha256") != _digest(body):
        raise _damaged(where, "its sha256 does not match its content")
    try:
        return SavedPlan(
            path=where,
            plan_text=body["plan"]["text"],
            source=body["plan"]["source"],
            base_url=body["base_url"],
            created=body["created"],
            live=body["live"],
            changes=body["changes"],
        )
    except (KeyError, TypeError) as exc:
        raise _damaged(where, f"missing {exc}") from None


def _by(rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, Mapping[str, Any]]:
    return {row[key]: row for row in rows}


def _moved_rows(
    what: str, old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """What appeared, went or changed among rows by their identity (a UID, an API key)."""
    moved = []
    for ident in sorted(old.keys() | new.keys()):
        row = new.get(ident) or old[ident]
        name = f"{what} {row.get('label', '')!r} ({ident})"
        if ident not in new:
            moved.append(f"{name} is gone")
        elif ident not in old:
            moved.append(f"{name} appeared")
        elif old[ident] != new[ident]:
            fields = old[ident].keys() | new[ident].keys()
            differ = sorted(f for f in fields if old[ident].get(f) != new[ident].get(f))
            moved.append(f"{name} changed: {', '.join(differ)}")
    return moved


def _moved_account(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    moved = []
    if old.get("master_uid") != new["master_uid"]:
        was = old.get("master_uid") or "not recorded"
        moved.append(f"its credentials are now of master UID {new['master_uid']} (was {was})")
    if old["family"] != new["family"]:
        moved.append(f"its master is served by {new['family']} (was {old['family']})")
    moved += _moved_rows(
        "sub-account", _by(old["subaccounts"], "uid"), _by(new["subaccounts"], "uid")
    )
    for group, what in (("keys", "key"), ("broker_keys", "broker key")):
        for uid in sorted(old[group].keys() | new[group].keys()):
            moved += _moved_rows(
                f"{what} of {uid}",
                _by(old[group].get(uid, ()), "api_key"),
                _by(new[group].get(uid, ()), "api_key"),
            )
    return moved


def stale(
    saved: SavedPlan, live: Mapping[str, Any], changes: Sequence[Mapping[str, Any]]
) -> list[str]:
    """
    Everything that moved since ``saved`` was made: each account's live state as read
    now (`snapshot`, by account name) against the saved one, and the changes apply would
    make now against the saved ones. Empty: apply may run.
    """
    moved: list[str] = []
    for account, now in live.items():
        before = saved.live.get(account)
        if before is None:
            moved.append(f"{account}: not in the saved plan")
            continue
        moved += [f"{account}: {line}" for line in _moved_account(before, now)]
    wanted = [change for change in saved.changes if change["account"] in live]
    if not moved and list(changes) != wanted:
        moved.append(
            "the changes apply would make now differ from the saved ones (the vault holds "
            "other copy keys than when the plan was saved?)"
        )
    return moved
