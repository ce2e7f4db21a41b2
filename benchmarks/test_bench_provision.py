"""
The provisioning makespan benchmark at a very small size, so that it cannot rot.

The figures come from ``python benchmarks/provision_makespan.py`` (see README.md); these
tests only run it end to end, in process and over loopback, and check its bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.provision_makespan import (
    Setup,
    is_unified,
    per_uid_bound,
    per_uid_bound_unified,
    run,
)


def test_per_uid_bound() -> None:
    """20 sub-accounts with one further key each: 3.8 s, 3.99 s at 5%, 5.04 s with UID reads."""
    assert per_uid_bound(20, 1, 0.0) == pytest.approx(3.8)
    assert per_uid_bound(20, 1, 0.05) == pytest.approx(3.99)
    assert per_uid_bound(20, 1, 0.05, masked=True) == pytest.approx(5.04)
    assert per_uid_bound(20, 0, 0.0) == pytest.approx(3.0)
    # Keys dominate: 5 sub-accounts x 9 keys = 45 keys at 0.2 s.
    assert per_uid_bound(5, 9, 0.0) == pytest.approx(8.8)


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "loopback"])
def test_small_plan_is_applied_whole(tmp_path: Path, *, in_process: bool) -> None:
    """Two masters x five sub-accounts x two keys: complete, no 429, no lane over its rate."""
    setup = Setup(
        masters=2,
        subaccounts=5,
        extra_keys=1,
        ip_budget=True,
        in_process=in_process,
        workdir=tmp_path,
    )
    result = run(setup)
    assert result["complete"], result
    assert result["429s"] == 0
    assert result["requests_by_endpoint"]["create_virtual_subaccount_api_key"] == 10
    assert result["densest_window_by_endpoint"]["batch_create_virtual_subaccounts"] <= 1
    assert result["densest_window_by_endpoint"]["create_virtual_subaccount_api_key"] <= 5
    assert result["ratio"] >= 1.0


def test_unified_per_uid_bound() -> None:
    """20 sub-accounts x 2 keys at 10/s each: the 40th key at 3.9 s (4.095 s at 5%)."""
    assert per_uid_bound_unified(20, 2, 0.0) == pytest.approx(3.9)
    assert per_uid_bound_unified(20, 2, 0.05) == pytest.approx(4.095)
    # One key each: the last key waits for the last create-sub, at 1.9 s.
    assert per_uid_bound_unified(20, 1, 0.0) == pytest.approx(1.9)


def test_mixed_masters_interleave() -> None:
    """Half unified is every other master; all and none are what they say."""
    assert [is_unified(i, 0.5) for i in range(6)] == [False, True] * 3
    assert all(is_unified(i, 1.0) for i in range(7))
    assert not any(is_unified(i, 0.0) for i in range(7))
    setup = Setup(masters=4, subaccounts=20, extra_keys=1, ip_budget=True, unified=0.5)
    # Classic: 4 batches + 20 keys + 2 list reads + the mode; unified: 20 + 40 + 1 + 1.
    assert setup.necessary_requests == 2 * (4 + 20 + 2 + 1) + 2 * (20 + 40 + 1 + 1)


@pytest.mark.parametrize("unified", [1.0, 0.5], ids=["unified", "mixed"])
def test_unified_plan_is_applied_whole(tmp_path: Path, unified: float) -> None:
    """Unified (and mixed) masters: complete, no 429, no v3 lane over its 10/s."""
    setup = Setup(
        masters=2,
        subaccounts=5,
        extra_keys=1,
        ip_budget=True,
        workdir=tmp_path,
        unified=unified,
    )
    result = run(setup)
    assert result["complete"], result
    assert result["429s"] == 0
    unified_masters = setup.unified_masters
    assert result["requests_by_endpoint"]["create_uta_subaccount"] == unified_masters * 5
    assert result["requests_by_endpoint"]["create_uta_subaccount_api_key"] == unified_masters * 10
    assert result["densest_window_by_endpoint"]["create_uta_subaccount_api_key"] <= 10
    assert result["ratio"] >= 1.0
