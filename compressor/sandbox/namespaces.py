"""The kernel calls (through ctypes) that isolate the child: user, mount, network and PID
namespaces, the mounts that hide paths and make the file system read-only, and a fresh /proc."""

from __future__ import annotations

import ctypes
import os

# The uid and gid the sandbox runs as when the service is root: mapped to root, it would own
# root's files (/etc/shadow) whatever its capabilities.
SANDBOX_UID = SANDBOX_GID = 65534  # nobody / nogroup

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


def enter_namespaces(workdir: str, covers: list[tuple[str, list[str]]]) -> None:
    """As root, everything but a user namespace (root can mount without one, and the sandbox
    drops to SANDBOX_UID before running anything: see drop_root); otherwise a user namespace
    that maps the service's uid to itself, never to root."""
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID
    _check(_libc.unshare(flags | (_CLONE_NEWUSER if uid else 0)), "unshare")
    if uid:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    os.umask(0o022)  # the folders made on the covers must be searchable by the sandbox's uid
    # Private first, so that nothing below propagates back to the host.
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
    # A mount of its own for workdir, made before / turns read-only, so it alone can be writable.
    _mount(workdir, workdir, None, _MS_BIND, None)
    shown = sorted({s for _, paths in covers for s in paths})
    # Held open so they can be shown again once a hidden path above them is covered.
    fds = {s: os.open(s, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for s in shown}
    try:
        for path, under in covers:  # outermost first (run_sandboxed sorts them)
            if under:
                _hide_except(path, {s: fds[s] for s in under})
            elif os.path.isdir(path):
                flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
                _mount("tmpfs", path, "tmpfs", flags, "size=4k")
            else:
                _mount("/dev/null", path, None, _MS_BIND, None)
    finally:
        for fd in fds.values():
            os.close(fd)
    # Writes are confined to workdir by the kernel, not only by the audit hook: this also holds
    # for native code (ctypes, torch extensions) that the hook never sees.
    _mount_setattr("/", _AT_RECURSIVE, set_=_MOUNT_ATTR_RDONLY)
    _mount_setattr(workdir, 0, clear=_MOUNT_ATTR_RDONLY)
    os.chdir(workdir)  # the old cwd still points into the mount underneath, now read-only
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def drop_root() -> None:
    """Become SANDBOX_UID for good (all of real, effective and saved ids): the change clears
    every capability, and NO_NEW_PRIVS keeps them from coming back."""
    if os.getuid() == 0:
        os.setgroups([])
        os.setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)


def is_within(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _hide_except(root: str, shown: dict[str, int]) -> None:
    """Cover `root` with an empty tmpfs holding only the folders down to each `shown` path,
    and mount the real one (through its open descriptor: its path is covered by now) at the
    end of them. Everything else under `root` (other conversions' workdirs) is out of reach.
    The tmpfs is writable only until / turns read-only, recursively, just after."""
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "size=64k,mode=0755")
    for path, fd in shown.items():
        os.makedirs(path, mode=0o755)
        _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND, None)


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
