"""A seccomp filter, written by hand (no libseccomp needed), that refuses new processes:
fork, vfork, and clone without CLONE_THREAD fail with EPERM; clone3, whose flags a filter
cannot read, fails with ENOSYS, so that libc falls back to clone for threads. Threads stay
allowed (torch and onnxruntime use them); the memory limit covers them, as they share one
address space. The filter applies to every thread of the process and to whatever it execs."""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

_ARCHES = {  # audit arch, fork-like syscalls, clone, clone3, seccomp
    "x86_64": (0xC000003E, (57, 58), 56, 435, 317),
    "aarch64": (0xC00000B7, (), 220, 435, 277),
}
_X32_BIT = 0x40000000  # x86_64's x32 ABI: the same calls under other numbers
_CLONE_THREAD = 0x00010000
_LD_ABS_W, _JEQ, _JSET, _JGE, _RET = 0x20, 0x15, 0x45, 0x35, 0x06
_ALLOW, _KILL, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (little-endian low half)
_SET_MODE_FILTER, _FLAG_TSYNC = 1, 1


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _program(machine: str) -> bytes:
    arch, forks, clone, clone3, _ = _ARCHES[machine]
    refuse = _insn(_RET, _ERRNO | errno.EPERM)
    prog = [_insn(_LD_ABS_W, _ARCH), _insn(_JEQ, arch, 1, 0), _insn(_RET, _KILL)]
    prog.append(_insn(_LD_ABS_W, _NR))
    if machine == "x86_64":
        prog += [_insn(_JGE, _X32_BIT, 0, 1), refuse]
    for nr in forks:
        prog += [_insn(_JEQ, nr, 0, 1), refuse]
    prog += [_insn(_JEQ, clone3, 0, 1), _insn(_RET, _ERRNO | errno.ENOSYS)]
    prog += [_insn(_JEQ, clone, 1, 0), _insn(_RET, _ALLOW)]
    prog += [_insn(_LD_ABS_W, _ARG0), _insn(_JSET, _CLONE_THREAD, 0, 1), _insn(_RET, _ALLOW)]
    prog.append(refuse)
    return b"".join(prog)


def refuse_new_processes() -> bool:
    """Install the filter on the calling process; False on an architecture it does not know
    (then RLIMIT_NPROC and the cgroup are what is left). Needs NO_NEW_PRIVS, set earlier."""
    machine = platform.machine()
    if machine not in _ARCHES:
        return False
    code = _program(machine)
    filters = ctypes.create_string_buffer(code, len(code))

    class _Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Fprog(len(code) // 8, ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    nr = _ARCHES[machine][4]
    if libc.syscall(ctypes.c_long(nr), _SET_MODE_FILTER, _FLAG_TSYNC, ctypes.byref(fprog)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {errno.errorcode.get(err, err)}")
    return True
