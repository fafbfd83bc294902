from enum import StrEnum


class PruningConfigScope(StrEnum):
    GLOBAL = "global"
    LAYER = "layer"

    def __str__(self) -> str:
        return str(self.value)
