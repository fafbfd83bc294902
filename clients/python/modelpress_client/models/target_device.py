from enum import StrEnum


class TargetDevice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    GPU = "gpu"

    def __str__(self) -> str:
        return str(self.value)
