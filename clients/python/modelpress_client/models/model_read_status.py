from enum import StrEnum


class ModelReadStatus(StrEnum):
    INSPECTING = "inspecting"
    PENDING = "pending"
    READY = "ready"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return str(self.value)
