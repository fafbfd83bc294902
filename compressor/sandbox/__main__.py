"""The child's entry point. The parent runs `python -m compressor.sandbox CALL_FILE` (stage 1,
which isolates itself), and stage 1 runs `... --inside CALL_FILE` as its PID namespace's init
(stage 2, which makes the call)."""

import sys

from compressor.sandbox.child import isolate_and_wait, verify_and_call

if __name__ == "__main__":
    if sys.argv[1:2] == ["--inside"]:
        verify_and_call(sys.argv[2])
    else:
        sys.exit(isolate_and_wait(sys.argv[1]))
