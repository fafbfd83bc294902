"""compress_model on each kind of upload: the saved artifact is checked with the standard runtime."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compressor.errors import InvalidRecipeError
from compressor.inputs import InvalidDatasetError
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target
from scripts.train_digits import digits_split, load_eval, train_and_save

FAST = MeasureSettings(warmup=1, iterations=3)
ONNX_TARGET = Target(runtime="onnxruntime", batch_size=8)


def _recipe(*steps: dict) -> Recipe:
    recipe = Recipe.model_validate({"steps": list(steps)})
    assert Recipe.model_validate(recipe.model_dump()) == recipe
    return recipe


def _run(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feed)[0])


@pytest.fixture(scope="module")
def mlp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", out, epochs=5)
    return out


def test_architecture_model_pruned_to_onnx_with_labelled_accuracy(
    mlp_dir: Path, tmp_path: Path
) -> None:
    eval_data = load_eval(mlp_dir)
    result = compress_model(
        mlp_dir,
        _recipe({"technique": "pruning", "sparsity": 0.6, "scope": "global"}),
        target=ONNX_TARGET,
        workdir=tmp_path,
        settings=FAST,
        eval_data=eval_data,
    )
    report = result.report
    assert result.artifact_format == "onnx"
    model_path = result.artifact_dir / "model.onnx"
    weights = [
        numpy_helper.to_array(i)
        for i in onnx.load(str(model_path)).graph.initializer
        if len(i.dims) == 2
    ]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.size for w in weights)
    assert zeros >= 0.59
    outputs = _run(model_path, {"input": eval_data["input"]})
    accuracy = float((outputs.argmax(-1) == eval_data["labels"]).mean())
    assert report["measurement"]["labelled"] is True
    assert report["measurement"]["inputs"] == "360 supplied evaluation samples"
    assert report["fidelity"]["accuracy_compressed"] == pytest.approx(accuracy)
    assert report["fidelity"]["accuracy_original"] > 0.85
    assert report["original"]["format"] == "architecture"
    # The packed download unpacks with plain tar and runs in onnxruntime.
    archive = tmp_path / report["compressed"]["archive"]["path"]
    assert archive.stat().st_size == report["compressed"]["archive"]["bytes"]
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    np.testing.assert_allclose(
        _run(unpacked / "model.onnx", {"input": eval_data["input"]}), outputs
    )


def test_training_data_reaches_healing_steps(mlp_dir: Path, tmp_path: Path) -> None:
    split = digits_split(image=False)
    result = compress_model(
        mlp_dir,
        _recipe(
            {"technique": "pruning", "sparsity": 0.9, "scope": "global"},
            {"technique": "distillation", "student": "current", "epochs": 3, "lr": 1e-3},
        ),
        target=ONNX_TARGET,
        workdir=tmp_path,
        settings=FAST,
        eval_data=load_eval(mlp_dir),
        train_data={"input": split.x_train, "labels": split.y_train},
    )
    assert result.report["measurement"]["training_data"] == "1437 supplied training samples"
    fid = result.report["fidelity"]
    assert fid["accuracy_compressed"] >= fid["accuracy_original"] - 0.05


def test_cnn_without_data_is_measured_on_generated_inputs(tmp_path: Path) -> None:
    train_and_save("cnn", tmp_path / "cnn", epochs=1)
    result = compress_model(
        tmp_path / "cnn",
        _recipe({"technique": "pruning", "sparsity": 0.5}),
        target=ONNX_TARGET,
        workdir=tmp_path / "work",
        settings=FAST,
    )
    report = result.report
    assert "generated" in report["measurement"]["inputs"]
    assert "accuracy_compressed" not in report["fidelity"]
    out = _run(result.artifact_dir / "model.onnx", {"input": np.zeros((5, 1, 8, 8), np.float32)})
    assert out.shape == (5, 10)


def test_bad_eval_data_and_targets_are_refused(mlp_dir: Path, tmp_path: Path) -> None:
    recipe = _recipe({"technique": "pruning", "sparsity": 0.5})
    bad = [
        {"input": np.zeros((4, 32), np.float32)},
        {"pixels": np.zeros((4, 64), np.float32)},
        {"input": np.zeros((4, 64), np.float32), "labels": np.zeros(3, np.int64)},
    ]
    for data in bad:
        with pytest.raises(InvalidDatasetError):
            compress_model(mlp_dir, recipe, target=ONNX_TARGET, workdir=tmp_path, eval_data=data)
    with pytest.raises(InvalidRecipeError, match="onnxruntime"):
        compress_model(mlp_dir, recipe, target=Target(runtime="torch"), workdir=tmp_path)


def _matmul_onnx(folder: Path) -> np.ndarray:
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((64, 128)).astype(np.float32) / 8
    w2 = rng.standard_normal((128, 10)).astype(np.float32) / 11
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w2"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir()
    onnx.save(
        model,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    return rng.standard_normal((16, 64)).astype(np.float32)


def test_onnx_upload_with_external_data_is_quantized(tmp_path: Path) -> None:
    x = _matmul_onnx(tmp_path / "up")
    result = compress_model(
        tmp_path / "up",
        _recipe({"technique": "quantization"}),
        target=ONNX_TARGET,
        workdir=tmp_path / "work",
        settings=FAST,
        eval_data={"x": x},
    )
    assert result.artifact_format == "onnx"
    assert result.report["original"]["format"] == "onnx"
    saved = onnx.load(str(result.artifact_dir / "model.onnx"))
    # int8 or uint8 storage, by the CPU's int8 kernels (see QuantizationConfig.weight_dtype)
    eight_bit = {TensorProto.INT8, TensorProto.UINT8}
    assert any(i.data_type in eight_bit and len(i.dims) == 2 for i in saved.graph.initializer)
    ref = _run(tmp_path / "up" / "model.onnx", {"x": x})
    # In batches of the target's size, as the report measures: dynamic int8 ranges are per batch.
    out = np.concatenate(
        [_run(result.artifact_dir / "model.onnx", {"x": x[i : i + 8]}) for i in (0, 8)]
    )
    cos = (ref * out).sum(-1) / np.linalg.norm(ref, axis=-1) / np.linalg.norm(out, axis=-1)
    assert cos.min() > 0.99
    assert result.report["fidelity"]["cosine_min"] == pytest.approx(cos.min(), abs=1e-4)
    # The upload folder is untouched: the engine worked on a copy.
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == ["model.onnx", "weights.bin"]


def test_onnx_upload_gets_torch_steps(tmp_path: Path) -> None:
    """Issue 10: the graph converts to torch for the step and comes back as ONNX (it used to
    be refused); the MatMul weights are the ones pruned."""
    x = _matmul_onnx(tmp_path / "up")
    result = compress_model(
        tmp_path / "up",
        _recipe({"technique": "pruning", "sparsity": 0.5, "scope": "global"}),
        target=ONNX_TARGET,
        workdir=tmp_path / "w",
        settings=FAST,
        eval_data={"x": x},
    )
    saved = onnx.load(str(result.artifact_dir / "model.onnx"))
    weights = [numpy_helper.to_array(i) for i in saved.graph.initializer if len(i.dims) == 2]
    assert sorted(w.size for w in weights) == [1280, 8192]
    assert sum(int((w == 0).sum()) for w in weights) / sum(w.size for w in weights) >= 0.49
    assert _run(result.artifact_dir / "model.onnx", {"x": x}).shape == (16, 10)


def test_hf_model_with_supplied_token_data_stays_hf(minilm_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModel

    ids = np.array([[101, 7592, 2088, 102] + [0] * 12] * 4, dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    result = compress_model(
        minilm_dir,
        _recipe({"technique": "pruning", "sparsity": 0.3}),
        target=Target(runtime="torch", batch_size=2, sequence_length=16),
        workdir=tmp_path,
        settings=FAST,
        eval_data={"input_ids": ids, "attention_mask": mask},
    )
    assert result.artifact_format == "huggingface"
    assert result.report["measurement"]["inputs"] == "4 supplied evaluation samples"
    model = AutoModel.from_pretrained(str(result.artifact_dir))
    weight = model.encoder.layer[0].intermediate.dense.weight
    assert float((weight == 0).float().mean()) >= 0.29
    assert result.report["fidelity"]["cosine_min"] > 0.8


@pytest.mark.parametrize(
    ("choice", "stored"), [("int8", TensorProto.INT8), ("uint8", TensorProto.UINT8)]
)
def test_int8_weight_storage_follows_the_recipe(tmp_path: Path, choice: str, stored: int) -> None:
    x = _matmul_onnx(tmp_path / "up")
    model = onnx.load(str(tmp_path / "up" / "model.onnx"))
    zeroed = 0
    for init in model.graph.initializer:  # half the weights exactly zero, as pruning leaves them
        weight = numpy_helper.to_array(init).copy()
        weight[:, ::2] = 0
        zeroed += weight[:, ::2].size
        init.CopyFrom(numpy_helper.from_array(weight, init.name))
    onnx.save(model, str(tmp_path / "up" / "model.onnx"))
    step = {"technique": "quantization", "weight_dtype": choice}
    result = compress_model(
        tmp_path / "up", _recipe(step), target=ONNX_TARGET, workdir=tmp_path / "w",
        settings=FAST, eval_data={"x": x},
    )  # fmt: skip
    saved = onnx.load(str(result.artifact_dir / "model.onnx"))
    matrices = [i.data_type for i in saved.graph.initializer if len(i.dims) == 2]
    assert matrices and set(matrices) == {stored}
    # zeros stay zeros, and are counted as such whatever the storage type (a few tiny
    # weights also round to zero)
    compressed = result.report["compressed"]
    stored_zeros = compressed["parameters"] - compressed["nonzero_parameters"]
    assert zeroed <= stored_zeros <= zeroed * 1.02, (zeroed, compressed)
    assert result.report["steps"][0]["weight_dtype"].startswith(f"{choice} (set by the recipe)")


# Flag lines of real x86 CPUs: a Zen 3 (no VNNI), a Cascade Lake (AVX512-VNNI), an Alder Lake
# (AVX-VNNI only).
_ZEN3 = "flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma bmi2 vaes vpclmulqdq"
_CASCADE_LAKE = "flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512vl avx512_vnni"
_ALDER_LAKE = "flags\t\t: fpu sse2 avx avx2 fma avx_vnni gfni vaes"


@pytest.mark.parametrize(
    ("cpuinfo", "stored"),
    [(_ZEN3, "uint8"), (_CASCADE_LAKE, "int8"), (_ALDER_LAKE, "int8")],
    ids=["no-vnni", "avx512-vnni", "avx-vnni"],
)
def test_auto_weight_storage_says_why(
    cpuinfo: str, stored: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platform

    from onnxruntime.quantization import QuantType

    from compressor.techniques.quantization import QuantizationConfig
    from compressor.techniques.quantization import onnx_schemes as quant_onnx

    (tmp_path / "cpuinfo").write_text(f"processor\t: 0\n{cpuinfo}\n")
    monkeypatch.setattr(quant_onnx, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    kind, why = quant_onnx.weight_type(QuantizationConfig())
    assert kind == (QuantType.QUInt8 if stored == "uint8" else QuantType.QInt8)
    assert why.startswith(f"{stored} (")
    assert ("no VNNI" in why) == (stored == "uint8") and "VNNI" in why
