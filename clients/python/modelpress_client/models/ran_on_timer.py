from enum import StrEnum


class RanOnTimer(StrEnum):
    CUDA_EVENTS = "cuda events"
    WALL_CLOCK = "wall clock"

    def __str__(self) -> str:
        return str(self.value)
