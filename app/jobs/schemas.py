from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.db.models import EventLevel, JobStatus
from compressor.recipe import Recipe
from compressor.report import CompressionReport
from compressor.target import Target


class JobData(BaseModel):
    """Dataset ids by role. Without ``eval``, fidelity uses fixed or generated inputs (reported)."""

    model_config = ConfigDict(extra="forbid")

    calibration: str | None = None
    eval: str | None = None
    train: str | None = None

    def by_role(self) -> dict[str, str]:
        return {role: ds for role, ds in self.model_dump().items() if ds is not None}


class JobCreate(BaseModel):
    """The recipe and target are the engine's own validated configs, not a restatement."""

    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=64)
    recipe: Recipe
    target: Target = Target()
    data: JobData = JobData()
    priority: int = Field(5, ge=0, le=9, description="0 lowest, 9 highest")
    time_limit_s: int | None = Field(
        None,
        ge=10,
        le=7 * 24 * 3600,
        description="stop the job after this long (default: server's)",
    )


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    model_id: str
    status: JobStatus
    queue: str
    phase: str
    progress: float
    error: str | None
    attempts: int
    recipe: Recipe
    target: Target
    data: dict[str, str]
    priority: int
    time_limit_s: int | None
    waiting_reason: str | None = None
    eta_s: float | None = Field(
        None, description="seconds left, extrapolated from progress so far (running jobs only)"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="what the result does worse than the original on the target (slower, larger, "
        "less faithful), from its report; empty until the job succeeds",
    )
    artifact_bytes: int | None
    artifact_sha256: str | None
    artifact_format: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobReport(BaseModel):
    job_id: str
    report: CompressionReport


class JobEventRead(BaseModel):
    """One line of a job's log, as the event stream sends it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime = Field(validation_alias="created_at")
    level: EventLevel
    message: str
