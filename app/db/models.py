"""ORM models. These are table rows, not API schemas: routes answer with app/*/schemas.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.db.base import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def is_valid_id(value: str) -> bool:
    """Ids are UUIDs; anything else (NUL bytes included, which PostgreSQL rejects) finds nothing."""
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError, AttributeError):
        return False


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite drops the zone on read; every timestamp we hand out is aware and in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class ModelStatus(StrEnum):
    """Models and datasets share it: stored, then inspected in a worker under a lease."""

    PENDING = "pending"  # stored, waiting for a worker to inspect it
    INSPECTING = "inspecting"  # claimed by one worker (inspect_owner) until lease_expires_at
    READY = "ready"
    REJECTED = "rejected"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class JobPhase(StrEnum):
    """The fixed phases. The engine names its steps itself ("step 1/3: pruning", one f-string
    in compressor/pipeline.py); those pass through as they are."""

    QUEUED = "queued"
    STARTING = "starting"
    FETCHING_MODEL = "fetching model"
    UPLOADING = "uploading artifact"
    DONE = "done"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    REQUEUED = "re-queued after the worker was lost"


class EventLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class UploadColumns:
    """The columns models and datasets share: a stored upload, screened at the door and then
    inspected by one worker under a lease (app/inspection_lease.py)."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # The owning tenant (None when authentication is off); requests see only their own.
    tenant: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(32))
    status: Mapped[ModelStatus] = mapped_column(String(16), default=ModelStatus.READY)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    inspection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rejection_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    inspect_owner: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ModelFile(UploadColumns, Base):
    __tablename__ = "models"


class Dataset(UploadColumns, Base):
    __tablename__ = "datasets"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # The owning tenant (None when authentication is off); requests see only their own.
    tenant: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), index=True)
    status: Mapped[JobStatus] = mapped_column(String(16), default=JobStatus.QUEUED)
    queue: Mapped[str] = mapped_column(String(16), default="cpu")
    # A goal job's recipe is JSON null until its search chose one (see migration a3d5e7f9b1c2):
    # the column stays NOT NULL, and JSON stores Python None as the JSON value null.
    recipe: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=False)
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    goal: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    # A goal job's candidates are ordinary jobs under it, cancelled and deleted with it.
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True, default=None
    )
    # Dataset ids by role: calibration, eval, train.
    data: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    # Set while a queued job is held in the database, not sent: its tenant's running-job share
    # is full (app/jobs/shares.py). NULL for a job sent to the broker, or running.
    waiting_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    time_limit_s: Mapped[int | None] = mapped_column(Integer, default=None)
    phase: Mapped[str] = mapped_column(String(128), default=JobPhase.QUEUED)
    progress: Mapped[float] = mapped_column(default=0.0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    # Renewed by the attempt's supervisor; past it, the reaper takes the job over.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    artifact_key: Mapped[str | None] = mapped_column(String(512), default=None)
    artifact_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    artifact_format: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class JobInput(Base):
    """A dataset (role calibration/eval/train) or uploaded student (role student) a job reads.
    RESTRICT keys make a delete that races a submission fail instead of orphaning the job."""

    __tablename__ = "job_inputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True, default=None
    )
    model_id: Mapped[str | None] = mapped_column(
        ForeignKey("models.id", ondelete="RESTRICT"), index=True, default=None
    )


class JobEvent(Base):
    """The job's log: phase changes, attempts, and the final outcome, in order."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    level: Mapped[EventLevel] = mapped_column(String(16), default=EventLevel.INFO)
    message: Mapped[str] = mapped_column(Text)


class JobPhaseTime(Base):
    """One phase of a finished job and its seconds (app/jobs/phases.py), kept in order for
    the ``modelpress_job_phase_seconds`` histogram; ``label`` is the bounded name it counts as."""

    __tablename__ = "job_phases"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    phase: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(64), index=True)
    seconds: Mapped[float] = mapped_column(Float)


class JobResult(Base):
    """A succeeded job's headline figures, copied out of its report so jobs can be filtered and
    ranked in SQL. The report JSON stays the full record; these columns are a typed index of it.
    Figures are nullable: a report from an older engine, or an unlabelled dataset, may lack one."""

    __tablename__ = "job_results"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    original_bytes: Mapped[int | None] = mapped_column(BigInteger)
    compressed_bytes: Mapped[int | None] = mapped_column(BigInteger, index=True)
    original_latency_p50_ms: Mapped[float | None] = mapped_column(Float)
    latency_p50_ms: Mapped[float | None] = mapped_column(Float, index=True)
    compression_ratio: Mapped[float | None] = mapped_column(Float, index=True)
    speedup: Mapped[float | None] = mapped_column(Float, index=True)
    # Which agreement fidelity_min/mean measure: "cosine", or "top1_agreement" without one.
    fidelity_metric: Mapped[str | None] = mapped_column(String(32))
    fidelity_min: Mapped[float | None] = mapped_column(Float, index=True)
    fidelity_mean: Mapped[float | None] = mapped_column(Float)
    top1_agreement: Mapped[float | None] = mapped_column(Float)
    accuracy_drop: Mapped[float | None] = mapped_column(Float, index=True)
    device: Mapped[str | None] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WorkerNode(Base):
    """A live Celery worker, kept fresh by its heartbeat."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    device: Mapped[str] = mapped_column(String(16))
    gpu_name: Mapped[str | None] = mapped_column(String(255), default=None)
    gpu_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    torch_threads: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # Set by `modelpress run` when it restarts a worker that died (app/supervisor.py).
    restarts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_restart_reason: Mapped[str | None] = mapped_column(String(255), default=None)


class Webhook(Base):
    """A subscription: events of the tenant's resources are POSTed to ``url``, signed with
    ``secret`` (Standard Webhooks). The secret is kept to sign; it is shown once, at creation."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not yet delivered; retried at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last attempt


class WebhookDelivery(Base):
    """One event for one subscription; its id is the ``webhook-id`` every retry repeats."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(36))
    # Frozen at the first attempt, so every retry sends the same signed body.
    payload: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[DeliveryStatus] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(String(512), default=None)
    duration_ms: Mapped[float] = mapped_column(Float)


class ApiKey(Base):
    """Only the SHA-256 of a key is kept; the key is shown once, when created (keys are 256-bit
    random, so a plain hash is enough)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # to tell keys apart in listings
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class TenantShare(Base):
    """A tenant's running-job share, set by an operator; tenants without a row get the default
    (``MODELPRESS_TENANT_RUNNING_JOBS_DEFAULT``). ``running_jobs`` NULL: no limit."""

    __tablename__ = "tenant_shares"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    running_jobs: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class IdempotencyKey(Base):
    """A create request's Idempotency-Key: a repeat with the same body returns ``resource_id``."""

    __tablename__ = "idempotency_keys"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    route: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Baseline(Base):
    """The original's figures, measured once and reused by later jobs with the same key
    (compressor/baseline.py); its outputs are an .npz object in storage. Kept per tenant: a key
    names a model's bytes, and a hit would tell another tenant that model's timings."""

    __tablename__ = "baselines"

    # "" when authentication is off: a primary key column cannot hold NULL.
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    outputs_key: Mapped[str] = mapped_column(String(255))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The upload (ModelFile.sha256) that measured it: deleting a tenant's last model with
    # those bytes deletes the baselines measured from it (app/models_upload/service.py).
    model_sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_baselines_tenant_model_sha256", "tenant", "model_sha256"),)
