"""Knowledge distillation: train a smaller student (or heal the current model) against a teacher.

``student: derived`` builds the student from the uploaded model (fewer transformer layers, or
narrower MLP/CNN layers) and the model as it stands is the teacher. ``student: current`` heals:
the model left by earlier steps is the student, the original upload is the teacher.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from compressor.errors import UnsupportedModelError
from compressor.students import count_parameters, derive_student
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register
from compressor.training import (
    TrainData,
    TrainingConfig,
    agreement,
    distill,
    is_hf_model,
    train_data_from_inputs,
    train_data_from_texts,
)


class DistillationConfig(TrainingConfig, StepConfig):
    technique: Literal["distillation"] = "distillation"
    student: Literal["derived", "current", "uploaded"] = Field(
        "derived",
        description="'derived': a smaller copy of the model; 'current': heal the model left "
        "by earlier steps by distilling from the original upload; 'uploaded': train the model "
        "named by student_model_id (another upload) from this one.",
    )
    student_model_id: str | None = Field(
        None, max_length=64, description="With student 'uploaded': the student's model id."
    )
    num_layers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Transformers: layers the student keeps, evenly spaced with the last one "
        "(default: half).",
    )
    keep_every: int | None = Field(
        None, ge=2, le=64, description="Transformers: keep layers 0, k, 2k, ... (DistilBERT: 2)."
    )
    width: float | None = Field(
        None, gt=0.0, lt=1.0, description="MLP/CNN: fraction of hidden units kept (default 0.5)."
    )

    @model_validator(mode="after")
    def _student_shape(self) -> DistillationConfig:
        if self.num_layers is not None and self.keep_every is not None:
            raise ValueError("give num_layers or keep_every, not both")
        shaped = [n for n in ("num_layers", "keep_every", "width") if getattr(self, n) is not None]
        if self.student != "derived" and shaped:
            raise ValueError(
                f"{', '.join(shaped)} shape a derived student; "
                + ("healing ('current')" if self.student == "current" else "an uploaded student")
                + " keeps its own shape"
            )
        if (self.student == "uploaded") != (self.student_model_id is not None):
            raise ValueError("student_model_id goes with student 'uploaded', and only with it")
        return self

    def training(self) -> TrainingConfig:
        return TrainingConfig.model_validate(
            self.model_dump(include=set(TrainingConfig.model_fields))
        )


def training_data(state: ModelState, ctx: StepContext) -> TrainData:
    """The job's training data, else unlabelled texts (text models), else the calibration set."""
    if ctx.train is not None:
        return train_data_from_inputs(ctx.train)
    if ctx.texts and is_hf_model(state.module):
        from compressor.formats.hf import load_tokenizer

        tokenizer = load_tokenizer(state.source_dir)
        if tokenizer is None:
            raise UnsupportedModelError("training on texts needs the model's tokenizer files")
        names = [n for n in ctx.calibration.tensors if n != "labels"]
        return train_data_from_texts(
            tokenizer, ctx.texts, names, max_length=ctx.target.sequence_length
        )
    return train_data_from_inputs(ctx.calibration)


def original_model(state: ModelState, ctx: StepContext) -> torch.nn.Module:
    if ctx.original is not None:
        return ctx.original()  # type: ignore[no-any-return]
    if (state.source_dir / "config.json").is_file():
        from compressor.formats.hf import load_hf_model

        return load_hf_model(state.source_dir)  # type: ignore[no-any-return]
    raise UnsupportedModelError("healing needs the original model, which this job cannot reload")


def identity_layer_map(module: torch.nn.Module) -> list[tuple[int, int]]:
    layers = getattr(getattr(module, "config", None), "num_hidden_layers", None)
    return [(i, i) for i in range(layers + 1)] if isinstance(layers, int) else []


@register("distillation")
class DistillationHandler:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: DistillationConfig, target: Target) -> None:
        return None

    def apply(
        self, config: DistillationConfig, state: ModelState, ctx: StepContext
    ) -> dict[str, Any]:
        data = training_data(state, ctx)
        if config.student == "derived":
            # The teacher is the model as uploaded (or as left by earlier steps); derive_student
            # builds the student from a deep copy, so the teacher never changes.
            teacher = state.module
            from compressor.techniques.pruning.depgraph import example_inputs  # heavy: see depgraph

            student = derive_student(
                teacher,
                num_layers=config.num_layers,
                keep_every=config.keep_every,
                width=config.width if config.width is not None else 0.5,
                # Graphs other than a plain Sequential are narrowed by DepGraph, which traces
                # the channel couplings on example inputs.
                inputs=None if is_hf_model(teacher) else example_inputs(ctx.calibration),
            )
            module, layer_map, shape = student.module, student.layer_map, student.details
        elif config.student == "uploaded":
            if ctx.student is None:
                raise UnsupportedModelError("the uploaded student model was not provided")
            teacher = state.module
            module, layer_map = ctx.student(), []
            shape = {"kind": "uploaded", "model_id": config.student_model_id}
        else:
            teacher = original_model(state, ctx)
            module, layer_map = state.module, identity_layer_map(state.module)
            shape = {"kind": "heal"}
        if config.hidden_weight > 0 and not layer_map:
            raise UnsupportedModelError(
                "hidden-state matching needs transformer layers of equal width in teacher and "
                "student; set hidden_weight to 0 for this model"
            )
        curve = distill(
            teacher=teacher,
            student=module,
            data=data,
            config=config.training(),
            layer_map=layer_map,
            progress=ctx.progress,
        )
        state.module = module
        return {
            "student": config.student,
            "student_shape": shape,
            "teacher_parameters": count_parameters(teacher),
            "student_parameters": count_parameters(module),
            "agreement_on_training_data": agreement(teacher=teacher, student=module, data=data),
            "training": curve,
        }
