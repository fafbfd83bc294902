from enum import StrEnum


class TargetRuntime(StrEnum):
    ONNXRUNTIME = "onnxruntime"
    TORCH = "torch"

    def __str__(self) -> str:
        return str(self.value)
