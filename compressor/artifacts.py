"""Packing an artifact folder for download: the one place archives and their checksums are made."""

from __future__ import annotations

import json
import lzma
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from compressor.digest import sha256_file

# Below this many bytes the artifact is also packed as .tar.xz: encoding is where small,
# sparse models win (Deep Compression counts the encoded size), and it costs milliseconds.
PACK_LIMIT_BYTES = 32 * 1024**2
# The extreme preset pays off on small models; on tens of MB it costs minutes of CPU.
_EXTREME_PRESET_BYTES = 4 * 1024**2


class ArtifactFormat(StrEnum):
    """What the artifact folder holds: ONNX files, or a Hugging Face directory (runtime torch)."""

    ONNX = "onnx"
    HUGGINGFACE = "huggingface"
    # Causal LMs: a Hugging Face directory in the compressed-tensors format (vLLM), and an ONNX
    # Runtime GenAI folder (genai_config.json, ONNX with KV cache, tokenizer).
    COMPRESSED_TENSORS = "compressed-tensors"
    ONNXRUNTIME_GENAI = "onnxruntime-genai"


class ArchiveFormat(StrEnum):
    TAR_XZ = "tar.xz"
    ZIP = "zip"


@dataclass(frozen=True)
class PackedFile:
    path: Path
    format: ArchiveFormat
    bytes: int
    sha256: str


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _packed(path: Path, archive_format: ArchiveFormat) -> PackedFile:
    return PackedFile(path, archive_format, path.stat().st_size, sha256_file(path))


def pack_tar_xz(folder: Path, dest: Path) -> PackedFile:
    """Pack as .tar.xz, which plain ``tar xf`` unpacks; the same folder packs to the same bytes."""
    preset = 9 | lzma.PRESET_EXTREME if folder_bytes(folder) <= _EXTREME_PRESET_BYTES else 6
    with (
        lzma.LZMAFile(dest, "w", preset=preset) as xz,
        tarfile.open(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(folder.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_file():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return _packed(dest, ArchiveFormat.TAR_XZ)


def pack_zip(folder: Path, dest: Path) -> PackedFile:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return _packed(dest, ArchiveFormat.ZIP)


def pack_if_small(folder: Path, dest: Path) -> PackedFile | None:
    """The .tar.xz the engine reports, for folders up to PACK_LIMIT_BYTES; None above it."""
    if folder_bytes(folder) > PACK_LIMIT_BYTES:
        return None
    return pack_tar_xz(folder, dest)


def deliverable(folder: Path, *, documents: Mapping[str, object], workdir: Path) -> PackedFile:
    """The download: the folder with ``documents`` (name -> JSON value, e.g. report.json and
    recipe.json) written beside the model, as .tar.xz up to PACK_LIMIT_BYTES (smallest, unpacked
    by plain ``tar xf``), else as a zip."""
    for name, document in documents.items():
        (folder / name).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    packed = pack_if_small(folder, workdir / "artifact.tar.xz")
    return packed if packed is not None else pack_zip(folder, workdir / "artifact.zip")
