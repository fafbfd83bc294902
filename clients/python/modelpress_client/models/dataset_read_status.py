from enum import StrEnum


class DatasetReadStatus(StrEnum):
    INSPECTING = "inspecting"
    PENDING = "pending"
    READY = "ready"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return str(self.value)
