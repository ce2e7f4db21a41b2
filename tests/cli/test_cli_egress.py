"""``apply --egress NAME=PROXY_URL``, ``--ip-policy`` and ``--ip-share``."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import attrs
import pytest

from bitget_keys.cli import main
from bitget_keys.cli._parser import build_parser
from bitget_keys.cli.apply import egresses_of
from bitget_keys.errors import ConfigurationError
from bitget_keys.limits import DEFAULT_IP_BUDGET, IPBudget, IPPolicy, RateLimitScheduler
from bitget_keys.redis_limits import RedisRateLimitScheduler
from bitget_keys.testing import EmulatorAccount, Limits, LoopbackProxy
from tests.testing.watching import WatchingEmulator

MASTERS = [
    EmulatorAccount(
        uid=f"100000000{i}",
        api_key=f"bg_egress_master_{i}",
        secret_key=f"egress-master-secret-{i}",
        passphrase=f"EgressMaster{i}",
    )
    for i in range(4)
]
DESKS = "abcd"
PROXY_PASSWORD = "proxy-secret-9q8w7e"


ACCOUNT = """
[[accounts]]
name = "desk-{desk}"
credentials = "env:DESK_{upper}"
{egress}
[[accounts.subaccounts]]
name = "egress{desk}x"
label = "sub-{desk}"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]
"""


def plan_text(**egress: str) -> str:
    """The plan of every desk, ``a="NAME"`` naming desk-a's egress."""
    rows = [
        ACCOUNT.format(
            desk=desk,
            upper=desk.upper(),
            egress=f'egress = "{egress[desk]}"\n' if desk in egress else "",
        )
        for desk in DESKS
    ]
    return '[defaults]\nip_list = ["203.0.113.7"]\n' + "".join(rows)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for desk, master in zip(DESKS, MASTERS, strict=True):
        prefix = f"DESK_{desk.upper()}"
        monkeypatch.setenv(f"{prefix}_API_KEY", master.api_key)
        monkeypatch.setenv(f"{prefix}_SECRET_KEY", master.secret_key.reveal())
        monkeypatch.setenv(f"{prefix}_PASSPHRASE", master.passphrase.reveal())
        monkeypatch.setenv(f"{prefix}_UID", master.uid)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "a long vault passphrase")
    monkeypatch.delenv("BITGET_KEYS_EGRESS", raising=False)
    monkeypatch.delenv("BITGET_KEYS_REDIS_URL", raising=False)


def apply_args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["apply", "plan.toml", *extra])


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize(
    ("egress", "expected"),
    [
        # Round-robin in plan order: desk-a and desk-c through the first, b and d the second.
        ({}, ["127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"]),
        # desk-a names the second; the round-robin goes on over b, c and d.
        ({"a": "two"}, ["127.0.0.3", "127.0.0.2", "127.0.0.3", "127.0.0.2"]),
    ],
    ids=["round-robin", "named-in-plan"],
)
async def test_apply_over_two_egresses_sends_each_master_through_its_own_proxy(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], egress: dict[str, str], expected: list[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text(**egress))
    async with (
        WatchingEmulator(MASTERS, limits=Limits(per_uid=False)) as emulator,
        LoopbackProxy(source="127.0.0.2") as first,
        LoopbackProxy(source="127.0.0.3", auth=("desk", PROXY_PASSWORD)) as second,
    ):
        code = await asyncio.to_thread(
            main,
            [
                "apply",
                str(plan),
                "--base-url",
                emulator.base_url,
                "--vault",
                str(tmp_path / "v.vault"),
                "--create-vault",
                "--state",
                str(tmp_path / "s.state"),
                "--json",
                "--yes",
                "--egress",
                f"one={first.url}",
                "--egress",
                f"two={second.url}",
            ],
        )
        out, err = capfd.readouterr()
        assert code == 0, err
        rows = [json.loads(line) for line in out.splitlines()]
        assert sum(row["status"] == "created" for row in rows) == 8  # 4 sub-accounts, 4 keys
        seen = emulator.ips_by_key()
        assert {master.api_key: seen[master.api_key] for master in MASTERS} == {
            master.api_key: {ip} for master, ip in zip(MASTERS, expected, strict=True)
        }
        assert {ip for ip, _ in emulator.seen} == {"127.0.0.2", "127.0.0.3"}
        assert first.requests > 0
        assert second.requests > 0
        assert second.refused == 0
    assert PROXY_PASSWORD not in out + err


def test_egress_flags_give_each_proxy_its_own_scheduler_and_ip_budget() -> None:
    args = apply_args(
        "--egress",
        "eu-1=http://desk:pw-123456@10.0.0.5:3128",
        "--egress",
        "eu-2=https://10.0.0.6:3128",
        "--ip-policy",
        "rolling",
        "--ip-share",
        "0.5",
    )
    egresses = egresses_of(args)
    assert [(e.name, e.proxy) for e in egresses] == [
        ("eu-1", "http://desk:pw-123456@10.0.0.5:3128"),
        ("eu-2", "https://10.0.0.6:3128"),
    ]
    schedulers = [e.scheduler for e in egresses]
    assert all(isinstance(s, RateLimitScheduler) for s in schedulers)
    assert schedulers[0] is not schedulers[1]
    budget = attrs_evolved(policy=IPPolicy.ROLLING, share=0.5)
    assert [s._ip_budget for s in schedulers] == [budget, budget]  # type: ignore[union-attr]
    assert "pw-123456" not in repr(egresses)


def attrs_evolved(*, policy: IPPolicy | None = None, share: float | None = None) -> IPBudget:
    budget = DEFAULT_IP_BUDGET
    if policy is not None:
        budget = attrs.evolve(budget, policy=policy)
    if share is not None:
        budget = attrs.evolve(budget, share=share)
    return budget


def test_without_egresses_the_ip_flags_make_one_scheduler_and_nothing_keeps_the_default() -> None:
    (plain,) = egresses_of(apply_args())
    assert plain.scheduler is None  # the clients' shared default scheduler, as before
    assert plain.proxy is None
    (even,) = egresses_of(apply_args("--ip-policy", "even"))
    assert isinstance(even.scheduler, RateLimitScheduler)
    assert even.scheduler._ip_budget == attrs_evolved(policy=IPPolicy.EVEN)
    (shared,) = egresses_of(apply_args("--ip-share", "0.25"))
    assert isinstance(shared.scheduler, RateLimitScheduler)
    assert shared.scheduler._ip_budget == attrs_evolved(share=0.25)


async def test_with_redis_each_egress_shares_its_budget_under_its_name() -> None:
    redis = "redis://127.0.0.1:1/0"  # never connected to: the schedulers are only made
    proxied = egresses_of(
        apply_args(
            "--redis",
            redis,
            "--egress",
            "a=http://10.0.0.5:3128",
            "--egress",
            "b=http://10.0.0.6:1",
        )
    )
    named = egresses_of(apply_args("--redis", redis, "--egress", "office", "--ip-share", "0.5"))
    try:
        assert [type(e.scheduler) for e in proxied] == [RedisRateLimitScheduler] * 2
        assert [e.scheduler._egress for e in proxied] == ["a", "b"]  # type: ignore[union-attr]
        (office,) = named
        assert isinstance(office.scheduler, RedisRateLimitScheduler)
        assert office.scheduler._egress == "office"
        assert office.proxy is None
        assert office.scheduler._ip_budget == attrs_evolved(share=0.5)
    finally:
        for egress in [*proxied, *named]:
            await egress.aclose()


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--egress", "office"], "give --redis as well"),
        (["--egress", "a=http://10.0.0.5:1", "--egress", "b"], "not both"),
        (["--redis", "redis://h", "--egress", "a", "--egress", "b"], "give --egress NAME once"),
        (["--egress", "a=http://10.0.0.5:1", "--egress", "a=http://10.0.0.6:1"], "repeated: a"),
        (["--egress", "eu 1=http://10.0.0.5:3128"], "egress must be named by"),
        (["--egress", "=http://10.0.0.5:3128"], "egress must be named by"),
    ],
)
def test_inconsistent_egresses_are_refused(flags: list[str], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        egresses_of(apply_args(*flags))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("eu=socks5://desk:pw-123456@10.0.0.5:1080", "SOCKS proxies are not supported"),
        ("eu=http://desk:pw-123456@10.0.0.5:3128/x", "no path or query"),
        ("eu=10.0.0.5:3128", "must start with http:// or https://"),
    ],
)
def test_malformed_egress_values_exit_64_without_showing_passwords(
    value: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        apply_args("--egress", value)
    assert exited.value.code == 64
    err = capsys.readouterr().err
    assert problem in err
    assert "pw-123456" not in err


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1", "half", "nan"])
def test_ip_share_must_be_a_fraction(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        apply_args("--ip-share", value)
    assert "expected a fraction" in capsys.readouterr().err


def test_ip_policy_takes_even_or_rolling(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        apply_args("--ip-policy", "burst")
    assert "invalid choice" in capsys.readouterr().err


def test_a_proxy_url_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EU1_PROXY", "http://desk:pw-123456@10.0.0.5:3128")
    args = apply_args("--egress", "eu-1=env:EU1_PROXY", "--egress", "eu-2=http://10.0.0.6:1")
    assert args.egress == [
        ("eu-1", "http://desk:pw-123456@10.0.0.5:3128"),
        ("eu-2", "http://10.0.0.6:1"),
    ]
    monkeypatch.delenv("EU1_PROXY")
    with pytest.raises(SystemExit):
        apply_args("--egress", "eu-1=env:EU1_PROXY")
    assert "'EU1_PROXY' holding its proxy is unset" in capsys.readouterr().err
    monkeypatch.setenv("EU1_PROXY", "socks5://desk:pw-123456@10.0.0.5:1080")
    with pytest.raises(SystemExit):
        apply_args("--egress", "eu-1=env:EU1_PROXY")
    err = capsys.readouterr().err
    assert "SOCKS proxies are not supported" in err
    assert "pw-123456" not in err


@pytest.mark.usefixtures("environment")
def test_an_egress_the_plan_names_must_be_given_to_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before any lock, vault or request: the account and the known names are told."""
    (tmp_path / "plan.toml").write_text(plan_text(b="three"))
    unreachable = ("--base-url", "http://127.0.0.1:1", "--yes", "--json")
    code = main(
        [
            *("apply", "plan.toml", *unreachable),
            *("--egress", "one=http://127.0.0.1:2", "--egress", "two=http://127.0.0.1:3"),
        ]
    )
    assert code == 78
    err = capsys.readouterr().err
    assert "desk-b (accounts[1]) names egress 'three': apply's egresses are one, two" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plan.toml"]
    # Without --egress, apply has one egress, "default".
    assert main(["apply", "plan.toml", *unreachable]) == 78
    assert "apply's egresses are default;" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plan.toml"]


@pytest.mark.usefixtures("environment")
async def test_plan_shows_a_plan_that_names_egresses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan` takes no --egress: any well-formed name is accepted; apply checks it."""
    (tmp_path / "plan.toml").write_text(plan_text(a="eu-1", c="eu-2"))
    async with WatchingEmulator(MASTERS) as emulator:
        code = await asyncio.to_thread(
            main, ["plan", str(tmp_path / "plan.toml"), "--base-url", emulator.base_url]
        )
    out = capsys.readouterr().out
    assert code == 0
    assert any(line.startswith("desk-c:") for line in out.splitlines())
