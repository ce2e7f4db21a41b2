"""
The steps of one key's rotation that make and prove the new key (see
`bitget_keys.lifecycle.rotation` for the whole machine): store its passphrase, create
it (settling a lost answer through the key list), verify it by signing with it, and
promote it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import attrs

from bitget_keys import models as m
from bitget_keys._gate import GateState
from bitget_keys._secret import Secret
from bitget_keys._signing import Credentials
from bitget_keys.errors import KeyNotVerifiedError
from bitget_keys.lifecycle.rotation import KEY_KIND, MAX_CREATES, PASSPHRASE_KIND, when
from bitget_keys.lifecycle.rotation_journal import Step
from bitget_keys.lifecycle.rotation_ops import rights_problem
from bitget_keys.lifecycle.rotation_revoke import RevokeSteps
from bitget_keys.provision.family import NewKey
from bitget_keys.provision.flows import generate_passphrase
from bitget_keys.provision.key_ops import verify_key
from bitget_keys.provision.outcomes import EXPECTED, NOT_SENT, ambiguous, refused
from bitget_keys.provision.retrying import describe_error
from bitget_keys.provision.vault_records import Stage

__all__ = ["KeyRotation"]


class KeyRotation(RevokeSteps):
    """One key's rotation, from wherever its journal row stands."""

    async def run(self) -> str:
        """Take the rotation as far as it can go now; return how it was left."""
        steps: dict[Step, Callable[[], Awaitable[bool]]] = {
            Step.PLANNED: self.store_passphrase,
            Step.PASSPHRASE_STORED: self.create,
            Step.CREATE_SENT: self.reconcile,
            Step.CREATED: self.verify,
            Step.VERIFIED: self.promote,
            Step.PROMOTED: self.retire,
            Step.REVOKE_MANUAL: self.check_manual,
        }
        while not self.row.step.finished:
            if not await steps[self.row.step]():
                break
        return self.outcome

    async def store_passphrase(self) -> bool:
        if self.passphrase is None:
            placeholder = self.record(
                self.row.passphrase_ref,
                kind=PASSPHRASE_KIND,
                passphrase=self.key.passphrase or generate_passphrase(),
                stage=Stage.PENDING,
            )
            if not self.ctx.persist(placeholder):
                return self.stop("failed", "the vault could not be written; nothing was sent")
        self.advance(Step.PASSPHRASE_STORED)
        self.event("passphrase stored")
        return True

    def sending(self) -> bool:
        return self.ctx.gate.state is GateState.OPEN

    async def create(self) -> bool:
        passphrase = self.passphrase
        if passphrase is None:  # pragma: no cover - stored by the step before
            return self.stop("failed", "the new key's passphrase is not in the vault")
        if not self.sending():
            return self.stop("stopped", f"not sent: {self.ctx.gate.reason}")
        if self.creates >= MAX_CREATES:
            detail = f"{self.creates} creates got no answer in this run; the next rotate goes on"
            return self.stop("failed", detail)
        self.creates += 1
        self.advance(Step.CREATE_SENT)
        self.event("creating", detail=f"replaces {self.row.old_api_key}")
        spec = attrs.evolve(self.key, label=self.row.live_label)
        try:
            with self.ctx.keys_of(self.row.subaccount_uid).creating():
                created = await self.ctx.api.create_key(self.row.subaccount_uid, spec, passphrase)
        except EXPECTED as exc:
            return await self.create_failed(exc)
        return self.created(created, passphrase)

    async def create_failed(self, exc: BaseException) -> bool:
        detail = describe_error(exc)
        if isinstance(exc, NOT_SENT):
            self.advance(Step.PASSPHRASE_STORED, detail=f"not sent: {detail}")
            self.event("stopped", detail=f"not sent: {detail}", outcome="failed")
            return False
        if ambiguous(exc):
            self.ctx.audit_record("rotate.create", self.row.target, "unknown", detail)
            self.event("create unknown", detail=f"{detail}; reading the key list")
            return await self.reconcile()
        if refused(exc):
            self.advance(Step.REFUSED, detail=detail)
            self.ctx.audit_record("rotate.create", self.row.target, "refused", detail)
            self.event("refused", detail=f"Bitget refused the create: {detail}", outcome="refused")
            return False
        # Throttled past its retries, or another answer that made nothing.
        self.advance(Step.PASSPHRASE_STORED, detail=detail)
        self.ctx.audit_record("rotate.create", self.row.target, "failed", detail)
        self.event("failed", detail=detail, outcome="failed")
        return False

    def created(self, created: NewKey, passphrase: Secret) -> bool:
        record = self.record(
            created.api_key,
            secret_key=created.secret_key,
            passphrase=passphrase,
            permissions=[str(p) for p in created.permissions],
            ip_list=created.ip_list,
            perm_type=created.perm_type,
            stage=Stage.PENDING,
        )
        durable = self.ctx.persist(record)
        self.advance(Step.CREATED, new_api_key=created.api_key)
        self.ctx.audit_record("rotate.create", self.row.target, "ok", created.api_key)
        self.event("created", created.api_key, "pending")
        if not durable:
            return self.stop("held", "its secret is held in memory: the vault could not be written")
        return True

    def is_own(self, live: m.VirtualSubaccountAPIKey) -> bool:
        """Whether ``live`` is the key this rotation stored (but did not journal) as made."""
        record = self.ctx.records.get(live.api_key)
        passphrase = self.passphrase
        return (
            record is not None
            and record.kind == KEY_KIND
            and record.stage is Stage.PENDING
            and record.held
            and passphrase is not None
            and record.passphrase == passphrase
        )

    async def reconcile(self) -> bool:
        """A create whose answer never came: find what it made, from the key list."""
        try:
            keys = await self.ctx.keys_of(self.row.subaccount_uid).read()
        except EXPECTED as exc:
            return self.stop("failed", f"the key list could not be read: {describe_error(exc)}")
        own = [key for key in keys if key.label == self.row.live_label and self.is_own(key)]
        if own:
            self.advance(Step.CREATED, new_api_key=own[0].api_key)
            self.event("created", own[0].api_key, "pending (found in the vault)")
            return True
        if not await self.revoke_strays(keys):
            return False
        self.advance(Step.PASSPHRASE_STORED)
        return True

    async def verify(self) -> bool:
        """
        The new key as the master lists it (rights, whitelist), then a request signed
        with it. The list comes first: the sub-account's other rotations, created at
        the same time, are checked by the same read.
        """
        new = self.row.new_api_key or ""
        record = self.ctx.records.get(new)
        if record is None or record.secret_key is None or record.passphrase is None:
            # The vault lost the new key's record (a torn last line repaired away, an older
            # copy restored): its secret is gone, as with a lost answer. Look for the key
            # again: it is revoked as a stray and made anew.
            self.advance(Step.CREATE_SENT, new_api_key=None)
            self.event("secret lost", new, "the vault holds no secret for it: made again")
            return True
        try:
            keys = await self.ctx.keys_of(self.row.subaccount_uid).read()
        except EXPECTED as exc:
            return self.stop("verify failed", f"the key list: {describe_error(exc)}")
        live = next((key for key in keys if key.api_key == new), None)
        if live is None:
            problem: str | None = "not in its sub-account's key list"
        else:
            problem = rights_problem(self.row.family, self.key, live)
        if problem is not None:
            self.ctx.audit_record("rotate.verify", self.row.target, "failed", problem)
            return self.stop("verify failed", f"{new} {problem}")
        credentials = Credentials(
            api_key=new,
            secret_key=record.secret_key,
            passphrase=record.passphrase,
            uid=self.row.subaccount_uid,
        )
        client = self.ctx.key_client(credentials)
        try:
            verified = await verify_key(
                client,
                self.row.family,
                self.row.subaccount_uid,
                patience=self.ctx.settings.verify_timeout,
            )
        except (KeyNotVerifiedError, *EXPECTED) as exc:
            self.ctx.audit_record("rotate.verify", self.row.target, "failed", describe_error(exc))
            return self.stop("verify failed", describe_error(exc))
        finally:
            await client.aclose()
        if not await self.revoke_strays(keys):
            return False
        self.seen = keys
        self.advance(Step.VERIFIED)
        note = "" if verified.usable_here else "whitelist excludes this host"
        self.ctx.audit_record("rotate.verify", self.row.target, "ok", note or new)
        self.event("verified", new, note)
        return True

    async def promote(self) -> bool:
        new, old = self.row.new_api_key or "", self.row.old_api_key
        self.ctx.persist(self.ctx.records[new].staged(Stage.CURRENT))
        previous = self.ctx.records.get(old) or self.record(old)
        self.ctx.persist(previous.staged(Stage.PREVIOUS))
        until = time.time() + self.row.grace
        self.advance(Step.PROMOTED, grace_until=until)
        detail = f"{new} current, {old} previous until {when(until)}"
        self.ctx.audit_record("rotate.promote", self.row.target, "ok", detail)
        self.event("promoted", new, f"{old} previous until {when(until)}")
        return True
