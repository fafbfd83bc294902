"""The parent's side: launch the child, enforce the wall-clock limit, and turn what the child
reported (or failed to report) into a result or a message for the uploader."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compressor.sandbox.audit import ACTIONS, refusal
from compressor.sandbox.cgroup import make_cgroup, remove_cgroup
from compressor.sandbox.exchange import CALL_FILE, RESULT_FILE, read_result
from compressor.sandbox.hidden import hidden_mounts
from compressor.sandbox.namespaces import SANDBOX_GID, SANDBOX_UID

log = logging.getLogger(__name__)
_TAIL_BYTES = 4096


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 4 * 1024**3  # RLIMIT_DATA
    cpu_seconds: int = 300  # RLIMIT_CPU
    wall_seconds: float = 600.0  # the parent kills the child (SIGKILL) after this
    max_file_bytes: int = 4 * 1024**3  # RLIMIT_FSIZE
    # RLIMIT_NPROC, threads included; seccomp refuses new processes besides
    max_processes: int = 64


class SandboxError(Exception):
    """The sandboxed call failed. The message is meant for the uploader and is one of a fixed
    few: anything the child wrote could hold what the loaded code read. `detail` (the child's
    own account, its output) is for the server's log only. `code`: what the called function
    said went wrong, as its exception's `sandbox_code` (the caller must accept only codes it
    knows: the loaded code can raise one too)."""

    def __init__(self, message: str, *, detail: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail
        self.code = code


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
    env = _child_env(workdir, module)
    as_root = os.geteuid() == 0
    # As root, the sandbox drops to an unprivileged uid, which must reach Python and our code
    # (under /root, say) and write its workdir.
    needed = [Path(p).resolve() for p in _python_paths(env)] if as_root else []
    covers = hidden_mounts(workdir, [Path(p).resolve() for p in hidden], needed)
    cgroup = make_cgroup(limits.memory_bytes, limits.max_processes)
    call = {
        "func": func_path,
        "kwargs": kwargs,
        "workdir": str(workdir),
        "covers": [(str(p), [str(s) for s in shown]) for p, shown in covers],
        "limits": asdict(limits),
        "preload": list(preload),
        "cgroup": str(cgroup) if cgroup else None,
    }
    try:
        return _run(call, workdir, env, limits)
    finally:
        if cgroup is not None:
            remove_cgroup(cgroup)


def _run(
    call: dict[str, Any], workdir: Path, env: dict[str, str], limits: SandboxLimits
) -> dict[str, Any]:
    for name in (RESULT_FILE, CALL_FILE):  # what an earlier sandbox left may be a link
        (workdir / name).unlink(missing_ok=True)
    fd = os.open(workdir / CALL_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(call, fh)
    if os.geteuid() == 0:
        os.chown(workdir, SANDBOX_UID, SANDBOX_GID)

    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "compressor.sandbox", str(workdir / CALL_FILE)],
        cwd=workdir,
        env=env,
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
        detail = f"exit status {proc.returncode}; last output: {tail.text()[-300:] or '(none)'}"
        log.warning("sandboxed %s stopped unexpectedly: %s", call["func"], detail)
        raise SandboxError("the model's loader stopped unexpectedly", detail=detail)
    if result.get("ok") is True and isinstance(result.get("value"), dict):
        return dict(result["value"])
    detail = str(result.get("detail") or "")[:2000]
    log.warning("sandboxed %s failed (%s): %s", call["func"], result.get("kind"), detail)
    code = result.get("code")
    raise SandboxError(
        _failure_message(result, limits, tail.text()),
        detail=detail,
        code=code if isinstance(code, str) else None,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGTERM asks stage 1 to SIGKILL the PID namespace's init, which ends every process in
    # there: killing the process group alone would miss one that called setsid().
    proc.terminate()
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _python_paths(env: dict[str, str]) -> list[str]:
    return [sys.prefix, sys.base_prefix, *env["PYTHONPATH"].split(os.pathsep)]


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
    if kind == "signal" and "bad_alloc" in tail:
        kind = "memory"
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
    if kind == "violation" and result.get("action") in ACTIONS:
        return refusal(str(result["action"]))
    if kind == "isolation":
        return "this server cannot isolate the model's loader, so the model was not loaded"
    if kind == "signal":
        return "the model's loader crashed"
    return "the model's loader failed"
