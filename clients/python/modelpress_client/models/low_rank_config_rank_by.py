from enum import StrEnum


class LowRankConfigRankBy(StrEnum):
    ENERGY = "energy"
    RATIO = "ratio"
    SPEEDUP = "speedup"

    def __str__(self) -> str:
        return str(self.value)
