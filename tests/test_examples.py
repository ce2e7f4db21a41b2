"""Every script in examples/ runs against the bundled emulator and prints what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

#: Each script, and lines its output must hold (regular expressions).
EXPECTED: dict[str, tuple[str, ...]] = {
    "create_subaccount_key.py": (
        r"^sub-account \d+ \(alpha\) has keys: alpha, read$",
        r"^stored 2 secrets, shown as \*{8}$",
    ),
    "batch_subaccounts.py": (
        r"^created 12 sub-accounts in 3 calls over \d+\.\d s$",
        r"^listed 12 sub-accounts; the emulator throttled 0$",
    ),
    "shared_scheduler.py": (
        (
            r"^urgent read answered after \d+\.\d\d s, ahead of (?P<behind>\d+) "
            r"of the (?P<waiting>\d+) bulk reads not yet answered when it was sent$"
        ),
        r"^bulk reads done after \d+\.\d\d s; throttled: 0$",
    ),
    "handle_errors.py": (
        r"^refused before sending: name, passphrase, ip_list\[0\]$",
        r"^outcome unknown, reconciled: key bg_\w+ exists but its secret never arrived",
    ),
    "test_with_emulator.py": (r"^2 passed in ",),
    "provision_plan.py": (
        r"^first run: 9 created$",
        r"^second run: 9 unchanged$",
        r"^the vault holds 6 keys with their secrets$",
    ),
}


def test_every_example_is_run() -> None:
    """A new script in examples/ needs its expected output here, so it is run too."""
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for pattern in EXPECTED[script]:
        found = re.search(pattern, done.stdout, re.MULTILINE)
        assert found is not None, f"{pattern!r} not in:\n{done.stdout}"
        if "behind" in found.groupdict():
            # Priority 10 puts the urgent read first in the lane's queue: of the bulk
            # reads still unanswered when it was sent, only one already on the wire
            # may be answered first.
            waiting = int(found["waiting"])
            assert waiting >= 1, done.stdout
            assert int(found["behind"]) >= waiting - 1, done.stdout
