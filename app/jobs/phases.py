"""Where a job's time went (issue 24): its phases, read from its own log.

Every phase change is already an event (``lifecycle.progress``), committed when it happens, so
the phases of any job, running or finished, are the gaps between its events: the queue wait
up to the first attempt, the earlier attempts if any, then each phase of the last attempt in
order ("process start" is the claim to the job process's first phase). A finished job's phases
are kept (``job_phases``) for the ``modelpress_job_phase_seconds`` histogram.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.db.models import EventLevel, JobEvent

QUEUE_WAIT = "queue wait"
EARLIER_ATTEMPTS = "earlier attempts"
PROCESS_START = "process start"
RETIMING = "re-timing candidates"  # a latency goal's contenders, after its search rounds
_ATTEMPT = re.compile(r"^attempt \d+ started on ")
_STEP = re.compile(r"^step \d+/\d+: (?P<technique>[a-z0-9_]+)$")
_ROUND = re.compile(r"^search round \d+$")
# The phases a job names (app/db/models.py's JobPhase, compressor/pipeline.py): the histogram's
# labels stay this set, steps by technique and search rounds as one, so none comes from input.
_NAMED = frozenset(
    {
        QUEUE_WAIT,
        EARLIER_ATTEMPTS,
        PROCESS_START,
        "fetching model",
        "loading",
        "exporting original",
        "exporting",
        "saving",
        "exporting ONNX copy",
        "measuring original",
        "measuring compressed",
        "packing",
        "uploading artifact",
        RETIMING,
    }
)
# The engine's "done" comes a moment before the job's own last phase: its time joins the one
# before it rather than show as a phase of its own.
_FOLDED = frozenset({"done"})


@dataclass(frozen=True)
class PhaseTime:
    phase: str
    seconds: float


def metric_label(phase: str) -> str:
    """A phase as the histogram labels it: a bounded set whatever the job logged."""
    if phase in _NAMED:
        return phase
    if step := _STEP.match(phase):
        return f"step: {step['technique']}"
    if _ROUND.match(phase):
        return "search round"
    return "other"


def phase_times(
    created_at: datetime, events: Sequence[JobEvent], *, finished: bool, now: datetime
) -> list[PhaseTime]:
    """The job's phases in order, each with its seconds. A finished job's last event is its
    end; a job still running is in its last phase until ``now``."""
    until = now
    if finished and events:
        until, events = events[-1].created_at, events[:-1]
    starts = [i for i, event in enumerate(events) if _ATTEMPT.match(event.message)]
    if not starts:
        return [PhaseTime(QUEUE_WAIT, _seconds(created_at, until))]
    first, last = events[starts[0]], events[starts[-1]]
    times = [PhaseTime(QUEUE_WAIT, _seconds(created_at, first.created_at))]
    if len(starts) > 1:
        times.append(PhaseTime(EARLIER_ATTEMPTS, _seconds(first.created_at, last.created_at)))
    # Phase changes are info events; a warning (a cancel request) marks no phase.
    marks = [e for e in events[starts[-1] + 1 :] if e.level == EventLevel.INFO]
    names = [PROCESS_START, *(e.message for e in marks)]
    edges = [last.created_at, *(e.created_at for e in marks), until]
    for name, begin, end in zip(names, edges, edges[1:], strict=False):
        if name in _FOLDED:
            before = times[-1]
            times[-1] = PhaseTime(before.phase, round(before.seconds + _seconds(begin, end), 3))
        else:
            times.append(PhaseTime(name, _seconds(begin, end)))
    return times


def _seconds(begin: datetime, end: datetime) -> float:
    return round(max((end - begin).total_seconds(), 0.0), 3)
