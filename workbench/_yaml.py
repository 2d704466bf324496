"""Reading YAML that users hand us: no anchors or aliases, and bounded size, nesting and node count.

PyYAML's ``safe_load`` builds only plain Python values, but it still expands aliases: a few hundred
bytes of nested aliases ("billion laughs") become a structure of billions of items once walked.
:func:`compose_yaml` refuses anchors and aliases as the parser meets them, and stops at a size,
depth and node-count cap, so a hostile value is rejected in milliseconds, before anything runs.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_VALUE_BYTES = 64 * 1024
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000


class UnsafeYAMLError(ValueError):
    """YAML that uses anchors/aliases or exceeds a size, depth or node-count cap."""


def _where(mark: Any) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases and counts nodes and depth while composing."""

    max_depth = MAX_DEPTH
    max_nodes = MAX_NODES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise UnsafeYAMLError(
                f"YAML aliases (*{event.anchor}) are not accepted{_where(event.start_mark)}; "
                "write the value out in full"
            )
        if getattr(event, "anchor", None):
            raise UnsafeYAMLError(
                f"YAML anchors (&{event.anchor}) are not accepted{_where(event.start_mark)}; "
                "remove the anchor and write each value out in full"
            )
        self._nodes += 1
        if self._nodes > self.max_nodes:
            raise UnsafeYAMLError(
                f"YAML with more than {self.max_nodes} items is not accepted{_where(event.start_mark)}; "
                "pass large data as a file (a Path parameter) instead"
            )
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise UnsafeYAMLError(
                    f"YAML nested deeper than {self.max_depth} levels is not accepted"
                    f"{_where(event.start_mark)}; flatten the value"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose_yaml(
    text: str, *, max_bytes: int = MAX_VALUE_BYTES, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> yaml.Node | None:
    """The YAML node tree of ``text`` (``None`` when it is empty), refusing anything unsafe.

    Parameters
    ----------
    text : str
        One YAML document.
    max_bytes, max_depth, max_nodes : int
        Caps on the UTF-8 size of ``text``, the nesting depth and the number of nodes.

    Returns
    -------
    yaml.Node or None
        The composed (not yet constructed) document; scalars keep the text as written.

    Raises
    ------
    UnsafeYAMLError
        For anchors, aliases, or a cap exceeded; the message says what to change.
    yaml.YAMLError
        For text that is not YAML.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise UnsafeYAMLError(
            f"YAML of {size} bytes is over the {max_bytes}-byte limit; "
            "pass large data as a file (a Path parameter) instead"
        )
    loader = _SafeLoader(text)
    loader.max_depth, loader.max_nodes = max_depth, max_nodes
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def construct_yaml(node: yaml.Node | None) -> Any:
    """Plain Python values (as ``yaml.safe_load`` builds them) for a node from :func:`compose_yaml`."""
    if node is None:
        return None
    loader = _SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(text: str, **caps: int) -> Any:
    """``yaml.safe_load`` without anchors or aliases and within the caps of :func:`compose_yaml`."""
    return construct_yaml(compose_yaml(text, **caps))
