"""What the results endpoints accept and answer: sort keys, figure filters, side-by-side rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from app.db.models import JobStatus


class SortKey(StrEnum):
    CREATED_AT = "created_at"
    SPEEDUP = "speedup"
    COMPRESSION_RATIO = "compression_ratio"
    LATENCY_P50_MS = "latency_p50_ms"
    FIDELITY_MIN = "fidelity_min"
    ACCURACY_DROP = "accuracy_drop"
    COMPRESSED_BYTES = "compressed_bytes"


@dataclass(frozen=True)
class Sort:
    key: SortKey = SortKey.CREATED_AT
    descending: bool = True

    def __str__(self) -> str:
        return f"{'-' if self.descending else ''}{self.key}"


@dataclass(frozen=True)
class FigureFilters:
    """Bounds on the headline figures; a job without figures never passes a bound."""

    min_speedup: float | None = None
    min_compression_ratio: float | None = None
    min_fidelity_min: float | None = None
    max_accuracy_drop: float | None = None
    max_latency_p50_ms: float | None = None
    max_compressed_bytes: int | None = None


@dataclass(frozen=True)
class ResultQuery:
    sort: Sort = field(default_factory=Sort)
    filters: FigureFilters = field(default_factory=FigureFilters)


class JobFigures(BaseModel):
    """Headline figures of a succeeded job, as its report measured them."""

    model_config = ConfigDict(from_attributes=True)

    original_bytes: int | None
    compressed_bytes: int | None
    original_latency_p50_ms: float | None
    latency_p50_ms: float | None
    compression_ratio: float | None
    speedup: float | None
    fidelity_metric: str | None
    fidelity_min: float | None
    fidelity_mean: float | None
    top1_agreement: float | None
    accuracy_drop: float | None
    device: str | None
    provider: str | None


class ModelJobResult(BaseModel):
    """One finished job on a model; ``figures`` is null unless it succeeded."""

    job_id: str
    status: JobStatus
    recipe_summary: str
    created_at: datetime
    finished_at: datetime | None
    figures: JobFigures | None
