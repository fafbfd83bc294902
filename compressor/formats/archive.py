"""Safe unpacking of user archives (.zip, .tar, .tar.gz, .tar.xz).

Archives are untrusted: members may try to escape the target folder, be links,
or expand to far more than they weigh (bombs). Every member is checked before
any byte is written.
"""

from __future__ import annotations

import shutil
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from compressor.errors import InvalidModelError, UnsafeArchiveError
from compressor.formats.onnx_header import looks_like_onnx

_GZIP_MAGIC = b"\x1f\x8b"
# xz: the service's own downloads are .tar.xz, and a user may send one back to compress further.
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 2_000
    max_total_bytes: int = 8 * 1024**3
    max_ratio: float = 200.0
    max_index_bytes: int = 16 * 1024**2


def sniff_archive(path: Path) -> str | None:
    """Return 'zip', 'tar' or None, by content rather than by the client's filename."""
    with path.open("rb") as fh:
        head = fh.read(512)
    if head.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        return "zip"
    if head.startswith((_GZIP_MAGIC, _XZ_MAGIC)) or (
        len(head) >= 262 and head[257:262] == b"ustar"
    ):
        return "tar"
    return None


def _safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name.replace("\\", "/"))
    drive_letter = bool(rel.parts) and rel.parts[0].endswith(":")
    if rel.is_absolute() or drive_letter:
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    if any(part == ".." for part in rel.parts):
        raise UnsafeArchiveError(f"archive member {name!r} points outside the archive")
    return rel


def check_archive_totals(count: int, total: int, packed: int, limits: ArchiveLimits) -> None:
    if count > limits.max_members:
        raise UnsafeArchiveError(f"archive has more than {limits.max_members} members")
    if total > limits.max_total_bytes:
        raise UnsafeArchiveError(f"archive expands to more than {limits.max_total_bytes} bytes")
    if packed > 0 and total / packed > limits.max_ratio and total > 10 * 1024**2:
        raise UnsafeArchiveError(
            f"archive compression ratio {total / packed:.0f}x exceeds {limits.max_ratio:.0f}x"
        )


def extract_archive(path: Path, dest: Path, *, limits: ArchiveLimits | None = None) -> None:
    """Unpack ``path`` into the empty folder ``dest``; raise before writing if anything is unsafe."""
    limits = limits or ArchiveLimits()
    kind = sniff_archive(path)
    packed = path.stat().st_size
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            _extract_zip(path, dest, packed, limits)
        elif kind == "tar":
            _extract_tar(path, dest, packed, limits)
        else:
            raise InvalidModelError(
                "unknown file format: expected a .zip, .tar, .tar.gz or .tar.xz archive of a "
                "Hugging Face model directory, or an .onnx file"
            )
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise InvalidModelError(f"the archive is corrupt or truncated: {exc}") from exc
    except Exception:
        shutil.rmtree(dest, ignore_errors=True)
        raise


_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


def _zip_directory_size(path: Path) -> tuple[int, int]:
    """(entries, bytes) the central directory declares, from the end records alone."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - (_EOCD.size + 0xFFFF + _ZIP64_LOCATOR.size)))
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _EOCD.size > len(tail):
            raise InvalidModelError("the archive is corrupt or truncated: no zip end record")
        entries, index_bytes = _EOCD.unpack_from(tail, at)[4:6]
        locator = at - _ZIP64_LOCATOR.size
        if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            fh.seek(_ZIP64_LOCATOR.unpack_from(tail, locator)[2])
            record = fh.read(_ZIP64_EOCD.size)
            if len(record) == _ZIP64_EOCD.size and record[:4] == b"PK\x06\x06":
                entries, index_bytes = _ZIP64_EOCD.unpack(record)[7:9]
    return entries, index_bytes


def check_zip_directory(path: Path, limits: ArchiveLimits) -> None:
    """Opening a ZipFile reads and parses its whole central directory: bound it first."""
    entries, index_bytes = _zip_directory_size(path)
    if entries > limits.max_members:
        raise UnsafeArchiveError(f"archive has more than {limits.max_members} members")
    if index_bytes > limits.max_index_bytes:
        raise UnsafeArchiveError(f"archive index exceeds {limits.max_index_bytes} bytes")


def _check_zip_index(zf: zipfile.ZipFile, packed: int, limits: ArchiveLimits) -> list[str]:
    infos = zf.infolist()
    total = 0
    for info in infos:
        _safe_relative(info.filename)
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            raise UnsafeArchiveError(f"archive member {info.filename!r} is a symlink")
        total += info.file_size
    check_archive_totals(len(infos), total, packed, limits)
    return [info.filename for info in infos]


def _check_tar_index(tf: tarfile.TarFile, packed: int, limits: ArchiveLimits) -> list[str]:
    """Walk the headers one by one: reaching the next header means reading (and, compressed,
    inflating) this member's data, so the totals are checked before each step, not at the end."""
    names: list[str] = []
    total = 0
    while (member := tf.next()) is not None:
        _safe_relative(member.name)
        if member.issym() or member.islnk():
            raise UnsafeArchiveError(f"archive member {member.name!r} is a link")
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"archive member {member.name!r} is not a regular file")
        total += member.size
        names.append(member.name)
        check_archive_totals(len(names), total, packed, limits)
    return names


def _extract_zip(path: Path, dest: Path, packed: int, limits: ArchiveLimits) -> None:
    check_zip_directory(path, limits)
    with zipfile.ZipFile(path) as zf:
        _check_zip_index(zf, packed, limits)
        for info in zf.infolist():
            target = dest / _safe_relative(info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                _copy_bounded(src, out, info.file_size, info.filename)


def _extract_tar(path: Path, dest: Path, packed: int, limits: ArchiveLimits) -> None:
    with tarfile.open(path, mode="r:*") as tf:
        _check_tar_index(tf, packed, limits)
        for member in tf.getmembers():
            target = dest / _safe_relative(member.name)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:
                raise UnsafeArchiveError(f"archive member {member.name!r} cannot be read")
            with src, target.open("wb") as out:
                _copy_bounded(src, out, member.size, member.name)


def _copy_bounded(src, out, declared: int, name: str) -> None:  # type: ignore[no-untyped-def]
    written = 0
    while chunk := src.read(1024 * 1024):
        written += len(chunk)
        if written > declared:
            raise UnsafeArchiveError(f"archive member {name!r} is larger than it declares")
        out.write(chunk)
    if written != declared:
        raise InvalidModelError(f"archive member {name!r} is truncated")


_ROOT_MARKERS = ("config.json", "architecture.json", "*.onnx")
_NO_MODEL = (
    "the archive holds no model: expected a Hugging Face directory (config.json and "
    "*.safetensors), an ONNX model, or architecture.json with model.safetensors"
)


def find_model_root(folder: Path) -> Path:
    """Archives often wrap the model in one top folder; return the shallowest folder with a marker."""
    candidates = sorted({p.parent for marker in _ROOT_MARKERS for p in folder.rglob(marker)})
    if not candidates:
        raise InvalidModelError(_NO_MODEL)
    return min(candidates, key=lambda p: len(p.parts))


_SAFE_FORMATS = (
    "Upload safetensors weights (a Hugging Face directory, or architecture.json + "
    "model.safetensors) or an ONNX model instead"
)
PICKLE_REFUSAL = (
    "is a pickle (torch.save) file: loading it can execute code, so it is never accepted. "
    + _SAFE_FORMATS
)
EXECUTABLE_REFUSAL = (
    "is a TorchScript or torch.export archive: loading it can execute code, and this deployment "
    "does not accept executable formats (MODELPRESS_ALLOW_EXECUTABLE_FORMATS is off). "
    + _SAFE_FORMATS
)
_UNKNOWN_FORMAT = (
    "unknown file format: upload a .zip, .tar, .tar.gz or .tar.xz of a Hugging Face model "
    "directory, or a single .onnx file"
)

UploadKind = Literal["archive", "onnx", "torchscript", "torch_export"]


def _archive_names(upload: Path, limits: ArchiveLimits) -> list[str]:
    packed = upload.stat().st_size
    try:
        if sniff_archive(upload) == "zip":
            with zipfile.ZipFile(upload) as zf:
                return _check_zip_index(zf, packed, limits)
        with tarfile.open(upload, mode="r:*") as tf:
            return _check_tar_index(tf, packed, limits)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidModelError(f"the archive is corrupt or truncated: {exc}") from exc


def screen_upload(
    upload: Path, *, allow_executable: bool = False, limits: ArchiveLimits | None = None
) -> UploadKind:
    """The cheap checks run before an upload is stored: headers and archive indexes only.

    Nothing is unpacked, inflated past a limit or loaded here; that is inspection, which runs
    in a worker. The cost is bounded by the number of archive members or ONNX top-level fields.
    """
    from compressor.formats.executable import detect_executable

    limits = limits or ArchiveLimits()
    if upload.stat().st_size == 0:
        raise InvalidModelError("the uploaded file is empty")
    archive = sniff_archive(upload)
    if archive == "zip":
        check_zip_directory(upload, limits)
    executable = detect_executable(upload)
    if executable == "pickle":
        raise InvalidModelError(f"the upload {PICKLE_REFUSAL}")
    if executable is not None:
        if not allow_executable:
            raise InvalidModelError(f"the upload {EXECUTABLE_REFUSAL}")
        return executable
    if archive is not None:
        names = _archive_names(upload, limits)
        leaves = [PurePosixPath(n.replace("\\", "/")).name for n in names]
        if not any(n in _ROOT_MARKERS or n.endswith(".onnx") for n in leaves):
            raise InvalidModelError(_NO_MODEL)
        return "archive"
    if looks_like_onnx(upload):
        return "onnx"
    raise InvalidModelError(_UNKNOWN_FORMAT)


def unpack_model_upload(upload: Path, dest: Path, *, limits: ArchiveLimits | None = None) -> Path:
    """Turn one stored upload into a model folder under ``dest``; return the model's root folder."""
    kind = screen_upload(upload, limits=limits)
    if kind == "archive":
        extract_archive(upload, dest, limits=limits)
        return find_model_root(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(upload, dest / "model.onnx")
    return dest
