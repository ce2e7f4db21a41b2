"""
A griffe extension: an attribute's ``#:`` comment is its docstring.

The package documents its constants and attrs fields with ``#:`` comments on the lines
above them (the Sphinx convention), as in ``bitget_keys.cli.exits``; griffe reads only
string literals after an assignment. mkdocstrings loads this through ``mkdocs.yml``,
and ``tests/test_docs.py`` through `load_package`, so the API reference and the check
that every public name is documented see the same docstrings.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe


class CommentDocstrings(griffe.Extension):
    """Gives an attribute with no docstring the ``#:`` comment lines right above it."""

    def on_attribute_instance(
        self,
        *,
        node: ast.AST | griffe.ObjectNode,
        attr: griffe.Attribute,
        agent: griffe.Visitor | griffe.Inspector,
        **kwargs: Any,
    ) -> None:
        """Read the comment when the attribute came from source and has no docstring."""
        del node, agent, kwargs
        if attr.docstring is not None or attr.lineno is None:
            return
        try:
            lines = attr.lines_collection[attr.filepath]  # type: ignore[index]
        except (KeyError, TypeError):
            return
        comment: list[str] = []
        at = attr.lineno - 2  # the line above, counted from 0
        while at >= 0 and lines[at].strip().startswith("#:"):
            comment.insert(0, lines[at].strip().removeprefix("#:").strip())
            at -= 1
        if comment:
            attr.docstring = griffe.Docstring(
                "\n".join(comment), lineno=at + 2, endlineno=attr.lineno - 1, parent=attr
            )


def load_package(name: str = "bitget_keys") -> griffe.Module:
    """The package as the API reference shows it, ``#:`` comments included."""
    extensions = griffe.load_extensions(CommentDocstrings)
    loaded = griffe.load(name, extensions=extensions, resolve_aliases=True)
    if not isinstance(loaded, griffe.Module):
        msg = f"{name} is not a module"
        raise TypeError(msg)
    return loaded
