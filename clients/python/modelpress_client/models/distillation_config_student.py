from enum import StrEnum


class DistillationConfigStudent(StrEnum):
    CURRENT = "current"
    DERIVED = "derived"
    UPLOADED = "uploaded"

    def __str__(self) -> str:
        return str(self.value)
