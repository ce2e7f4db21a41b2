"""`FlowQueue`: priorities first, flows in turn, FIFO within a flow; `ahead` is exact."""

from __future__ import annotations

import itertools
import tracemalloc
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from bitget_keys.limits.flows import FlowQueue, ReadyLanes

#: (flow, priority) per pushed item; flows and priorities drawn from a few values.
Pushes = list[tuple[str, int]]

flows = st.sampled_from(["a", "b", "c", "d"])
priorities = st.sampled_from([0, 0, 0, 1, 5])
pushes = st.lists(st.tuples(flows, priorities), max_size=60)


def always(_item: object) -> bool:
    return True


def drain(queue: FlowQueue[int]) -> list[int]:
    out = []
    while (item := queue.pop()) is not None:
        out.append(item)
    return out


def filled(items: Pushes) -> FlowQueue[int]:
    queue: FlowQueue[int] = FlowQueue(always)
    for index, (flow, priority) in enumerate(items):
        queue.push(index, flow, priority)
    return queue


def test_one_flow_is_a_fifo() -> None:
    queue = filled([("a", 0)] * 5)
    assert len(queue) == 5
    assert drain(queue) == [0, 1, 2, 3, 4]
    assert len(queue) == 0
    assert not queue
    assert queue.pop() is None
    assert queue.peek() is None


def test_flows_take_turns_in_the_order_they_arrived() -> None:
    """a's backlog does not hold b and c back: one each per round."""
    queue = filled([("a", 0)] * 4 + [("b", 0)] * 2 + [("c", 0)])
    assert drain(queue) == [0, 4, 6, 1, 5, 2, 3]


def test_higher_priority_goes_first_whatever_the_flow() -> None:
    queue = filled([("a", 0), ("a", 0), ("b", 2), ("c", 1), ("b", 2)])
    assert drain(queue) == [2, 4, 3, 0, 1]


def test_a_retry_goes_first_in_its_flow_and_its_flow_goes_next() -> None:
    queue = filled([("a", 0), ("a", 0), ("b", 0), ("b", 0)])
    assert queue.pop() == 0  # a's turn over: b is next
    queue.push(99, "a", 0, first=True)
    assert queue.ahead("a", 0, first=True) == 0
    assert drain(queue) == [99, 2, 1, 3]


def test_dead_items_are_dropped_when_reached_and_keep_no_turn() -> None:
    dead = {1, 4}
    queue: FlowQueue[int] = FlowQueue(lambda item: item not in dead)
    for index, flow in enumerate("aabbb"):
        queue.push(index, flow)
    assert queue.peek() == 0
    assert drain(queue) == [0, 2, 3]  # a's dead 1 gives its turn to b
    assert len(queue) == 0


def test_ahead_counts_turns_and_priorities() -> None:
    queue = filled([("a", 0)] * 3 + [("b", 0)] + [("c", 1)])
    assert queue.ahead("a", 0) == 5  # c first; then a b a - a - (new a)
    assert queue.ahead("b", 0) == 4  # c, a, b, a, then the new b
    assert queue.ahead("new", 0) == 3  # c, then one turn each of a and b
    assert queue.ahead("new", 1) == 1
    assert queue.ahead("new", 2) == 0
    assert queue.ahead("a", 0, first=True) == 1


def test_a_second_flow_spreads_the_queue_and_emptying_folds_it() -> None:
    """One flow is a bare list; a second flow or priority builds turns; empty, it folds."""
    queue = filled([("a", 0)] * 3)
    assert repr(queue) == "<FlowQueue 3 items {0: 1 flows/3}>"
    assert queue.ahead("a", 0) == 3
    assert queue.ahead("b", 0) == 1
    assert queue.ahead("b", 1) == 0
    assert queue.ahead("b", -1) == 3
    queue.push(10, "b")
    queue.push(11, "a", 2)
    assert drain(queue) == [11, 0, 10, 1, 2]
    queue.push(20, "c", 4)
    queue.push(21, "c", 4, first=True)
    assert queue.top == 4
    assert repr(queue) == "<FlowQueue 2 items {4: 1 flows/2}>"
    assert drain(queue) == [21, 20]
    assert queue.top is None


def test_a_long_single_flow_compacts_as_it_drains() -> None:
    queue = filled([("a", 0)] * 100)
    assert [queue.pop() for _ in range(60)] == list(range(60))
    queue.push(100, "a")
    queue.push(-1, "a", first=True)
    assert drain(queue) == [-1, *range(60, 101)]


def test_repr_shows_the_shape() -> None:
    queue = filled([("a", 0), ("b", 3)])
    assert repr(queue) == "<FlowQueue 2 items {3: 1 flows/1, 0: 1 flows/1}>"


@given(pushes)
def test_priorities_come_out_highest_first(items: Pushes) -> None:
    out = drain(filled(items))
    assert sorted(out) == list(range(len(items)))
    levels = [items[index][1] for index in out]
    assert levels == sorted(levels, reverse=True)


@given(pushes)
def test_each_flow_is_fifo_within_a_priority(items: Pushes) -> None:
    out = drain(filled(items))
    for key in set(items):
        mine = [index for index in out if items[index] == key]
        assert mine == sorted(mine)


@given(st.lists(flows, max_size=60))
def test_round_robin_is_fair_at_every_point(items: list[str]) -> None:
    """Any two flows that still hold items have been served within one of each other."""
    queue = filled([(flow, 0) for flow in items])
    left = Counter(items)
    served: Counter[str] = Counter()
    while (index := queue.pop()) is not None:
        flow = items[index]
        served[flow] += 1
        left[flow] -= 1
        waiting = [served[other] for other in left if left[other] > 0]
        if waiting:
            assert max(waiting) - min(waiting) <= 1
            # and no flow was served more than one ahead of one still waiting
            assert served[flow] <= min(waiting) + 1


ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), flows, priorities, st.booleans()),
        st.tuples(st.just("pop"), st.just(""), st.just(0), st.just(False)),
    ),
    max_size=80,
)


@settings(max_examples=300)
@given(ops, flows, priorities, st.booleans())
def test_ahead_is_exactly_how_many_go_first(
    history: list[tuple[str, str, int, bool]], flow: str, priority: int, first: bool
) -> None:
    """After any pushes, retries and pops, `ahead` predicts the new item's place."""
    queue: FlowQueue[int] = FlowQueue(always)
    counter = itertools.count()
    for op, some_flow, some_priority, some_first in history:
        if op == "push":
            queue.push(next(counter), some_flow, some_priority, first=some_first)
        else:
            queue.pop()
    predicted = queue.ahead(flow, priority, first=first)
    queue.push(-1, flow, priority, first=first)
    out = drain(queue)
    assert out.index(-1) == predicted


@given(pushes, st.sets(st.integers(0, 59)))
def test_dead_items_never_come_out_and_ahead_stays_an_upper_bound(
    items: Pushes, dead: set[int]
) -> None:
    queue: FlowQueue[int] = FlowQueue(lambda item: item not in dead)
    for index, (flow, priority) in enumerate(items):
        queue.push(index, flow, priority)
    predicted = queue.ahead("a", 0)
    queue.push(-1, "a", 0)
    out = drain(queue)
    assert not set(out) & dead
    assert sorted(out) == sorted({*range(len(items)), -1} - dead)
    assert out.index(-1) <= predicted


def test_one_flow_costs_what_a_list_costs_per_item() -> None:
    """Ten thousand items in one flow take no more than 10% over a list of them."""
    items = [object() for _ in range(10_000)]

    def size(build: object) -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            held = build()  # type: ignore[operator]
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        del held
        return after - before

    def as_list() -> list[object]:
        out: list[object] = []
        for item in items:
            out.append(item)  # noqa: PERF402 - grown as a lane's queue grows
        return out

    def as_queue() -> FlowQueue[object]:
        queue: FlowQueue[object] = FlowQueue(always)
        for item in items:
            queue.push(item, "client")
        return queue

    listed, queued = size(as_list), size(as_queue)
    assert queued <= 1.1 * listed + 2048, (queued, listed)


# -- ReadyLanes ------------------------------------------------------------------------------


def test_ready_lanes_serve_the_highest_priority_then_the_first_filed() -> None:
    ready: ReadyLanes[str] = ReadyLanes()
    assert not ready
    assert ready.first() is None
    for name, priority in [("a", 0), ("b", 1), ("c", 0), ("d", 1)]:
        ready.file(name, priority)
    assert len(ready) == 4
    assert "c" in ready
    order = []
    while (lane := ready.first()) is not None:
        order.append(lane)
        ready.remove(lane)
    assert order == ["b", "d", "a", "c"]


def test_filing_a_lane_again_moves_it() -> None:
    """The stale entry is skipped; a lower priority moves a lane back behind its peers."""
    ready: ReadyLanes[str] = ReadyLanes()
    for lane in "abc":
        ready.file(lane, 0)
    ready.file("c", 2)
    assert ready.priority("c") == 2
    assert ready.first() == "c"
    ready.file("c", 0)
    assert ready.first() == "a"
    ready.remove("a")
    ready.remove("b")
    assert ready.first() == "c"
    ready.remove("c")
    ready.remove("c")  # not filed: nothing happens
    assert ready.first() is None


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=40))
def test_ready_lanes_order_is_priority_then_filing(files: list[tuple[int, int]]) -> None:
    """Whatever was filed and re-filed, lanes come out by their last filing."""
    ready: ReadyLanes[int] = ReadyLanes()
    last: dict[int, tuple[int, int]] = {}
    for step, (name, priority) in enumerate(files):
        ready.file(name, priority)
        last[name] = (-priority, step)
    order = []
    while (lane := ready.first()) is not None:
        order.append(lane)
        ready.remove(lane)
    assert order == sorted(last, key=last.__getitem__)
