"""The job report's figures come from rows that no step calibrated or trained on.

The steps and the measurement are real; two spies only record which rows the quantization
step was handed to calibrate on and which rows the before/after measurement ran."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from compressor import pipeline
from compressor.loaders import load_source
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target
from compressor.techniques.quantization import QuantizationHandler
from compressor.zoo import load_architecture_model
from scripts.train_digits import digits_split, load_eval, train_and_save

FAST = MeasureSettings(warmup=1, iterations=3)
TARGET = Target(runtime="onnxruntime", batch_size=8)
INT8 = Recipe.model_validate({"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]})
PRUNE = Recipe.model_validate({"steps": [{"technique": "pruning", "sparsity": 0.5}]})


@dataclass
class Seen:
    calibrated: list[np.ndarray] = field(default_factory=list)
    measured: list[np.ndarray] = field(default_factory=list)


def _rows(arrays: list[np.ndarray]) -> set[bytes]:
    return {row.tobytes() for arr in arrays for row in np.asarray(arr, np.float32)}


@pytest.fixture(scope="module")
def mlp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", out, epochs=3)
    return out


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    record = Seen()
    apply, measure = QuantizationHandler.apply, pipeline.measure_in_fresh_process

    def spy_apply(self: Any, config: Any, state: Any, ctx: Any) -> Any:
        record.calibrated.append(ctx.calibration.tensors["input"].copy())
        return apply(self, config, state, ctx)

    def spy_measure(**kwargs: Any) -> Any:
        record.measured.append(kwargs["inputs"].tensors["input"].copy())
        return measure(**kwargs)

    monkeypatch.setattr(QuantizationHandler, "apply", spy_apply)
    monkeypatch.setattr(pipeline, "measure_in_fresh_process", spy_measure)
    return record


def _accuracy(mlp_dir: Path, x: np.ndarray, y: np.ndarray) -> float:
    module, _spec = load_architecture_model(mlp_dir)
    with torch.no_grad():
        logits = module.eval()(torch.from_numpy(np.asarray(x, np.float32))).numpy()
    return float((logits.argmax(-1) == y).mean())


def test_calibration_data_alone_is_split_and_judged_on_its_held_out_rows(
    mlp_dir: Path, tmp_path: Path, seen: Seen
) -> None:
    data = load_eval(mlp_dir)
    result = compress_model(
        mlp_dir, INT8, target=TARGET, workdir=tmp_path, settings=FAST, calibration_data=data
    )
    calibrated, measured = _rows(seen.calibrated), _rows(seen.measured)
    assert len(seen.measured) == 2 and calibrated and measured
    assert not calibrated & measured
    assert calibrated | measured == _rows([data["input"]])
    report = result.report["measurement"]
    fid = report["fidelity_inputs"]
    assert fid["source"] == "calibration_data (held-out share)"
    assert fid["held_out"] is True and fid["disjoint_from"] == ["calibration"]
    assert fid["rows"] == len(measured) == result.report["fidelity"]["samples"]
    assert report["calibration_inputs"]["rows"] == len(calibrated)
    assert report["calibration_inputs"]["source"] == "calibration_data"
    assert 0.2 <= len(measured) / len(data["input"]) <= 0.3
    # Accuracy is on the held-out rows' own labels.
    held = np.array([row.tobytes() in measured for row in data["input"]])
    want = _accuracy(mlp_dir, data["input"][held], data["labels"][held])
    assert result.report["fidelity"]["accuracy_original"] == pytest.approx(want)


def test_training_data_calibrates_and_eval_data_judges(
    mlp_dir: Path, tmp_path: Path, seen: Seen
) -> None:
    split = digits_split(image=False)
    result = compress_model(
        mlp_dir,
        INT8,
        target=TARGET,
        workdir=tmp_path,
        settings=FAST,
        eval_data=load_eval(mlp_dir),
        train_data={"input": split.x_train, "labels": split.y_train},
    )
    assert _rows(seen.calibrated) == _rows([split.x_train])
    assert _rows(seen.measured) == _rows([split.x_eval])
    report = result.report["measurement"]
    assert report["calibration_inputs"]["source"] == "training_data"
    fid = report["fidelity_inputs"]
    assert fid["source"] == "eval_data" and fid["held_out"] is True
    assert fid["disjoint_from"] == ["calibration", "training"]


def test_eval_rows_also_trained_on_are_reported(mlp_dir: Path, tmp_path: Path) -> None:
    split = digits_split(image=False)
    leaked = 30
    train = {
        "input": np.concatenate([split.x_train, split.x_eval[:leaked]]),
        "labels": np.concatenate([split.y_train, split.y_eval[:leaked]]),
    }
    result = compress_model(
        mlp_dir,
        PRUNE,
        target=TARGET,
        workdir=tmp_path,
        settings=FAST,
        eval_data=load_eval(mlp_dir),
        train_data=train,
    )
    fid = result.report["measurement"]["fidelity_inputs"]
    assert fid["held_out"] is False
    assert "training" not in fid["disjoint_from"]
    assert f"{leaked} of {len(split.y_eval)} measured rows are also training inputs" in fid["note"]


def test_too_small_calibration_set_is_measured_on_and_said_so(
    mlp_dir: Path, tmp_path: Path, seen: Seen
) -> None:
    data = {k: v[:6] for k, v in load_eval(mlp_dir).items()}
    result = compress_model(
        mlp_dir, INT8, target=TARGET, workdir=tmp_path, settings=FAST, calibration_data=data
    )
    assert _rows(seen.measured) == _rows(seen.calibrated) == _rows([data["input"]])
    fid = result.report["measurement"]["fidelity_inputs"]
    assert fid["source"] == "calibration_data" and fid["held_out"] is False
    assert fid["disjoint_from"] == []
    assert "figures are on calibration data" in fid["note"]
    assert fid["rows"] == result.report["fidelity"]["samples"] == 6


def test_generated_defaults_calibrate_and_judge_on_different_draws(
    mlp_dir: Path, tmp_path: Path, seen: Seen
) -> None:
    result = compress_model(mlp_dir, INT8, target=TARGET, workdir=tmp_path, settings=FAST)
    assert seen.calibrated and not _rows(seen.calibrated) & _rows(seen.measured)
    report = result.report["measurement"]
    assert report["calibration_inputs"]["source"] == "default"
    assert report["fidelity_inputs"]["source"] == "default (held-out set)"
    assert report["fidelity_inputs"]["held_out"] is True


def test_text_defaults_hold_out_a_second_set_of_sentences(minilm_dir: Path, tmp_path: Path) -> None:
    source = load_source(minilm_dir, workdir=tmp_path)
    target = Target(sequence_length=32)
    calibration = source.default_inputs(target, role="calibration")
    measurement = source.default_inputs(target, role="measurement")
    assert measurement.rows >= 32 and measurement.shared_rows(calibration) == 0
    assert "held-out" in measurement.source
