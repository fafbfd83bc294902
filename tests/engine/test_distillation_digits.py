"""Distilling a small MLP trained on scikit-learn digits into a half-width student."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from compressor.errors import UnsupportedModelError
from compressor.inputs import EvalInputs
from compressor.students import derive_student
from compressor.target import Target
from compressor.techniques.base import ModelState, StepContext
from compressor.techniques.distillation import DistillationConfig, DistillationHandler


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return x_tr, x_te, y_tr.astype(np.int64), y_te.astype(np.int64)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(-1).numpy() == y).mean())


@pytest.fixture(scope="module")
def teacher(digits) -> nn.Module:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    x_tr, _, y_tr, _ = digits
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    for _ in range(30):
        for idx in torch.randperm(len(xt)).split(64):
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def distil(teacher: nn.Module, digits, config: DistillationConfig) -> tuple[nn.Module, dict]:  # type: ignore[no-untyped-def, type-arg]
    x_tr, _, y_tr, _ = digits
    state = ModelState(module=teacher, source_dir=Path("unused"), workdir=Path("unused"))
    ctx = StepContext(
        target=Target(),
        calibration=EvalInputs({"input": x_tr[:32]}, "calibration"),
        train=EvalInputs({"input": x_tr, "labels": y_tr}, "digits training split"),
    )
    report = DistillationHandler().apply(config, state, ctx)
    return state.module, report


def test_half_width_student_keeps_teacher_accuracy(teacher, digits) -> None:  # type: ignore[no-untyped-def]
    _, x_te, _, y_te = digits
    teacher_acc = accuracy(teacher, x_te, y_te)
    assert teacher_acc > 0.95
    weights_before = copy.deepcopy(teacher.state_dict())
    config = DistillationConfig(width=0.5, epochs=10, lr=1e-3, seed=0)
    student, report = distil(teacher, digits, config)

    linears = [m for m in student if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 128), (128, 64), (64, 10)]
    assert report["student_parameters"] == sum(p.numel() for p in student.parameters())
    assert report["student_parameters"] < 0.4 * report["teacher_parameters"]
    assert report["training"]["labelled"] is True
    curve = report["training"]["loss_per_epoch"]
    assert len(curve) == 10 and curve[-1] < curve[0]
    # Measured: teacher 97.2%, student 97.6%. The issue asks for >= 97% of the teacher.
    assert accuracy(student, x_te, y_te) >= 0.97 * teacher_acc
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in weights_before.items())


def test_same_seed_same_student_other_seed_differs(teacher, digits) -> None:  # type: ignore[no-untyped-def]
    base = {"width": 0.25, "epochs": 2, "lr": 1e-3}
    first, _ = distil(teacher, digits, DistillationConfig(**base, seed=7))
    again, _ = distil(teacher, digits, DistillationConfig(**base, seed=7))
    other, _ = distil(teacher, digits, DistillationConfig(**base, seed=8))
    for (name, a), b in zip(first.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert any(
        not torch.equal(a, c)
        for a, c in zip(first.state_dict().values(), other.state_dict().values(), strict=True)
    )


def test_cnn_student_narrows_conv_channels_through_flatten(digits) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 16, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    ).eval()
    student, report = distil(cnn, digits, DistillationConfig(width=0.5, epochs=1))
    conv = next(m for m in student if isinstance(m, nn.Conv2d))
    first_linear = next(m for m in student if isinstance(m, nn.Linear))
    assert conv.out_channels == 8 and first_linear.in_features == 8 * 16
    assert report["student_shape"]["units"]["1"] == [16, 8]
    # Untrained, the student's channels are exactly the teacher's strongest channels.
    derived = derive_student(cnn, width=0.5).module
    x = torch.from_numpy(digits[1][:4])
    with torch.no_grad():
        kept, full = derived[1](derived[0](x)), cnn[1](cnn[0](x))
    norms = cnn[1].weight.flatten(1).norm(dim=1)
    strongest = norms.topk(8).indices.sort().values
    assert torch.allclose(kept, full[:, strongest], atol=1e-6)


def test_unsupported_layers_and_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        DistillationConfig(num_layers=3, keep_every=2)
    with pytest.raises(ValueError, match="healing"):
        DistillationConfig(student="current", width=0.5)
    lstm = nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4), nn.Linear(4, 2))
    state = ModelState(module=lstm, source_dir=Path("unused"), workdir=Path("unused"))
    ctx = StepContext(
        target=Target(), calibration=EvalInputs({"input": np.zeros((2, 4), np.float32)}, "x")
    )
    with pytest.raises(UnsupportedModelError, match="LSTM") as info:
        DistillationHandler().apply(DistillationConfig(), state, ctx)
    assert info.value.layer == "1"
    for config in (
        DistillationConfig(width=0.5, optimizer="sgd", lr=0.01, temperature=4.0, alpha=0.2),
        DistillationConfig(student="current", hidden_weight=0.5, max_seconds=30),
    ):
        assert DistillationConfig.model_validate(config.model_dump()) == config
        assert DistillationConfig.model_validate_json(config.model_dump_json()) == config
