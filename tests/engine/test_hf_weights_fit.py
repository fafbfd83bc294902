"""Inspection builds the architecture config.json names (on the meta device) and checks the
safetensors weights fit it, so a mismatched upload is rejected before a job tries it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.numpy import load_file, save_file

from compressor.errors import InvalidModelError
from compressor.formats.hf import check_weights_fit_config


@pytest.fixture
def minilm_copy(minilm_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "minilm"
    shutil.copytree(minilm_dir, dest)
    return dest


def test_the_real_checkpoint_fits(minilm_dir: Path) -> None:
    found = check_weights_fit_config(minilm_dir)
    assert found["tensors_matched"] > 100
    assert found["missing_count"] == 0


def test_a_config_that_disagrees_with_the_weights_is_refused(minilm_copy: Path) -> None:
    config = json.loads((minilm_copy / "config.json").read_text())
    config["intermediate_size"] = 1024  # the checkpoint has 1536
    (minilm_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidModelError, match=r"intermediate.*\[1536\].*\[1024\].*17 more"):
        check_weights_fit_config(minilm_copy)


def test_missing_layers_are_reported(minilm_copy: Path) -> None:
    weights = load_file(str(minilm_copy / "model.safetensors"))
    kept = {k: v for k, v in weights.items() if ".layer.5." not in k}
    save_file(kept, str(minilm_copy / "model.safetensors"))
    found = check_weights_fit_config(minilm_copy)
    assert found["missing_count"] == len(weights) - len(kept) > 0
    assert all(".layer.5." in name for name in found["missing"])


def test_weights_of_another_model_are_refused(minilm_copy: Path) -> None:
    weights = load_file(str(minilm_copy / "model.safetensors"))
    renamed = {f"other.{i}": tensor for i, tensor in enumerate(weights.values())}
    save_file(renamed, str(minilm_copy / "model.safetensors"))
    with pytest.raises(InvalidModelError, match="none of the safetensors tensors"):
        check_weights_fit_config(minilm_copy)
