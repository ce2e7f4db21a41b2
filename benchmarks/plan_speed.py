"""
How long ``bitget-keys plan`` takes against a no-op ``bitget-keys apply --yes`` on the
same masters: both read every master's live state once, so they should take about as
long (the target: plan within 1.2x of the no-op apply).

``--masters`` master accounts (20), each with ``--subaccounts`` sub-accounts (20) of
``--keys`` keys (1), are served by ``bitget-keys emulator`` in a child process on
127.0.0.1 with Bitget's per-UID limits (and its per-IP limit). The plan is applied once
to set up; then each round runs ``plan`` and a no-op ``apply --yes`` (in alternating
order) as child processes, exactly as an operator runs them, piped, and times each from
start to exit, interpreter start-up included. The medians and their ratio are printed,
then one JSON line::

    python benchmarks/plan_speed.py
    python benchmarks/plan_speed.py --masters 20 --subaccounts 20 --rounds 3
    python benchmarks/plan_speed.py --terminal

With ``--terminal`` each round also runs the no-op apply in an 80x24 pseudo-terminal
(`pexpect`), where it draws the live display: with ``--yes``, and without it (apply then
shows the changes first; with none, it asks nothing). Each is timed as above against the
piped no-op apply (the target: within 1.2x).

Each round sends about ``2 x masters x (subaccounts + 4)`` requests; at the defaults
three rounds stay well inside the emulator's 6,000 a minute per IP.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VAULT_KEY = "plan speed vault passphrase"


def name_of(number: int) -> str:
    """An 8-letter sub-account name, unique per number."""
    letters = ""
    for _ in range(8):
        number, digit = divmod(number, 26)
        letters += string.ascii_lowercase[digit]
    return letters


def write_accounts(path: Path, masters: int) -> None:
    rows = [
        f'[[accounts]]\nuid = "{1_000_000_000 + index}"\napi_key = "bg_speed_{index}"\n'
        f'secret_key = "speed-secret-{index}"\npassphrase = "SpeedPass{index:03d}"\n'
        for index in range(masters)
    ]
    path.write_text("\n".join(rows))


def write_plan(path: Path, masters: int, subaccounts: int, keys: int) -> None:
    parts = ['[defaults]\nip_list = ["203.0.113.7"]\n']
    for index in range(masters):
        parts.append(f'[[accounts]]\nname = "desk-{index}"\ncredentials = "env:SPEED_{index}"\n')
        for sub in range(subaccounts):
            number = index * 100 + sub
            parts.append(
                f'[[accounts.subaccounts]]\nname = "{name_of(number)}"\nlabel = "s{number}"\n'
            )
            parts += [
                f'[[accounts.subaccounts.keys]]\nlabel = "k{key}"\npermissions = ["read"]\n'
                for key in range(keys)
            ]
    path.write_text("\n".join(parts))


def environment(masters: int) -> dict[str, str]:
    env = dict(os.environ)
    for index in range(masters):
        env[f"SPEED_{index}_API_KEY"] = f"bg_speed_{index}"
        env[f"SPEED_{index}_SECRET_KEY"] = f"speed-secret-{index}"
        env[f"SPEED_{index}_PASSPHRASE"] = f"SpeedPass{index:03d}"
        env[f"SPEED_{index}_UID"] = str(1_000_000_000 + index)
    env["BITGET_KEYS_VAULT_KEY"] = VAULT_KEY
    env.pop("BITGET_BASE_URL", None)
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run ``bitget-keys ARGV`` to its exit, piped; its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this interpreter running bitget-keys
        [sys.executable, "-m", "bitget_keys", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        msg = f"bitget-keys {' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}"
        raise RuntimeError(msg)
    return elapsed


def timed_terminal(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run ``bitget-keys ARGV`` to its exit in an 80x24 pseudo-terminal; its wall time."""
    import pexpect  # only --terminal needs it (the test extra)

    started = time.perf_counter()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "bitget_keys", *argv],
        dimensions=(24, 80),
        env=env | {"TERM": "xterm-256color"},
        cwd=str(cwd),
        encoding="utf-8",
        timeout=600,
    )
    output = child.read()
    child.close()
    elapsed = time.perf_counter() - started
    if child.exitstatus != 0:
        msg = f"bitget-keys {' '.join(argv)} exited {child.exitstatus}: {output[-2000:]}"
        raise RuntimeError(msg)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masters", type=int, default=20)
    parser.add_argument("--subaccounts", type=int, default=20)
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--terminal", action="store_true", help="also time the no-op apply on a terminal"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plan-speed-") as folder:
        work = Path(folder)
        write_accounts(work / "accounts.toml", args.masters)
        write_plan(work / "plan.toml", args.masters, args.subaccounts, args.keys)
        env = environment(args.masters)
        server = subprocess.Popen(  # noqa: S603 - as above
            [
                sys.executable,
                "-m",
                "bitget_keys",
                "emulator",
                "--port",
                "0",
                "--accounts",
                str(work / "accounts.toml"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            common = ["--base-url", url]
            files = ["--vault", "v.vault", "--state", "s.state"]
            setup = timed(
                ["apply", "plan.toml", *common, *files, "--yes", "--create-vault"], env, work
            )
            plans: list[float] = []
            applies: list[float] = []
            on_terminal: dict[str, list[float]] = {"--yes": [], "asked": []}
            for number in range(args.rounds):
                runs = [
                    (plans, ["plan", "plan.toml", *common, "--vault", "v.vault"], timed),
                    (applies, ["apply", "plan.toml", *common, *files, "--yes"], timed),
                ]
                if args.terminal:
                    apply = ["apply", "plan.toml", *common, *files]
                    runs += [
                        (on_terminal["--yes"], [*apply, "--yes"], timed_terminal),
                        (on_terminal["asked"], apply, timed_terminal),
                    ]
                for times, argv, run in runs if number % 2 == 0 else runs[::-1]:
                    times.append(run(argv, env, work))
        finally:
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=30)
    plan_s, apply_s = statistics.median(plans), statistics.median(applies)
    print(f"setup apply: {setup:.2f} s")
    print(f"plan:          {plan_s:.2f} s (runs {', '.join(f'{t:.2f}' for t in plans)})")
    print(f"no-op apply:   {apply_s:.2f} s (runs {', '.join(f'{t:.2f}' for t in applies)})")
    print(f"plan / apply:  {plan_s / apply_s:.2f}x (target <= 1.2x)")
    terminal = {way: statistics.median(times) for way, times in on_terminal.items() if times}
    for way, median in terminal.items():
        each = ", ".join(f"{t:.2f}" for t in on_terminal[way])
        print(
            f"no-op apply on a terminal ({way}): {median:.2f} s (runs {each}), "
            f"{median / apply_s:.2f}x piped (target <= 1.2x)"
        )
    print(
        json.dumps(
            {
                "masters": args.masters,
                "subaccounts": args.subaccounts,
                "keys": args.keys,
                "plan_s": round(plan_s, 3),
                "noop_apply_s": round(apply_s, 3),
                "ratio": round(plan_s / apply_s, 3),
                "plan_runs": [round(t, 3) for t in plans],
                "apply_runs": [round(t, 3) for t in applies],
                **{
                    f"terminal_{way.strip('-')}_s": round(median, 3)
                    for way, median in terminal.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
