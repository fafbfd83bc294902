"""The typed report of a real compress_model run: it validates, and what got worse is said in words."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compressor import CompressionReport, compress_model
from compressor.measure.settings import MeasureSettings
from compressor.recipe import Recipe
from compressor.target import Target

FAST = MeasureSettings(warmup=1, iterations=5)


def _tiny_onnx(folder: Path) -> dict[str, np.ndarray]:
    """A 6x3 MatMul: int8 saves 54 bytes of weights but adds quantize nodes, so it grows."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "w")],
    )
    folder.mkdir()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(folder / "model.onnx"))
    x = rng.standard_normal((64, 6)).astype(np.float32)
    return {"x": x, "labels": (x @ w).argmax(-1).astype(np.int64)}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("report")
    eval_data = _tiny_onnx(root / "up")
    return compress_model(
        root / "up",
        Recipe.model_validate({"steps": [{"technique": "quantization"}]}),
        target=Target(runtime="onnxruntime", batch_size=8),
        workdir=root / "work",
        settings=FAST,
        eval_data=eval_data,
    )


def test_report_validates_and_is_what_the_job_row_stores(tiny_run) -> None:  # type: ignore[no-untyped-def]
    stored = tiny_run.report
    report = CompressionReport.model_validate(stored)
    assert report == tiny_run.compression_report
    assert report.version == 1
    assert report.model_dump(mode="json") == stored
    # Optional figures stay absent rather than null, as consumers of the JSON expect.
    assert "artifact" not in stored
    assert None not in stored["fidelity"].values()
    assert report.steps[0].technique == "quantization"
    assert report.steps[0].details, "the step's own account travels with it"
    with pytest.raises(ValueError, match="extra"):
        CompressionReport.model_validate({**stored, "surprise": 1})


def test_larger_result_is_said_in_warnings(tiny_run) -> None:  # type: ignore[no-untyped-def]
    report = tiny_run.compression_report
    assert report.compressed.model_bytes > report.original.model_bytes
    (larger,) = [w for w in report.warnings if w.startswith("larger")]
    assert str(report.compressed.model_bytes) in larger
    assert str(report.original.model_bytes) in larger


def test_each_warning_matches_the_reports_own_figures(tiny_run) -> None:  # type: ignore[no-untyped-def]
    report = tiny_run.compression_report
    said = {w.split(" ", 1)[0] for w in report.warnings}
    slower = report.compressed.latency_p50_ms > report.original.latency_p50_ms
    assert ("slower" in said) == slower, (report.warnings, report.speedup_p50)
    fid = report.fidelity
    assert fid.accuracy_original is not None and fid.accuracy_compressed is not None
    less_accurate = fid.accuracy_compressed < fid.accuracy_original
    assert ("less" in said) == less_accurate, (report.warnings, fid)


def test_a_report_stored_before_held_out_measurement_still_reads(tiny_run) -> None:  # type: ignore[no-untyped-def]
    stored = copy.deepcopy(tiny_run.report)
    del stored["measurement"]["fidelity_inputs"], stored["measurement"]["calibration_inputs"]
    del stored["version"], stored["warnings"]
    old = CompressionReport.model_validate(stored)
    assert old.measurement.fidelity_inputs is None
    assert old.compressed.model_bytes == tiny_run.report["compressed"]["model_bytes"]
