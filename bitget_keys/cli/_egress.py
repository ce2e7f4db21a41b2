"""
``apply``'s egresses: which public IP (and so which per-IP budget) each master's requests
leave from, and the scheduler that keeps that budget.

Bitget counts 6,000 requests per IP per minute. One egress (the host's own address) is
what every apply had so far. ``--egress NAME=PROXY_URL``, given once per proxy, spreads
the plan's masters over several: round-robin in plan order, so the same plan always sends
a master through the same proxy; each egress has its own scheduler, so each keeps its own
IP budget, and its own clients, which send through its proxy. Every per-UID lane of a
master lives in its egress's scheduler, which is exact because a master is never split
over two egresses: plan accounts of one master UID share one. ``--egress NAME`` alone
keeps its older meaning: the name of this host's IP budget shared through ``--redis``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import attrs

from bitget_keys._transport import masked_proxy
from bitget_keys.errors import ConfigurationError
from bitget_keys.limits import DEFAULT_IP_BUDGET, IPBudget, IPPolicy, RateLimitScheduler
from bitget_keys.provision.plan import Plan
from bitget_keys.redis_limits import RedisRateLimitScheduler

__all__ = ["Egress", "assign_egresses", "build_egresses", "ip_budget"]

#: The names an egress may have (those the Redis scheduler accepts in its keys).
_NAME: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@attrs.frozen
class Egress:
    """One way out: its name, its proxy (``None``: this host's own address), its pacing."""

    name: str
    proxy: str | None = attrs.field(repr=lambda url: "None" if url is None else masked_proxy(url))
    #: ``None``: the clients' default shared scheduler (nothing about the IP budget asked).
    scheduler: RateLimitScheduler | RedisRateLimitScheduler | None = attrs.field(repr=False)

    async def aclose(self) -> None:
        if isinstance(self.scheduler, RedisRateLimitScheduler):
            await self.scheduler.aclose()


def ip_budget(policy: str | None, share: float | None) -> IPBudget | None:
    """The per-IP budget ``--ip-policy``/``--ip-share`` ask for; ``None`` when neither is given."""
    if policy is None and share is None:
        return None
    budget = DEFAULT_IP_BUDGET
    if policy is not None:
        budget = attrs.evolve(budget, policy=IPPolicy(policy))
    if share is not None:
        budget = attrs.evolve(budget, share=share)
    return budget


def build_egresses(
    entries: Sequence[tuple[str, str | None]] | None,
    *,
    redis: str | None,
    budget: IPBudget | None,
    default_name: str | None = None,
) -> list[Egress]:
    """
    The egresses of ``apply --egress`` entries, each with its scheduler.

    Without entries, or with one bare ``NAME``: one egress through this host's address;
    its scheduler shares limits through ``redis`` under that name (else ``default_name``,
    else ``"default"``), or is an in-memory one when only the IP budget was asked for.
    With ``NAME=PROXY_URL`` entries: one egress per proxy, each with its own scheduler
    (through ``redis`` under its name, when given).
    """
    entries = list(entries or [])
    bare = [name for name, url in entries if url is None]
    names = [name for name, _ in entries]
    if bare and len(bare) != len(entries):
        msg = (
            "--egress takes either NAME=PROXY_URL entries (one per proxy) or one NAME "
            "(this host's IP budget shared through --redis), not both"
        )
        raise ConfigurationError(msg)
    if len(bare) > 1:
        msg = "give --egress NAME once: it names the one IP this host's requests leave from"
        raise ConfigurationError(msg)
    bad = [name for name, url in entries if url is not None and not _NAME.fullmatch(name)]
    if bad:
        msg = f"egress must be named by up to 64 letters, digits and . _ : - (got {bad[0]!r})"
        raise ConfigurationError(msg)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        msg = f"each --egress needs its own name; repeated: {', '.join(duplicated)}"
        raise ConfigurationError(msg)
    if not entries or bare:
        if redis is None:
            if bare:
                msg = "--egress names an IP budget shared through Redis: give --redis as well"
                raise ConfigurationError(msg)
            scheduler = None if budget is None else RateLimitScheduler(ip_budget=budget)
            return [Egress("default", None, scheduler)]
        name = bare[0] if bare else default_name or "default"
        return [Egress(name, None, _scheduler(redis, name, budget))]
    return [Egress(name, url, _scheduler(redis, name, budget)) for name, url in entries]


def _scheduler(
    redis: str | None, name: str, budget: IPBudget | None
) -> RateLimitScheduler | RedisRateLimitScheduler:
    """An egress's own scheduler: through Redis under its name, or in memory."""
    if budget is None:  # the schedulers' own default budget
        if redis is not None:
            return RedisRateLimitScheduler(redis, egress=name)
        return RateLimitScheduler()
    if redis is not None:
        return RedisRateLimitScheduler(redis, egress=name, ip_budget=budget)
    return RateLimitScheduler(ip_budget=budget)


def assign_egresses(plan: Plan, egresses: Sequence[Egress]) -> dict[str, Egress]:
    """
    Each account's egress, by account name: round-robin over ``egresses`` in plan order,
    by master. Accounts of one master UID share an egress (and so one scheduler, which
    keeps the UID's limits whole); a master whose credentials give no UID is told apart
    by its API key.
    """
    by_master: dict[str, Egress] = {}
    assigned = {}
    for account in plan.accounts:
        master = account.credentials.uid or f"key:{account.credentials.api_key}"
        if master not in by_master:
            by_master[master] = egresses[len(by_master) % len(egresses)]
        assigned[account.name] = by_master[master]
    return assigned
