"""Rejection reasons name files as the uploader knows them, never where the server put them.

A reader's error text (transformers, onnx, safetensors) may quote the absolute path of the
unpacked upload. The uploader must not learn the server's directories, and such a path means
nothing to them: ``<scratch>/model/sub/config.json`` becomes ``sub/config.json``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path


def relative_reason(reason: str, *, upload_root: Path, server_dirs: tuple[Path, ...]) -> str:
    """``reason`` with paths inside ``upload_root`` made relative to it, and any other path
    under ``server_dirs`` or the system temp dir replaced by a placeholder."""
    for spelling in _spellings(upload_root):
        reason = reason.replace(spelling + os.sep, "").replace(spelling, "the upload")
    for spelling in _spellings(*server_dirs, Path(tempfile.gettempdir())):
        reason = re.sub(re.escape(spelling) + r"[^\s'\"`,;]*", "<server path>", reason)
    return reason


def _spellings(*paths: Path) -> list[str]:
    """Each folder absolute, and with links resolved (/tmp is /private/tmp on macOS), longest
    first so that no spelling is cut inside a longer one. Never relative: "data" is a word too."""
    found = {s for p in paths for s in (os.path.abspath(p), os.path.realpath(p))}
    return sorted((s.rstrip(os.sep) for s in found if s.rstrip(os.sep)), key=len, reverse=True)
