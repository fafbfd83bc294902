"""A recipe: an ordered list of technique steps, validated as a whole."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from compressor.errors import InvalidRecipeError
from compressor.formats.detect import ModelKind
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
        if techniques.count("low_rank") > 1:
            raise ValueError(
                "a recipe may factorize only once: a second low_rank would split factors"
            )
        _check_distillation_order(self.steps)
        if "weight_sharing" in techniques:
            later = techniques[techniques.index("weight_sharing") + 1 :]
            moving = [t for t in later if t in _UNSHARING]
            if moving:
                raise ValueError(
                    f"{moving[0]} after weight_sharing would move the weights off their shared "
                    "values: share weights after the steps that train or factorize them "
                    "(Deep Compression order: prune, heal, share, quantize)"
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


def check_recipe_for_kind(
    recipe: Recipe, kind: ModelKind, target: Target, *, inspection: dict[str, Any] | None = None
) -> None:
    """Refuse, before any work, what this kind of upload cannot go through.

    ``inspection``: the model's stored inspection; for an ONNX graph it says whether the
    graph converts to torch, which torch-stage steps need; ``kind: causal_lm`` marks a decoder
    LLM, which only the LLM runtimes serve with a KV cache.
    """
    from compressor.llm.rules import check_llm_recipe

    inspected = inspection or {}
    check_llm_recipe(
        recipe,
        target,
        causal_lm=inspected.get("kind") == "causal_lm",
        architecture=(inspected.get("causal_lm") or {}).get("architecture"),
    )
    if kind == "onnx":
        torch_steps = [s.technique for s in recipe.steps if handler_for(s).stage is Stage.TORCH]
        found = (inspection or {}).get("torch_conversion")
        # Only a failed check refuses: None means no generated shape ran in ONNX Runtime, and
        # the job converts on its own data instead.
        if torch_steps and isinstance(found, dict) and found.get("convertible") is False:
            blocked = found.get("blocking_ops") or []
            shapes = found.get("inputs_checked_shape") or {}
            raise InvalidRecipeError(
                f"step {torch_steps[0]!r} changes a torch model, but this ONNX graph cannot be "
                "converted to torch"
                + (f" (no converter for {', '.join(blocked)})" if blocked else "")
                + (
                    " at input shape "
                    + ", ".join(f"{name} {shape}" for name, shape in shapes.items())
                    if isinstance(shapes, dict) and shapes
                    else ""
                )
                + f": {found.get('reason')}; quantization steps still apply to it"
            )
        if target.runtime != "onnxruntime":
            raise InvalidRecipeError(
                "an ONNX upload runs on ONNX Runtime: set target.runtime to 'onnxruntime'"
            )
        from compressor.techniques.quantization import (
            QuantizationConfig,
            check_weight_only_graph,
        )

        ops = (inspection or {}).get("weight_ops")
        for step in recipe.steps:
            if isinstance(step, QuantizationConfig) and isinstance(ops, dict):
                check_weight_only_graph(step, ops)
    if kind == "architecture" and target.runtime != "onnxruntime":
        raise InvalidRecipeError(
            "an architecture.json + safetensors model is delivered as ONNX: set "
            "target.runtime to 'onnxruntime'"
        )


def check_target_fits_model(target: Target, *, inspection: dict[str, Any] | None) -> None:
    """Refuse a target the model cannot run at, for recipes and goals alike.

    Inspection records the limit where the upload fixes one: a Hugging Face model's position
    table (config.json ``max_position_embeddings``). Every job input is that many tokens long
    (padded), so past it the model fails mid-job. An ONNX graph's fixed input dimensions need no
    check here: its inputs are built at those dimensions, and a fixed batch is measured as is.
    """
    limit = (inspection or {}).get("max_sequence_length")
    if isinstance(limit, int) and target.sequence_length > limit:
        raise InvalidRecipeError(
            f"target.sequence_length {target.sequence_length} is longer than this model takes: "
            f"at most {limit} tokens (its config.json max_position_embeddings); submit with "
            f"target.sequence_length <= {limit}"
        )


# Steps that change weights in place: healing follows them, a derived student may not.
_RESHAPING = ("pruning", "structured_pruning", "nm_sparsity", "low_rank", "weight_sharing")
# Steps that set weights to new values: after weight sharing they would undo it. (Pruning and
# removing dead units only zero or drop weights, which keeps every layer's codebook.)
_UNSHARING = ("distillation", "low_rank")


def _check_distillation_order(steps: list[TechniqueConfig]) -> None:
    derived_at: int | None = None
    for index, step in enumerate(steps):
        if step.technique != "distillation":
            continue
        if step.student in ("derived", "uploaded"):
            if derived_at is not None:
                raise ValueError("a recipe may distil into a new student only once")
            earlier = [s.technique for s in steps[:index] if s.technique in _RESHAPING]
            if earlier:
                raise ValueError(
                    f"distillation into a new student must come before {earlier[0]}: the "
                    "student is a new, dense model that would discard that step's effect "
                    "(order: distill, prune or factorize, heal, quantize)"
                )
            derived_at = index
        elif not any(s.technique in _RESHAPING for s in steps[:index]):
            raise ValueError(
                "a healing distillation (student 'current') must follow a step that changes "
                f"weights ({', '.join(_RESHAPING)}): before one there is nothing to heal"
            )
