"""
`bitget-keys apply --metrics-port`: a real apply process against the emulator over
loopback, its ``/metrics`` scraped while it runs, and closed when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits, LoopbackProxy

MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_metrics_master",
    secret_key="metrics-master-secret",
    passphrase="MetricsMaster1",
)
SUBACCOUNTS = 4
SECOND = EmulatorAccount(
    uid="1000000002",
    api_key="bg_metrics_second",
    secret_key="metrics-second-secret",
    passphrase="MetricsSecond2",
)
ACCOUNT = """
[[accounts]]
name = "desk-{desk}"
credentials = "env:DESK_{upper}"
"""
SUBACCOUNT = """
[[accounts.subaccounts]]
name = "metric{desk}{letter}"
label = "m{i}"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]

[[accounts.subaccounts.keys]]
label = "read"
permissions = ["read"]
"""


def plan_of(desks: str) -> str:
    """A plan of one account per desk letter, each with `SUBACCOUNTS` sub-accounts of 2 keys."""
    rows = [
        ACCOUNT.format(desk=desk, upper=desk.upper())
        + "".join(
            SUBACCOUNT.format(desk=desk, letter="abcdefgh"[i], i=i) for i in range(SUBACCOUNTS)
        )
        for desk in desks
    ]
    return '[defaults]\nip_list = ["203.0.113.7"]\n' + "".join(rows)


PLAN = plan_of("a")
#: Each request is held this long by the emulator, so the run lasts while it is scraped.
LATENCY = 0.15
#: Bounds on waiting for the process: never a test that hangs.
PATIENCE = 60.0
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def samples(text: str) -> dict[tuple[str, str], float]:
    """The exposition's samples by (name, labels as written)."""
    found: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match is not None:
            found[match["name"], match["labels"] or ""] = float(match["value"])
    return found


def environment(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    for desk, master in (("A", MASTER), ("B", SECOND)):
        env[f"DESK_{desk}_API_KEY"] = master.api_key
        env[f"DESK_{desk}_SECRET_KEY"] = master.secret_key.reveal()
        env[f"DESK_{desk}_PASSPHRASE"] = master.passphrase.reveal()
        env[f"DESK_{desk}_UID"] = master.uid
    env.update(
        BITGET_KEYS_VAULT_KEY="a long vault passphrase",
        PYTHONPATH=os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")])),
    )
    env.pop("BITGET_KEYS_REDIS_URL", None)
    env.pop("BITGET_KEYS_EGRESS", None)
    return env


@contextlib.asynccontextmanager
async def applying(
    tmp_path: Path, plan: Path, base_url: str, *flags: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``bitget-keys apply PLAN --yes --json`` in a process of its own, killed if left running."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bitget_keys", "apply", str(plan), "--yes", "--json"),
        *("--base-url", base_url, *flags),
        *("--vault", str(tmp_path / "v.vault"), "--create-vault"),
        *("--state", str(tmp_path / "s.state")),
        cwd=tmp_path,
        env=environment(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def metrics_url(process: asyncio.subprocess.Process) -> str:
    """The URL apply says it serves its metrics at (its first lines on stderr)."""
    assert process.stderr is not None
    async with asyncio.timeout(PATIENCE):
        while line := (await process.stderr.readline()).decode():
            found = re.search(r"metrics at (http://\S+)", line)
            if found is not None:
                return found[1]
    pytest.fail("apply ended without saying where its metrics are")


def counted(scraped: dict[tuple[str, str], float]) -> bool:
    return any(name == "bitget_keys_requests_total" for name, _ in scraped)


async def scrape_while_running(
    process: asyncio.subprocess.Process,
    url: str,
    enough: Callable[[dict[tuple[str, str], float]], bool] = counted,
) -> dict[tuple[str, str], float]:
    """Scrape until ``enough`` of it (a request counted), failing if apply ends first."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(PATIENCE):
        while process.returncode is None:
            async with session.get(url) as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                text = await response.text()
            for secret in (MASTER.secret_key.reveal(), MASTER.passphrase.reveal()):
                assert secret not in text
            scraped = samples(text)
            if enough(scraped):
                return scraped
            await asyncio.sleep(0.05)
    pytest.fail("apply ended before a request showed in its metrics")


async def test_apply_serves_metrics_while_it_runs(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    faults = Faults(latency=LATENCY)
    async with (
        Emulator([MASTER], limits=Limits(), faults=faults) as emulator,
        applying(tmp_path, plan, emulator.base_url, "--metrics-port", "0") as process,
    ):
        url = await metrics_url(process)
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/metrics")
        scraped = await scrape_while_running(process, url)
        async with asyncio.timeout(PATIENCE):
            out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        created = emulator.exchange.subaccounts(MASTER.uid)
    assert len(created) == SUBACCOUNTS
    # Real series with values, read from the running process.
    requests = {
        labels: value
        for (name, labels), value in scraped.items()
        if name == "bitget_keys_requests_total"
    }
    assert sum(requests.values()) >= 1
    assert all('outcome="ok"' in labels for labels in requests)
    lanes = [labels for name, labels in scraped if name == "bitget_keys_lane_queued"]
    assert any(f'uid="{MASTER.uid}"' in labels for labels in lanes)
    assert ("bitget_keys_ip_requests_last_minute", 'egress="default"') in scraped
    waits = [
        v for (name, _), v in scraped.items() if name == "bitget_keys_request_wait_seconds_count"
    ]
    assert sum(waits) >= 1
    trips = [
        v
        for (name, _), v in scraped.items()
        if name == "bitget_keys_request_round_trip_seconds_sum"
    ]
    assert sum(trips) >= LATENCY * 0.9  # each answer was held LATENCY by the emulator
    # The run is over: so is its metrics server.
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url)
    for secret in (MASTER.secret_key.reveal(), MASTER.passphrase.reveal()):
        assert secret.encode() not in out + err


async def test_metrics_port_in_use_exits_78(tmp_path: Path) -> None:
    """A port that cannot be listened on is a usage error, before anything is sent."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    holder = socket.create_server(("127.0.0.1", 0))  # listening, so the port is taken
    port = holder.getsockname()[1]
    try:
        async with Emulator([MASTER]) as emulator:
            flags = ("--metrics-port", str(port))
            async with applying(tmp_path, plan, emulator.base_url, *flags) as process:
                async with asyncio.timeout(PATIENCE):
                    _, err = await process.communicate()
            assert emulator.audit.accepted == 0
    finally:
        holder.close()
    assert process.returncode == 78, err.decode()
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1" in err.decode()


def requests_by_egress(scraped: dict[tuple[str, str], float]) -> dict[str, float]:
    """``bitget_keys_requests_total`` summed by its ``egress`` label."""
    totals: dict[str, float] = {}
    for (name, labels), count in scraped.items():
        if name == "bitget_keys_requests_total":
            egress = re.search(r'egress="([^"]*)"', labels)
            assert egress is not None, labels
            totals[egress[1]] = totals.get(egress[1], 0.0) + count
    return totals


async def test_apply_over_two_egresses_serves_each_egress_under_its_name(tmp_path: Path) -> None:
    """Two proxies, one master each: one /metrics shows both schedulers and their requests."""
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_of("ab"))
    faults = Faults(latency=LATENCY)
    async with (
        Emulator([MASTER, SECOND], limits=Limits(), faults=faults) as emulator,
        LoopbackProxy(source="127.0.0.2") as first,
        LoopbackProxy(source="127.0.0.3") as second,
    ):
        flags = ("--metrics-port", "0", "--egress", f"one={first.url}")
        async with applying(
            tmp_path, plan, emulator.base_url, *flags, "--egress", f"two={second.url}"
        ) as process:
            url = await metrics_url(process)

            def both(scraped: dict[tuple[str, str], float]) -> bool:
                totals = requests_by_egress(scraped)
                return totals.get("one", 0) > 0 and totals.get("two", 0) > 0

            scraped = await scrape_while_running(process, url, both)
            async with asyncio.timeout(PATIENCE):
                _, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert first.requests > 0
        assert second.requests > 0
        for master in (MASTER, SECOND):
            assert len(emulator.exchange.subaccounts(master.uid)) == SUBACCOUNTS
    assert set(requests_by_egress(scraped)) == {"one", "two"}
    # Round-robin in plan order: desk-a's lanes in egress one's scheduler, desk-b's in two's.
    lanes = {labels for name, labels in scraped if name == "bitget_keys_lane_dispatched_total"}
    mine = {labels for labels in lanes if f'uid="{MASTER.uid}"' in labels}
    theirs = {labels for labels in lanes if f'uid="{SECOND.uid}"' in labels}
    assert mine
    assert theirs
    assert all('egress="one"' in labels for labels in mine)
    assert all('egress="two"' in labels for labels in theirs)
    for egress in ("one", "two"):
        assert ("bitget_keys_ip_requests_last_minute", f'egress="{egress}"') in scraped
