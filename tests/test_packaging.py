"""The public surface: version, exports."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import bitget_keys


def test_version_matches_metadata() -> None:
    """__version__ is the installed distribution's version."""
    assert bitget_keys.__version__ == importlib.metadata.version("bitget-keys")


@pytest.mark.parametrize(
    "module",
    [
        "bitget_keys",
        "bitget_keys.models",
        "bitget_keys.errors",
        "bitget_keys.limits",
        "bitget_keys.redis_limits",
        "bitget_keys.testing",
    ],
)
def test_all_is_complete(module: str) -> None:
    """Every public module's __all__ lists each name once, and every name exists."""
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(mod, name), name


def test_unknown_attribute() -> None:
    """A missing attribute raises AttributeError, as usual."""
    with pytest.raises(AttributeError):
        _ = bitget_keys.no_such_thing


def test_py_typed_is_shipped() -> None:
    """The package ships its types."""
    from importlib.resources import files

    assert (files("bitget_keys") / "py.typed").is_file()


#: What the flat ``bitget_keys/limits.py`` offered, then ``limits/scheduler.py``.
SCHEDULER_NAMES = [
    "ANY_UID",
    "DEFAULT_IP_BUDGET",
    "DelayLog",
    "IPBudget",
    "LaneStatistics",
    "Policy",
    "RateLimitScheduler",
    "SchedulerStatistics",
    "StormWatch",
    "bound_loop",
    "decayed_margin",
    "jitter",
    "lane_key",
    "mark_completed",
    "next_slot",
    "recent_jitter",
    "record_delay",
    "widened_margin",
]

#: Names users import from modules that were reorganised into packages; each must stay.
KEPT_NAMES = {
    "bitget_keys.limits": SCHEDULER_NAMES,
    "bitget_keys.limits.scheduler": SCHEDULER_NAMES,
    "bitget_keys.redis_limits": ["RedisRateLimitScheduler", "RedisSchedulerStatistics", "mask_url"],
    "bitget_keys.cli": ["main"],
}


@pytest.mark.parametrize("module", sorted(KEPT_NAMES))
def test_names_importable_before_the_packages_still_are(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in KEPT_NAMES[module] if not hasattr(mod, name)]
    assert missing == []


ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/bitget-keys/bitget-keys"


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def test_the_licence_is_shipped() -> None:
    """The MIT licence's text is in the repository and in every built distribution."""
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the bitget-keys authors" in text
    project = _project()
    assert project["license"] == "MIT"
    # hatchling puts license-files into the wheel's .dist-info/licenses/ and the sdist.
    assert project["license-files"] == ["LICENSE"]


def test_the_metadata_an_index_shows_is_present() -> None:
    project = _project()
    assert set(project["urls"]) == {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(url.startswith(REPOSITORY) for url in project["urls"].values())
    assert project["authors"]
    assert {"bitget", "api-keys", "asyncio"} <= set(project["keywords"])
    assert {
        "Intended Audience :: Developers",
        "Intended Audience :: Financial and Insurance Industry",
        "Topic :: Office/Business :: Financial :: Investment",
        "Operating System :: POSIX",
    } <= set(project["classifiers"])
    # PEP 639: the licence is the SPDX expression; a licence classifier beside it is an error.
    assert not any(c.startswith("License ::") for c in project["classifiers"])
    docs = project["optional-dependencies"]["docs"]
    assert any(requirement.startswith("mkdocs>=1.6") for requirement in docs), docs


def test_the_readme_opens_with_the_users_install_and_the_demo() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0] == "pip install bitget-keys"
    assert first_block.splitlines()[1].startswith("bitget-keys demo")
    # The developers' test command, which CI runs, follows.
    assert "python -m pytest " in readme.split("## ", 1)[0]


def test_the_readme_has_no_relative_link() -> None:
    """The package index shows the README away from the repository: links must be absolute."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme) + re.findall(
        r"^\[[^]]+\]:\s*(\S+)", readme, re.MULTILINE
    )
    targets += re.findall(r'(?:href|src)="([^"]+)"', readme)
    relative = [t for t in targets if not re.match(r"https://|mailto:|#", t)]
    assert targets
    assert relative == []
