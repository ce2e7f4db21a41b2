"""Bad IP budgets are refused when made, naming the field and the rule."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bitget_keys.errors import ConfigurationError
from bitget_keys.limits import IPBudget, IPPolicy, Policy, RateLimitScheduler


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("policy", "even", "must be one of IPPolicy.EVEN, IPPolicy.ROLLING"),
        ("policy", None, "must be one of IPPolicy.EVEN, IPPolicy.ROLLING"),
        ("policy", Policy.SLIDING, "must be one of IPPolicy.EVEN, IPPolicy.ROLLING"),
        ("rate", math.nan, "must be a number that is positive"),
        ("rate", math.inf, "must be a number that is positive"),
        ("rate", "95", "must be a number that is positive"),
        ("rate", 0, "must be positive"),
        ("limit", 1.5, "must be a whole number of at least 1"),
        ("limit", True, "must be a whole number of at least 1"),
        ("limit", 0, "must be a whole number of at least 1"),
        ("window", -1.0, "must be positive"),
        ("share", "0.5", "must be a number that is more than 0 and at most 1"),
        ("share", None, "must be a number that is more than 0 and at most 1"),
        ("share", True, "must be a number that is more than 0 and at most 1"),
        ("share", 1.5, "must be more than 0 and at most 1"),
        ("share", 0.0, "must be more than 0 and at most 1"),
    ],
)
def test_a_bad_field_is_refused_naming_it(field: str, value: Any, rule: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        IPBudget(**{field: value})
    assert f"IPBudget.{field} {rule}" in str(refused.value)


def test_good_values_keep_their_meaning() -> None:
    budget = IPBudget(policy=IPPolicy.EVEN, rate=10, limit=100, window=60, share=0.5)
    assert (budget.effective_rate, budget.effective_limit) == (5.0, 50)


def test_a_scheduler_refuses_what_is_not_an_ip_budget() -> None:
    with pytest.raises(ConfigurationError, match="ip_budget must be an IPBudget or None"):
        RateLimitScheduler(ip_budget="x")  # type: ignore[arg-type]
