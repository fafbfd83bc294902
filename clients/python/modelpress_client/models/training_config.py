from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.training_config_optimizer import TrainingConfigOptimizer
from ..types import UNSET, Unset

T = TypeVar("T", bound="TrainingConfig")


@_attrs_define
class TrainingConfig:
    """How a student is trained against its teacher; shared by distillation and healing.

    Attributes:
        alpha (float | Unset): Weight of the teacher (KL/embedding) loss; 1 - alpha goes to cross-entropy when labels
            exist, otherwise the teacher loss takes it all. Default: 0.5.
        batch_size (int | Unset):  Default: 16.
        epochs (int | Unset):  Default: 3.
        hidden_weight (float | Unset): Weight of hidden-state MSE between matched layers. Default: 0.0.
        lr (float | Unset):  Default: 0.0005.
        max_seconds (float | None | Unset): Stop after the epoch in which this much time has passed.
        optimizer (TrainingConfigOptimizer | Unset):  Default: TrainingConfigOptimizer.ADAMW.
        seed (int | Unset):  Default: 0.
        temperature (float | Unset): Softens logits before the KL term (Hinton et al.). Default: 2.0.
        weight_decay (float | Unset):  Default: 0.0.
    """

    alpha: float | Unset = 0.5
    batch_size: int | Unset = 16
    epochs: int | Unset = 3
    hidden_weight: float | Unset = 0.0
    lr: float | Unset = 0.0005
    max_seconds: float | None | Unset = UNSET
    optimizer: TrainingConfigOptimizer | Unset = TrainingConfigOptimizer.ADAMW
    seed: int | Unset = 0
    temperature: float | Unset = 2.0
    weight_decay: float | Unset = 0.0

    def to_dict(self) -> dict[str, Any]:
        alpha = self.alpha

        batch_size = self.batch_size

        epochs = self.epochs

        hidden_weight = self.hidden_weight

        lr = self.lr

        max_seconds: float | None | Unset
        if isinstance(self.max_seconds, Unset):
            max_seconds = UNSET
        else:
            max_seconds = self.max_seconds

        optimizer: str | Unset = UNSET
        if not isinstance(self.optimizer, Unset):
            optimizer = self.optimizer.value

        seed = self.seed

        temperature = self.temperature

        weight_decay = self.weight_decay

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
        if lr is not UNSET:
            field_dict["lr"] = lr
        if max_seconds is not UNSET:
            field_dict["max_seconds"] = max_seconds
        if optimizer is not UNSET:
            field_dict["optimizer"] = optimizer
        if seed is not UNSET:
            field_dict["seed"] = seed
        if temperature is not UNSET:
            field_dict["temperature"] = temperature
        if weight_decay is not UNSET:
            field_dict["weight_decay"] = weight_decay

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        alpha = d.pop("alpha", UNSET)

        batch_size = d.pop("batch_size", UNSET)

        epochs = d.pop("epochs", UNSET)

        hidden_weight = d.pop("hidden_weight", UNSET)

        lr = d.pop("lr", UNSET)

        def _parse_max_seconds(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_seconds = _parse_max_seconds(d.pop("max_seconds", UNSET))

        _optimizer = d.pop("optimizer", UNSET)
        optimizer: TrainingConfigOptimizer | Unset
        if isinstance(_optimizer, Unset):
            optimizer = UNSET
        else:
            optimizer = TrainingConfigOptimizer(_optimizer)

        seed = d.pop("seed", UNSET)

        temperature = d.pop("temperature", UNSET)

        weight_decay = d.pop("weight_decay", UNSET)

        training_config = cls(
            alpha=alpha,
            batch_size=batch_size,
            epochs=epochs,
            hidden_weight=hidden_weight,
            lr=lr,
            max_seconds=max_seconds,
            optimizer=optimizer,
            seed=seed,
            temperature=temperature,
            weight_decay=weight_decay,
        )

        return training_config
