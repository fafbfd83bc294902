"""A derived half-width student from any graph, not only an nn.Sequential: a residual CNN with
BatchNorm uploaded as ONNX, and torchvision's ResNet-18 named by reference. Each goes through
a tiny distillation run of the engine; the artifact's Conv weights must really be narrower and
the artifact must run in onnxruntime with the upload's input and output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from compressor.errors import UnsupportedModelError
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.students import derive_student
from compressor.target import Target
from scripts.conv_digits import INPUT, ResidualCNN, export

FAST = MeasureSettings(warmup=1, iterations=3)
DISTIL = {"technique": "distillation", "width": 0.5, "epochs": 1, "max_seconds": 5}


def _conv_out_channels(path: Path) -> list[int]:
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    return [
        int(inits[n.input[1]].dims[0])
        for n in model.graph.node
        if n.op_type == "Conv" and n.input[1] in inits
    ]


def _images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def _distil(folder: Path, name: str, shape: tuple[int, ...], tmp_path: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(1)
    train = {name: _images(32, shape, seed=2), "labels": rng.integers(0, 10, 32)}
    result = compress_model(
        folder,
        Recipe.model_validate({"steps": [DISTIL]}),
        target=Target(runtime="onnxruntime", batch_size=4),
        workdir=tmp_path / "work",
        settings=FAST,
        calibration_data={name: _images(16, shape, seed=3)},
        eval_data={name: _images(8, shape, seed=4)},
        train_data=train,
    )
    assert result.artifact_format == "onnx"
    return result.artifact_dir / "model.onnx", result.report


def _runs(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [name]
    out = np.asarray(session.run(None, {name: x})[0])
    assert out.shape == (len(x), 10) and np.isfinite(out).all()
    return out


def _student_shape(report: dict) -> dict:
    step = next(s for s in report["steps"] if s["technique"] == "distillation")
    return step["student_shape"]  # type: ignore[no-any-return]


def _randomised_batchnorm(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():  # non-trivial statistics, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def test_residual_cnn_uploaded_as_onnx_gets_a_half_width_student(tmp_path: Path) -> None:
    torch.manual_seed(0)
    teacher = _randomised_batchnorm(ResidualCNN(width=16))
    upload = tmp_path / "upload"
    upload.mkdir()
    source = export(teacher, _images(1, (1, 8, 8)), upload / "model.onnx")
    assert "BatchNormalization" in {n.op_type for n in onnx.load(str(source)).graph.node}

    artifact, report = _distil(upload, INPUT, (1, 8, 8), tmp_path)
    before, after = _conv_out_channels(source), _conv_out_channels(artifact)
    assert before == [16, 16, 16, 32, 32, 32]
    assert after == [8, 8, 8, 16, 16, 16]  # every conv halved, residual adds kept in step
    shape = _student_shape(report)
    assert shape["kind"] == "width" and shape["method"] == "depgraph"
    _runs(artifact, INPUT, _images(5, (1, 8, 8), seed=9))


def test_sequential_teacher_keeps_the_exact_slicing_path() -> None:
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    student = derive_student(teacher, width=0.5, inputs=(torch.zeros(2, 64),))
    assert "method" not in student.details  # sliced, not traced
    assert student.details["units"] == {"0": [32, 16], "2": [10, 10]}


def test_graph_without_inputs_is_refused_as_before() -> None:
    with pytest.raises(UnsupportedModelError, match="nn.Sequential"):
        derive_student(_randomised_batchnorm(ResidualCNN(width=8)), width=0.5)


def test_torchvision_resnet18_reference_gets_a_half_width_student(tmp_path: Path) -> None:
    import torchvision

    teacher = _randomised_batchnorm(torchvision.models.resnet18(num_classes=10))
    upload = tmp_path / "rn18"
    upload.mkdir()
    reference = {
        "library": "torchvision",
        "name": "resnet18",
        "args": {"num_classes": 10},
        "input_size": [3, 32, 32],  # small images keep the distillation run short
    }
    (upload / "architecture.json").write_text(json.dumps(reference))
    save_file(
        {k: v.contiguous() for k, v in teacher.state_dict().items()},
        str(upload / "model.safetensors"),
    )

    artifact, report = _distil(upload, "input", (3, 32, 32), tmp_path)
    after = _conv_out_channels(artifact)
    before = [m.out_channels for m in teacher.modules() if isinstance(m, nn.Conv2d)]
    assert len(after) == len(before) == 20
    assert after == [c // 2 for c in before]
    model = onnx.load(str(artifact))
    # The head reads half of 512 features and still writes 10 classes (Gemm or MatMul form).
    matrices = {tuple(i.dims) for i in model.graph.initializer if len(i.dims) == 2}
    assert matrices & {(10, 256), (256, 10)} and not matrices & {(10, 512), (512, 10)}
    assert _student_shape(report)["method"] == "depgraph"
    _runs(artifact, "input", _images(2, (3, 32, 32), seed=9))


def test_trained_onnx_teacher_gives_an_accurate_student(tmp_path: Path) -> None:
    # Converted BatchNorms must refresh their running statistics while the student trains;
    # frozen ones (onnx2torch's momentum 0) left a chance-level student (measured 9.7%).
    from scripts.conv_digits import train

    trained = train("residual", epochs=2)
    upload = tmp_path / "upload"
    upload.mkdir()
    export(trained.model, trained.x_train, upload / "model.onnx")
    result = compress_model(
        upload,
        Recipe.model_validate({"steps": [{**DISTIL, "max_seconds": None, "lr": 1e-3}]}),
        target=Target(runtime="onnxruntime", batch_size=4),
        workdir=tmp_path / "work",
        settings=FAST,
        calibration_data={INPUT: trained.x_train[:64]},
        eval_data={INPUT: trained.x_eval, "labels": trained.y_eval},
        train_data={INPUT: trained.x_train, "labels": trained.y_train},
    )
    out = _runs(result.artifact_dir / "model.onnx", INPUT, trained.x_eval)
    student_acc = float((out.argmax(-1) == trained.y_eval).mean())
    assert trained.eval_accuracy > 0.9
    assert student_acc >= trained.eval_accuracy - 0.1, (student_acc, trained.eval_accuracy)
