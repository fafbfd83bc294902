"""Pack once (issue 24): the archive the report describes is the one the user downloads, with
report.json inside it, and the chosen codecs unpack with Python's own tarfile and zipfile."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from compressor import artifacts
from compressor.artifacts import XZ_LIMIT_BYTES, ArchiveFormat, PackedFile, pack
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import CompressionResult, compress_model
from compressor.recipe import Recipe
from compressor.target import Target
from scripts.train_digits import train_and_save

FAST = MeasureSettings(warmup=1, iterations=3)
TARGET = Target(runtime="onnxruntime", batch_size=8)
RECIPE = {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]}
# The archive's own figures: they cannot be inside the archive they describe.
OWN_FIGURES = ("archive_compression_ratio", "artifact")


@dataclass
class Packs:
    """Every call to a packer, by the folder it packed."""

    folders: list[Path] = field(default_factory=list)


def _spy_on_packers(mp: pytest.MonkeyPatch) -> Packs:
    packs = Packs()
    for name in ("pack_tar_xz", "pack_zip"):
        real = getattr(artifacts, name)

        def spy(folder: Path, dest: Path, *args: Any, _real: Any = real, **kw: Any) -> Any:
            packs.folders.append(folder)
            return _real(folder, dest, *args, **kw)

        mp.setattr(artifacts, name, spy)
    return packs


@dataclass(frozen=True)
class Engined:
    result: CompressionResult
    packs: Packs


@pytest.fixture(scope="module")
def engined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engined]:
    """One real digits MLP int8 run of the engine, every packing call recorded."""
    mlp = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", mlp, epochs=1)
    with pytest.MonkeyPatch.context() as mp:
        packs = _spy_on_packers(mp)
        result = compress_model(
            mlp,
            Recipe.model_validate(RECIPE),
            target=TARGET,
            workdir=tmp_path_factory.mktemp("work"),
            settings=FAST,
            documents={"recipe.json": RECIPE},
        )
    yield Engined(result, packs)


def test_the_engine_packs_the_folder_once(engined: Engined) -> None:
    assert engined.packs.folders == [engined.result.artifact_dir]


def test_the_report_describes_the_archive_it_travels_in(engined: Engined, tmp_path: Path) -> None:
    result, archive = engined.result, engined.result.archive
    content = archive.path.read_bytes()
    assert archive.bytes == len(content)
    assert archive.sha256 == hashlib.sha256(content).hexdigest()
    report = result.report
    assert report["compressed"]["archive"] == {
        "format": archive.format,
        "path": archive.path.name,
        "bytes": len(content),
    }
    ratio = report["original"]["model_bytes"] / len(content)
    assert report["archive_compression_ratio"] == pytest.approx(ratio, rel=1e-3)
    with tarfile.open(archive.path) as tar:  # digits MLP: small, so .tar.xz
        tar.extractall(tmp_path, filter="data")
    assert (tmp_path / "model.onnx").is_file()
    inside = json.loads((tmp_path / "report.json").read_text())
    described = {k: v for k, v in report.items() if k not in OWN_FIGURES}
    described["compressed"] = {**report["compressed"], "archive": None}
    assert inside == described
    assert json.loads((tmp_path / "recipe.json").read_text()) == RECIPE


def test_the_job_stores_the_engines_archive_without_packing_again(
    engined: Engined, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import job_process

    engine_calls: list[dict[str, Any]] = []
    published: list[PackedFile] = []

    def engine(*args: Any, **kwargs: Any) -> CompressionResult:
        engine_calls.append(kwargs)
        return engined.result

    def publish(run: Any, job: Any, packed: PackedFile, **kw: Any) -> None:
        published.append(packed)
        assert kw["report"] == engined.result.report

    monkeypatch.setattr(job_process, "compress_model", engine)
    monkeypatch.setattr(job_process, "fetch_upload", lambda key, sha256, dest: dest)
    monkeypatch.setattr(job_process, "_job_data", lambda job, source, workdir: {})
    monkeypatch.setattr(job_process, "publish", publish)
    packs = _spy_on_packers(monkeypatch)
    job = SimpleNamespace(
        goal=None, tenant=None, recipe=RECIPE, target=TARGET.model_dump(mode="json"), data={}
    )
    model = SimpleNamespace(storage_key="k", sha256="0" * 64)
    inputs = SimpleNamespace(job=job, model=model, students=[])
    run = SimpleNamespace(load=lambda: inputs, progress=lambda *a: None, workdir=tmp_path)
    job_process.run(run)  # type: ignore[arg-type]
    assert packs.folders == []
    assert published == [engined.result.archive]
    assert engine_calls[0]["documents"] == {"recipe.json": RECIPE}


def _folder(root: Path, model_bytes: int) -> Path:
    """A model-like folder: a weights file half noise, half zeros, and a nested tokenizer."""
    (root / "tokenizer").mkdir(parents=True)
    noise = os.urandom(model_bytes // 2)
    (root / "model.onnx").write_bytes(noise + bytes(model_bytes - len(noise)))
    (root / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n" * 100)
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_a_model_sized_folder_packs_as_a_zip_that_zipfile_unpacks(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "model", 2 * XZ_LIMIT_BYTES)
    # Dense noise, like fp32 weights, does not deflate: it is stored, not spent time on.
    (folder / "dense.bin").write_bytes(os.urandom(XZ_LIMIT_BYTES))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    packed = pack(folder, tmp_path / "a")
    assert packed.format == ArchiveFormat.ZIP and packed.path.name == "artifact.zip"
    with zipfile.ZipFile(packed.path) as zf:
        assert zf.testzip() is None
        stored = {i.filename for i in zf.infolist() if i.compress_type == zipfile.ZIP_STORED}
        assert stored == {"dense.bin"}
        model = zf.getinfo("model.onnx")  # half zeros: deflated to about half
        assert model.compress_size < 0.6 * model.file_size
        zf.extractall(tmp_path / "unzipped")
    assert _files(tmp_path / "unzipped") == _files(folder)
    # The same folder packs to the same bytes, so a re-run's archive has the same sha256.
    assert pack(folder, tmp_path / "b").sha256 == packed.sha256


def test_a_small_folder_packs_as_a_tar_xz_that_tarfile_unpacks(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "model", 4096)
    (tmp_path / "out").mkdir()
    packed = pack(folder, tmp_path / "out")
    assert packed.format == ArchiveFormat.TAR_XZ and packed.path.name == "artifact.tar.xz"
    with tarfile.open(packed.path, "r:xz") as tar:
        tar.extractall(tmp_path / "untarred", filter="data")
    assert _files(tmp_path / "untarred") == _files(folder)
