from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class EventType(StrEnum):
    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    MODEL_READY = "model.ready"
    MODEL_REJECTED = "model.rejected"


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048, examples=["https://example.com/modelpress-events"])
    events: list[EventType] = Field(min_length=1, max_length=len(EventType))


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    url: str
    events: list[EventType]
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="whsec_…; shown only in this response; verifies signatures")


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str = Field(description="the webhook-id header: the same on every retry")
    event_type: EventType
    resource_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptRead] = []
