from enum import StrEnum


class RanOnRuntime(StrEnum):
    ONNXRUNTIME = "onnxruntime"
    ONNXRUNTIME_GENAI = "onnxruntime-genai"
    TORCH = "torch"
    VLLM = "vllm"

    def __str__(self) -> str:
        return str(self.value)
