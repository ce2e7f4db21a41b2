"""Plan problems carry the line of the file they are at."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitget_keys.errors import PlanError
from bitget_keys.provision.plan import PlanProblem, load_plan
from bitget_keys.provision.plan_lines import line_of, locations

from .test_plan import ENV, PLAN_TOML


def _lines(text: str) -> dict[str, int]:
    return {line.strip(): number for number, line in enumerate(text.splitlines(), start=1)}


def _load(tmp_path: Path, text: str) -> tuple[PlanProblem, ...]:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(PlanError) as info:
        load_plan(path, environ=ENV)
    problems = info.value.problems
    assert all(isinstance(problem, PlanProblem) for problem in problems)
    return problems  # type: ignore[return-value]


def test_each_problem_names_its_line(tmp_path: Path) -> None:
    """Unknown keys, broken rules and missing keys are located by line as well as by path."""
    text = (
        PLAN_TOML.replace('name = "alphabot"', 'name = "alpha"')
        .replace('label = "read"', 'label = "read"\nlable = "typo"')
        .replace("copy_api_key = true", 'copy_api_key = true\ncolour = "red"')
    )
    at = _lines(text)
    problems = _load(tmp_path, text)
    assert {(p.field, p.line) for p in problems} == {
        ("accounts[0].subaccounts[0].name", at['name = "alpha"']),
        ("accounts[0].subaccounts[0].keys[1].lable", at['lable = "typo"']),
        ("accounts[1].colour", at['colour = "red"']),
    }
    shown = str(problems[0])
    assert shown.endswith(f"(line {problems[0].line})")


def test_a_missing_key_is_located_at_its_table(tmp_path: Path) -> None:
    """A key that is not written is named at the header of the table it belongs in."""
    text = PLAN_TOML.replace('permissions = ["read"]\n', "")
    (problem,) = _load(tmp_path, text)
    assert problem.field == "accounts[0].subaccounts[0].keys[1].permissions"
    header = [
        n for n, line in enumerate(text.splitlines(), 1) if "accounts.subaccounts.keys" in line
    ]
    assert problem.line == header[1]


def test_a_list_entry_is_located_at_its_key(tmp_path: Path) -> None:
    """An entry of a list written over several lines is named at the list's key."""
    text = PLAN_TOML.replace(
        'ip_list = ["203.0.113.7"]\nperm_type', 'ip_list = [\n  "10.0.0.1",\n]\nperm_type'
    )
    problems = _load(tmp_path, text)
    assert ("defaults.ip_list[0]", 3) in {(p.field, p.line) for p in problems}


TRICKY = '''\
[defaults]
ip_list = [
  # [[accounts]] in a comment
  "203.0.113.7", # ]
]
note = """
[[accounts]]
name = "fake"
"""

[[accounts]]
"name" = "desk-a"  # a quoted key

[[ accounts . subaccounts ]]
name = 'a[b'

[[accounts]]
name = "desk-b"
[accounts.extra]
colour = "red"

[[accounts.subaccounts]]
label = "x"
'''


def test_arrays_strings_and_comments_do_not_confuse_the_count() -> None:
    """Brackets in lists, strings and comments neither open tables nor count entries."""
    found = locations(TRICKY)
    assert found["defaults.ip_list"] == 2
    assert found["defaults.note"] == 6
    assert found["accounts[0]"] == 11
    assert found["accounts[0].name"] == 12
    assert found["accounts[0].subaccounts[0]"] == 14
    assert found["accounts[0].subaccounts[0].name"] == 15
    assert found["accounts[1].name"] == 18
    assert found["accounts[1].extra.colour"] == 20
    assert found["accounts[1].subaccounts[0].label"] == 23
    assert "accounts[2]" not in found
    assert line_of("accounts[1].subaccounts[0].keys[3].label", found) == 22
    assert line_of("accounts[5].name", found) is None


def test_parsed_plans_have_no_lines() -> None:
    """Problems of data that was never text are located by path alone, as before."""
    from bitget_keys.provision.plan import parse_plan

    with pytest.raises(PlanError) as info:
        parse_plan({"accounts": [], "colour": 1}, environ=ENV)
    assert not any(isinstance(p, PlanProblem) for p in info.value.problems)


def test_a_text_the_scan_misreads_still_gives_its_problems(tmp_path: Path) -> None:
    """
    ``'''`` inside an ordinary string makes the scan take a multi-line string's body for
    keys; one of them is no valid key. The plan's problems are still reported.
    """
    text = "a = \"'''\"\nb = '''\n\"\\q\" = 1\n'''\n[[accounts]]\nname = \"x\"\n"
    problems = _load(tmp_path, text)
    assert sorted((p.field, p.rule) for p in problems) == [
        ("a", "unknown setting"),
        ("accounts[0].credentials", "is required"),
        ("b", "unknown setting"),
    ]
