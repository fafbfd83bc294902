"""Run one function call in a throwaway child process that cannot reach anything it should not.

Used for model formats whose loading executes code (TorchScript, torch.export archives). The
child is `python -m compressor.sandbox`; before the function runs it is put in new user, mount,
network and PID namespaces, so that it has

* no network at all (an empty network namespace: not even loopback to the host's services),
* no view of the paths in `hidden` (empty read-only mounts over them; a hidden folder that holds
  `workdir` shows nothing but the way down to it), no view of the host's processes (a fresh
  /proc), and a read-only file system except for `workdir`,
* memory, CPU time and file size limits, a minimal environment, and no capabilities,
* one process: a seccomp filter refuses fork, vfork and clone other than for threads, below
  it RLIMIT_NPROC (threads included), and where the service can make one a cgroup v2 of its
  own bounds memory, processes and CPU in total,
* an unprivileged uid: the service's own when it is not root; as root, no user namespace (it
  would map root in) but nobody (65534), dropped to before Python starts again, with the
  folders on the way to Python and workdir that nobody cannot search covered so that only
  that way shows,

and, as a second layer, an audit hook that refuses network, process and out-of-workdir writes
from Python code. Whatever cannot be set up fails the call (SandboxError); nothing runs
unisolated. The uploader is told one of a fixed few reasons, never text from the child: the
loaded code could have put into it whatever it read. The child's own account goes to the log.

The namespaces are entered first thing in the child's __main__ rather than in a preexec_fn:
unshare(CLONE_NEWUSER) needs a single-threaded caller, and the service calling us has threads
(torch, the worker pool). The child then forks (a new PID namespace takes effect for children
only) and execs Python again, which drops the capabilities it held inside the new namespaces.

Modules: parent (launching and judging the child), hidden (which paths to hide), exchange (the
call and result files), child (its two stages), namespaces (the kernel calls), audit (the hook),
seccomp (the filter), cgroup (the cgroup, where there is one).
"""

from compressor.sandbox.audit import SandboxViolation
from compressor.sandbox.hidden import default_hidden
from compressor.sandbox.parent import SandboxError, SandboxLimits, run_sandboxed

__all__ = ["SandboxError", "SandboxLimits", "SandboxViolation", "default_hidden", "run_sandboxed"]
