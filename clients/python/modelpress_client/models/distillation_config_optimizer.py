from enum import StrEnum


class DistillationConfigOptimizer(StrEnum):
    ADAMW = "adamw"
    SGD = "sgd"

    def __str__(self) -> str:
        return str(self.value)
