"""
The fairness benchmark, run small so that it cannot rot.

The figures come from ``python -m benchmarks.scheduler_fairness``; this runs the same
code on a few requests and asserts only what holds on any machine, however busy: no
429s, both clients served while both wait, and the urgent request ahead of the backlog.
"""

from __future__ import annotations

import pytest

from benchmarks.scheduler_fairness import Setup, main, run

SMALL = Setup(calls=12, bulk=15)


def test_two_clients_share_one_lane() -> None:
    row = run("shares", SMALL)
    assert row["emulator_429s"] == row["client_429s"] == 0
    assert row["accepted"] == 2 * SMALL.calls
    assert 30 <= row["share_a_pct"] <= 70


def test_an_urgent_request_skips_the_backlog() -> None:
    row = run("priority", SMALL)
    assert row["emulator_429s"] == 0
    assert row["queued_ahead"] >= 5
    # sent before the backlog: well under the slots of the requests queued ahead of it
    assert row["delay_slots"] < row["queued_ahead"] / 2


def test_main_prints_a_row_per_workload(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["priority", "--bulk", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Setup(")
    assert "'workload': 'priority'" in lines[1]
