"""The kernel calls (through ctypes) that isolate the child: user, mount, network and PID
namespaces, the mounts that hide paths and make the file system read-only, and a fresh /proc."""

from __future__ import annotations

import ctypes
import os

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


def enter_namespaces(workdir: str, hidden: list[str]) -> None:
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
            if is_within(workdir, path):
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


def is_within(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _hide_except(root: str, workdir: str, workdir_fd: int) -> None:
    """Cover `root` with an empty tmpfs holding only the folders down to `workdir`, and mount
    the real workdir (through its open descriptor: its path is covered by now) at the end of
    them. Everything else under `root` (other conversions' workdirs) is out of reach. The tmpfs
    is writable only until / turns read-only, recursively, just after."""
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "size=64k,mode=0755")
    os.makedirs(workdir, mode=0o755)
    _mount(f"/proc/self/fd/{workdir_fd}", workdir, None, _MS_BIND, None)


def mount_proc() -> None:
    """A /proc of the new PID namespace: the host's processes (and, through /proc/PID/root,
    their view of the hidden paths) disappear. Where procfs cannot be mounted (some
    containers), an empty /proc hides them just as well."""
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC | _MS_RDONLY
    try:
        _mount("proc", "/proc", "proc", flags, None)
    except OSError:
        _mount("tmpfs", "/proc", "tmpfs", flags, "size=4k")


def capabilities() -> int:
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capget(header, data), "capget")
    return data[0] | data[3] << 32  # effective, both halves
