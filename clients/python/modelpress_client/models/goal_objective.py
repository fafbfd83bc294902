from enum import StrEnum


class GoalObjective(StrEnum):
    LATENCY = "latency"
    SIZE = "size"

    def __str__(self) -> str:
        return str(self.value)
