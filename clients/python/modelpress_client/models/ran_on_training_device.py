from enum import StrEnum


class RanOnTrainingDevice(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"

    def __str__(self) -> str:
        return str(self.value)
