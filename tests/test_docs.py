"""
The documentation site's generated pages and API reference follow the code: every
command and option, exit code and environment variable is shown, and every public name
has a docstring.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from bitget_keys.cli import build_parser, environment, exits

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: The modules the API reference documents (docs/api/), each by its ``__all__``.
PUBLIC_MODULES = (
    "bitget_keys",
    "bitget_keys.errors",
    "bitget_keys.models",
    "bitget_keys.limits",
    "bitget_keys.redis_limits",
    "bitget_keys.testing",
    "bitget_keys.metrics",
)


def _generator(name: str) -> ModuleType:
    """A module of docs/gen, loaded from its file (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"docs_gen_{name}", DOCS / "gen" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages() -> ModuleType:
    return _generator("reference_pages")


def _parsers(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser``, found independently of the generator's walk."""
    found = [(words, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, (*words, name))
    return found


def test_cli_reference_shows_every_command_and_option(pages: ModuleType) -> None:
    text = pages.cli_reference()
    for words, parser in _parsers(build_parser()):
        heading = re.search(
            rf"^#+ `{re.escape(' '.join(('bitget-keys', *words)))}`$", text, re.MULTILINE
        )
        assert heading is not None, words
        section = text[heading.end() :].split("\n#", 1)[0]
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for option in action.option_strings:
                assert re.search(rf"`[^`]*{re.escape(option)}\b", section), (words, option)
            if action.help and not isinstance(action, argparse._SubParsersAction):
                first_words = " ".join(str(action.help).split()[:3])
                assert pages.markdown_text(first_words) in " ".join(section.split()), (
                    words,
                    action.dest,
                )


def test_cli_reference_shows_no_value_from_the_environment(
    pages: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defaults read from the environment (a Redis URL with its password) stay out."""
    monkeypatch.setenv("BITGET_KEYS_REDIS_URL", "redis://:pw-in-env-9f3@redis.internal:6379/0")
    monkeypatch.setenv("COLUMNS", "200")
    text = pages.cli_reference()
    assert "pw-in-env-9f3" not in text
    assert "redis.internal" not in text
    # Restored afterwards, for whatever runs next.

    assert os.environ["BITGET_KEYS_REDIS_URL"].endswith("/0")
    assert os.environ["COLUMNS"] == "200"
    # Wrapped at the reference's width, not the terminal's.
    usage = re.search(r"```text\nbitget-keys apply (.*?)```", text, re.DOTALL)
    assert usage is not None
    assert max(len(line) for line in usage[0].splitlines()) <= pages.WIDTH


def test_exit_code_page_lists_every_code_with_its_comment(pages: ModuleType) -> None:
    text = pages.exit_codes_page()
    comments = pages.exit_code_comments()
    assert set(comments) == {code.name for code in exits.ExitCode}
    for code in exits.ExitCode:
        row = re.search(rf"^\| {int(code)} \| `{code.name}` \| (.+) \|$", text, re.MULTILINE)
        assert row is not None, code
        assert row[1] == pages.markdown_text(comments[code.name])
        assert row[1]


def test_exit_code_page_lists_every_environment_variable(pages: ModuleType) -> None:
    text = pages.exit_codes_page()
    for variable in environment.VARIABLES:
        row = re.search(rf"^\| `{variable.name}` \| .+ \| (yes)? \|$", text, re.MULTILINE)
        assert row is not None, variable.name
        assert (row[1] == "yes") is variable.secret


def test_exit_code_comments_are_read_from_the_lines_above_each_member(
    pages: ModuleType,
) -> None:
    source = '''
class Codes(enum.IntEnum):
    """Docstring."""

    #: First line,
    #: second line.
    ONE = 1
    # an ordinary comment is not documentation
    TWO = 2
    #: Lost: a blank line follows.

    THREE = 3
'''
    assert pages.exit_code_comments(source) == {
        "ONE": "First line, second line.",
        "TWO": "",
        "THREE": "",
    }


def test_markdown_text_keeps_cells_and_markup_intact(pages: ModuleType) -> None:
    assert pages.markdown_text("a | b") == "a \\| b"
    assert pages.markdown_text("VAULT.damaged-<UTC time>") == "VAULT.damaged-&lt;UTC time&gt;"
    assert pages.markdown_text("$BITGET_BASE_URL") == "$BITGET\\_BASE\\_URL"
    assert pages.markdown_text("``--wait-lock``\n  and  more") == "`--wait-lock` and more"


def test_every_page_in_the_navigation_exists() -> None:
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    generated = {"reference/cli.md", "reference/exit-codes.md"}
    assert generated <= set(nav)
    missing = [page for page in nav if page not in generated and not (DOCS / page).is_file()]
    assert missing == []
    # And every page in docs/ is in the navigation.
    written = {
        str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md") if "gen" not in path.parts
    }
    assert written <= set(nav)


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module: str) -> None:
    """What the API reference shows: docstrings, and ``#:`` comments for constants."""
    pytest.importorskip("griffe", reason="the docs extra is not installed")
    package = _generator("comment_docstrings").load_package()
    loaded = package if module == "bitget_keys" else package[module.removeprefix("bitget_keys.")]
    names = importlib.import_module(module).__all__
    undocumented = [
        name
        for name in names
        if loaded[name].docstring is None or not loaded[name].docstring.value.strip()
    ]
    assert undocumented == []
    assert loaded.docstring is not None


def test_the_plan_file_reference_example_is_a_valid_plan() -> None:
    from bitget_keys.provision.plan import parse_plan

    text = (DOCS / "plan-file.md").read_text()
    example = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)[-1]
    environ = {
        f"DESK_{desk}_{field}": "Value12345678"
        for desk in "AB"
        for field in ("API_KEY", "SECRET_KEY", "PASSPHRASE")
    }
    environ |= {"ALPHA_READ_PASSPHRASE": "Passw0rd1234", "BROKER_KEY_PASSPHRASE": "Passw0rd1234"}
    plan = parse_plan(tomllib.loads(example), environ=environ)
    assert [account.name for account in plan.accounts] == ["desk-a", "desk-b"]
    assert plan.key_count == 3


def test_a_pipe_in_code_stays_in_its_table_cell(pages: ModuleType) -> None:
    markdown = pytest.importorskip("markdown", reason="the docs extra is not installed")
    cell = pages.markdown_text("the reader went away (``bitget-keys vault list | head``)")
    rendered = markdown.markdown(f"| A | B |\n| --- | --- |\n| 1 | {cell} |", extensions=["tables"])
    assert "<code>bitget-keys vault list | head</code>" in rendered
    assert rendered.count("<td>") == 2
