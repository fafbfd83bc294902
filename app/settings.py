"""Settings split by concern, read from MODELPRESS_* variables and validated at start-up.

Defaults are the embedded single-machine setup: SQLite, Celery's filesystem transport
and local artifact storage, all under MODELPRESS_DATA_DIR.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_ENV = SettingsConfigDict(env_prefix="MODELPRESS_", extra="ignore")


class PathsSettings(BaseSettings):
    model_config = _ENV
    data_dir: Path = Path("./var")

    def resolved(self) -> Path:
        return self.data_dir.expanduser().resolve()


class DatabaseSettings(BaseSettings):
    model_config = _ENV
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file")

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"MODELPRESS_DATABASE_URL is not a database URL: {exc}") from exc
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("MODELPRESS_DATABASE_URL must be sqlite:// or postgresql+psycopg://")
        return value


class BrokerSettings(BaseSettings):
    model_config = _ENV
    broker_url: str | None = Field(None, description="Celery broker; default: filesystem transport")
    # Longer than the longest job time limit, or Redis would re-deliver running jobs.
    visibility_timeout_s: int = 4 * 3600

    @field_validator("broker_url")
    @classmethod
    def _valid_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split("://", 1)[0]
        if scheme not in {"redis", "rediss", "filesystem", "amqp", "memory"}:
            raise ValueError(f"MODELPRESS_BROKER_URL has an unsupported scheme {scheme!r}")
        return value


class StorageSettings(BaseSettings):
    model_config = _ENV
    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_presigned_downloads: bool = Field(
        False, description="answer artifact downloads with a 307 to a presigned S3 URL"
    )
    s3_presigned_expiry_s: int = Field(300, ge=1, le=7 * 24 * 3600)
    max_upload_bytes: int = Field(4 * 1024**3, gt=0)


class WorkerSettings(BaseSettings):
    model_config = _ENV
    worker_threads: int = Field(1, ge=1, le=256, description="torch/ORT threads per job")
    warm_job_processes: bool = Field(
        True,
        description="each pool process keeps a fork server that loads what every job imports "
        "once and forks a process per job (workers/spare.py): a job starts in a fraction of a "
        "second instead of seconds, for the memory of one idle process per pool process",
    )
    measure_iterations: int = Field(30, ge=3)
    measure_warmup: int = Field(5, ge=0)
    measure_decode_budget_s: float = Field(
        60,
        ge=0,
        le=3600,
        description="causal LMs: seconds of decode timing rounds after the first, each of "
        "which loads both models again (0: the first round only, timed while measuring)",
    )
    model_cache_bytes: int = Field(
        8 * 1024**3,
        ge=0,
        description="unpacked model uploads kept on each worker's disk for later jobs and a "
        "goal's candidates (workers/model_cache.py), least recently used dropped past this "
        "(the newest entry stays even when larger); 0: every job fetches and unpacks its model",
    )
    job_soft_time_limit_s: int = Field(3 * 3600, gt=0, description="default per-job limit")
    heartbeat_s: float = Field(10, gt=0)
    stale_after_s: float = Field(60, gt=0, description="a worker silent this long is dead")
    reconcile_after_s: float = Field(60, gt=0, description="re-send jobs queued this long")
    inspection_lease_s: float = Field(
        60, gt=0, description="an inspection's lease, renewed while it runs; past it, re-sent"
    )
    max_attempts: int = Field(3, ge=1, le=20)
    cancel_poll_s: float = Field(1.0, gt=0)
    job_lease_s: float = Field(
        60,
        gt=0,
        description="each attempt holds its job this long, renewed at every cancel poll; past "
        "it, any worker takes the job over (a supervisor cut off from the database)",
    )
    job_memory_bytes: int | None = Field(
        None,
        ge=512 * 1024**2,
        description="private-data limit (RLIMIT_DATA: heap and anonymous memory, not shared "
        "libraries) of each job process: a job that needs more "
        "fails as out of memory, instead of the kernel's OOM killer picking a process",
    )

    @model_validator(mode="after")
    def _lease_outlasts_a_poll(self) -> WorkerSettings:
        if self.job_lease_s <= 2 * self.cancel_poll_s:
            raise ValueError("MODELPRESS_JOB_LEASE_S must exceed twice MODELPRESS_CANCEL_POLL_S")
        return self


class UploadSettings(BaseSettings):
    """What kinds of model file are accepted, and the cage executable ones are opened in."""

    model_config = _ENV
    allow_executable_formats: bool = Field(
        False,
        description="accept TorchScript and torch.export (.pt2) uploads; they are converted to "
        "ONNX in a sandbox (no network, no data directory, memory and time limits)",
    )
    sandbox_memory_bytes: int = Field(4 * 1024**3, ge=256 * 1024**2)
    sandbox_time_limit_s: int = Field(600, ge=5, le=3600)
    dataset_max_rows: int = Field(2**24, ge=1, description="samples in one dataset")
    dataset_max_fields: int = Field(
        256, ge=1, description="arrays in a tensor dataset, keys in one JSONL row"
    )


class EventStreamSettings(BaseSettings):
    """Job event streams (server-sent events) held open by one API process."""

    model_config = _ENV
    event_streams_max: int = Field(
        200, ge=1, description="open streams per API process; past it 503 with Retry-After"
    )
    event_streams_per_tenant_max: int | None = Field(
        None,
        ge=1,
        description="open streams of one tenant per API process (callers without a key count as "
        "one tenant); past it 429 with Retry-After; default a quarter of "
        "MODELPRESS_EVENT_STREAMS_MAX, at least 1",
    )
    event_stream_max_s: float = Field(
        300, gt=0, description="a stream closes after this long; clients resume with Last-Event-ID"
    )
    event_stream_recheck_s: float = Field(
        30,
        gt=0,
        le=30,
        description="how often open streams re-check their API key; a revoked or deleted key "
        "ends its streams",
    )

    @model_validator(mode="after")
    def _tenant_share_fits(self) -> EventStreamSettings:
        if self.tenant_streams_max() > self.event_streams_max:
            raise ValueError(
                "MODELPRESS_EVENT_STREAMS_PER_TENANT_MAX must not exceed "
                "MODELPRESS_EVENT_STREAMS_MAX"
            )
        return self

    def tenant_streams_max(self) -> int:
        """One tenant's share of the process's streams, so it cannot take them all."""
        return self.event_streams_per_tenant_max or max(1, self.event_streams_max // 4)


class AuthSettings(BaseSettings):
    # A start-up error must not print the session secret it refused.
    model_config = SettingsConfigDict(**_ENV, hide_input_in_errors=True)
    auth_required: bool = Field(
        False,
        description="require 'Authorization: Bearer <key>' (keys: modelpress api-key create); "
        "without it the server only binds to loopback",
    )
    tenant_max_stored_bytes: int | None = Field(None, gt=0, description="per-tenant storage quota")
    tenant_max_active_jobs: int | None = Field(
        None, gt=0, description="per-tenant limit of jobs queued or running"
    )
    tenant_running_jobs_default: int | None = Field(
        None,
        gt=0,
        description="a tenant's running-job share unless an operator set its own "
        "(PUT /v1/tenants/{tenant}/share); beyond it, jobs wait in the database. None: no limit",
    )
    ui_session_max_age_s: int = Field(
        8 * 3600, ge=60, le=30 * 24 * 3600, description="how long a /ui sign-in lasts"
    )
    ui_session_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="signs /ui session cookies; unset, each is signed with its API key's hash, "
        "which every API process reads from the database; changing it ends every session",
    )


class WebhookSettings(BaseSettings):
    model_config = _ENV
    webhook_allow_private: bool = Field(
        False, description="allow webhook targets on loopback, private or link-local addresses"
    )
    webhook_max_attempts: int = Field(8, ge=1, le=30)
    webhook_backoff_s: float = Field(5.0, gt=0, description="first retry delay; doubles")
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)


class MlflowSettings(BaseSettings):
    """Hand-off of finished jobs to an MLflow tracking server (extra: modelpress[mlflow])."""

    model_config = _ENV
    mlflow_tracking_uri: str | None = Field(
        None, description="jobs asking for registration log a run and a model version here"
    )
    mlflow_experiment: str = Field("modelpress", min_length=1, description="the runs' experiment")
    mlflow_artifact_root: str | None = Field(
        None,
        description="artifact location of the experiment modelpress creates (a path or URI such "
        "as s3://bucket/mlflow); default: an http(s) tracking server's own proxied store "
        "(mlflow-artifacts:), or DATA_DIR/mlflow-artifacts for a database or file tracking URI",
    )

    def tracks_over_http(self) -> bool:
        uri = self.mlflow_tracking_uri or ""
        return uri.startswith(("http://", "https://"))

    def artifact_location(self, *, data_dir: Path) -> str | None:
        """Where a new experiment keeps its artifacts; None leaves it to the tracking server.

        MLflow's own default for a database or file URI is ./mlruns in the current directory,
        which on a worker is wherever it was started, not the service's storage.
        """
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        if self.tracks_over_http():
            return None
        return (data_dir / "mlflow-artifacts").as_uri()


class ServerSettings(BaseSettings):
    model_config = _ENV
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_json_bytes: int = Field(
        64 * 1024,
        gt=0,
        description="largest request body on routes other than the uploads (JSON); larger "
        "bodies get 413 before they are read",
    )


class SupervisorSettings(BaseSettings):
    """How `modelpress run` keeps its API and worker processes up."""

    model_config = _ENV
    supervisor_max_restarts: int = Field(
        5, ge=0, description="restarts of one process allowed per 60 s; past it everything stops"
    )
    supervisor_backoff_s: float = Field(1.0, gt=0, description="first restart delay; doubles")
    supervisor_backoff_max_s: float = Field(30.0, gt=0)
    supervisor_stop_grace_s: float = Field(
        10.0, ge=0, description="on Ctrl-C/SIGTERM, wait this long before killing what is left"
    )


class Settings:
    """All concerns together; each part validates itself when constructed."""

    def __init__(self) -> None:
        self.paths = PathsSettings()
        self.database = DatabaseSettings()
        self.broker = BrokerSettings()
        self.storage = StorageSettings()
        self.worker = WorkerSettings()
        self.server = ServerSettings()
        self.uploads = UploadSettings()
        self.supervisor = SupervisorSettings()
        self.webhooks = WebhookSettings()
        self.auth = AuthSettings()
        self.events = EventStreamSettings()
        self.mlflow = MlflowSettings()

    @property
    def data_dir(self) -> Path:
        return self.paths.resolved()

    @property
    def database_url(self) -> str:
        return self.database.database_url or f"sqlite:///{self.data_dir / 'modelpress.db'}"

    @property
    def broker_url(self) -> str:
        return self.broker.broker_url or "filesystem://"

    @property
    def broker_folder(self) -> Path:
        return self.data_dir / "broker"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "cache" / "models"


@lru_cache
def get_settings() -> Settings:
    return Settings()
