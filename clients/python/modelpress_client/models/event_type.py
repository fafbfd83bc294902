from enum import StrEnum


class EventType(StrEnum):
    JOB_CANCELLED = "job.cancelled"
    JOB_FAILED = "job.failed"
    JOB_SUCCEEDED = "job.succeeded"
    MODEL_READY = "model.ready"
    MODEL_REJECTED = "model.rejected"

    def __str__(self) -> str:
        return str(self.value)
