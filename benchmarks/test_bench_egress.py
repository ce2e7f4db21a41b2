"""The makespan benchmark over egress proxies, at a very small size: its bookkeeping only."""

from __future__ import annotations

from pathlib import Path

from benchmarks.provision_makespan import Setup, run


def test_masters_are_spread_over_egresses_round_robin() -> None:
    setup = Setup(masters=5, subaccounts=5, extra_keys=1, ip_budget=True, egresses=2)
    assert [setup.egress_of(i) for i in range(5)] == [0, 1, 0, 1, 0]
    per_master = 1 + 5 + 2 + 1  # a batch, five keys, two list reads, the mode probe
    assert setup.necessary_requests == 5 * per_master
    assert setup.busiest_egress_requests == 3 * per_master
    assert Setup(
        masters=5, subaccounts=5, extra_keys=1, ip_budget=True
    ).busiest_egress_requests == (5 * per_master)


def test_a_small_plan_over_two_proxies_is_applied_whole(tmp_path: Path) -> None:
    setup = Setup(
        masters=2, subaccounts=5, extra_keys=1, ip_budget=True, egresses=2, workdir=tmp_path
    )
    result = run(setup)
    assert result["complete"], result
    assert result["429s"] == 0
    # Each proxy carried one master's requests: the same count each, none left out.
    first, second = result["requests_by_egress"]
    assert first == second
    assert first + second == result["requests_sent"]
