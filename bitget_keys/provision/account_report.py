"""
What one account's apply run says about its items, and what it writes down for them.

Every planned item is reported exactly once per run (a conflict at most once, however
many rounds see it). The journal's intent and outcome for a create, and the vault
record of its secret, go through the run's `Ledger`; the final report settles what no
create reported: unchanged, orphan (a live key whose secret is not in the vault), or
still missing. A modify, freeze or revoke that failed is reported there too, with its
last error, unless a later round carried it out: it is tried again while rounds remain.
Items the plan marks absent have no result of their own: their revokes do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import attrs

from bitget_keys._gate import DispatchGate, GateState
from bitget_keys.errors import DispatchStoppedError
from bitget_keys.provision.diff import AccountDiff, DriftContext, LiveState, diff_account
from bitget_keys.provision.journal import Outcome
from bitget_keys.provision.key_ops import is_neutralised
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.outcomes import (
    NOT_SENT,
    ambiguous,
    not_sent_detail,
    refused,
    stop_on_backend_failure,
)
from bitget_keys.provision.plan import AccountSpec, State, SubaccountSpec
from bitget_keys.provision.results import ItemKey, ItemKind, ItemResult, OnResult, Status
from bitget_keys.provision.revoke_flows import change_items
from bitget_keys.provision.vault import VaultRecord

__all__ = ["AccountReport"]

_log: Final = logging.getLogger("bitget_keys.apply")


@attrs.frozen(kw_only=True)
class _Failure:
    """A modify, freeze or revoke's last failure, reported at the end unless carried out."""

    status: Status
    #: What to report when a later read shows it carried out after all.
    done: Status
    api_key: str | None
    detail: str
    error: BaseException | None = attrs.field(eq=False)


class AccountReport:
    """The results of one account's items, and their journal and vault writes."""

    def __init__(
        self, account: AccountSpec, ledger: Ledger, gate: DispatchGate, on_result: OnResult
    ) -> None:
        self.account = account
        self.ledger = ledger
        self.journal = ledger.journal
        self.gate = gate
        self.on_result = on_result
        self.reported: set[ItemKey] = set()
        #: Creates Bitget refused for good (see `refused`): not sent again this run.
        self.refused: set[ItemKey] = set()
        #: Modifies, freezes and revokes carried out: not sent again this run, even if a
        #: later read still shows a difference (the next plan shows it).
        self.carried_out: set[ItemKey] = set()
        #: Modifies, freezes and revokes whose last attempt failed (see `change_failed`).
        self.failed_changes: dict[ItemKey, _Failure] = {}

    @property
    def sending(self) -> bool:
        """Whether new creates may still go out."""
        return self.gate.state is GateState.OPEN

    def report(
        self,
        item: ItemKey,
        status: Status,
        *,
        api_key: str | None = None,
        detail: str = "",
        error: BaseException | None = None,
    ) -> None:
        self.reported.add(item)
        result = ItemResult(
            account=self.account.name,
            kind=item.kind.value,
            target=item.target,
            status=status,
            api_key=api_key,
            detail=detail,
            subaccount=item.subaccount,
            key=item.key,
            error=error,
        )
        _log.info("%s %s %s: %s", result.account, item.kind, item.target, status.value)
        self.on_result(result)

    def stopped(self, item: ItemKey) -> None:
        """Report an item that was not sent because the run is stopping."""
        self.report(item, Status.STOPPED, detail=f"not sent: {self.gate.reason}")

    def begin(self, item: ItemKey) -> int:
        """Journal the intent to create ``item``, before its request is sent."""
        return self.journal.begin(self.account.name, item.kind.value, item.journal_target())

    def created(self, entry: int, item: ItemKey, api_key: str, detail: str = "") -> None:
        """Journal and report a create whose answer (and secret) arrived."""
        self.journal.settle(entry, Outcome.DONE, api_key=api_key)
        self.report(item, Status.CREATED, api_key=api_key, detail=detail)

    def create_failed(self, entry: int, item: ItemKey, exc: BaseException) -> None:
        """
        Settle and report a create that failed: unknown if it may have taken effect.

        The caller marks what an unknown outcome may have changed as stale.
        """
        detail = not_sent_detail(exc)
        stop_on_backend_failure(self.gate, exc)
        if isinstance(exc, NOT_SENT):
            self.journal.settle(entry, Outcome.FAILED, detail=detail)
            status = Status.STOPPED if isinstance(exc, DispatchStoppedError) else Status.FAILED
            self.report(item, status, detail=detail, error=exc)
            return
        if refused(exc):
            self.refused.add(item)
        unknown = ambiguous(exc)
        self.journal.settle(entry, Outcome.UNKNOWN if unknown else Outcome.FAILED, detail=detail)
        self.report(item, Status.UNKNOWN if unknown else Status.FAILED, detail=detail, error=exc)

    def change_failed(
        self,
        item: ItemKey,
        status: Status,
        *,
        done: Status,
        api_key: str | None,
        detail: str,
        error: BaseException | None = None,
    ) -> None:
        """
        Remember a modify, freeze or revoke that failed: the next round tries it again
        (unless refused for good), and `final` reports the last failure of each one
        that never succeeded.
        """
        _log.info("%s %s: %s (%s)", self.account.name, item.target, status.value, detail)
        self.failed_changes[item] = _Failure(
            status=status, done=done, api_key=api_key, detail=detail, error=error
        )

    def _report_failures(self, pending: Callable[[ItemKey], bool]) -> None:
        """Report the last failure of each modify, freeze or revoke ``pending`` holds."""
        for item, failure in self.failed_changes.items():
            if item not in self.reported and pending(item):
                self.report(
                    item,
                    failure.status,
                    api_key=failure.api_key,
                    detail=failure.detail,
                    error=failure.error,
                )

    def _final_changes(self, diff: AccountDiff) -> None:
        """Report the modifies, freezes and revokes that ended without success."""
        pending = set(change_items(diff))
        self._report_failures(pending.__contains__)
        for item, failure in self.failed_changes.items():
            if item not in self.reported:
                # Its answer was lost (or came as an error) but a later read shows it done.
                self.report(item, failure.done, api_key=failure.api_key, detail="as read again")
        for item in sorted(pending - self.reported, key=lambda item: item.journal_target()):
            self.still_missing(item, "still differs from the plan after apply")

    def persist(self, record: VaultRecord) -> str:
        """
        Store a secret before anything else happens to its item.

        When the vault cannot be written the ledger holds it in memory (and the run
        stops sending); the returned detail says so, for the item's result.
        """
        if self.ledger.persist(record):
            return ""
        return "secret held in memory: the vault could not be written"

    def the_rest(self) -> None:
        """
        After an abort, with no read to tell: every item not reported yet is stopped.

        Those were never sent (a create on the wire has been reported unknown), but
        whether they already existed was not read again either. A modify, freeze or
        revoke that failed is reported with its last failure.
        """
        self._report_failures(lambda _item: True)
        detail = f"not checked: {self.gate.reason}"
        items = [ItemKey(ItemKind.COPY_KEY, key="copy")] if self.account.copy_api_key else []
        for sub in self.account.subaccounts:
            items.append(ItemKey(ItemKind.SUBACCOUNT, sub.label))
            items.extend(
                ItemKey(ItemKind.KEY, sub.label, key.label)
                for key in sub.keys
                if key.state is State.PRESENT and sub.state is State.PRESENT
            )
        items.extend(
            ItemKey(ItemKind.BROKER_KEY, spec.sub_uid, spec.api_key)
            for spec in self.account.broker_keys
        )
        for item in items:
            if item not in self.reported:
                self.report(item, Status.STOPPED, detail=detail)

    @staticmethod
    def orphan_detail(family: str) -> str:
        """What an orphan key is, and what can be done about it (v3 can delete a key)."""
        detail = "exists on Bitget but its secret never reached the vault"
        if family == "v3":
            detail += (
                "; delete it (Client.delete_uta_subaccount_api_key) and apply again to make "
                "a new one"
            )
        return detail

    def still_missing(self, item: ItemKey, detail: str = "still missing after apply") -> None:
        """A planned item that does not exist (or is not as planned) at the end of the run."""
        if not self.sending:
            self.stopped(item)
        else:
            self.report(item, Status.FAILED, detail=detail)

    def final(self, live: LiveState, family: str, context: DriftContext | None = None) -> None:
        """
        Settle every planned item not yet reported: unchanged, orphan, or still missing,
        and each modify, freeze or revoke that failed (see `change_failed`); ``family``
        (``v2``/``v3``) served the master, ``context`` is the run's `DriftContext`.
        """
        diff = diff_account(self.account, live, context)
        self._final_changes(diff)
        conflicted = {conflict.label for conflict in diff.conflicts}
        for sub in self.account.subaccounts:
            # A conflict was reported; its keys are not this plan's to judge.
            if sub.label not in conflicted:
                self._final_subaccount(sub, diff, live, family)
        changed = {spec.api_key for spec in diff.broker_changes}
        for spec in self.account.broker_keys:
            item = ItemKey(ItemKind.BROKER_KEY, spec.sub_uid, spec.api_key)
            if item in self.reported:
                continue
            if spec.api_key in changed:
                self.still_missing(item)
            else:
                detail = "absent" if spec.state is State.ABSENT else ""
                self.report(item, Status.UNCHANGED, api_key=spec.api_key, detail=detail)

    def _final_subaccount(
        self, sub: SubaccountSpec, diff: AccountDiff, live: LiveState, family: str
    ) -> None:
        sub_item = ItemKey(ItemKind.SUBACCOUNT, sub.label)
        if sub.state is State.ABSENT:
            # Its keys' revokes and its freeze are the results; nothing left to do is fine.
            if sub_item not in self.reported:
                self.report(sub_item, Status.UNCHANGED, detail="absent")
            return
        missing_sub = any(new.label == sub.label for new in diff.new_subaccounts)
        missing_keys = {k.key.label for k in diff.new_keys if k.subaccount.label == sub.label}
        uid = diff.matched.get(sub.label)
        keys = live.keys.get(uid, ()) if uid else ()
        live_keys = {key.label: key for key in keys if not is_neutralised(key)}
        if sub_item not in self.reported:
            if missing_sub:
                self.still_missing(sub_item)
            else:
                self.report(sub_item, Status.UNCHANGED)
        for index, key in enumerate(sub.keys):
            if key.state is State.ABSENT:
                continue  # its revokes are its results
            item = ItemKey(ItemKind.KEY, sub.label, key.label)
            found = live_keys.get(key.label) or (live_keys.get(sub.label) if index == 0 else None)
            if found is not None and found.api_key not in self.ledger.vault_keys:
                self.report(
                    item,
                    Status.ORPHAN,
                    api_key=found.api_key,
                    detail=self.orphan_detail(family),
                )
            elif item in self.reported:
                continue
            elif missing_sub or key.label in missing_keys:
                self.still_missing(item)
            else:
                api_key = found.api_key if found is not None else None
                self.report(item, Status.UNCHANGED, api_key=api_key)
