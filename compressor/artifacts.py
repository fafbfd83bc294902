"""Packing an artifact folder for download: the one place archives and their checksums are made.

Each job packs its folder once (``deliverable``), after report.json and recipe.json are in it,
so the archive the report describes is the archive the user downloads (issue 24).

The codec is chosen by measured time against bytes saved. MiniLM-L6 int8 (dynamic, per tensor)
artifact: model.onnx 22.9 MB + tokenizer files, 23,582,783 bytes; fp32 ONNX: 91.5 MB. Python's
own codecs (zipfile, gzip, lzma; no zstd module is installed), one pass each, on the 2-core dev
VM under a load average of 2.2-3.2 (a benchmark running beside it), 2026-12-04. CPU seconds are
the packing process's own; wall seconds include the contention.

    MiniLM int8, 23.6 MB     wall s   CPU s   bytes        saved    saved MB per CPU s
    zip stored                0.09    0.03   23,583,437    -0.0%    -
    zip deflate 1             1.10    0.43   16,252,318    31.1%    16.9
    zip deflate 6             1.73    0.93   15,671,960    33.5%     8.5
    zip deflate 9             3.60    2.19   15,642,609    33.7%     3.6
    tar.gz 1                  0.87    0.42   16,252,540    31.1%    17.3
    tar.gz 3                  1.07    0.51   16,155,627    31.5%    14.6
    tar.gz 4                  1.27    0.62   15,736,518    33.3%    12.6
    tar.gz 6                  2.07    0.97   15,672,606    33.5%     8.2
    tar.gz 9                  4.92    2.42   15,643,316    33.7%     3.3
    tar.xz 0                  7.15    3.32   16,529,604    29.9%     2.1
    tar.xz 1                 16.10    8.98   16,292,140    30.9%     0.8
    tar.xz 2                 16.94   11.33   16,267,636    31.0%     0.7
    tar.xz 3                 19.11   12.53   16,265,920    31.0%     0.6
    tar.xz 4                 21.63   15.83   15,069,896    36.1%     0.5
    tar.xz 5                 31.99   19.30   15,066,708    36.1%     0.4
    tar.xz 6 (the old one)   40.06   20.06   15,065,080    36.1%     0.4
    chosen: pack() below      0.78    0.61   16,252,318    31.1%    (sha256 included)

    fp32 MiniLM, 91.6 MB     wall s   CPU s   bytes        saved
    zip stored                0.32    0.16   91,606,166    -0.0%
    zip deflate 1             3.88    2.64   83,898,605     8.4%
    zip deflate 6             4.91    3.58   83,504,392     8.8%
    chosen: pack() below      0.24    0.17   91,245,858     0.4%    (weights stored)

    first 1 MiB of the int8 model.onnx: deflate 1 0.02 CPU s, 680,627 bytes;
    xz 6 0.53 s, 603,180; xz 9e 0.67 s, 605,804. First 4 MiB: deflate 1 0.09 s, 2,988,654;
    xz 9e 2.61 s, 2,788,204.

Deflate at level 1 saves the most bytes per second spent: 31% of the int8 model in 0.4 CPU s.
What it costs: the MiniLM int8 download is 16,252,318 bytes instead of the old .tar.xz's
15,065,080 (+1.19 MB, +7.9%) and deflate 6's 15,671,960 (+0.58 MB, +3.7%), for 20 CPU s
(40 s wall here) and 0.5 CPU s less. Every xz preset is over the 3 s budget for packing and
storing, and presets 0-3 save less than deflate 1. tar.gz 1 makes the same bytes as zip deflate
1; zip is kept because the API already serves it (``artifact.zip``) and every system unpacks it
(``unzip``, Explorer). Dense float weights hardly deflate (fp32: 8.4% for 2.6 CPU s), so a file
is deflated only where a probe of it says that saves at least MIN_DEFLATE_SAVING, else stored:
the fp32 download is 7.3 MB (8.0%) larger than deflated, and packs in 0.2 s instead of 3.9.

Folders up to ``XZ_LIMIT_BYTES`` (the digits MLP: 31 KB) still pack as .tar.xz at preset 9e:
there it costs at most a third of a CPU second, and small, sparse models are where encoding
wins (Deep Compression counts the encoded size); plain ``tar xf`` unpacks it.
"""

from __future__ import annotations

import json
import lzma
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from compressor.digest import sha256_file

# Up to this many bytes the folder packs as .tar.xz (preset 9e): at most ~0.35 CPU s there.
XZ_LIMIT_BYTES = 512 * 1024
# Above it, zip deflate at this level: see the table above.
ZIP_LEVEL = 1
# A file is deflated only where a probe says deflate saves at least this share of it; dense
# float weights (fp32: 8.4% for 2.6 CPU s on 90 MB) are stored instead, in 0.2 s.
MIN_DEFLATE_SAVING = 0.15
# The probe: deflate this many bytes at the middle of each quarter of the file (not its start:
# an ONNX file opens with its graph, which deflates well even where the weights do not).
_PROBE_BYTES = 256 * 1024
_PROBE_PLACES = 4
# The extreme preset pays off on small models; on tens of MB it costs minutes of CPU.
_EXTREME_PRESET_BYTES = 4 * 1024**2
# A fixed timestamp (zip's epoch) and mode, so the same folder packs to the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ZIP_FILE_MODE = 0o644 << 16


class ArtifactFormat(StrEnum):
    """What the artifact folder holds: ONNX files, or a Hugging Face directory (runtime torch)."""

    ONNX = "onnx"
    HUGGINGFACE = "huggingface"
    # Causal LMs: a Hugging Face directory in the compressed-tensors format (vLLM), an ONNX
    # Runtime GenAI folder (genai_config.json, ONNX with KV cache, tokenizer), and one GGUF file
    # (llama.cpp).
    COMPRESSED_TENSORS = "compressed-tensors"
    ONNXRUNTIME_GENAI = "onnxruntime-genai"
    GGUF = "gguf"


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


def deflate_pays(path: Path, *, level: int = ZIP_LEVEL) -> bool:
    """Whether deflating ``path`` saves MIN_DEFLATE_SAVING of it, judged on a few samples."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= _PROBE_BYTES * _PROBE_PLACES:
            sample = fh.read()
        else:
            chunks = []
            for place in range(_PROBE_PLACES):
                fh.seek(size * (2 * place + 1) // (2 * _PROBE_PLACES))
                chunks.append(fh.read(_PROBE_BYTES))
            sample = b"".join(chunks)
    return len(zlib.compress(sample, level)) <= (1 - MIN_DEFLATE_SAVING) * len(sample)


def pack_zip(folder: Path, dest: Path, *, level: int = ZIP_LEVEL) -> PackedFile:
    """Pack as .zip, each file deflated at ``level`` where that pays (deflate_pays) and stored
    where it does not; plain ``unzip`` unpacks both, and the same folder packs to the same
    bytes. Files are streamed, so a model of many GB never sits in memory."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_EPOCH)
            deflate = deflate_pays(path, level=level)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            # zipfile takes a member's level from here (``compress_level`` from 3.13, which
            # keeps this name); without it, a ZipInfo of one's own deflates at level 6.
            info._compresslevel = level  # type: ignore[attr-defined]
            info.external_attr = _ZIP_FILE_MODE
            # The size up front lets zipfile write zip64 headers for files over 4 GiB.
            info.file_size = path.stat().st_size
            with path.open("rb") as src, zf.open(info, "w") as out:
                shutil.copyfileobj(src, out, 1024**2)
    return _packed(dest, ArchiveFormat.ZIP)


def pack(folder: Path, workdir: Path) -> PackedFile:
    """The folder as its download: .tar.xz up to XZ_LIMIT_BYTES, else .zip (see the table)."""
    if folder_bytes(folder) <= XZ_LIMIT_BYTES:
        return pack_tar_xz(folder, workdir / "artifact.tar.xz")
    return pack_zip(folder, workdir / "artifact.zip")


def deliverable(folder: Path, *, documents: Mapping[str, object], workdir: Path) -> PackedFile:
    """The download, packed once: the folder with ``documents`` (name -> JSON value, e.g.
    report.json and recipe.json) written beside the model first."""
    for name, document in documents.items():
        (folder / name).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    workdir.mkdir(parents=True, exist_ok=True)
    return pack(folder, workdir)
