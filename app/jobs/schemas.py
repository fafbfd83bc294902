from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasPath, BaseModel, ConfigDict, Field, model_validator

from app.db.models import EventLevel, JobStatus
from app.labels import Labels
from compressor.recipe import Recipe
from compressor.report import CompressionReport
from compressor.search.goal import Goal
from compressor.target import Target


class JobData(BaseModel):
    """Dataset ids by role. Without ``eval``, fidelity uses fixed or generated inputs (reported)."""

    model_config = ConfigDict(extra="forbid")

    calibration: str | None = None
    eval: str | None = None
    train: str | None = None

    def by_role(self) -> dict[str, str]:
        return {role: ds for role, ds in self.model_dump().items() if ds is not None}


# The report JSON's key for the hand-off: the job has no column for it.
REGISTERED = "registered"


class MlflowRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(min_length=1, max_length=256, description="registered model's name")


class Registration(BaseModel):
    """Where a succeeded job's artifact is handed off; the server must be configured for it."""

    model_config = ConfigDict(extra="forbid")

    mlflow: MlflowRegistration


class MlflowRegistered(BaseModel):
    model_name: str
    run_id: str | None = Field(None, description="the MLflow run; set once the job succeeded")
    version: str | None = Field(None, description="the registered model version")
    error: str | None = Field(
        None, description="why the hand-off failed; the job itself still succeeded"
    )


class Registered(BaseModel):
    mlflow: MlflowRegistered


class JobCreate(BaseModel):
    """The recipe and target are the engine's own validated configs, not a restatement."""

    # Dumped as it is sent ("register"), so a dumped request validates again.
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    model_id: str = Field(min_length=1, max_length=64)
    recipe: Recipe | None = Field(None, description="the steps to apply; or give a goal instead")
    goal: Goal | None = Field(
        None,
        description="instead of a recipe: what to optimise and the fidelity budget, checked on "
        "data.eval; candidates run as child jobs and the best one becomes this job's artifact",
    )
    target: Target = Target()
    data: JobData = JobData()
    priority: int = Field(5, ge=0, le=9, description="0 lowest, 9 highest")
    time_limit_s: int | None = Field(
        None,
        ge=10,
        le=7 * 24 * 3600,
        description="stop the job after this long (default: server's)",
    )
    labels: Labels = Field(default_factory=dict)
    # "register" on the wire; the attribute name would shadow BaseModel.register.
    registration: Registration | None = Field(
        None, alias="register", description="hand the artifact to MLflow when the job succeeds"
    )

    @model_validator(mode="after")
    def _recipe_or_goal(self) -> JobCreate:
        if (self.recipe is None) == (self.goal is None):
            raise ValueError("give either a recipe or a goal, not both and not neither")
        # A causal LM's perplexity has a default held-out text; the other budgets need data.
        if (
            self.goal is not None
            and self.data.eval is None
            and self.goal.max_perplexity_increase is None
        ):
            raise ValueError(
                "a goal's budget is checked on data.eval: name an eval dataset (labelled for "
                "max_accuracy_drop; for the other budgets model inputs are enough). Only a "
                "causal LM's max_perplexity_increase may leave it out (a default held-out text "
                "judges it)"
            )
        return self


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
    recipe: Recipe | None = Field(description="null for a goal job until its search chose one")
    goal: Goal | None = None
    parent_id: str | None = Field(None, description="the goal job this candidate belongs to")
    target: Target
    data: dict[str, str]
    priority: int
    time_limit_s: int | None
    labels: dict[str, str]
    waiting_reason: str | None = Field(
        None,
        description="why a queued job has not started: held for its tenant's running-job share, "
        "or no live worker serves its pool",
    )
    eta_s: float | None = Field(
        None, description="seconds left, extrapolated from progress so far (running jobs only)"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="what the result does worse than the original on the target (slower, larger, "
        "less faithful), from its report; empty until the job succeeds",
    )
    # Kept in the report JSON (no column of its own): the request until the job succeeds, then
    # the run and version, or why the hand-off failed.
    registered: Registered | None = Field(None, validation_alias=AliasPath("report", REGISTERED))
    artifact_bytes: int | None
    artifact_sha256: str | None
    artifact_format: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class PhaseSeconds(BaseModel):
    phase: str = Field(
        description="queue wait, earlier attempts, process start, then the job's own phases "
        "in order (fetching model, loading, exporting original, step 1/2: pruning, exporting, "
        "saving, measuring original, measuring compressed, packing, uploading artifact, ...)"
    )
    seconds: float


class JobPhases(BaseModel):
    """Where a job's time went, from its log: a running job's last phase runs to now."""

    job_id: str
    status: JobStatus
    total_seconds: float
    phases: list[PhaseSeconds]


class JobReport(BaseModel):
    job_id: str
    report: CompressionReport
    phases: list[PhaseSeconds] = Field(
        default_factory=list, description="where the job's time went (GET .../phases)"
    )


class JobEventRead(BaseModel):
    """One line of a job's log, as the event stream sends it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime = Field(validation_alias="created_at")
    level: EventLevel
    message: str


class TenantShareWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    running_jobs: int | None = Field(
        ge=1,
        le=100_000,
        description="jobs of this tenant sent to the workers or running at once; beyond it, "
        "its jobs wait in the database (waiting_reason says so). null: no limit",
    )


class TenantShareRead(BaseModel):
    tenant: str
    running_jobs: int | None = Field(description="null: no limit")
    source: Literal["operator", "default"] = Field(
        description="set for this tenant, or the server's MODELPRESS_TENANT_RUNNING_JOBS_DEFAULT"
    )
