"""
`bitget-keys apply --metrics-port`: a real apply process against the emulator over
loopback, its ``/metrics`` scraped while it runs, and closed when it ends.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits

MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_metrics_master",
    secret_key="metrics-master-secret",
    passphrase="MetricsMaster1",
)
SUBACCOUNTS = 4
PLAN = """
[defaults]
ip_list = ["203.0.113.7"]

[[accounts]]
name = "desk-a"
credentials = "env:DESK_A"
""" + "".join(
    f"""
[[accounts.subaccounts]]
name = "metrics{"abcdefgh"[i]}"
label = "m{i}"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]

[[accounts.subaccounts.keys]]
label = "read"
permissions = ["read"]
"""
    for i in range(SUBACCOUNTS)
)
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
    env.update(
        DESK_A_API_KEY=MASTER.api_key,
        DESK_A_SECRET_KEY=MASTER.secret_key.reveal(),
        DESK_A_PASSPHRASE=MASTER.passphrase.reveal(),
        DESK_A_UID=MASTER.uid,
        BITGET_KEYS_VAULT_KEY="a long vault passphrase",
        PYTHONPATH=os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")])),
    )
    env.pop("BITGET_KEYS_REDIS_URL", None)
    return env


async def metrics_url(process: asyncio.subprocess.Process) -> str:
    """The URL apply says it serves its metrics at (its first lines on stderr)."""
    assert process.stderr is not None
    async with asyncio.timeout(PATIENCE):
        while line := (await process.stderr.readline()).decode():
            found = re.search(r"metrics at (http://\S+)", line)
            if found is not None:
                return found[1]
    pytest.fail("apply ended without saying where its metrics are")


async def scrape_while_running(
    process: asyncio.subprocess.Process, url: str
) -> dict[tuple[str, str], float]:
    """Scrape until a request has been counted, failing if apply ends first."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(PATIENCE):
        while process.returncode is None:
            async with session.get(url) as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                text = await response.text()
            for secret in (MASTER.secret_key.reveal(), MASTER.passphrase.reveal()):
                assert secret not in text
            scraped = samples(text)
            if any(name == "bitget_keys_requests_total" for name, _ in scraped):
                return scraped
            await asyncio.sleep(0.05)
    pytest.fail("apply ended before a request showed in its metrics")


async def test_apply_serves_metrics_while_it_runs(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    faults = Faults(latency=LATENCY)
    async with Emulator([MASTER], limits=Limits(), faults=faults) as emulator:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bitget_keys", "apply", str(plan), "--yes", "--json"),
            *("--base-url", emulator.base_url, "--metrics-port", "0"),
            *("--vault", str(tmp_path / "v.vault"), "--state", str(tmp_path / "s.state")),
            cwd=tmp_path,
            env=environment(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            url = await metrics_url(process)
            assert url.startswith("http://127.0.0.1:")
            assert url.endswith("/metrics")
            scraped = await scrape_while_running(process, url)
            async with asyncio.timeout(PATIENCE):
                out, err = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
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
    assert ("bitget_keys_ip_requests_last_minute", "") in scraped
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


async def test_metrics_port_in_use_exits_2(tmp_path: Path) -> None:
    """A port that cannot be listened on is a usage error, before anything is sent."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    holder = socket.create_server(("127.0.0.1", 0))  # listening, so the port is taken
    port = holder.getsockname()[1]
    try:
        async with Emulator([MASTER]) as emulator:
            process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bitget_keys", "apply", str(plan), "--yes", "--json"),
                *("--base-url", emulator.base_url, "--metrics-port", str(port)),
                *("--vault", str(tmp_path / "v.vault"), "--state", str(tmp_path / "s.state")),
                cwd=tmp_path,
                env=environment(tmp_path),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(PATIENCE):
                _, err = await process.communicate()
            assert emulator.audit.accepted == 0
    finally:
        holder.close()
    assert process.returncode == 2, err.decode()
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1" in err.decode()
