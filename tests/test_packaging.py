"""The public surface: version, exports."""

from __future__ import annotations

import importlib
import importlib.metadata

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
