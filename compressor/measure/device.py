"""The device a job computes and measures on, decided once before any work.

A target of device 'gpu' gets CUDA or a clear error: a job is never measured on the CPU and
reported as a GPU one. The API resolves 'auto' before a job reaches the engine; a direct call
with 'auto' runs on the CPU, as it always did.
"""

from __future__ import annotations

from typing import Literal

from compressor.errors import CompressionError
from compressor.target import Target

Device = Literal["cpu", "cuda"]
CUDA_PROVIDER = "CUDAExecutionProvider"


class DeviceUnavailableError(CompressionError):
    """The target asks for a device this machine cannot give."""


def job_device(target: Target, *, runtime: str) -> Device:
    """'cuda' for a GPU target that this machine can run as asked, else the reason it cannot."""
    if target.device != "gpu":
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        build = (
            f"torch {torch.__version__} has no CUDA support"
            if torch.version.cuda is None
            else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
        )
        raise DeviceUnavailableError(
            f"the target asks for device 'gpu', but this worker has no usable CUDA device "
            f"({build}); submit the job with device 'cpu', or run it on a worker with a GPU"
        )
    if runtime == "onnxruntime":
        import onnxruntime as ort

        available = ort.get_available_providers()
        if CUDA_PROVIDER not in available:
            raise DeviceUnavailableError(
                f"the target asks for device 'gpu' on onnxruntime, but onnxruntime "
                f"{ort.__version__} on this worker has no {CUDA_PROVIDER} (it offers "
                f"{', '.join(available)}); install onnxruntime-gpu there, or use runtime 'torch'"
            )
    return "cuda"


def gpu_name(device: Device) -> str | None:
    if device != "cuda":
        return None
    import torch

    return str(torch.cuda.get_device_name(0))
