"""inspect_model_dir: each kind of upload is described from headers, and bad ones are refused."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from compressor.errors import InvalidModelError
from compressor.formats.detect import inspect_model_dir
from compressor.zoo import ArchitectureSpec, load_architecture_model
from scripts.train_digits import train_and_save


@pytest.fixture(scope="module")
def mlp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", out, epochs=1)
    return out


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cnn")
    train_and_save("cnn", out, epochs=1)
    return out


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def test_architecture_reference_is_described_from_headers(mlp_dir: Path, cnn_dir: Path) -> None:
    mlp = inspect_model_dir(mlp_dir)
    assert mlp["format"] == "architecture" and mlp["architecture"] == "mlp"
    assert mlp["parameters"] == 64 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert mlp["dtypes"] == {"F32": mlp["parameters"]}
    assert mlp["inputs"] == [{"name": "input", "shape": [None, 64], "dtype": "float32"}]
    cnn = inspect_model_dir(cnn_dir)
    assert cnn["inputs"] == [{"name": "input", "shape": [None, 1, 8, 8], "dtype": "float32"}]
    module, _ = load_architecture_model(cnn_dir)
    assert cnn["parameters"] == sum(p.numel() for p in module.parameters())


def test_hf_directory_lists_inputs(minilm_dir: Path) -> None:
    found = inspect_model_dir(minilm_dir)
    assert found["format"] == "huggingface" and found["architecture"] == "BertModel"
    assert found["parameters"] > 22_000_000
    assert "input_ids" in [i["name"] for i in found["inputs"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"family": "resnet50", "args": {}}, "unknown architecture family 'resnet50'"),
        ({"family": "mlp", "args": {"in_features": 64}}, "num_classes"),
        ({"family": "mlp", "args": {"in_features": 64, "num_classes": 10, "x": 1}}, "x"),
        (
            {"family": "cnn", "args": {"image_size": 2, "channels": [4, 4], "pool_after": [0, 1]}},
            "shrink",
        ),
        ({"args": {}}, "family"),
    ],
)
def test_bad_architecture_is_refused(
    mlp_dir: Path, tmp_path: Path, content: dict, message: str
) -> None:
    root = _copy(mlp_dir, tmp_path / "m")
    (root / "architecture.json").write_text(json.dumps(content))
    with pytest.raises(InvalidModelError, match=message):
        inspect_model_dir(root)


def test_state_dict_must_match_architecture(mlp_dir: Path, tmp_path: Path) -> None:
    root = _copy(mlp_dir, tmp_path / "m")
    spec = {"family": "mlp", "args": {"in_features": 64, "hidden": [200], "num_classes": 10}}
    (root / "architecture.json").write_text(json.dumps(spec))
    with pytest.raises(InvalidModelError, match="does not match|needs"):
        inspect_model_dir(root)


@pytest.mark.parametrize("damage", ["truncated", "bad_header", "empty"])
def test_damaged_safetensors_is_refused(mlp_dir: Path, tmp_path: Path, damage: str) -> None:
    root = _copy(mlp_dir, tmp_path / "m")
    weights = root / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {"truncated": data[: len(data) // 2], "bad_header": b"\xff" * 8 + b"{", "empty": b""}[
            damage
        ]
    )
    with pytest.raises(InvalidModelError, match="safetensors|empty"):
        inspect_model_dir(root)


class _Payload:
    """Unpickling this writes a marker file: proof that a loader executed the upload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("as_name", ["model.pt", "model.safetensors"])
def test_pickled_weights_are_refused_and_never_run(
    mlp_dir: Path, tmp_path: Path, as_name: str
) -> None:
    root = _copy(mlp_dir, tmp_path / "m")
    (root / "model.safetensors").unlink()
    marker = tmp_path / "executed"
    torch.save({"w": _Payload(marker)}, root / as_name)
    with pytest.raises(InvalidModelError, match="pickled.*safe formats"):
        inspect_model_dir(root)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "weights.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(InvalidModelError, match="pickled"):
        inspect_model_dir(raw)
    assert not marker.exists()


def _onnx_model(path: Path, *, location: str | None = None) -> None:
    weight = numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if location is None:
        onnx.save(model, str(path))
        return
    onnx.save(model, str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    # Rewrite the location by hand, as a hostile uploader would.
    saved = onnx.load(str(path), load_external_data=False)
    for entry in saved.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save(saved, str(path))


def test_onnx_is_described(tmp_path: Path) -> None:
    _onnx_model(tmp_path / "model.onnx", location="w.bin")
    found = inspect_model_dir(tmp_path)
    assert found["format"] == "onnx" and found["parameters"] == 12
    assert found["inputs"] == [{"name": "x", "shape": ["batch", 4], "dtype": "float32"}]
    assert found["weight_files"] == ["model.onnx", "w.bin"]


@pytest.mark.parametrize("location", ["../w.bin", "/etc/passwd", "sub/../../w.bin"])
def test_onnx_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    root = tmp_path / "m"
    root.mkdir()
    _onnx_model(root / "model.onnx", location="w.bin")
    shutil.copy(root / "w.bin", tmp_path / "w.bin")
    _onnx_model(root / "model.onnx", location=location)
    with pytest.raises(InvalidModelError, match="outside|escapes"):
        inspect_model_dir(root)


def test_onnx_truncated_file_or_external_data_is_refused(tmp_path: Path) -> None:
    _onnx_model(tmp_path / "model.onnx", location="w.bin")
    (tmp_path / "w.bin").write_bytes(b"\0" * 8)
    with pytest.raises(InvalidModelError, match="truncated"):
        inspect_model_dir(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _onnx_model(other / "model.onnx")
    data = (other / "model.onnx").read_bytes()
    (other / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidModelError, match="not a valid ONNX"):
        inspect_model_dir(other)


def test_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelError, match="no model found"):
        inspect_model_dir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(InvalidModelError, match="architecture.json"):
        inspect_model_dir(tmp_path)


def test_architecture_spec_round_trips() -> None:
    spec = ArchitectureSpec.model_validate(
        {"family": "cnn", "args": {"channels": [8, 16], "hidden": [32]}}
    )
    assert ArchitectureSpec.model_validate(spec.model_dump()) == spec
    out = spec.build()(torch.zeros(3, 1, 8, 8))
    assert out.shape == (3, 10)
