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

Modules: parent (launching and judging the child), hidden (which paths to hide), exchange (the
call and result files), child (its two stages), namespaces (the kernel calls), audit (the hook).
"""

from compressor.sandbox.audit import SandboxViolation
from compressor.sandbox.hidden import default_hidden
from compressor.sandbox.parent import SandboxError, SandboxLimits, run_sandboxed

__all__ = ["SandboxError", "SandboxLimits", "SandboxViolation", "default_hidden", "run_sandboxed"]
