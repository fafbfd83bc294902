"""compress_model with a baseline store (issue 24): the original is measured once per key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import compressor.pipeline as pipeline
from compressor.baseline import InMemoryBaselines
from compressor.measure.retime import retime
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model, measure_original
from compressor.recipe import Recipe
from compressor.target import Target
from scripts.train_digits import train_and_save

FAST = MeasureSettings(warmup=1, iterations=3)
TARGET = Target(runtime="onnxruntime", batch_size=8)
INT8 = Recipe.model_validate({"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]})


@pytest.fixture(scope="module")
def mlp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", out, epochs=1)
    return out


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file names the loaded source exported to, in order."""
    names: list[str] = []
    real = pipeline.load_source

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        source = real(*args, **kwargs)
        export = source.export

        def counted(module: Any, example: Any, path: Path) -> None:
            names.append(path.name)
            export(module, example, path)

        source.export = counted
        return source

    monkeypatch.setattr(pipeline, "load_source", counting_load)
    return names


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The model paths measured in a fresh process, in order."""
    calls: list[Path] = []
    real = pipeline.measure_in_fresh_process

    def counting(**kwargs: Any) -> Any:
        calls.append(Path(kwargs["model_path"]))
        return real(**kwargs)

    monkeypatch.setattr(pipeline, "measure_in_fresh_process", counting)
    return calls


def _run(mlp_dir: Path, workdir: Path, store: InMemoryBaselines, target: Target = TARGET) -> dict:
    return compress_model(
        mlp_dir, INT8, target=target, workdir=workdir, settings=FAST, baselines=store
    ).report


def test_second_job_reuses_the_original_and_says_so(
    mlp_dir: Path, tmp_path: Path, measured: list[Path], exports: list[str]
) -> None:
    store = InMemoryBaselines()
    first = _run(mlp_dir, tmp_path / "first", store)
    assert len(measured) == 2  # the original, then the compressed model
    note = first["original"]["baseline"]
    assert note["reused"] is False and len(store.stored) == 1

    second = _run(mlp_dir, tmp_path / "second", store)
    assert len(measured) == 3  # only the compressed model this time
    assert measured[-1].parent.name == "artifact"
    # Nothing exported anything: the int8 step started from the export kept with the figures.
    assert exports == ["original.onnx"]  # the first job's, once
    assert second["compressed"]["model_bytes"] == first["compressed"]["model_bytes"]
    assert second["compressed"]["latency_p50_ms"] > 0
    assert second["original"]["baseline"] == {**note, "reused": True}
    for figure in ("latency_p50_ms", "model_bytes", "parameters", "dtypes"):
        assert second["original"][figure] == first["original"][figure]
    assert second["fidelity"]["samples"] == first["fidelity"]["samples"]


def test_remeasure_forces_and_replaces_a_different_target_misses(
    mlp_dir: Path, tmp_path: Path, measured: list[Path]
) -> None:
    store = InMemoryBaselines()
    first = _run(mlp_dir, tmp_path / "first", store)["original"]["baseline"]

    again = TARGET.model_copy(update={"remeasure_baseline": True})
    forced = _run(mlp_dir, tmp_path / "forced", store, again)["original"]["baseline"]
    assert len(measured) == 4
    # The same key (asking to measure again changes no figure), measured anew and replaced.
    assert forced["reused"] is False and forced["key"] == first["key"]
    assert forced["measured_at"] > first["measured_at"]
    assert store.stored[first["key"]].measured_at.isoformat().startswith(forced["measured_at"][:19])

    other = _run(mlp_dir, tmp_path / "other", store, Target(runtime="onnxruntime", batch_size=4))
    assert len(measured) == 6
    assert other["original"]["baseline"]["reused"] is False
    assert other["original"]["baseline"]["key"] != first["key"]
    assert len(store.stored) == 2


def test_without_a_store_the_report_has_no_baseline_note(mlp_dir: Path, tmp_path: Path) -> None:
    report = compress_model(mlp_dir, INT8, target=TARGET, workdir=tmp_path, settings=FAST).report
    assert "baseline" not in report["original"]
    assert (tmp_path / "original.onnx").exists()


def test_the_original_measured_alone_is_the_one_a_job_then_reuses(
    mlp_dir: Path, tmp_path: Path, measured: list[Path]
) -> None:
    """What a goal job does before its candidates fan out (workers/job_process.py): the key it
    stores under is the one each candidate computes, so none of them measures the original."""
    store = InMemoryBaselines()
    alone = measure_original(
        mlp_dir, target=TARGET, workdir=tmp_path / "goal", settings=FAST, baselines=store
    )
    assert alone.baseline is not None and alone.baseline.reused is False
    assert len(measured) == 1 and alone.runtime == "onnxruntime" and alone.batch_size == 8
    candidate = _run(mlp_dir, tmp_path / "candidate", store)["original"]["baseline"]
    assert candidate["reused"] is True and candidate["key"] == alone.baseline.key
    assert len(measured) == 2  # the candidate measured only its own model

    timed = retime(
        {"original": tmp_path / "goal" / "original.onnx", "int8": measured[-1]},
        runtime=alone.runtime,
        inputs=alone.inputs,
        batch_size=alone.batch_size,
        settings=FAST,
        rounds=2,
    )
    assert set(timed) == {"original", "int8"} and all(v > 0 for v in timed.values())
    assert len(measured) == 2  # re-timing runs its own probes, not the pipeline's


def test_a_first_job_exports_the_original_once(
    mlp_dir: Path, tmp_path: Path, exports: list[str]
) -> None:
    """The original's export is the graph the int8 step starts from: nothing exports the
    unchanged module a second time, and the original file is read, never overwritten."""
    report = _run(mlp_dir, tmp_path, InMemoryBaselines())
    assert exports == ["original.onnx"]
    original = tmp_path / "original.onnx"
    assert report["original"]["model_bytes"] == original.stat().st_size
    # The int8 model is about a quarter of the float one it was made from.
    assert report["compressed"]["model_bytes"] < 0.4 * report["original"]["model_bytes"]
