from enum import StrEnum


class TargetRuntime(StrEnum):
    LLAMA_CPP = "llama.cpp"
    ONNXRUNTIME = "onnxruntime"
    ONNXRUNTIME_GENAI = "onnxruntime-genai"
    TORCH = "torch"
    VLLM = "vllm"

    def __str__(self) -> str:
        return str(self.value)
