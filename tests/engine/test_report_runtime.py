"""Every report records what actually ran: device, GPU, execution provider, threads, versions.

On a CPU machine the GPU tests skip ("no CUDA device"); the CPU ones check that a GPU target is
refused there instead of being measured on the CPU under the GPU's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest
import torch

from compressor.measure.device import DeviceUnavailableError
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.report import CompressionReport
from compressor.target import Target
from scripts.train_digits import load_eval, train_and_save
from tests.fixtures.helpers import digits_upload, submit_job, upload_ready, wait_for_job
from tests.fixtures.stack import Stack, running_stack

THREADS = 2
FAST = MeasureSettings(threads=THREADS, warmup=1, iterations=3)
HEAL = [
    {"technique": "pruning", "sparsity": 0.5},
    {"technique": "distillation", "student": "current", "epochs": 1},
]
NO_CUDA = "no CUDA device"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)


def _recipe(steps: list[dict[str, Any]]) -> Recipe:
    return Recipe.model_validate({"steps": steps})


@pytest.fixture(scope="module")
def mlp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", out, epochs=3)
    return out


def _heal(mlp_dir: Path, workdir: Path, target: Target) -> CompressionReport:
    result = compress_model(
        mlp_dir,
        _recipe(HEAL),
        target=target,
        workdir=workdir,
        settings=FAST,
        eval_data=load_eval(mlp_dir),
    )
    return result.compression_report


class TestCpu:
    def test_heal_job_on_cpu_records_provider_threads_and_versions(
        self, mlp_dir: Path, tmp_path: Path
    ) -> None:
        report = _heal(mlp_dir, tmp_path, Target(device="cpu", batch_size=8))
        ran = report.ran_on
        assert ran is not None
        assert (ran.device, ran.gpu_name, ran.training_device) == ("cpu", None, "cpu")
        assert (ran.runtime, ran.provider, ran.timer) == (
            "onnxruntime",
            "CPUExecutionProvider",
            "wall clock",
        )
        assert ran.ort_intra_op_threads == THREADS
        assert ran.torch_threads == torch.get_num_threads()
        assert (ran.torch_version, ran.onnxruntime_version) == (torch.__version__, ort.__version__)
        assert report.steps[1].details["training"]["device"] == "cpu"
        assert report.as_json()["ran_on"]["provider"] == "CPUExecutionProvider"

    @pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
    def test_gpu_target_without_cuda_is_refused_not_run_on_cpu(
        self, mlp_dir: Path, tmp_path: Path
    ) -> None:
        with pytest.raises(DeviceUnavailableError, match="no usable CUDA device"):
            _heal(mlp_dir, tmp_path, Target(device="gpu", batch_size=8))
        assert not (tmp_path / "artifact").exists(), "nothing may be computed for the GPU job"

    def test_report_stored_before_ran_on_reads_back(self, mlp_dir: Path, tmp_path: Path) -> None:
        report = _heal(mlp_dir, tmp_path, Target(device="cpu", batch_size=8)).as_json()
        del report["ran_on"]
        old = CompressionReport.model_validate(report)
        assert old.ran_on is None
        assert "ran_on" not in old.as_json()


@pytest.fixture(scope="module", params=["scaleout"])  # one kind: CI time; e2e covers both
def threaded_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"ran-on-{request.param}")
    with running_stack(request.param, tmp, MODELPRESS_WORKER_THREADS=str(THREADS)) as running:
        yield running


def test_real_job_report_and_results_name_provider_and_threads(
    threaded_stack: Stack, tmp_path: Path
) -> None:
    with threaded_stack.client() as client:
        model_id = upload_ready(client, digits_upload(tmp_path / "mlp"))["id"]
        job_id = submit_job(client, model_id, HEAL, target={"device": "cpu"})
        job = wait_for_job(client, job_id, stack=threaded_stack)
        assert job["status"] == "succeeded", job
        ran = client.get(f"/v1/jobs/{job_id}/report").json()["report"]["ran_on"]
        results = client.get(f"/v1/models/{model_id}/results").json()
    assert ran["provider"] == "CPUExecutionProvider" and ran["gpu_name"] is None
    assert ran["device"] == ran["training_device"] == "cpu"
    assert ran["torch_threads"] == ran["ort_intra_op_threads"] == THREADS
    items = results["items"] if isinstance(results, dict) else results
    figures = next(r["figures"] for r in items if r["job_id"] == job_id)
    assert (figures["device"], figures["provider"]) == ("cpu", "CPUExecutionProvider")


@needs_cuda
class TestCuda:
    def test_heal_trains_and_measures_on_cuda(self, mlp_dir: Path, tmp_path: Path) -> None:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            pytest.skip("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
        report = _heal(mlp_dir, tmp_path, Target(device="gpu", batch_size=8))
        ran = report.ran_on
        assert ran is not None
        assert (ran.device, ran.training_device) == ("cuda", "cuda")
        assert ran.provider == "CUDAExecutionProvider"
        assert ran.gpu_name == torch.cuda.get_device_name(0)
        assert report.steps[1].details["training"]["device"] == "cuda"

    def test_torch_runtime_fp16_is_timed_with_cuda_events(
        self, minilm_dir: Path, tmp_path: Path
    ) -> None:
        result = compress_model(
            minilm_dir,
            _recipe([{"technique": "quantization", "scheme": "fp16"}]),
            target=Target(device="gpu", runtime="torch", batch_size=8, sequence_length=64),
            workdir=tmp_path,
            settings=FAST,
        )
        ran = result.compression_report.ran_on
        assert ran is not None
        assert (ran.device, ran.runtime, ran.provider) == ("cuda", "torch", None)
        assert ran.timer == "cuda events"
        assert result.compression_report.compressed.latency_p50_ms > 0
