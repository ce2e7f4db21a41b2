"""The public surface: version, exports."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

import bitget_keys


def test_version_matches_metadata() -> None:
    """__version__ is the installed distribution's version."""
    assert bitget_keys.__version__ == importlib.metadata.version("bitget-keys")


@pytest.mark.parametrize("module", ["bitget_keys", "bitget_keys.models", "bitget_keys.errors"])
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
