from enum import StrEnum


class RanOnRuntime(StrEnum):
    ONNXRUNTIME = "onnxruntime"
    TORCH = "torch"

    def __str__(self) -> str:
        return str(self.value)
