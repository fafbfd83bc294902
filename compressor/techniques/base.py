"""What every technique provides: an immutable config and a handler registered for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from compressor.inputs import EvalInputs
from compressor.target import Target


class StepConfig(BaseModel):
    """Base of every technique config: validated, frozen, versioned, no runtime state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    technique: str
    version: int = 1


class Stage(StrEnum):
    """Where a step acts: on the torch module, or on the exported ONNX graph."""

    TORCH = "torch"
    ONNX = "onnx"


@dataclass
class ModelState:
    """The model as it moves through a recipe. Steps replace fields; configs never change."""

    module: Any
    source_dir: Path
    workdir: Path
    onnx_path: Path | None = None


@dataclass
class StepContext:
    target: Target
    calibration: EvalInputs
    progress: Callable[[float], None] = field(default=lambda _f: None)
    # Training data for steps that train (distillation, healing); a "labels" entry, when
    # present, holds class labels. Without it they train on the calibration inputs.
    train: EvalInputs | None = None
    # Unlabelled sentences for text models, tokenized with the model's own tokenizer.
    texts: Sequence[str] | None = None
    # Returns a fresh copy of the uploaded model, the teacher when a later step heals.
    original: Callable[[], Any] | None = None
    # Loads the user's own student model (distillation with student 'uploaded').
    student: Callable[[], Any] | None = None
    # A later step distils into this step's result (student 'current'): it may cut deeper.
    healed_later: bool = False


class Handler(Protocol):
    stage: ClassVar[Stage]

    def check(self, config: Any, target: Target) -> None:
        """Raise InvalidRecipeError if the step cannot run on this target (before any work)."""

    def apply(self, config: Any, state: ModelState, ctx: StepContext) -> dict[str, Any]:
        """Transform ``state`` in place; return what the step did, for the report."""
        ...


_REGISTRY: dict[str, Handler] = {}


def register(technique: str) -> Callable[[type], type]:
    def wrap(handler_cls: type) -> type:
        _REGISTRY[technique] = handler_cls()
        return handler_cls

    return wrap


def handler_for(config: StepConfig) -> Handler:
    return _REGISTRY[config.technique]


def registered_techniques() -> list[str]:
    """Every technique with a handler (those imported by ``compressor.techniques``)."""
    return sorted(_REGISTRY)
