"""
The end of a rotation: revoking the old key after the grace, and revoking the keys a
lost create answer left behind (found in the key list, their secrets never received).

A unified key is deleted; a classic one is neutralised, which needs its passphrase
(the vault's record of it, or for a lost answer's key, the rotation's stored one). A
revoke whose answer was lost is settled by reading the key list before trying again:
a key gone (or already neutralised) is revoked.
"""

from __future__ import annotations

import time

from bitget_keys import models as m
from bitget_keys.errors import PassphraseNotHeldError
from bitget_keys.lifecycle.rotation import RotationBase, when
from bitget_keys.lifecycle.rotation_journal import Step
from bitget_keys.provision.key_ops import RevokeHow, is_neutralised, revoke_key
from bitget_keys.provision.outcomes import EXPECTED, NOT_SENT
from bitget_keys.provision.retrying import describe_error
from bitget_keys.provision.vault_records import Stage

__all__ = ["RevokeSteps"]


class RevokeSteps(RotationBase):
    """The steps that revoke: the old key after the grace, and orphans of lost answers."""

    def strays(
        self, keys: tuple[m.VirtualSubaccountAPIKey, ...]
    ) -> list[m.VirtualSubaccountAPIKey]:
        """
        Live keys with this label the vault does not know: made by a create whose answer
        was lost (one already neutralised is one whose revoke's answer was lost).
        """
        known = {self.row.old_api_key, self.row.new_api_key}
        return [
            key
            for key in keys
            if key.label == self.row.live_label
            and key.api_key not in known
            and key.api_key not in self.ctx.records
        ]

    async def revoke_strays(self, keys: tuple[m.VirtualSubaccountAPIKey, ...]) -> bool:
        """Revoke every key a lost answer made (its secret is gone); ``False``: one failed."""
        for stray in self.strays(keys):
            try:
                how = (
                    RevokeHow.NEUTRALISED
                    if is_neutralised(stray)
                    else await revoke_key(self.ctx.api, stray, self.passphrase)
                )
            except EXPECTED as exc:
                detail = f"orphan {stray.api_key} of a lost answer not revoked yet: "
                detail += describe_error(exc)
                self.ctx.audit_record("rotate.create", self.row.target, "failed", detail)
                return self.stop("failed", detail + "; the next rotate tries again")
            self.ctx.persist(
                self.record(
                    stray.api_key,
                    passphrase=self.passphrase,
                    stage=Stage.REVOKED,
                    revoked_how=str(how),
                )
            )
            self.advance(self.row.step, orphans=(*self.row.orphans, stray.api_key))
            detail = f"orphan of a lost create answer (secret never received) {how}"
            self.ctx.audit_record(
                "rotate.create", self.row.target, "unknown", f"{stray.api_key} {detail}"
            )
            self.event("orphan revoked", stray.api_key, detail)
        return True

    async def retire(self) -> bool:
        """After the grace: revoke the old key (retried, then left outstanding)."""
        until = self.row.grace_until or 0.0
        old = self.row.old_api_key
        if until > time.time():
            later = f"{old} is revoked by `rotate --finish` after {when(until)}"
            if not self.waits:
                self.event("waiting", detail=later, outcome="waiting")
                return False
            self.event("waiting", old, f"revoked at {when(until)}, after the grace")
            if not await self.ctx.wait_until(until):
                self.event("interrupted", detail=f"journaled: {later}", outcome="waiting")
                return False
        settings = self.ctx.settings
        pause = settings.revoke_backoff
        failure = ""
        for attempt in range(settings.revoke_attempts):
            if attempt:
                await self.ctx.sleep(pause)
                pause *= 2
            try:
                how = await self.revoke_old()
            except PassphraseNotHeldError as exc:
                self.advance(Step.REVOKE_MANUAL, detail=str(exc))
                self.ctx.audit_record("rotate.revoke", self.row.target, "failed", str(exc))
                self.event("revoke manually", self.row.old_api_key, str(exc), outcome="manual")
                return False
            except NOT_SENT as exc:
                detail = f"journaled: {old} is revoked by the next rotate ({describe_error(exc)})"
                self.event("stopped", detail=detail, outcome="outstanding")
                return False
            except EXPECTED as exc:
                failure = describe_error(exc)
                continue
            if how is not None:
                self.revoked(how)
            return True
        detail = f"revoke outstanding: {failure}; every later rotate tries it again"
        self.ctx.audit_record("rotate.revoke", self.row.target, "failed", failure)
        return self.stop("revoke failed", detail, outcome="outstanding")

    async def revoke_old(self) -> str | None:
        """Revoke the old key unless it is already (deleted or neutralised)."""
        keys = self.seen
        self.seen = None
        if keys is None:
            keys = await self.ctx.keys_of(self.row.subaccount_uid).read()
        live = next((key for key in keys if key.api_key == self.row.old_api_key), None)
        if live is None:
            return "deleted"
        if self.row.family == "v2" and is_neutralised(live):
            return "neutralised"
        record = self.ctx.records.get(live.api_key)
        self.event("revoking", live.api_key)
        return await revoke_key(self.ctx.api, live, None if record is None else record.passphrase)

    def revoked(self, how: str) -> None:
        old = self.row.old_api_key
        previous = self.ctx.records.get(old) or self.record(old)
        self.ctx.persist(previous.staged(Stage.REVOKED, revoked_how=how))
        self.advance(Step.DONE, detail=how)
        self.ctx.audit_record("rotate.revoke", self.row.target, "ok", f"{old} {how}")
        self.event("revoked", old, how, outcome="done")

    async def check_manual(self) -> bool:
        """An old key only the web UI can revoke: done once it is seen gone or stripped."""
        try:
            keys = await self.ctx.keys_of(self.row.subaccount_uid).read()
        except EXPECTED as exc:
            return self.stop("failed", f"the key list could not be read: {describe_error(exc)}")
        live = next((key for key in keys if key.api_key == self.row.old_api_key), None)
        if live is None or not live.permissions:
            self.revoked("deleted" if live is None else "neutralised")
            return True
        detail = "still live: its passphrase is not held, revoke it in Bitget's web UI"
        self.event("revoke manually", live.api_key, detail, outcome="manual")
        return False
