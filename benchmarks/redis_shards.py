"""
Two ``bitget-keys apply --shard i/2 --redis URL`` processes whose plans share master UIDs.

The plan has 2·M accounts on M master UIDs, in pairs (two accounts with the same master
credentials, next to each other in the file), so ``--shard 1/2`` takes the first of each
pair and ``--shard 2/2`` the second: both processes provision every master at once, and
only Redis keeps them inside each UID's limits. Each account has S sub-accounts with K
keys each (the first made with its sub-account by batch-create, the other K-1 by
create-virtual-subaccount-apikey). The two processes are real ``bitget-keys apply`` runs
against the strict emulator (in a process of its own, HTTP on 127.0.0.1, no IP limit)
and a local redis-server.

Reported from the emulator's audit: the makespan, from the first request either process
sent to the last create's arrival, against the per-UID bound of one master's work (both
accounts: ``2·S`` sub-accounts in ``2·ceil(S/5)`` batches, ``2·S·(K-1)`` further keys),
computed as in ``benchmarks/provision_makespan.py`` with the 5% margin (``ratio``), and
with the sub-account list read that must come between a batch and its further keys
(``ratio_with_uid_reads``); the 429s; the densest 1000 ms window of any lane; and the
processes' wall time (start-up included). Run::

    python benchmarks/redis_shards.py [--masters 4] [--subaccounts 10] [--keys 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.provision_makespan import per_uid_bound
from bitget_keys import _endpoints as ep
from bitget_keys.testing import LaneAudit
from bitget_keys.testing._redis_server import RedisServer

WORKER = Path(__file__).resolve().parent.parent / "tests" / "limits" / "redis_worker.py"
VAULT_KEY = "benchmark vault passphrase"
CREATES = (ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS.name, ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY.name)


def _masters(count: int) -> list[dict[str, str]]:
    return [
        {
            "uid": str(6_100_000_000 + i),
            "api_key": f"bg_shard_master_{i:04d}",
            "secret_key": f"shard-master-secret-{i:04d}",
            "passphrase": f"ShardMaster{i:04d}",
        }
        for i in range(count)
    ]


def _name(index: int) -> str:
    """A distinct 8-letter sub-account name per index (Bitget's names are global)."""
    letters = []
    for _ in range(6):
        index, digit = divmod(index, 26)
        letters.append("abcdefghijklmnopqrstuvwxyz"[digit])
    return "sh" + "".join(reversed(letters))


def plan_text(masters: int, subaccounts: int, keys: int) -> str:
    """Two accounts per master, side by side, so the two shards split every pair."""
    blocks = ['[defaults]\nip_list = ["203.0.113.7"]\n']
    index = 0
    for master in range(masters):
        for half in "ab":
            blocks.append(
                f'[[accounts]]\nname = "desk{master}{half}"\ncredentials = "env:M{master}"\n'
            )
            for sub in range(subaccounts):
                blocks.append(
                    f'[[accounts.subaccounts]]\nname = "{_name(index)}"\nlabel = "{half}{sub}"\n'
                )
                index += 1
                for key in range(keys):
                    permissions = '["spot_trade"]' if key == 0 else '["read"]'
                    blocks.append(
                        f'[[accounts.subaccounts.keys]]\nlabel = "k{key}"\n'
                        f"permissions = {permissions}\n"
                    )
    return "\n".join(blocks)


def environment(rows: list[dict[str, str]]) -> dict[str, str]:
    environ = dict(os.environ)
    environ["BITGET_KEYS_VAULT_KEY"] = VAULT_KEY
    for master, row in enumerate(rows):
        environ |= {
            f"M{master}_API_KEY": row["api_key"],
            f"M{master}_SECRET_KEY": row["secret_key"],
            f"M{master}_PASSPHRASE": row["passphrase"],
            f"M{master}_UID": row["uid"],
        }
    return environ


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 120)).decode().strip()


async def run_once(
    redis_url: str | None, *, masters: int, subaccounts: int, keys: int, workdir: Path
) -> dict[str, Any]:
    """
    One sharded apply of the whole plan; figures from the emulator's audit. Without
    ``redis_url``, one process applies the whole plan with its in-memory scheduler (the
    control: what the same plan costs when one process owns every UID).
    """
    rows = _masters(masters)
    accounts = workdir / "accounts.json"
    accounts.write_text(json.dumps(rows))
    plan = workdir / "plan.toml"
    plan.write_text(plan_text(masters, subaccounts, keys))
    emulator = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "emulator",
        "--accounts",
        str(accounts),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    base_url = await _line(emulator)
    environ = environment(rows)
    started = time.monotonic()
    shards = [["--redis", redis_url, "--shard", f"{i}/2"] for i in (1, 2)] if redis_url else [[]]
    appliers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from bitget_keys.cli import main; sys.exit(main())",
            "apply",
            str(plan),
            "--base-url",
            base_url,
            *shard,
            "--vault",
            str(workdir / f"shard{index}.vault"),
            "--state",
            str(workdir / f"shard{index}.state"),
            "--json",
            "--yes",
            "--create-vault",
            env=environ,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for index, shard in enumerate(shards, start=1)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), 600) for p in appliers]
    wall = time.monotonic() - started
    assert emulator.stdin is not None
    emulator.stdin.write(b"stop\n")
    await emulator.stdin.drain()
    audit_out, _ = await asyncio.wait_for(emulator.communicate(), 120)
    lanes = json.loads(audit_out.decode().splitlines()[-1])
    statuses: dict[str, int] = {}
    for out, _ in outputs:
        for line in out.decode().splitlines():
            if line.startswith("{"):
                status = json.loads(line).get("status", "?")
                statuses[status] = statuses.get(status, 0) + 1
    first = min(at for lane in lanes.values() for at in lane["accepted"])
    last = max(
        at for key, lane in lanes.items() if key.split()[1] in CREATES for at in lane["accepted"]
    )
    makespan = (last - first) / 1000
    per_uid = 2 * subaccounts
    bound = per_uid_bound(per_uid, keys - 1, 0.05)
    bound_reads = per_uid_bound(per_uid, keys - 1, 0.05, masked=True)
    densest = {
        key: LaneAudit(accepted=lane["accepted"]).max_in_window() for key, lane in lanes.items()
    }
    over = sum(1 for key, n in densest.items() if n > ep.ENDPOINTS[key.split()[1]].rate)
    errors = [
        err.decode()[-500:]
        for (_, err), process in zip(outputs, appliers, strict=True)
        if process.returncode
    ]
    return {
        "run": "two shards through Redis" if redis_url else "one process, in memory (control)",
        "masters": masters,
        "accounts": 2 * masters,
        "subaccounts_per_account": subaccounts,
        "keys_per_subaccount": keys,
        "exit_codes": [p.returncode for p in appliers],
        "statuses": statuses,
        "makespan_s": round(makespan, 3),
        "per_uid_bound_s": round(bound, 3),
        "ratio": round(makespan / bound, 3),
        "per_uid_bound_with_uid_reads_s": round(bound_reads, 3),
        "ratio_with_uid_reads": round(makespan / bound_reads, 3),
        "429s": sum(lane["throttled"] for lane in lanes.values()),
        "lanes_over_n": over,
        "requests": sum(len(lane["accepted"]) for lane in lanes.values()),
        "wall_s": round(wall, 2),
        **({"errors": errors} if errors else {}),
    }


def run(
    masters: int, subaccounts: int, keys: int, runs: int, *, control: bool = False
) -> list[dict[str, Any]]:
    """
    ``runs`` sharded applies, each against a fresh redis-server and emulator (with
    ``control``, as many single-process applies).
    """
    results = []
    for _ in range(runs):
        with RedisServer() as server, tempfile.TemporaryDirectory(prefix="bk-shards-") as tmp:
            results.append(
                asyncio.run(
                    run_once(
                        None if control else server.url,
                        masters=masters,
                        subaccounts=subaccounts,
                        keys=keys,
                        workdir=Path(tmp),
                    )
                )
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--masters", type=int, default=4)
    parser.add_argument("--subaccounts", type=int, default=10, help="per account")
    parser.add_argument("--keys", type=int, default=3, help="per sub-account")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--control", action="store_true", help="also one process applying the whole plan"
    )
    args = parser.parse_args(argv)
    if args.subaccounts * 2 > 20 or math.ceil(args.subaccounts) < 1:
        parser.error("--subaccounts must be 1 to 10 (20 sub-accounts per master)")
    for control in (False, True) if args.control else (False,):
        for row in run(args.masters, args.subaccounts, args.keys, args.runs, control=control):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
