from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..models.distillation_config_optimizer import DistillationConfigOptimizer
from ..models.distillation_config_student import DistillationConfigStudent
from ..types import UNSET, Unset

T = TypeVar("T", bound="DistillationConfig")


@_attrs_define
class DistillationConfig:
    """
    Attributes:
        alpha (float | Unset): Weight of the teacher (KL/embedding) loss; 1 - alpha goes to cross-entropy when labels
            exist, otherwise the teacher loss takes it all. Default: 0.5.
        batch_size (int | Unset):  Default: 16.
        epochs (int | Unset):  Default: 3.
        hidden_weight (float | Unset): Weight of hidden-state MSE between matched layers. Default: 0.0.
        keep_every (int | None | Unset): Transformers: keep layers 0, k, 2k, ... (DistilBERT: 2).
        lr (float | Unset):  Default: 0.0005.
        max_seconds (float | None | Unset): Stop after the epoch in which this much time has passed.
        num_layers (int | None | Unset): Transformers: layers the student keeps, evenly spaced with the last one
            (default: half).
        optimizer (DistillationConfigOptimizer | Unset):  Default: DistillationConfigOptimizer.ADAMW.
        seed (int | Unset):  Default: 0.
        student (DistillationConfigStudent | Unset): 'derived': a smaller copy of the model; 'current': heal the model
            left by earlier steps by distilling from the original upload; 'uploaded': train the model named by
            student_model_id (another upload) from this one. Default: DistillationConfigStudent.DERIVED.
        student_model_id (None | str | Unset): With student 'uploaded': the student's model id.
        technique (Literal['distillation'] | Unset):  Default: 'distillation'.
        temperature (float | Unset): Softens logits before the KL term (Hinton et al.). Default: 2.0.
        version (int | Unset):  Default: 1.
        weight_decay (float | Unset):  Default: 0.0.
        width (float | None | Unset): MLP/CNN: fraction of hidden units kept (default 0.5).
    """

    alpha: float | Unset = 0.5
    batch_size: int | Unset = 16
    epochs: int | Unset = 3
    hidden_weight: float | Unset = 0.0
    keep_every: int | None | Unset = UNSET
    lr: float | Unset = 0.0005
    max_seconds: float | None | Unset = UNSET
    num_layers: int | None | Unset = UNSET
    optimizer: DistillationConfigOptimizer | Unset = DistillationConfigOptimizer.ADAMW
    seed: int | Unset = 0
    student: DistillationConfigStudent | Unset = DistillationConfigStudent.DERIVED
    student_model_id: None | str | Unset = UNSET
    technique: Literal["distillation"] | Unset = "distillation"
    temperature: float | Unset = 2.0
    version: int | Unset = 1
    weight_decay: float | Unset = 0.0
    width: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        alpha = self.alpha

        batch_size = self.batch_size

        epochs = self.epochs

        hidden_weight = self.hidden_weight

        keep_every: int | None | Unset
        if isinstance(self.keep_every, Unset):
            keep_every = UNSET
        else:
            keep_every = self.keep_every

        lr = self.lr

        max_seconds: float | None | Unset
        if isinstance(self.max_seconds, Unset):
            max_seconds = UNSET
        else:
            max_seconds = self.max_seconds

        num_layers: int | None | Unset
        if isinstance(self.num_layers, Unset):
            num_layers = UNSET
        else:
            num_layers = self.num_layers

        optimizer: str | Unset = UNSET
        if not isinstance(self.optimizer, Unset):
            optimizer = self.optimizer.value

        seed = self.seed

        student: str | Unset = UNSET
        if not isinstance(self.student, Unset):
            student = self.student.value

        student_model_id: None | str | Unset
        if isinstance(self.student_model_id, Unset):
            student_model_id = UNSET
        else:
            student_model_id = self.student_model_id

        technique = self.technique

        temperature = self.temperature

        version = self.version

        weight_decay = self.weight_decay

        width: float | None | Unset
        if isinstance(self.width, Unset):
            width = UNSET
        else:
            width = self.width

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if alpha is not UNSET:
            field_dict["alpha"] = alpha
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if epochs is not UNSET:
            field_dict["epochs"] = epochs
        if hidden_weight is not UNSET:
            field_dict["hidden_weight"] = hidden_weight
        if keep_every is not UNSET:
            field_dict["keep_every"] = keep_every
        if lr is not UNSET:
            field_dict["lr"] = lr
        if max_seconds is not UNSET:
            field_dict["max_seconds"] = max_seconds
        if num_layers is not UNSET:
            field_dict["num_layers"] = num_layers
        if optimizer is not UNSET:
            field_dict["optimizer"] = optimizer
        if seed is not UNSET:
            field_dict["seed"] = seed
        if student is not UNSET:
            field_dict["student"] = student
        if student_model_id is not UNSET:
            field_dict["student_model_id"] = student_model_id
        if technique is not UNSET:
            field_dict["technique"] = technique
        if temperature is not UNSET:
            field_dict["temperature"] = temperature
        if version is not UNSET:
            field_dict["version"] = version
        if weight_decay is not UNSET:
            field_dict["weight_decay"] = weight_decay
        if width is not UNSET:
            field_dict["width"] = width

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        alpha = d.pop("alpha", UNSET)

        batch_size = d.pop("batch_size", UNSET)

        epochs = d.pop("epochs", UNSET)

        hidden_weight = d.pop("hidden_weight", UNSET)

        def _parse_keep_every(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        keep_every = _parse_keep_every(d.pop("keep_every", UNSET))

        lr = d.pop("lr", UNSET)

        def _parse_max_seconds(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_seconds = _parse_max_seconds(d.pop("max_seconds", UNSET))

        def _parse_num_layers(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        num_layers = _parse_num_layers(d.pop("num_layers", UNSET))

        _optimizer = d.pop("optimizer", UNSET)
        optimizer: DistillationConfigOptimizer | Unset
        if isinstance(_optimizer, Unset):
            optimizer = UNSET
        else:
            optimizer = DistillationConfigOptimizer(_optimizer)

        seed = d.pop("seed", UNSET)

        _student = d.pop("student", UNSET)
        student: DistillationConfigStudent | Unset
        if isinstance(_student, Unset):
            student = UNSET
        else:
            student = DistillationConfigStudent(_student)

        def _parse_student_model_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        student_model_id = _parse_student_model_id(d.pop("student_model_id", UNSET))

        technique = cast(Literal["distillation"] | Unset, d.pop("technique", UNSET))
        if technique != "distillation" and not isinstance(technique, Unset):
            raise ValueError(f"technique must match const 'distillation', got '{technique}'")

        temperature = d.pop("temperature", UNSET)

        version = d.pop("version", UNSET)

        weight_decay = d.pop("weight_decay", UNSET)

        def _parse_width(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        width = _parse_width(d.pop("width", UNSET))

        distillation_config = cls(
            alpha=alpha,
            batch_size=batch_size,
            epochs=epochs,
            hidden_weight=hidden_weight,
            keep_every=keep_every,
            lr=lr,
            max_seconds=max_seconds,
            num_layers=num_layers,
            optimizer=optimizer,
            seed=seed,
            student=student,
            student_model_id=student_model_id,
            technique=technique,
            temperature=temperature,
            version=version,
            weight_decay=weight_decay,
            width=width,
        )

        return distillation_config
