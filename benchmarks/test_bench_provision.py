"""
The provisioning makespan benchmark at a very small size, so that it cannot rot.

The figures come from ``python benchmarks/provision_makespan.py`` (see README.md); these
tests only run it end to end, in process and over loopback, and check its bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.provision_makespan import Setup, per_uid_bound, run


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
