from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.db.models import JobStatus
from compressor.recipe import Recipe
from compressor.target import Target


class JobCreate(BaseModel):
    """The recipe and target are the engine's own validated configs, not a restatement."""

    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=64)
    recipe: Recipe
    target: Target = Target()


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
    recipe: dict[str, Any]
    target: dict[str, Any]
    artifact_bytes: int | None
    artifact_sha256: str | None
    artifact_format: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobReport(BaseModel):
    job_id: str
    report: dict[str, Any]
