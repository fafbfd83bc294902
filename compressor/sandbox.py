"""Run one function call in a throwaway child process that cannot reach anything it should not.

Used for model formats whose loading executes code (TorchScript, torch.export archives). The
child is `python -m compressor.sandbox`; before the function runs it is put in new user, mount,
network and PID namespaces, so that it has

* no network at all (an empty network namespace: not even loopback to the host's services),
* no view of the paths in `hidden` (empty read-only mounts over them; a hidden folder that holds
  `workdir` shows nothing but the way down to it), no view of the host's processes (a fresh
  /proc), and a read-only file system except for `workdir`,
* memory, CPU time and file size limits, a minimal environment, and no capabilities,

and, as a second layer, an audit hook that refuses network, process and out-of-workdir writes
from Python code. Whatever cannot be set up fails the call (SandboxError); nothing runs
unisolated. Messages are written for the person who uploaded the model.

The namespaces are entered first thing in the child's __main__ rather than in a preexec_fn:
unshare(CLONE_NEWUSER) needs a single-threaded caller, and the service calling us has threads
(torch, the worker pool). The child then forks (a new PID namespace takes effect for children
only) and execs Python again, which drops the capabilities it held inside the new namespaces.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CALL_FILE = "sandbox-call.json"
RESULT_FILE = "sandbox-result.json"
_TAIL_BYTES = 4096
_MAX_RESULT_BYTES = 1024 * 1024
_INSIDE_UID = 1000  # used when the service runs as root: uid 0 inside would keep capabilities

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000
_AT_FDCWD, _AT_RECURSIVE = -100, 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_SYS_MOUNT_SETATTR = 442  # the same number on x86_64 and aarch64
_PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 4 * 1024**3  # RLIMIT_AS
    cpu_seconds: int = 300  # RLIMIT_CPU
    wall_seconds: float = 600.0  # the parent kills the child (SIGKILL) after this
    max_file_bytes: int = 4 * 1024**3  # RLIMIT_FSIZE


class SandboxError(Exception):
    """The sandboxed call failed; the message is meant for the uploader."""


class SandboxViolation(PermissionError):
    """Raised in the child by the audit hook; a PermissionError so libraries treat it as one."""


# ---------------------------------------------------------------------------------------------
# Parent side


def run_sandboxed(
    func_path: str,
    kwargs: dict[str, Any],
    *,
    workdir: Path,
    hidden: Sequence[Path],
    limits: SandboxLimits,
) -> dict[str, Any]:
    """Call `package.module:function(**kwargs)` in an isolated child and return its dict result.

    `workdir` is the child's cwd, TMPDIR and HOME, and the only place it can write. A `hidden`
    path may hold it (the system temp dir that also holds other conversions' workdirs): the
    child then sees that path empty except for the folders leading down to `workdir`. `workdir`
    itself must not be hidden (ValueError). Raises SandboxError on any failure.
    """
    module, _, name = func_path.partition(":")
    if not module or not name.isidentifier():
        raise ValueError(f"func_path must look like 'package.module:function', got {func_path!r}")
    workdir = workdir.resolve(strict=True)
    hidden_paths = _hidden_mounts(workdir, [Path(p).resolve() for p in hidden])
    call = {
        "func": func_path,
        "kwargs": kwargs,
        "workdir": str(workdir),
        "hidden": [str(p) for p in hidden_paths],
        "limits": asdict(limits),
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
    result = _read_result(workdir / RESULT_FILE)
    if result is None:
        raise SandboxError(
            f"the model's loader stopped unexpectedly (exit status {proc.returncode}); "
            f"last output: {tail.text()[-300:] or '(none)'}"
        )
    if result.get("ok") is True and isinstance(result.get("value"), dict):
        return result["value"]
    raise SandboxError(_failure_message(result, limits, tail.text()))


def default_hidden(extra: Sequence[Path]) -> list[Path]:
    """`extra` plus the places on a host that hold other users' files, sockets and credentials:
    the system temp dir (other conversions' workdirs), /run and /var/run (the unix sockets of
    PostgreSQL, Redis, Docker), /dev/shm and the home folder. A candidate that holds Python or
    this code (a virtualenv in the home folder) is left visible, or nothing could run; missing
    ones are skipped. `extra` is returned as given: those are the caller's explicit choice."""
    needed = [Path(sys.prefix), Path(sys.base_prefix), Path(__file__).parents[1]]
    needed = [p.resolve() for p in needed]
    found = [Path(p) for p in extra]
    seen = {p.resolve() for p in found}
    for raw in (tempfile.gettempdir(), "/run", "/var/run", "/dev/shm", Path.home()):
        path = Path(raw)
        if not path.exists():
            continue
        real = path.resolve()
        if real in seen or any(real == p or real in p.parents for p in needed):
            continue
        seen.add(real)
        found.append(path)
    return found


def _hidden_mounts(workdir: Path, hidden: list[Path]) -> list[Path]:
    """The mounts to make for `hidden` (resolved): existing paths, outermost first, leaving out
    those already covered by another (their mount point would not exist under its cover),
    except inside workdir, which is shown again and so needs them."""
    chosen: list[Path] = []
    for path in sorted(set(hidden), key=lambda p: len(p.parts)):
        if path == workdir:
            raise ValueError(f"the sandbox workdir {workdir} is itself a hidden path")
        if not os.path.lexists(path):
            continue
        shown_again = workdir in path.parents
        if any(q in path.parents and not (q in workdir.parents and shown_again) for q in chosen):
            continue
        chosen.append(path)
    return chosen


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
    roots = {str(Path(__file__).resolve().parents[1])}
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


def _read_result(path: Path) -> dict[str, Any] | None:
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


# ---------------------------------------------------------------------------------------------
# Child, stage 1: enter the namespaces, set limits, fork the PID-namespace init and wait for it

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def _mount_setattr(path: str, flags: int, *, set_: int = 0, clear: int = 0) -> None:
    attr = (ctypes.c_uint64 * 4)(set_, clear, 0, 0)
    ret = _libc.syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR),
        ctypes.c_int(_AT_FDCWD),
        path.encode(),
        ctypes.c_uint(flags),
        attr,
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    _check(ret, f"mount_setattr {path}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _enter_namespaces(workdir: str, hidden: list[str]) -> None:
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid or _INSIDE_UID} {uid} 1")
    _write("/proc/self/gid_map", f"{gid or _INSIDE_UID} {gid} 1")
    # Private first, so that nothing below propagates back to the host.
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
    # A mount of its own for workdir, made before / turns read-only, so it alone can be writable.
    _mount(workdir, workdir, None, _MS_BIND, None)
    # Held open so workdir can be shown again once a hidden path above it is covered.
    workdir_fd = os.open(workdir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for path in hidden:  # outermost first (run_sandboxed sorts them)
            if _is_within(workdir, path):
                _hide_except(path, workdir, workdir_fd)
            elif os.path.isdir(path):
                flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
                _mount("tmpfs", path, "tmpfs", flags, "size=4k")
            else:
                _mount("/dev/null", path, None, _MS_BIND, None)
    finally:
        os.close(workdir_fd)
    # Writes are confined to workdir by the kernel, not only by the audit hook: this also holds
    # for native code (ctypes, torch extensions) that the hook never sees.
    _mount_setattr("/", _AT_RECURSIVE, set_=_MOUNT_ATTR_RDONLY)
    _mount_setattr(workdir, 0, clear=_MOUNT_ATTR_RDONLY)
    os.chdir(workdir)  # the old cwd still points into the mount underneath, now read-only
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def _is_within(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _hide_except(root: str, workdir: str, workdir_fd: int) -> None:
    """Cover `root` with an empty tmpfs holding only the folders down to `workdir`, and mount
    the real workdir (through its open descriptor: its path is covered by now) at the end of
    them. Everything else under `root` (other conversions' workdirs) is out of reach. The tmpfs
    is writable only until / turns read-only, recursively, just after."""
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "size=64k,mode=0755")
    os.makedirs(workdir, mode=0o755)
    _mount(f"/proc/self/fd/{workdir_fd}", workdir, None, _MS_BIND, None)


def _set_limits(limits: dict[str, Any]) -> None:
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_AS, (int(limits["memory_bytes"]),) * 2)
    # The child is its PID namespace's init, which ignores the soft limit's SIGXCPU: the hard
    # limit's SIGKILL is what stops it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["max_file_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _mount_proc() -> None:
    """A /proc of the new PID namespace: the host's processes (and, through /proc/PID/root,
    their view of the hidden paths) disappear. Where procfs cannot be mounted (some
    containers), an empty /proc hides them just as well."""
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC | _MS_RDONLY
    try:
        _mount("proc", "/proc", "proc", flags, None)
    except OSError:
        _mount("tmpfs", "/proc", "tmpfs", flags, "size=4k")


def _report(workdir: str, result: dict[str, Any]) -> None:
    with open(os.path.join(workdir, RESULT_FILE), "w") as fh:
        json.dump(result, fh)


def _isolation_failed(workdir: str, exc: BaseException) -> int:
    _report(
        workdir,
        {
            "ok": False,
            "kind": "isolation",
            "message": f"this server cannot isolate the model's loader ({exc}), so the model "
            "was not loaded",
        },
    )
    return 3


def _outer(call_path: str) -> int:
    with open(call_path) as fh:
        call = json.load(fh)
    workdir = call["workdir"]
    try:
        _enter_namespaces(workdir, call["hidden"])
        _set_limits(call["limits"])
    except (OSError, ValueError) as exc:
        return _isolation_failed(workdir, exc)
    # SIGTERM (from run_sandboxed's timeout) must reach a handler that knows the child's pid:
    # held back until both exist.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pid = os.fork()
    if pid == 0:  # PID 1 of the new namespace: when it ends, everything it started ends too
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            _mount_proc()
            argv = [sys.executable, "-P", "-m", "compressor.sandbox", "--inside", call_path]
            os.execve(sys.executable, argv, dict(os.environ))
        except BaseException as exc:
            _isolation_failed(workdir, exc)
        os._exit(3)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    _, status, usage = os.wait4(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        near_cpu_limit = usage.ru_utime + usage.ru_stime >= call["limits"]["cpu_seconds"] - 1
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and near_cpu_limit):
            kind = "cpu"
        elif sig == signal.SIGKILL:
            kind = "memory"  # the OOM killer, the only other sender of SIGKILL in here
        else:
            kind = "signal"
        _report(
            workdir,
            {
                "ok": False,
                "kind": kind,
                "message": f"the model's loader crashed ({signal.Signals(sig).name})",
            },
        )
        return 128 + sig
    return os.WEXITSTATUS(status)


# ---------------------------------------------------------------------------------------------
# Child, stage 2: check the isolation holds, install the audit hook, run the function

_REFUSED = {
    "socket.connect": "open a network connection",
    "socket.sendto": "open a network connection",
    "socket.sendmsg": "open a network connection",
    "socket.bind": "listen on a network port",
    "subprocess.Popen": "start another program",
    "os.system": "start another program",
    "os.exec": "start another program",
    "os.posix_spawn": "start another program",
    "os.spawn": "start another program",
    "pty.spawn": "start another program",
    "os.fork": "start another process",
    "os.forkpty": "start another process",
}
# event -> (index of a path argument, index of its dir_fd argument or None)
_WRITES: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.mkdir": ((0, 2),),
    "os.mkfifo": ((0, 2),),
    "os.mknod": ((0, 3),),
    "os.rename": ((0, 2), (1, 3)),
    "os.link": ((1, 3),),
    "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.utime": ((0, 3),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _refusal(action: str) -> str:
    return f"the model's loader tried to {action}, which is not allowed"


def _resolve(path: Any, dir_fd: Any) -> str | None:
    if isinstance(path, int) or path is None:
        return None  # an already open descriptor: its opening was checked
    name = os.fsdecode(os.fspath(path))
    if not os.path.isabs(name) and isinstance(dir_fd, int) and dir_fd >= 0:
        name = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), name)
    return os.path.realpath(name)


def _audit_hook(workdir: str, violations: list[str]) -> Callable[[str, tuple[Any, ...]], None]:
    inside = workdir.rstrip("/") + "/"

    def refuse(action: str) -> None:
        message = _refusal(action)
        violations.append(message)
        raise SandboxViolation(message)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _REFUSED:
            refuse(_REFUSED[event])
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+")
            )
            targets = [(path, None)] if writes else []
        elif event in _WRITES:
            targets = [(args[i], None if d is None else args[d]) for i, d in _WRITES[event]]
        else:
            return
        for path, dir_fd in targets:
            resolved = _resolve(path, dir_fd)
            if resolved is not None and resolved != "/dev/null" and not resolved.startswith(inside):
                refuse(f"write to {resolved} (outside its working folder)")

    return hook


def _capabilities() -> int:
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capget(header, data), "capget")
    return data[0] | data[3] << 32  # effective, both halves


def _verify_isolation(call: dict[str, Any]) -> None:
    """Fail closed: check the layers the parent relies on are really in place."""
    if _capabilities() != 0:
        raise OSError(errno.EPERM, "capabilities were not dropped")
    if any(name != "lo" for _, name in socket.if_nameindex()):
        raise OSError(errno.EPERM, "a network interface is visible")
    workdir = call["workdir"]
    for path in call["hidden"]:
        if not os.path.isdir(path):
            if os.path.lexists(path) and os.path.getsize(path):
                raise OSError(errno.EPERM, f"{path} is not hidden")
            continue
        if not _is_within(workdir, path):
            if os.listdir(path):
                raise OSError(errno.EPERM, f"{path} is not hidden")
            continue
        # only the way down to workdir: one entry per level
        current = path
        for part in Path(os.path.relpath(workdir, path)).parts:
            if os.listdir(current) != [part]:
                raise OSError(errno.EPERM, f"{path} is not hidden")
            current = os.path.join(current, part)
    if os.access("/", os.W_OK) or not os.access(".", os.W_OK):
        raise OSError(errno.EPERM, "the file system is not read-only outside the workdir")


def _classify(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "bad_alloc" in text:
        return "memory"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "file_size"
    return "error"


def _inside(call_path: str) -> None:
    with open(call_path) as fh:
        call = json.load(fh)
    workdir = call["workdir"]
    try:
        _verify_isolation(call)
    except OSError as exc:
        os._exit(_isolation_failed(workdir, exc))
    sys.dont_write_bytecode = True  # a refused .pyc write outside workdir must not break imports
    violations: list[str] = []
    sys.addaudithook(_audit_hook(workdir, violations))
    result: dict[str, Any]
    try:
        module, _, name = call["func"].partition(":")
        value = getattr(importlib.import_module(module), name)(**call["kwargs"])
        if not isinstance(value, dict):
            raise TypeError(f"{call['func']} returned {type(value).__name__}, not a dict")
        result = {"ok": True, "value": value}
        json.dumps(result)
    except BaseException as exc:
        message = str(exc) or type(exc).__name__
        result = {"ok": False, "kind": _classify(exc), "message": message}
    if violations:  # even when the code caught the refusal and carried on
        result = {"ok": False, "kind": "violation", "message": violations[0]}
    _report(workdir, result)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip atexit handlers and non-daemon threads the loaded code may have left


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inside"]:
        _inside(sys.argv[2])
    else:
        sys.exit(_outer(sys.argv[1]))
