"""The named inputs of a model built from ``architecture.json`` (zoo families and library
networks alike); below both, so neither imports the other for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INPUT_NAME = "input"


@dataclass(frozen=True)
class InputSpec:
    """One named model input; ``None`` in shape is the batch dimension."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
