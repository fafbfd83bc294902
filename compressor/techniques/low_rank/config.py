"""The low-rank config: how ranks are chosen (kept energy, a parameter ratio, or measured
speed-up), which layers and forms, and optional healing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from compressor.techniques.base import StepConfig
from compressor.training import TrainingConfig


class LowRankConfig(StepConfig):
    technique: Literal["low_rank"] = "low_rank"
    rank_by: Literal["energy", "ratio", "speedup"] = Field(
        "speedup",
        description="Default 'speedup', or the mode whose own field is given. 'energy': each layer keeps the smallest rank holding `energy` of its squared "
        "singular values; 'ratio': one energy threshold for all layers, the highest that "
        "brings the factorizable layers to `ratio` of their parameters; 'speedup': each layer "
        "timed alone at the target batch size at a ladder of ranks, layers whose factorized "
        "form is not faster left alone, then ranks lowered greedily (most time saved per "
        "energy lost) until the model is estimated `speedup` times faster.",
    )
    speedup: float = Field(2.0, gt=1.0, le=50.0, description="rank_by 'speedup': the goal.")
    min_energy: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="rank_by 'speedup': no layer keeps less energy. Default 0.5, or 0.25 "
        "when the factorized layers are retrained: with `heal`, or a later distillation step "
        "into the current model.",
    )
    timing_budget_s: float = Field(
        30.0,
        gt=0.0,
        le=600.0,
        description="rank_by 'speedup': time allowed for timing layers; past it, "
        "multiply-adds stand in for latency.",
    )
    energy: float = Field(0.9, gt=0.0, le=1.0)
    ratio: float = Field(0.5, gt=0.0, lt=1.0)
    conv: Literal["auto", "channel_svd", "tucker2"] = Field(
        "auto",
        description="'channel_svd': kxk conv to r channels then 1x1; 'tucker2': 1x1, kxk, 1x1; "
        "'auto': with rank_by 'speedup', each conv's ranks in both forms are timed and the "
        "greedy search picks per layer; with 'energy' or 'ratio', channel_svd.",
    )
    min_saving: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Leave a layer alone unless factorizing removes at least this fraction "
        "of its parameters (multiply-adds fall in the same proportion).",
    )
    exclude: tuple[str, ...] = Field((), description="Layer-name substrings left alone.")
    heal: TrainingConfig | None = Field(
        None, description="Fine-tune afterwards by distilling from the unfactorized model."
    )

    @model_validator(mode="before")
    @classmethod
    def _mode_from_its_field(cls, data: Any) -> Any:
        # A user who writes {"energy": 0.9} means energy ranks, not the measured-speed default.
        if isinstance(data, dict) and "rank_by" not in data:
            for mode in ("energy", "ratio"):
                if mode in data:
                    return {**data, "rank_by": mode}
        return data
