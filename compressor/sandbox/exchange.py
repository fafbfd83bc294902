"""The files in workdir through which the parent hands the child its call and gets the result."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CALL_FILE = "sandbox-call.json"
RESULT_FILE = "sandbox-result.json"
_MAX_RESULT_BYTES = 1024 * 1024


def write_result(workdir: str, result: dict[str, Any]) -> None:
    with open(os.path.join(workdir, RESULT_FILE), "w") as fh:
        json.dump(result, fh)


def read_result(path: Path) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(_MAX_RESULT_BYTES + 1)
    try:
        result = json.loads(raw) if len(raw) <= _MAX_RESULT_BYTES else None
    except ValueError:
        return None
    return result if isinstance(result, dict) else None
