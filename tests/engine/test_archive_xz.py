"""A .tar.xz upload (the service's own download format) unpacks like .zip and .tar.gz, under
the same checks: a user can send an artifact back to compress it further."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from compressor.errors import InvalidModelError
from compressor.formats.archive import unpack_model_upload


def _tar_xz(folder: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:xz") as tf:
        for path in sorted(folder.iterdir()):
            tf.add(path, arcname=path.name)
    return dest


def test_a_tar_xz_upload_unpacks_to_its_model_root(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    upload = _tar_xz(model, tmp_path / "upload.bin")
    root = unpack_model_upload(upload, tmp_path / "out")
    assert sorted(p.name for p in root.iterdir()) == ["config.json", "model.safetensors"]
    assert (root / "config.json").read_text() == '{"model_type": "bert"}'


def test_a_truncated_tar_xz_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}" * 4000)
    whole = _tar_xz(model, tmp_path / "whole.bin").read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InvalidModelError):
        unpack_model_upload(cut, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))
