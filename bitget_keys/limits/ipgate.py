"""
`IPGate`: one scheduler's state of the per-IP budget (`IPBudget`), in memory.

Every dispatch from an egress IP takes a token, whatever its UID or endpoint. The
budget's `IPPolicy` says when the next token is due:

- `IPPolicy.ROLLING`: at most ``effective_limit`` tokens in any rolling ``window``,
  counted from exact dispatch stamps. This is Bitget's documented rule (requests per IP
  per minute), so bulk work runs as fast as the per-UID limits allow until the minute's
  count is spent.
- `IPPolicy.EVEN`: the same count, and besides tokens at least ``1/effective_rate``
  apart (GCRA with one token of tolerance), so the minute's budget is spread evenly.

The stamps also serve the lockout rule (the IP cap), so the gate keeps as many as the
larger of the two needs.
"""

from __future__ import annotations

import math
from collections import deque

from bitget_keys.limits.policy import IPBudget, IPPolicy, next_slot

__all__ = ["IPGate"]


class IPGate:
    """When this scheduler's next IP token is due, and when the last ones were taken."""

    __slots__ = ("budget", "sent", "tat")

    def __init__(self, budget: IPBudget | None, cap: int) -> None:
        self.budget = budget
        #: Dispatch stamps, oldest first, as many as the budget and the cap need.
        self.sent: deque[float] = deque(maxlen=max(cap + 1, budget.limit if budget else 0))
        #: The even pace's theoretical arrival time (GCRA): the next token is due then.
        self.tat = -math.inf

    def ready_at(self, now: float) -> float:
        """When the next token may be taken (``now`` if at once)."""
        budget = self.budget
        if budget is None:
            return now
        counted = next_slot(self.sent, limit=budget.effective_limit, period=budget.window, now=now)
        if budget.policy is IPPolicy.ROLLING:
            return counted
        # One token of tolerance (GCRA burst 2): a wake-up up to one interval late is
        # made up, so the budget's rate holds on a busy loop.
        return max(counted, self.tat - 1 / budget.effective_rate)

    def take(self, now: float) -> None:
        """Take a token at ``now``."""
        self.sent.append(now)
        budget = self.budget
        if budget is not None and budget.policy is IPPolicy.EVEN:
            self.tat = max(self.tat, now) + 1 / budget.effective_rate
