"""What a user asks of a goal-driven job: an objective and one fidelity budget, no recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Objective = Literal["size", "latency"]
SearchTechnique = Literal[
    "quantization",
    "pruning",
    "structured_pruning",
    "low_rank",
    "distillation",
    "nm_sparsity",
    "weight_sharing",
]
# The budget keys, each a figure of the report's fidelity on data.eval.
BUDGETS = (
    "max_accuracy_drop",
    "min_cosine",
    "min_top1_agreement",
    "max_kl_divergence",
    "max_perplexity_increase",
)


class Goal(BaseModel):
    """Exactly one budget. It is checked on ``data.eval``: accuracy needs labels there, the
    label-free budgets (cosine, top-1 agreement, KL) compare with the original's outputs, and
    a causal LM's perplexity reads its text (or the default held-out text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: Objective = Field(
        description="'size': the smallest download; 'latency': the fastest p50 on the target"
    )
    max_accuracy_drop: float | None = Field(
        None, ge=0.0, le=1.0, description="accuracy lost on data.eval, as a fraction (0.005)"
    )
    min_cosine: float | None = Field(
        None, ge=-1.0, le=1.0, description="lowest output cosine to the original on data.eval"
    )
    min_top1_agreement: float | None = Field(
        None, ge=0.0, le=1.0, description="share of data.eval rows with the original's top-1"
    )
    max_kl_divergence: float | None = Field(
        None, ge=0.0, description="mean KL divergence from the original's softmax on data.eval"
    )
    max_perplexity_increase: float | None = Field(
        None,
        ge=0.0,
        description="causal LMs: perplexity's relative increase (0.05 = 5%) on data.eval's "
        "text, or on the default held-out English text when no data.eval is given",
    )
    techniques: list[SearchTechnique] | None = Field(
        None,
        min_length=1,
        description="the techniques candidates may use (default: every one that applies)",
    )
    time_budget_s: int = Field(
        1800,
        ge=30,
        le=24 * 3600,
        description="no new candidates start after this; the best one found by then is chosen",
    )

    @model_validator(mode="after")
    def _one_budget(self) -> Goal:
        given = [name for name in BUDGETS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one budget of {', '.join(BUDGETS)} (got {given or 'none'})"
            )
        return self

    @property
    def budget(self) -> tuple[str, float]:
        name = next(n for n in BUDGETS if getattr(self, n) is not None)
        return name, float(getattr(self, name))

    def allows(self, technique: str) -> bool:
        return self.techniques is None or technique in self.techniques
