"""Where a stored baseline's files live in storage: one object per measurement for its outputs,
and one beside it for the original's ONNX export where the job kept it."""

from __future__ import annotations

import uuid
from typing import Any


def outputs_key(key: str) -> str:
    """A new object per measurement: two jobs storing one key at once never mix their files."""
    return f"baselines/{key}/{uuid.uuid4()}.npz"


def graph_key(outputs: str) -> str:
    """The original's ONNX export, beside the outputs of the same measurement."""
    return outputs.removesuffix(".npz") + ".onnx"


def stored_objects(outputs: str, figures: dict[str, Any]) -> list[str]:
    """The storage objects of one stored baseline."""
    return [outputs, *([graph_key(outputs)] if figures.get("graph") else [])]
