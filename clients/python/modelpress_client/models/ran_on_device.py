from enum import StrEnum


class RanOnDevice(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"

    def __str__(self) -> str:
        return str(self.value)
