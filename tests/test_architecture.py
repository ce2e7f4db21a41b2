"""
The package's layers and the one direction its imports run in.

    cli -> provision -> client -> limits -> primitives
           testing   -> client

A module may import its own layer and the layers below it, never one above: the
rate-limit scheduler knows nothing of the client, the client nothing of provisioning,
provisioning nothing of the command line. The emulator (``bitget_keys.testing``) stands
beside provisioning: it speaks the client's models and signatures, and only the command
line (``bitget-keys emulator``, the demo) uses it. Every import is counted, including
those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bitget_keys

PACKAGE = Path(bitget_keys.__file__).parent

# Most specific prefix first; the rank orders the layers (a module may import ranks <= its own).
LAYERS: tuple[tuple[str, str, int], ...] = (
    ("bitget_keys.cli", "cli", 5),
    ("bitget_keys.__main__", "cli", 5),
    ("bitget_keys.provision", "provision", 4),
    ("bitget_keys.lifecycle", "provision", 4),
    ("bitget_keys.testing", "testing", 4),
    ("bitget_keys._client", "client", 3),
    ("bitget_keys.models", "client", 3),
    ("bitget_keys._serde", "client", 3),
    ("bitget_keys._transport", "client", 3),
    ("bitget_keys._signing", "client", 3),
    ("bitget_keys._gate", "client", 3),
    ("bitget_keys.metrics", "client", 3),
    ("bitget_keys.limits", "limits", 2),
    ("bitget_keys.redis_limits", "limits", 2),
    ("bitget_keys.errors", "primitives", 1),
    ("bitget_keys._endpoints", "primitives", 1),
    ("bitget_keys._secret", "primitives", 1),
    ("bitget_keys._escape", "primitives", 1),
    ("bitget_keys._error_codes", "primitives", 1),
)


def layer_of(module: str) -> tuple[str, int]:
    for prefix, name, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return name, rank
    msg = f"{module} belongs to no layer: add it to LAYERS in {__name__}"
    raise AssertionError(msg)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str) -> set[str]:
    """Every ``bitget_keys`` module the file imports, wherever the import statement is."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from bitget_keys import models`` imports the module bitget_keys.models.
            found.update(f"{base}.{alias.name}" for alias in node.names)
            found.add(base)
    return {name for name in found if name.startswith("bitget_keys.")}


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    for path in sources():
        module = module_name(path)
        if module != "bitget_keys":
            layer_of(module)


@pytest.mark.parametrize("path", sources(), ids=module_name)
def test_imports_run_one_way(path: Path) -> None:
    module = module_name(path)
    if module == "bitget_keys":
        return  # the package's face re-exports from every layer
    own, rank = layer_of(module)
    upward = []
    for target in sorted(imported_modules(path, module)):
        if not any(target == p or target.startswith(p + ".") for p, _, _ in LAYERS):
            continue  # a name imported from a package's face, e.g. bitget_keys.limits.Policy
        name, target_rank = layer_of(target)
        if target_rank > rank or (target_rank == rank and name != own):
            upward.append(f"{target} ({name})")
    assert not upward, f"{module} ({own}) imports upward or sideways: {', '.join(upward)}"


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The check itself: a limits module importing the client is caught."""
    path = tmp_path / "scheduler.py"
    path.write_text("from bitget_keys._client import Client\n")
    targets = imported_modules(path, "bitget_keys.limits.scheduler")
    assert "bitget_keys._client" in targets
    assert layer_of("bitget_keys._client")[1] > layer_of("bitget_keys.limits.scheduler")[1]


MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300


@pytest.mark.parametrize("path", sources(), ids=module_name)
def test_modules_and_classes_stay_small(path: Path) -> None:
    """A module that outgrows 600 lines, or a class 300, is doing more than one job."""
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{module_name(path)}: split it by job"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
            lines = node.end_lineno - node.lineno + 1
            assert lines <= MAX_CLASS_LINES, f"{node.name} is {lines} lines"
