from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.distillation_config import DistillationConfig
    from ..models.low_rank_config import LowRankConfig
    from ..models.nm_sparsity_config import NMSparsityConfig
    from ..models.pruning_config import PruningConfig
    from ..models.quantization_config import QuantizationConfig
    from ..models.structured_pruning_config import StructuredPruningConfig
    from ..models.weight_sharing_config import WeightSharingConfig


T = TypeVar("T", bound="Recipe")


@_attrs_define
class Recipe:
    """
    Attributes:
        steps (list[DistillationConfig | LowRankConfig | NMSparsityConfig | PruningConfig | QuantizationConfig |
            StructuredPruningConfig | WeightSharingConfig]):
    """

    steps: list[
        DistillationConfig
        | LowRankConfig
        | NMSparsityConfig
        | PruningConfig
        | QuantizationConfig
        | StructuredPruningConfig
        | WeightSharingConfig
    ]

    def to_dict(self) -> dict[str, Any]:
        from ..models.distillation_config import DistillationConfig  # noqa: PLC0415
        from ..models.low_rank_config import LowRankConfig  # noqa: PLC0415
        from ..models.nm_sparsity_config import NMSparsityConfig  # noqa: PLC0415
        from ..models.pruning_config import PruningConfig  # noqa: PLC0415
        from ..models.quantization_config import QuantizationConfig  # noqa: PLC0415
        from ..models.structured_pruning_config import StructuredPruningConfig  # noqa: PLC0415

        steps = []
        for steps_item_data in self.steps:
            steps_item: dict[str, Any]
            if isinstance(steps_item_data, PruningConfig):
                steps_item = steps_item_data.to_dict()
            elif isinstance(steps_item_data, QuantizationConfig):
                steps_item = steps_item_data.to_dict()
            elif isinstance(steps_item_data, DistillationConfig):
                steps_item = steps_item_data.to_dict()
            elif isinstance(steps_item_data, LowRankConfig):
                steps_item = steps_item_data.to_dict()
            elif isinstance(steps_item_data, StructuredPruningConfig):
                steps_item = steps_item_data.to_dict()
            elif isinstance(steps_item_data, NMSparsityConfig):
                steps_item = steps_item_data.to_dict()
            else:
                steps_item = steps_item_data.to_dict()

            steps.append(steps_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "steps": steps,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.distillation_config import DistillationConfig  # noqa: PLC0415
        from ..models.low_rank_config import LowRankConfig  # noqa: PLC0415
        from ..models.nm_sparsity_config import NMSparsityConfig  # noqa: PLC0415
        from ..models.pruning_config import PruningConfig  # noqa: PLC0415
        from ..models.quantization_config import QuantizationConfig  # noqa: PLC0415
        from ..models.structured_pruning_config import StructuredPruningConfig  # noqa: PLC0415
        from ..models.weight_sharing_config import WeightSharingConfig  # noqa: PLC0415

        d = dict(src_dict)
        steps = []
        _steps = d.pop("steps")
        for steps_item_data in _steps:

            def _parse_steps_item(
                data: object,
            ) -> (
                DistillationConfig
                | LowRankConfig
                | NMSparsityConfig
                | PruningConfig
                | QuantizationConfig
                | StructuredPruningConfig
                | WeightSharingConfig
            ):
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    steps_item_type_0 = PruningConfig.from_dict(data)

                    return steps_item_type_0
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    steps_item_type_1 = QuantizationConfig.from_dict(data)

                    return steps_item_type_1
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    steps_item_type_2 = DistillationConfig.from_dict(data)

                    return steps_item_type_2
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    steps_item_type_3 = LowRankConfig.from_dict(data)

                    return steps_item_type_3
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    steps_item_type_4 = StructuredPruningConfig.from_dict(data)

                    return steps_item_type_4
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    steps_item_type_5 = NMSparsityConfig.from_dict(data)

                    return steps_item_type_5
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                if not isinstance(data, dict):
                    raise TypeError()
                steps_item_type_6 = WeightSharingConfig.from_dict(data)

                return steps_item_type_6

            steps_item = _parse_steps_item(steps_item_data)

            steps.append(steps_item)

        recipe = cls(
            steps=steps,
        )

        return recipe
