"""
``apply``'s egresses: which public IP (and so which per-IP budget) each master's requests
leave from, and the scheduler that keeps that budget.

Bitget counts 6,000 requests per IP per minute. One egress (the host's own address) is
what every apply had so far. ``--egress NAME=PROXY_URL``, given once per proxy, spreads
the plan's masters over several: round-robin in plan order, so the same plan always sends
a master through the same proxy; each egress has its own scheduler, so each keeps its own
IP budget, and its own clients, which send through its proxy. A plan account may name
its master's egress (``egress = "NAME"``), which then takes no part in the round-robin.
Every per-UID lane of a master lives in its egress's scheduler, which is exact because a
master is never split over two egresses: plan accounts of one master UID share one.
``--egress NAME`` alone keeps its older meaning: the name of this host's IP budget shared
through ``--redis``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from bitget_keys._transport import masked_proxy
from bitget_keys.errors import ConfigurationError
from bitget_keys.limits import DEFAULT_IP_BUDGET, IPBudget, IPPolicy, RateLimitScheduler
from bitget_keys.provision.plan import EGRESS_NAME, Plan
from bitget_keys.redis_limits import RedisRateLimitScheduler

__all__ = [
    "Egress",
    "assign_egresses",
    "build_egresses",
    "check_planned_egresses",
    "egress_ways",
    "ip_budget",
]


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


def egress_ways(
    entries: Sequence[tuple[str, str | None]] | None,
    *,
    redis: str | None,
    default_name: str | None = None,
) -> list[tuple[str, str | None]]:
    """
    The name and proxy URL (``None``: this host's own address) of each egress that
    ``apply --egress`` entries ask for, as `build_egresses` makes them.

    Raises:
        ConfigurationError: the entries contradict each other or ``redis``.
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
    bad = [name for name, url in entries if url is not None and not EGRESS_NAME.fullmatch(name)]
    if bad:
        msg = f"egress must be named by up to 64 letters, digits and . _ : - (got {bad[0]!r})"
        raise ConfigurationError(msg)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        msg = f"each --egress needs its own name; repeated: {', '.join(duplicated)}"
        raise ConfigurationError(msg)
    if bare and redis is None:
        msg = "--egress names an IP budget shared through Redis: give --redis as well"
        raise ConfigurationError(msg)
    if not entries:  # this host's address: named for Redis, where the name is shared
        return [(default_name if redis is not None and default_name else "default", None)]
    return entries


def build_egresses(
    entries: Sequence[tuple[str, str | None]] | None,
    *,
    redis: str | None,
    budget: IPBudget | None,
    default_name: str | None = None,
    fallback: float | None = None,
) -> list[Egress]:
    """
    The egresses of ``apply --egress`` entries, each with its scheduler.

    Without entries, or with one bare ``NAME``: one egress through this host's address;
    its scheduler shares limits through ``redis`` under that name (else ``default_name``,
    else ``"default"``), or is an in-memory one when only the IP budget was asked for.
    With ``NAME=PROXY_URL`` entries: one egress per proxy, each with its own scheduler
    (through ``redis`` under its name, when given). ``fallback`` is the fraction of the
    limits a Redis scheduler paces locally at while Redis is down (``None``: it sends
    nothing meanwhile).

    Raises:
        ConfigurationError: the entries contradict each other or ``redis``.
    """
    ways = egress_ways(entries, redis=redis, default_name=default_name)
    if redis is None and ways[0][1] is None:  # this host's address, paced in memory
        scheduler = None if budget is None else RateLimitScheduler(ip_budget=budget)
        return [Egress(ways[0][0], None, scheduler)]
    return [Egress(name, url, _scheduler(redis, name, budget, fallback)) for name, url in ways]


def _scheduler(
    redis: str | None, name: str, budget: IPBudget | None, fallback: float | None = None
) -> RateLimitScheduler | RedisRateLimitScheduler:
    """An egress's own scheduler: through Redis under its name, or in memory."""
    if budget is None:  # the schedulers' own default budget
        if redis is not None:
            return RedisRateLimitScheduler(redis, egress=name, fallback=fallback)
        return RateLimitScheduler()
    if redis is not None:
        return RedisRateLimitScheduler(redis, egress=name, ip_budget=budget, fallback=fallback)
    return RateLimitScheduler(ip_budget=budget)


def check_planned_egresses(plan: Plan, names: Sequence[str]) -> None:
    """
    Refuse a plan whose accounts name an egress not among ``names`` (apply's).

    Raises:
        ConfigurationError: naming each such account, its egress, and the known names.
    """
    unknown = [account for account in plan.accounts if account.egress not in {None, *names}]
    if not unknown:
        return
    wrong = "; ".join(
        f"{account.name} ({account.where}) names egress {account.egress!r}" for account in unknown
    )
    msg = (
        f"{wrong}: apply's egresses are {', '.join(names)}; give each with "
        "--egress NAME=PROXY_URL, or change the plan's egress"
    )
    raise ConfigurationError(msg)


def assign_egresses(plan: Plan, egresses: Sequence[Egress]) -> dict[str, Egress]:
    """
    Each account's egress, by account name. A master one of whose accounts names an
    egress takes it; the others are spread round-robin over ``egresses`` in plan order,
    by master. Accounts of one master UID share an egress (and so one scheduler, which
    keeps the UID's limits whole); a master whose credentials give no UID is told apart
    by its API key.

    Raises:
        ConfigurationError: an account names an egress not among ``egresses``.
    """
    by_name = {egress.name: egress for egress in egresses}
    check_planned_egresses(plan, list(by_name))
    by_master: dict[str, Egress] = {}
    for account in plan.accounts:
        if account.egress is not None:
            by_master.setdefault(account.master, by_name[account.egress])
    spread = 0
    assigned = {}
    for account in plan.accounts:
        if account.master not in by_master:
            by_master[account.master] = egresses[spread % len(egresses)]
            spread += 1
        assigned[account.name] = by_master[account.master]
    return assigned
