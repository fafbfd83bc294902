"""How long a string an inspection may hold. An inspection shows strings the upload chose
(graph and producer names, config values); a converted executable upload's could hold whatever
its loader read, so none comes back whole. Input and output names are how a model is fed: a
longer one is refused where it is read rather than shortened into one the graph lacks."""

from __future__ import annotations

from typing import Any, TypeVar, cast

TEXT_CHARS = 200  # names shown to people: graph, producer, opset domain
NAME_CHARS = 256  # input and output names, and any other string in an inspection

T = TypeVar("T")


def bounded(text: str, limit: int = TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_tree(value: T) -> T:
    """`value` with every string in it, dict keys included, no longer than NAME_CHARS."""
    found: Any = value
    if isinstance(found, str):
        found = bounded(found, NAME_CHARS)
    elif isinstance(found, dict):
        found = {bounded_tree(k): bounded_tree(v) for k, v in found.items()}
    elif isinstance(found, list | tuple):
        found = [bounded_tree(v) for v in found]
    return cast(T, found)
