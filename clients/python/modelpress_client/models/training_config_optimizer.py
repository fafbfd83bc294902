from enum import StrEnum


class TrainingConfigOptimizer(StrEnum):
    ADAMW = "adamw"
    SGD = "sgd"

    def __str__(self) -> str:
        return str(self.value)
