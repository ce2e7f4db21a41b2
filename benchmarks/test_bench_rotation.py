"""
The rotation makespan benchmark at a very small size, so that it cannot rot.

The figures come from ``python benchmarks/rotation_makespan.py`` (see README.md); these
tests only run it end to end, in process and over loopback, and check its bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.rotation_makespan import Setup, per_uid_bound, run


def test_necessary_requests_and_per_uid_bound() -> None:
    """50 x 10 x 2: 4,100 requests (43.2 s at 95/s); 20 creates at 5/s per master: 3.8 s."""
    setup = Setup(masters=50, subaccounts=10, keys=2)
    assert setup.necessary_requests == 50 * (2 + 20 + 60)
    assert per_uid_bound(setup, 0.0) == pytest.approx(3.8)
    assert per_uid_bound(setup, 0.05) == pytest.approx(3.99)
    # Unified: creates and deletes at 10/s, account info at 5/s on each sub-account.
    unified = Setup(masters=2, subaccounts=10, keys=2, unified=1.0)
    assert per_uid_bound(unified, 0.0) == pytest.approx(max(19 / 10, 19 / 10, 1 / 5, 19 / 10))


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "loopback"])
@pytest.mark.parametrize("unified", [0.0, 1.0], ids=["classic", "unified"])
def test_small_rotation_is_complete_and_sends_only_what_is_needed(
    tmp_path: Path, *, in_process: bool, unified: float
) -> None:
    setup = Setup(
        masters=2,
        subaccounts=3,
        keys=2,
        unified=unified,
        in_process=in_process,
        workdir=tmp_path,
    )
    result = run(setup)
    assert result["complete"], result
    assert result["429s"] == 0
    # One list read per sub-account before, one after the creates; nothing else extra.
    assert result["requests_sent"] == setup.necessary_requests, result
    assert result["ratio"] >= 1.0
