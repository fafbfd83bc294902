"""A recipe: an ordered list of technique steps, validated as a whole."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from compressor.errors import InvalidRecipeError
from compressor.target import Target
from compressor.techniques import TechniqueConfig
from compressor.techniques.base import Stage, handler_for


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[TechniqueConfig] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _order(self) -> Recipe:
        techniques = [s.technique for s in self.steps]
        if techniques.count("quantization") > 1:
            raise ValueError("a recipe may quantize only once")
        if "quantization" in techniques and techniques[-1] != "quantization":
            raise ValueError(
                "quantization must be the last step: later steps would undo or "
                "re-quantize its integer weights (Deep Compression order: prune, heal, quantize)"
            )
        return self

    def check_target(self, target: Target) -> None:
        """Raise InvalidRecipeError for anything known to fail on this target before running."""
        seen_onnx = False
        for step in self.steps:
            handler = handler_for(step)
            if handler.stage is Stage.ONNX:
                seen_onnx = True
            elif seen_onnx:
                raise InvalidRecipeError(
                    f"step {step.technique!r} acts on the torch model but follows an ONNX step"
                )
            handler.check(step, target)
