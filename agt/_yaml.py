"""YAML for files a user (or an agent) may have written: PyYAML's safe loader, with bounded aliases.

An alias is a reference, so a few hundred bytes of aliases to aliases ("billion laughs") describe a
document of billions of nodes. PyYAML composes it cheaply, but anything that then walks it (validation,
hashing, a condition compiler) takes minutes or exhausts memory. :class:`BoundedLoader` measures the
composed node graph once, before anything is constructed, and refuses a document that

* expands (every alias counted as the copy it stands for) to more than ``MAX_NODES`` nodes,
* nests deeper than ``MAX_DEPTH`` levels once expanded, or
* refers to itself (a recursive alias).

The refusal is a :class:`yaml.MarkedYAMLError`, so callers' existing handlers report it with its line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_NODES = 100_000
"""Nodes a document may expand to: policies and suites are far smaller; a bomb is far larger."""

MAX_DEPTH = 64
"""Levels of nesting a document may have once expanded."""


class YamlBombError(yaml.composer.ComposerError):
    """A document refused for its expanded size, depth, or a recursive alias."""


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_expansion(root: Node, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Raise YamlBombError unless ``root`` expands to at most ``max_nodes`` nodes ``max_depth`` deep.

    One iterative pass over the graph (each shared node measured once), so the check itself costs
    the size of the file, not of its expansion, and cannot overflow the stack."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            if size[key] > max_nodes:
                raise YamlBombError(None, None, f"the document expands to more than {max_nodes:,} nodes "
                                    "(aliases count as copies)", node.start_mark)
            if height[key] > max_depth:
                raise YamlBombError(None, None, f"the document nests deeper than {max_depth} levels", node.start_mark)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise YamlBombError(None, None, "a recursive alias (a node that contains itself)", node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node))


class BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses alias bombs, deep nesting and recursive aliases (see the module doc)."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        # PyYAML composes recursively: refuse deep nesting here, with its line, before the stack runs out.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlBombError(None, None, f"the document nests deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node:
        node = super().compose_document()
        check_expansion(node)
        return node


def safe_load(text: str | bytes) -> Any:
    """``yaml.safe_load`` with :class:`BoundedLoader`. Raises yaml.YAMLError (a MarkedYAMLError with the
    line for a refused document)."""
    return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - a SafeLoader subclass
