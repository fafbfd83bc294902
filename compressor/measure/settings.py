from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MeasureSettings(BaseModel):
    """How latency is measured; recorded in every report so figures can be compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: int = Field(1, ge=1, le=256)
    warmup: int = Field(5, ge=0, le=1000)
    iterations: int = Field(30, ge=3, le=10_000)
    timeout_s: float = Field(900, gt=0)
    # Causal LMs: decode rounds after the first (each reloads both models) stop here.
    decode_budget_s: float = Field(60, ge=0, le=3600)

    def latency_fields(self) -> dict[str, Any]:
        """What a latency figure depends on: recorded in reports and baseline keys (a limit on
        how long measuring may take, and LLM decode's budget, are not)."""
        return self.model_dump(mode="json", exclude={"timeout_s", "decode_budget_s"})
