"""
The peers benchmark at tiny sizes, so that it cannot rot.

The figures in ``benchmarks/README.md`` come from ``python -m benchmarks.peers``; these
tests run every workload end to end against the emulator over loopback and check the
bounds' arithmetic and the bookkeeping, nothing that depends on the machine's speed.
"""

from __future__ import annotations

import pytest

from benchmarks.peer_clients import ccxt_installed
from benchmarks.peers import (
    Sizes,
    bulk_requests,
    bulk_uid_bound,
    burst_times,
    ip_bound,
    main,
    modify_bound,
    name,
    run,
    table,
)
from bitget_keys import _endpoints as ep

TINY = Sizes(masters=2, subaccounts=5, calls=6, duration=1.5, stream=2, modifies=12, lead=0.2)


def test_bounds() -> None:
    """The issue's figures: 1,200 requests in 3 s per UID; 7,200 need a second minute."""
    assert bulk_requests(50, 20) == 1200
    assert bulk_uid_bound(20) == pytest.approx(3.0)
    # Every request W/N after the one before: the last key at 3.8 s.
    assert bulk_uid_bound(20, spacing=True) == pytest.approx(3.8)
    # One batch of five: its keys go together, right after it.
    assert bulk_uid_bound(5) == pytest.approx(0.0)
    assert bulk_uid_bound(6) == pytest.approx(1.0)
    assert ip_bound(1200) == 0.0
    assert ip_bound(6000) == 0.0
    assert ip_bound(bulk_requests(300, 20)) == pytest.approx(60.0)
    assert modify_bound(40) == pytest.approx(3.0)
    assert modify_bound(10) == 0.0
    # Request k waits for request k-N plus the window, and never goes before it is ready.
    assert burst_times([0.0] * 7, ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY) == [0.0] * 5 + [1.0] * 2
    assert burst_times([0.0, 0.5, 0.5], ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS) == [0.0, 1.0, 2.0]


def test_names_are_valid_and_distinct() -> None:
    names = {name(number) for number in range(3000)}
    assert len(names) == 3000
    assert all(len(text) == 8 and text.isalpha() and text.islower() for text in names)


@pytest.mark.parametrize("client", ["bitget-keys-sliding", "aiolimiter"])
def test_compliant_clients_do_every_workload_without_429s(client: str) -> None:
    """Both pace per lane: all the work is done, no 429, no lane over its rate."""
    bulk = run("bulk", client, TINY)
    assert bulk["done"] == bulk["planned"] == 12
    assert bulk["accepted"] == 12
    assert bulk["429s"] == 0
    assert not bulk["lockout"]
    assert bulk["densest_window"]["create_virtual_subaccount_api_key"] <= 5
    assert bulk["makespan_s"] > 0

    shared = run("shared", client, TINY)
    assert shared["429s"] == 0
    assert shared["accepted"] == sum(shared["per_client_accepted"]) > 0
    assert sum(shared["shares"]) == pytest.approx(1.0, abs=0.002)
    assert shared["densest_window"]["create_virtual_subaccount_api_key"] <= 5

    broker = run("broker", client, TINY)
    assert broker["done"] == 12
    assert broker["429s"] == 0
    assert broker["densest_window"]["modify_broker_subaccount_api_key"] <= 10
    # Twelve modifies at 10 a second need a second window.
    assert broker["makespan_s"] >= 0.9
    assert broker["bound_s"] == pytest.approx(1.0)
    assert len(table([bulk, bulk]).splitlines()) == 4
    assert "%" in table([shared])


@pytest.mark.skipif(not ccxt_installed(), reason="ccxt is not installed (the bench extra)")
def test_ccxt_signs_as_bitget_wants() -> None:
    """ccxt's requests pass the emulator's checks: nothing is refused but for rate."""
    row = run("broker", "ccxt", TINY)
    assert row["refused"] == 0
    assert row["accepted"] >= 10
    assert row["done"] + row["client_429s"] >= 10


def test_command_line_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "--clients", "bitget-keys", "--modifies", "3", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.lstrip().startswith("[")
    assert '"client": "bitget-keys"' in out


def test_ccxt_is_skipped_with_a_message_when_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("benchmarks.peers.ccxt_installed", lambda: False)
    assert main(["broker", "--clients", "ccxt", "--modifies", "3"]) == 0
    captured = capsys.readouterr()
    assert "ccxt is not installed" in captured.err
    assert "| ccxt |" not in captured.out
