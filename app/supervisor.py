"""Keeps the embedded service's processes (API, worker) up, as an orchestrator would.

A process that exits unexpectedly is restarted after a back-off; past a cap of restarts in a
minute everything stops with a message naming the process and its last log lines. Each child
runs in its own process group, so stopping or restarting it takes its whole tree (the Celery
pool and the job processes it started) and nothing outlives the supervisor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

WINDOW_S = 60.0
LOG_LINES = 20
POLL_S = 0.25
SUPERVISOR_PID_ENV = "MODELPRESS_SUPERVISOR_PID"
RESTARTS_ENV = "MODELPRESS_SUPERVISOR_RESTARTS"
RESTART_REASON_ENV = "MODELPRESS_SUPERVISOR_RESTART_REASON"
REPLACES_PID_ENV = "MODELPRESS_SUPERVISOR_REPLACES_PID"


def _oom_counter_files() -> list[Path]:
    """This cgroup's OOM-kill counter (v2 memory.events, v1 memory.oom_control), then the host's."""
    files: list[Path] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                files.append(Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events")
            elif "memory" in controllers.split(","):
                files.append(
                    Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control"
                )
    files.append(Path("/proc/vmstat"))
    return [f for f in files if f.is_file()]


def oom_kills(files: Sequence[Path]) -> tuple[int, ...]:
    counts: list[int] = []
    for path in files:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        counts.extend(int(line.split()[1]) for line in lines if line.startswith("oom_kill "))
    return tuple(counts)


def exit_reason(returncode: int, *, oom: bool) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        if returncode == -signal.SIGKILL and oom:
            return f"killed by {name}: out of memory (the kernel's OOM killer)"
        return f"killed by {name}"
    return f"exit code {returncode}"


@dataclass
class Program:
    name: str
    argv: list[str]
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    restarts: list[float] = field(default_factory=list)
    total_restarts: int = 0
    last_reason: str | None = None
    previous_pid: int | None = None
    restart_at: float | None = None
    swept: bool = False

    def start(self) -> None:
        env = {**os.environ, SUPERVISOR_PID_ENV: str(os.getpid())}
        if self.total_restarts:
            env[RESTARTS_ENV] = str(self.total_restarts)
            env[RESTART_REASON_ENV] = self.last_reason or ""
            env[REPLACES_PID_ENV] = str(self.previous_pid or "")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        threading.Thread(target=self._relay, args=(self.proc.stdout,), daemon=True).start()
        self.restart_at = None
        self.swept = False

    def _relay(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.log.append(line)
            sys.stdout.write(f"{self.name} | {line}\n")
            sys.stdout.flush()

    def kill_group(self) -> None:
        # Once swept, the group id may name someone else's process group.
        if self.proc is not None and not self.swept:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.swept = True

    def restarts_in_window(self, now: float) -> int:
        self.restarts = [t for t in self.restarts if now - t < WINDOW_S]
        return len(self.restarts)


class GaveUp(Exception):
    def __init__(self, program: Program) -> None:
        self.program = program
        lines = "\n".join(f"  {line}" for line in program.log) or "  (it wrote nothing)"
        super().__init__(
            f"modelpress: the {program.name} process stopped unexpectedly "
            f"{len(program.restarts) + 1} times within {WINDOW_S:.0f} s "
            f"(last: {program.last_reason}); giving up and stopping everything.\n"
            f"Last lines of the {program.name} log:\n{lines}"
        )


@dataclass
class Supervisor:
    programs: list[Program]
    max_restarts: int
    backoff_s: float
    backoff_max_s: float
    stop_grace_s: float
    say: Callable[[str], None] = field(default=lambda text: print(text, flush=True))
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> int:
        """Until Ctrl-C / SIGTERM (0) or a process past its restart cap (1)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        oom_files = _oom_counter_files()
        try:
            for program in self.programs:
                program.start()
            ooms = oom_kills(oom_files)
            while not self.stopping.wait(POLL_S):
                before, ooms = ooms, oom_kills(oom_files)
                for program in self.programs:
                    self._tend(program, oom=ooms != before)
            return 0
        except GaveUp as exc:
            print(str(exc), file=sys.stderr, flush=True)
            return 1
        finally:
            self.stop_all()

    def _tend(self, program: Program, *, oom: bool) -> None:
        now = time.monotonic()
        if program.restart_at is not None:
            if now >= program.restart_at:
                program.start()
            return
        assert program.proc is not None
        code = program.proc.poll()
        if code is None:
            return
        program.kill_group()  # its pool and job processes go with it
        program.last_reason = exit_reason(code, oom=oom)
        program.previous_pid = program.proc.pid
        recent = program.restarts_in_window(now)
        if recent >= self.max_restarts:
            raise GaveUp(program)
        delay = min(self.backoff_s * 2**recent, self.backoff_max_s)
        program.restarts.append(now)
        program.total_restarts += 1
        program.restart_at = now + delay
        self.say(
            f"modelpress: {program.name} (pid {program.proc.pid}) stopped: "
            f"{program.last_reason}; restarting in {delay:g} s "
            f"(restart {recent + 1} of at most {self.max_restarts} per {WINDOW_S:.0f} s)"
        )

    def stop_all(self) -> None:
        """SIGTERM each main process, wait a grace period, then SIGKILL every group."""
        running = [p for p in self.programs if p.proc is not None and p.proc.poll() is None]
        for program in running:
            assert program.proc is not None
            with contextlib.suppress(ProcessLookupError):
                program.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_s
        for program in running:
            assert program.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                program.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for program in self.programs:
            program.kill_group()
            if program.proc is not None:
                program.proc.wait()
