"""Every torch-stage technique on a Paddle-style graph (tests/fixtures/paddle_style.py: opset
12, dynamic batch, height and width, depthwise, SE + HardSigmoid, Resize by computed scales):
each artifact keeps the dynamic axes, runs at a size it was not exported at, and holds accuracy
on held-out digits (issue 23: every torch-stage technique runs on graphs that convert)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target
from scripts.train_digits import digits_split
from tests.fixtures.floors import accuracy_floor
from tests.fixtures.paddle_style import INPUT, OUTPUT, PaddleStyle, trained_paddle_style

HEAL = {"technique": "distillation", "student": "current", "epochs": 2, "lr": 2e-3}


@pytest.fixture(scope="module")
def paddle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PaddleStyle]:
    net = trained_paddle_style()
    upload = tmp_path_factory.mktemp("paddle")
    (upload / "det.onnx").write_bytes(net.onnx_bytes)
    return upload, net


@pytest.mark.parametrize(
    ("steps", "slack"),
    [
        pytest.param([{"technique": "low_rank", "min_energy": 0.6}, HEAL], 0.0, id="low_rank"),
        pytest.param([{"technique": "pruning", "sparsity": 0.5}, HEAL], 0.0, id="pruning"),
        pytest.param([{"technique": "nm_sparsity", "n": 2, "m": 4}, HEAL], 0.0, id="2:4"),
        # A half-width student from three epochs: measured 90.3% against the teacher's 96.9%.
        pytest.param(
            [{"technique": "distillation", "student": "derived", "width": 0.5, "epochs": 3,
              "lr": 2e-3}],
            0.06,
            id="derived-student",
        ),
    ],
)  # fmt: skip
def test_torch_stage_technique_on_a_paddle_style_graph(
    paddle: tuple[Path, PaddleStyle], steps: list[dict[str, Any]], slack: float, tmp_path: Path
) -> None:
    upload, net = paddle
    split = digits_split(image=True)
    result = compress_model(
        upload,
        Recipe.model_validate({"steps": steps}),
        target=Target(runtime="onnxruntime", batch_size=8),
        workdir=tmp_path,
        settings=MeasureSettings(warmup=1, iterations=3),
        train_data={INPUT: split.x_train, "labels": split.y_train},
        eval_data={INPUT: split.x_eval, "labels": split.y_eval},
    )
    session = ort.InferenceSession(str(result.artifact_dir / "model.onnx"))
    (declared,) = [i.shape for i in session.get_inputs()]
    assert all(isinstance(declared[a], str) for a in (0, 2, 3)), declared
    larger = np.ascontiguousarray(np.repeat(np.repeat(split.x_eval[:4], 2, 2), 2, 3))
    assert session.run([OUTPUT], {INPUT: larger})[0].shape == (4, 10)
    predicted = session.run([OUTPUT], {INPUT: split.x_eval})[0].argmax(-1)
    accuracy = float((predicted == split.y_eval).mean())
    floor = accuracy_floor(net.predicted, predicted, split.y_eval) - slack
    assert accuracy >= floor, (accuracy, floor, net.accuracy)
    assert result.report["fidelity"]["accuracy_compressed"] == pytest.approx(accuracy, abs=1e-6)


def test_int8_preparation_writes_nothing_into_the_working_directory(
    paddle: tuple[Path, PaddleStyle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ORT's symbolic shape inference gives up on the computed Resize scales and then saves a
    debug graph into the cwd: a worker's, shared by concurrent jobs. It goes to the job's
    folder instead."""
    from compressor.techniques.quantization.conv import prepare_graph

    cwd, work = tmp_path / "cwd", tmp_path / "job"
    cwd.mkdir()
    work.mkdir()
    monkeypatch.chdir(cwd)
    prepared, notes = prepare_graph(paddle[0] / "det.onnx", work)
    assert prepared.exists() and "could not follow" in notes["shape_inference"], notes
    assert list(cwd.iterdir()) == []
