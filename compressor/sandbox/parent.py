"""The parent's side: launch the child, enforce the wall-clock limit, and turn what the child
reported (or failed to report) into a result or a message for the uploader."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compressor.sandbox.exchange import CALL_FILE, RESULT_FILE, read_result
from compressor.sandbox.hidden import hidden_mounts

_TAIL_BYTES = 4096


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 4 * 1024**3  # RLIMIT_DATA
    cpu_seconds: int = 300  # RLIMIT_CPU
    wall_seconds: float = 600.0  # the parent kills the child (SIGKILL) after this
    max_file_bytes: int = 4 * 1024**3  # RLIMIT_FSIZE


class SandboxError(Exception):
    """The sandboxed call failed; the message is meant for the uploader."""


def run_sandboxed(
    func_path: str,
    kwargs: dict[str, Any],
    *,
    workdir: Path,
    hidden: Sequence[Path],
    limits: SandboxLimits,
    preload: Sequence[str] = (),
) -> dict[str, Any]:
    """Call `package.module:function(**kwargs)` in an isolated child and return its dict result.

    `workdir` is the child's cwd, TMPDIR and HOME, and the only place it can write. A `hidden`
    path may hold it (the system temp dir that also holds other conversions' workdirs): the
    child then sees that path empty except for the folders leading down to `workdir`. `workdir`
    itself must not be hidden (ValueError). `preload`: trusted modules imported before the
    audit hook goes in (torch's CUDA build runs ldconfig while importing). Raises SandboxError
    on any failure.
    """
    module, _, name = func_path.partition(":")
    if not module or not name.isidentifier():
        raise ValueError(f"func_path must look like 'package.module:function', got {func_path!r}")
    workdir = workdir.resolve(strict=True)
    hidden_paths = hidden_mounts(workdir, [Path(p).resolve() for p in hidden])
    call = {
        "func": func_path,
        "kwargs": kwargs,
        "workdir": str(workdir),
        "hidden": [str(p) for p in hidden_paths],
        "limits": asdict(limits),
        "preload": list(preload),
    }
    (workdir / RESULT_FILE).unlink(missing_ok=True)
    (workdir / CALL_FILE).write_text(json.dumps(call))

    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "compressor.sandbox", str(workdir / CALL_FILE)],
        cwd=workdir,
        env=_child_env(workdir, module),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, to SIGKILL as a last resort
        close_fds=True,
    )
    tail = _Tail(proc.stdout)
    timed_out = False
    try:
        proc.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        if proc.poll() is None:
            _stop(proc)
        tail.join(timeout=5)
    if timed_out:
        raise SandboxError(
            f"the model's loader exceeded the time limit of {limits.wall_seconds:g} s"
        )
    result = read_result(workdir / RESULT_FILE)
    if result is None:
        raise SandboxError(
            f"the model's loader stopped unexpectedly (exit status {proc.returncode}); "
            f"last output: {tail.text()[-300:] or '(none)'}"
        )
    if result.get("ok") is True and isinstance(result.get("value"), dict):
        return result["value"]
    raise SandboxError(_failure_message(result, limits, tail.text()))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGTERM asks stage 1 to SIGKILL the PID namespace's init, which ends every process in
    # there: killing the process group alone would miss one that called setsid().
    proc.terminate()
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _child_env(workdir: Path, module: str) -> dict[str, str]:
    roots = {str(Path(__file__).resolve().parents[2])}  # the folder that holds compressor
    spec = importlib.util.find_spec(module.split(".")[0])  # finds the package, imports nothing
    if spec is not None and spec.submodule_search_locations:
        roots.update(str(Path(p).parent) for p in spec.submodule_search_locations)
    elif spec is not None and spec.origin:
        roots.add(str(Path(spec.origin).parent))
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "PYTHONPATH": os.pathsep.join(sorted(roots)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


class _Tail(threading.Thread):
    """Drains the child's output (so it never blocks on a full pipe), keeping only the end."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._buf = bytearray()
        self.start()

    def run(self) -> None:
        while chunk := self._stream.read1(65536):
            self._buf += chunk
            del self._buf[:-_TAIL_BYTES]
        self._stream.close()

    def text(self) -> str:
        return self._buf.decode("utf-8", "replace").strip()


def _failure_message(result: dict[str, Any], limits: SandboxLimits, tail: str) -> str:
    kind = result.get("kind")
    if kind == "memory":
        return (
            f"the model's loader exceeded the memory limit of "
            f"{limits.memory_bytes / 1024**3:.1f} GiB"
        )
    if kind == "cpu":
        return f"the model's loader exceeded the CPU time limit of {limits.cpu_seconds} s"
    if kind == "file_size":
        return (
            f"the model's loader tried to write a file larger than "
            f"{limits.max_file_bytes / 1024**3:.1f} GiB"
        )
    message = str(result.get("message") or "failed without a message")[:2000]
    if kind == "signal" and "bad_alloc" in tail:
        return _failure_message({"kind": "memory"}, limits, "")
    return message
