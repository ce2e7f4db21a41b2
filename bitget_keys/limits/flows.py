"""
`FlowQueue`: a fair queue of waiting requests, by priority, then in turn by flow.

A lane's waiting requests used to form one FIFO, so a caller that queued many requests
held the lane until all of them went, and a second caller of the same account waited
behind all of them. Here each request names its *flow* (who it is for: a client, a job,
a tenant) and a *priority*:

- a higher priority always goes first;
- within one priority, flows take turns (round-robin, one request per turn), in the
  order in which they last became non-empty;
- within one flow, requests go in the order they were pushed.

`ahead` counts the requests that would go before a new one, so that a scheduler can
predict a wait and refuse a request that cannot make its deadline at once.

The queue knows nothing of time or of waiters: items the caller gave up on stay in it
until they are reached, and are dropped then (the ``alive`` predicate says which), so
giving up costs no search through the queue. The caller's own count of live items is
the truth about how many wait; `len` counts what the queue still holds.

`ReadyLanes` orders lanes that wait for a shared resource (an in-flight permit, the
IP's budget) by the priority of their first request, then in the order they became
ready, so that when the IP budget binds a high-priority request on any lane goes ahead
of bulk ones queued on others.

A queue whose items all share one flow and one priority is that flow's list and nothing
more: per waiting item the eight bytes a list costs, and a few dozen bytes per queue.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["FlowQueue", "ReadyLanes"]

K = TypeVar("K", bound=Hashable)

T = TypeVar("T")


class _Flow(Generic[T]):
    """
    One flow's items, oldest first: a list read from index ``head`` on (a fifth of a
    deque's size for the few items a flow usually holds).
    """

    __slots__ = ("head", "items")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.head = 0

    def __len__(self) -> int:
        return len(self.items) - self.head

    def first(self) -> T:
        return self.items[self.head]

    def push(self, item: T, *, first: bool) -> None:
        if not first:
            self.items.append(item)
        elif self.head:
            self.head -= 1
            self.items[self.head] = item
        else:
            self.items.insert(0, item)

    def drop_first(self) -> None:
        items = self.items
        self.head += 1
        if self.head == len(items):
            items.clear()
            self.head = 0
        elif self.head > 32 and 2 * self.head > len(items):
            del items[: self.head]
            self.head = 0


class _Level(Generic[T]):
    """The flows of one priority: each flow's items, and the order of their turns."""

    __slots__ = ("flows", "size", "turns")

    def __init__(self) -> None:
        #: Each non-empty flow's items.
        self.flows: dict[Hashable, _Flow[T]] = {}
        #: The non-empty flows, the one whose turn it is first.
        self.turns: deque[Hashable] = deque()
        #: Items held over all flows (dead ones included).
        self.size = 0


class FlowQueue(Generic[T]):
    """
    Items by priority (highest first), then round-robin over flows, FIFO within a flow.

    While every item held shares one flow and one priority (most lanes, most of the
    time) the queue is that flow's list alone; the levels and turns are built when a
    second flow or priority arrives, and dropped when the queue empties.

    Args:
        alive: whether an item still waits; items for which it is false are dropped
            when they come to the front, and never returned.
    """

    __slots__ = ("_alive", "_levels", "_size", "_solo", "_solo_flow", "_top")

    def __init__(self, alive: Callable[[T], bool]) -> None:
        self._alive = alive
        #: Priority -> its level, only for priorities that hold items; ``None`` while
        #: the queue holds one flow of one priority (or nothing).
        self._levels: dict[int, _Level[T]] | None = None
        #: The one flow's items and name while ``_levels`` is ``None``.
        self._solo: _Flow[T] = _Flow()
        self._solo_flow: Hashable = None
        #: The highest priority held (meaningless while empty).
        self._top = 0
        self._size = 0

    def __len__(self) -> int:
        """How many items the queue holds, dead ones not yet dropped included."""
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    @property
    def top(self) -> int | None:
        """
        The priority of the next item (``None`` when empty); after `peek`, that of a
        live one.
        """
        return self._top if self._size else None

    def __repr__(self) -> str:
        if self._levels is None:
            shape = f"{self._top}: 1 flows/{self._size}" if self._size else ""
        else:
            shape = ", ".join(
                f"{priority}: {len(level.flows)} flows/{level.size}"
                for priority, level in sorted(self._levels.items(), reverse=True)
            )
        return f"<FlowQueue {self._size} items {{{shape}}}>"

    def push(
        self, item: T, flow: Hashable = None, priority: int = 0, *, first: bool = False
    ) -> None:
        """
        Queue ``item`` last in ``flow`` at ``priority``.

        With ``first``, the item goes before the rest of its flow and its flow takes the
        next turn of its priority: a request sent once and refused (a retry) keeps its
        place ahead of everything that came after it.
        """
        if self._levels is None:
            if not self._size:
                self._solo_flow, self._top = flow, priority
            if flow == self._solo_flow and priority == self._top:
                self._solo.push(item, first=first)
                self._size += 1
                return
            self._spread()
        self._push(item, flow, priority, first=first)

    def peek(self) -> T | None:
        """The item `pop` would return (``None`` if no live one), dropping dead ones first."""
        alive = self._alive
        while self._size:
            if self._levels is None:
                item = self._solo.first()
                if alive(item):
                    return item
                self._solo.drop_first()
                self._size -= 1
                continue
            level = self._levels[self._top]
            flow = level.turns[0]
            held = level.flows[flow]
            item = held.first()
            if alive(item):
                return item
            self._take(level, flow, held)
        return None

    def pop(self) -> T | None:
        """Remove and return the next live item (``None`` if none), passing the turn on."""
        item = self.peek()
        if item is None:
            return None
        if self._levels is None:
            self._solo.drop_first()
            self._size -= 1
            return item
        level = self._levels[self._top]
        flow = level.turns[0]
        self._take(level, flow, level.flows[flow])
        if flow in level.flows:
            level.turns.rotate(-1)  # the flow's turn is over: it goes last
        return item

    def ahead(self, flow: Hashable = None, priority: int = 0, *, first: bool = False) -> int:
        """
        How many items held now would go before one pushed now to ``flow`` at ``priority``.

        Items of higher priorities all go first. Within the priority, the new item is
        the (k+1)-th of its flow, so it goes in the (k+1)-th round of turns: every other
        flow serves up to k items before it, and one more if its turn comes earlier in
        that round. Dead items count until dropped (the queue cannot see them without a
        search), so this is an upper bound whenever some are held.
        """
        if self._levels is None:
            if not self._size or priority > self._top or (first and priority == self._top):
                return 0
            if priority < self._top or flow == self._solo_flow:
                return self._size
            return 1  # the other flow's turn comes first
        count = sum(level.size for p, level in self._levels.items() if p > priority)
        level = self._levels.get(priority)
        if level is None or first:
            return count
        held = level.flows.get(flow)
        if held is None:
            return count + len(level.turns)  # a new flow's first turn comes after all others
        mine = len(held)
        before = True
        for other in level.turns:
            if other == flow:
                before = False
                count += mine
                continue
            size = len(level.flows[other])
            count += min(size, mine) + (1 if before and size > mine else 0)
        return count

    def _spread(self) -> None:
        """Leave the one-flow form: the flow becomes the first of its priority's level."""
        level: _Level[T] = _Level()
        level.flows[self._solo_flow] = self._solo
        level.turns.append(self._solo_flow)
        level.size = self._size
        self._levels = {self._top: level}
        self._solo = _Flow()

    def _push(self, item: T, flow: Hashable, priority: int, *, first: bool) -> None:
        levels = self._levels
        assert levels is not None  # noqa: S101 - spread by push
        level = levels.get(priority)
        if level is None:
            level = levels[priority] = _Level()
            if len(levels) == 1 or priority > self._top:
                self._top = priority
        held = level.flows.get(flow)
        if held is None:
            held = level.flows[flow] = _Flow()
            if first:
                level.turns.appendleft(flow)
            else:
                level.turns.append(flow)
        elif first and level.turns[0] != flow:
            level.turns.remove(flow)
            level.turns.appendleft(flow)
        held.push(item, first=first)
        level.size += 1
        self._size += 1

    def _take(self, level: _Level[T], flow: Hashable, held: _Flow[T]) -> None:
        """Remove the first item of ``flow``; forget the flow and the level once empty."""
        held.drop_first()
        level.size -= 1
        self._size -= 1
        if len(held):
            return
        del level.flows[flow]
        level.turns.popleft()
        if level.size:
            return
        levels = self._levels
        assert levels is not None  # noqa: S101 - only levels are taken from
        del levels[self._top]
        if levels:
            self._top = max(levels)
        else:
            self._levels = None  # empty: back to the one-flow form


class ReadyLanes(Generic[K]):
    """
    Lanes by the priority they were filed with (highest first), then first filed first.

    Filing a lane again (its first request's priority changed) moves it; the old entry
    stays in the heap, stale, until it comes to the top, where it is skipped.
    """

    __slots__ = ("_filed", "_heap", "_tickets")

    def __init__(self) -> None:
        #: Lane -> (ticket, priority) of its one valid entry.
        self._filed: dict[K, tuple[int, int]] = {}
        self._heap: list[tuple[int, int, K]] = []
        self._tickets = itertools.count()

    def __len__(self) -> int:
        return len(self._filed)

    def __bool__(self) -> bool:
        return bool(self._filed)

    def __contains__(self, lane: object) -> bool:
        return lane in self._filed

    def file(self, lane: K, priority: int) -> None:
        """File ``lane`` (again) at ``priority``, behind the lanes filed before at it."""
        ticket = next(self._tickets)
        self._filed[lane] = (ticket, priority)
        heapq.heappush(self._heap, (-priority, ticket, lane))

    def priority(self, lane: K) -> int:
        """The priority ``lane`` was filed with (`KeyError` if it is not filed)."""
        return self._filed[lane][1]

    def first(self) -> K | None:
        """The lane to serve next (``None`` if none is filed)."""
        heap, filed = self._heap, self._filed
        while heap:
            _, ticket, lane = heap[0]
            entry = filed.get(lane)
            if entry is not None and entry[0] == ticket:
                return lane
            heapq.heappop(heap)
        return None

    def remove(self, lane: K) -> None:
        """Take ``lane`` out (its entry goes stale); nothing if it is not filed."""
        self._filed.pop(lane, None)
        if not self._filed:
            self._heap.clear()
