"""Distillation training shared by every technique that trains: teacher targets, student loss.

A teacher is any module; its outputs are the targets, so the data may be unlabelled. Logits
(classifiers) are matched by temperature-scaled KL divergence, embedding models (whose first
output is ``last_hidden_state``) by cosine distance of mean-pooled embeddings plus MSE on
hidden states. Cross-entropy joins in when the data carries ``labels``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from compressor.errors import UnsupportedModelError
from compressor.inputs import EvalInputs

LABELS = "labels"

# Set by the pipeline for the job's steps, so every technique that trains follows the target
# without each one taking a device argument. Modules stay on the CPU between steps.
_DEVICE: ContextVar[torch.device | None] = ContextVar("training_device", default=None)


@contextlib.contextmanager
def training_on(device: torch.device) -> Iterator[None]:
    """Steps run inside this train (distill) and compare (agreement) on ``device``."""
    if device.type == "cuda":
        # Deterministic cuBLAS needs a fixed workspace; read when the first handle is made.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    token = _DEVICE.set(device)
    try:
        yield
    finally:
        _DEVICE.reset(token)


def training_device() -> torch.device:
    return _DEVICE.get() or torch.device("cpu")


@contextlib.contextmanager
def _on_training_device(*modules: torch.nn.Module) -> Iterator[torch.device]:
    """Moves the modules to the training device for the duration, and back to the CPU."""
    device = training_device()
    if device.type == "cpu":
        yield device
        return
    for module in modules:
        module.to(device)
    try:
        yield device
    finally:
        for module in modules:
            module.to("cpu")


class TrainingConfig(BaseModel):
    """How a student is trained against its teacher; shared by distillation and healing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(5e-4, gt=0.0, le=1.0)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    epochs: int = Field(3, ge=1, le=200)
    batch_size: int = Field(16, ge=1, le=1024)
    seed: int = Field(0, ge=0)
    temperature: float = Field(
        2.0, gt=0.0, le=100.0, description="Softens logits before the KL term (Hinton et al.)."
    )
    alpha: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Weight of the teacher (KL/embedding) loss; 1 - alpha goes to "
        "cross-entropy when labels exist, otherwise the teacher loss takes it all.",
    )
    hidden_weight: float = Field(
        0.0, ge=0.0, le=100.0, description="Weight of hidden-state MSE between matched layers."
    )
    max_seconds: float | None = Field(
        None, gt=0.0, description="Stop after the epoch in which this much time has passed."
    )


@dataclass(frozen=True)
class TrainData:
    """Model inputs as torch tensors (first dimension: examples), labels when known."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor | None
    source: str

    def __len__(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0])

    def to(self, device: torch.device) -> TrainData:
        if device.type == "cpu":
            return self
        labels = self.labels.to(device) if self.labels is not None else None
        return TrainData({k: v.to(device) for k, v in self.inputs.items()}, labels, self.source)

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[TrainData]:
        order = torch.randperm(len(self), generator=generator)
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            inputs = {k: v[idx] for k, v in self.inputs.items()}
            labels = self.labels[idx] if self.labels is not None else None
            yield TrainData(_trim_padding(inputs), labels, self.source)


def train_data_from_inputs(inputs: EvalInputs) -> TrainData:
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.tensors.items()}
    labels = tensors.pop(LABELS, None)
    if not tensors:
        raise UnsupportedModelError("the training data holds labels but no model inputs")
    return TrainData(tensors, labels.long() if labels is not None else None, inputs.source)


def train_data_from_texts(
    tokenizer: Any, texts: Sequence[str], input_names: Sequence[str], *, max_length: int
) -> TrainData:
    enc = tokenizer(
        list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    tensors = {n: enc[n].long() for n in input_names if n in enc}
    return TrainData(tensors, None, f"{len(texts)} unlabelled sentences")


def _trim_padding(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Calibration text is padded to the target's sequence length (often 128): training on the
    # padding is wasted work, so cut every token column past the longest real sequence.
    mask = inputs.get("attention_mask")
    if mask is None or mask.ndim != 2:
        return inputs
    used = mask.any(dim=0).nonzero()
    if used.numel() == 0:
        return inputs
    length = int(used.max()) + 1
    return {
        k: v[:, :length] if v.ndim >= 2 and v.shape == mask.shape else v for k, v in inputs.items()
    }


def is_hf_model(module: torch.nn.Module) -> bool:
    from transformers import PreTrainedModel

    return isinstance(module, PreTrainedModel)


@dataclass
class Outputs:
    """What a forward pass yields for the loss: logits or token embeddings, hidden states."""

    main: torch.Tensor
    kind: Literal["logits", "embeddings"]
    hidden: tuple[torch.Tensor, ...] | None


def forward(module: torch.nn.Module, batch: TrainData, *, hidden: bool) -> Outputs:
    if is_hf_model(module):
        out = module(**batch.inputs, output_hidden_states=hidden, return_dict=True)
        hidden_states = tuple(out.hidden_states) if hidden and out.hidden_states else None
        logits = getattr(out, "logits", None)
        if logits is not None:
            return Outputs(logits, "logits", hidden_states)
        states = getattr(out, "last_hidden_state", None)
        if states is None:
            raise UnsupportedModelError(
                "distillation needs logits or last_hidden_state from the model; "
                f"{type(out).__name__} has neither"
            )
        return Outputs(states, "embeddings", hidden_states)
    result = module(*batch.inputs.values())
    if isinstance(result, tuple | list):
        result = result[0]
    if not isinstance(result, torch.Tensor):
        raise UnsupportedModelError("distillation needs a module whose output is a tensor")
    # A plain module's output is treated as logits when 2-D (classes), as embeddings otherwise.
    kind: Literal["logits", "embeddings"] = "logits" if result.ndim == 2 else "embeddings"
    return Outputs(result, kind, None)


def mean_pool(states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if states.ndim != 3:
        return states
    if mask is None:
        return states.mean(dim=1)
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def distillation_loss(
    student: Outputs,
    teacher: Outputs,
    batch: TrainData,
    config: TrainingConfig,
    layer_map: Sequence[tuple[int, int]] = (),
) -> torch.Tensor:
    mask = batch.inputs.get("attention_mask")
    if student.kind == "logits":
        t = config.temperature
        soft = F.kl_div(
            F.log_softmax(student.main / t, dim=-1),
            F.log_softmax(teacher.main / t, dim=-1),
            reduction="batchmean",
            log_target=True,
        )
        # t^2 keeps the soft-target gradients on the same scale as the hard ones (Hinton et al.).
        teacher_loss = soft * t * t
    else:
        s_pooled = mean_pool(student.main, mask)
        t_pooled = mean_pool(teacher.main, mask)
        cosine = 1.0 - F.cosine_similarity(s_pooled, t_pooled, dim=-1).mean()
        teacher_loss = cosine + _masked_mse(student.main, teacher.main, mask)
    if batch.labels is not None and student.kind == "logits":
        hard = F.cross_entropy(student.main, batch.labels)
        loss = config.alpha * teacher_loss + (1.0 - config.alpha) * hard
    else:
        loss = teacher_loss
    if config.hidden_weight > 0 and layer_map and student.hidden and teacher.hidden:
        matched = [_masked_mse(student.hidden[s], teacher.hidden[t], mask) for s, t in layer_map]
        loss = loss + config.hidden_weight * torch.stack(matched).mean()
    return loss


def _masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None or a.ndim != 3:
        return F.mse_loss(a, b)
    weights = mask.unsqueeze(-1).to(a.dtype)
    return ((a - b) ** 2 * weights).sum() / (weights.sum() * a.shape[-1]).clamp(min=1.0)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch and force deterministic kernels for the duration, restoring the old mode."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def _zero_masks(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # A pruned model arrives with many exact zeros; healing must not regrow them, so weights
    # that are at least 5% zero keep their zeros through every optimiser step.
    masks = {}
    for name, param in module.named_parameters():
        if param.ndim >= 2 and float((param == 0).float().mean()) >= 0.05:
            masks[name] = param.detach() != 0
    return masks


def _optimizer(params: list[torch.nn.Parameter], config: TrainingConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def distill(
    *,
    teacher: torch.nn.Module,
    student: torch.nn.Module,
    data: TrainData,
    config: TrainingConfig,
    layer_map: Sequence[tuple[int, int]] = (),
    progress: Callable[[float], None] = lambda _f: None,
) -> dict[str, Any]:
    """Train ``student`` in place to match ``teacher`` on ``data``; return the training curve."""
    if len(data) == 0:
        raise UnsupportedModelError("distillation needs at least one training example")
    teacher.eval()
    frozen = [p for p in teacher.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    started = time.monotonic()
    with _on_training_device(teacher, student) as device:
        curve, masks = _train(teacher, student, data, config, layer_map, device, progress)
    student.eval()
    for p in frozen:
        p.requires_grad_(True)
    return {
        "data": data.source,
        "examples": len(data),
        "labelled": data.labels is not None,
        "epochs_run": len(curve),
        "loss_per_epoch": curve,
        "kept_zero_masks": masks,
        "train_seconds": round(time.monotonic() - started, 2),
        "device": device.type,
        **config.model_dump(),
    }


def _train(
    teacher: torch.nn.Module,
    student: torch.nn.Module,
    data: TrainData,
    config: TrainingConfig,
    layer_map: Sequence[tuple[int, int]],
    device: torch.device,
    progress: Callable[[float], None],
) -> tuple[list[float], int]:
    """The epochs of ``distill``: the loss per epoch and how many zero masks were kept."""
    params = [p for p in student.parameters() if p.requires_grad]
    masks = _zero_masks(student)
    named = dict(student.named_parameters())
    want_hidden = config.hidden_weight > 0 and bool(layer_map)
    curve: list[float] = []
    started = time.monotonic()
    with deterministic(config.seed):
        generator = torch.Generator().manual_seed(config.seed)
        optimizer = _optimizer(params, config)
        for epoch in range(config.epochs):
            student.train()
            total, count = 0.0, 0
            for cpu_batch in data.batches(config.batch_size, generator):
                batch = cpu_batch.to(device)
                with torch.no_grad():
                    t_out = forward(teacher, batch, hidden=want_hidden)
                s_out = forward(student, batch, hidden=want_hidden)
                loss = distillation_loss(s_out, t_out, batch, config, layer_map)
                if not math.isfinite(float(loss.detach())):
                    raise UnsupportedModelError(
                        f"distillation diverged (loss {float(loss)}) in epoch {epoch + 1}: "
                        "lower the learning rate"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if masks:
                    with torch.no_grad():
                        for name, mask in masks.items():
                            named[name].mul_(mask)
                size = len(batch)
                total += float(loss.detach()) * size
                count += size
            curve.append(round(total / max(count, 1), 6))
            progress((epoch + 1) / config.epochs)
            if config.max_seconds is not None and time.monotonic() - started > config.max_seconds:
                break
    return curve, len(masks)


def agreement(
    *, teacher: torch.nn.Module, student: torch.nn.Module, data: TrainData, batch_size: int = 32
) -> dict[str, float]:
    """How closely the student follows the teacher: top-1 agreement or embedding cosine."""
    teacher.eval()
    student.eval()
    same, cosines, count = 0, 0.0, 0
    with torch.no_grad(), _on_training_device(teacher, student) as device:
        for start in range(0, len(data), batch_size):
            inputs = {k: v[start : start + batch_size] for k, v in data.inputs.items()}
            batch = TrainData(_trim_padding(inputs), None, data.source).to(device)
            t_out = forward(teacher, batch, hidden=False)
            s_out = forward(student, batch, hidden=False)
            if t_out.kind == "logits":
                same += int((t_out.main.argmax(-1) == s_out.main.argmax(-1)).sum())
            else:
                mask = batch.inputs.get("attention_mask")
                cos = F.cosine_similarity(
                    mean_pool(s_out.main, mask), mean_pool(t_out.main, mask), dim=-1
                )
                cosines += float(cos.sum())
            count += len(batch)
    if t_out.kind == "logits":
        return {"top1_agreement": round(same / max(count, 1), 4)}
    return {"mean_embedding_cosine": round(cosines / max(count, 1), 4)}
