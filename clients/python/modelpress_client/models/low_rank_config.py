from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..models.low_rank_config_conv import LowRankConfigConv
from ..models.low_rank_config_rank_by import LowRankConfigRankBy
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.training_config import TrainingConfig


T = TypeVar("T", bound="LowRankConfig")


@_attrs_define
class LowRankConfig:
    """
    Attributes:
        conv (LowRankConfigConv | Unset): 'channel_svd': kxk conv to r channels then 1x1; 'tucker2': 1x1, kxk, 1x1;
            'auto': with rank_by 'speedup', each conv's ranks in both forms are timed and the greedy search picks per layer;
            with 'energy' or 'ratio', channel_svd. Default: LowRankConfigConv.AUTO.
        energy (float | Unset):  Default: 0.9.
        exclude (list[str] | Unset): Layer-name substrings left alone.
        heal (None | TrainingConfig | Unset): Fine-tune afterwards by distilling from the unfactorized model.
        min_energy (float | None | Unset): rank_by 'speedup': no layer keeps less energy. Default 0.5, or 0.25 when the
            factorized layers are retrained: with `heal`, or a later distillation step into the current model.
        min_saving (float | Unset): Leave a layer alone unless factorizing removes at least this fraction of its
            parameters (multiply-adds fall in the same proportion). Default: 0.1.
        rank_by (LowRankConfigRankBy | Unset): Default 'speedup', or the mode whose own field is given. 'energy': each
            layer keeps the smallest rank holding `energy` of its squared singular values; 'ratio': one energy threshold for
            all layers, the highest that brings the factorizable layers to `ratio` of their parameters; 'speedup': each
            layer timed alone at the target batch size at a ladder of ranks, layers whose factorized form is not faster left
            alone, then ranks lowered greedily (most time saved per energy lost) until the model is estimated `speedup`
            times faster. Default: LowRankConfigRankBy.SPEEDUP.
        ratio (float | Unset):  Default: 0.5.
        speedup (float | Unset): rank_by 'speedup': the goal. Default: 2.0.
        technique (Literal['low_rank'] | Unset):  Default: 'low_rank'.
        timing_budget_s (float | Unset): rank_by 'speedup': time allowed for timing layers; past it, multiply-adds stand
            in for latency. Default: 30.0.
        version (int | Unset):  Default: 1.
    """

    conv: LowRankConfigConv | Unset = LowRankConfigConv.AUTO
    energy: float | Unset = 0.9
    exclude: list[str] | Unset = UNSET
    heal: None | TrainingConfig | Unset = UNSET
    min_energy: float | None | Unset = UNSET
    min_saving: float | Unset = 0.1
    rank_by: LowRankConfigRankBy | Unset = LowRankConfigRankBy.SPEEDUP
    ratio: float | Unset = 0.5
    speedup: float | Unset = 2.0
    technique: Literal["low_rank"] | Unset = "low_rank"
    timing_budget_s: float | Unset = 30.0
    version: int | Unset = 1

    def to_dict(self) -> dict[str, Any]:
        from ..models.training_config import TrainingConfig  # noqa: PLC0415

        conv: str | Unset = UNSET
        if not isinstance(self.conv, Unset):
            conv = self.conv.value

        energy = self.energy

        exclude: list[str] | Unset = UNSET
        if not isinstance(self.exclude, Unset):
            exclude = self.exclude

        heal: dict[str, Any] | None | Unset
        if isinstance(self.heal, Unset):
            heal = UNSET
        elif isinstance(self.heal, TrainingConfig):
            heal = self.heal.to_dict()
        else:
            heal = self.heal

        min_energy: float | None | Unset
        if isinstance(self.min_energy, Unset):
            min_energy = UNSET
        else:
            min_energy = self.min_energy

        min_saving = self.min_saving

        rank_by: str | Unset = UNSET
        if not isinstance(self.rank_by, Unset):
            rank_by = self.rank_by.value

        ratio = self.ratio

        speedup = self.speedup

        technique = self.technique

        timing_budget_s = self.timing_budget_s

        version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if conv is not UNSET:
            field_dict["conv"] = conv
        if energy is not UNSET:
            field_dict["energy"] = energy
        if exclude is not UNSET:
            field_dict["exclude"] = exclude
        if heal is not UNSET:
            field_dict["heal"] = heal
        if min_energy is not UNSET:
            field_dict["min_energy"] = min_energy
        if min_saving is not UNSET:
            field_dict["min_saving"] = min_saving
        if rank_by is not UNSET:
            field_dict["rank_by"] = rank_by
        if ratio is not UNSET:
            field_dict["ratio"] = ratio
        if speedup is not UNSET:
            field_dict["speedup"] = speedup
        if technique is not UNSET:
            field_dict["technique"] = technique
        if timing_budget_s is not UNSET:
            field_dict["timing_budget_s"] = timing_budget_s
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.training_config import TrainingConfig  # noqa: PLC0415

        d = dict(src_dict)
        _conv = d.pop("conv", UNSET)
        conv: LowRankConfigConv | Unset
        if isinstance(_conv, Unset):
            conv = UNSET
        else:
            conv = LowRankConfigConv(_conv)

        energy = d.pop("energy", UNSET)

        exclude = cast(list[str], d.pop("exclude", UNSET))

        def _parse_heal(data: object) -> None | TrainingConfig | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                heal_type_0 = TrainingConfig.from_dict(data)

                return heal_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TrainingConfig | Unset, data)

        heal = _parse_heal(d.pop("heal", UNSET))

        def _parse_min_energy(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        min_energy = _parse_min_energy(d.pop("min_energy", UNSET))

        min_saving = d.pop("min_saving", UNSET)

        _rank_by = d.pop("rank_by", UNSET)
        rank_by: LowRankConfigRankBy | Unset
        if isinstance(_rank_by, Unset):
            rank_by = UNSET
        else:
            rank_by = LowRankConfigRankBy(_rank_by)

        ratio = d.pop("ratio", UNSET)

        speedup = d.pop("speedup", UNSET)

        technique = cast(Literal["low_rank"] | Unset, d.pop("technique", UNSET))
        if technique != "low_rank" and not isinstance(technique, Unset):
            raise ValueError(f"technique must match const 'low_rank', got '{technique}'")

        timing_budget_s = d.pop("timing_budget_s", UNSET)

        version = d.pop("version", UNSET)

        low_rank_config = cls(
            conv=conv,
            energy=energy,
            exclude=exclude,
            heal=heal,
            min_energy=min_energy,
            min_saving=min_saving,
            rank_by=rank_by,
            ratio=ratio,
            speedup=speedup,
            technique=technique,
            timing_budget_s=timing_budget_s,
            version=version,
        )

        return low_rank_config
