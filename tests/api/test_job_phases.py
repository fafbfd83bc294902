"""app/jobs/phases.py: a job's phases from its log, as the API and the histogram read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db.models import EventLevel, JobEvent
from app.jobs.phases import PhaseTime, metric_label, phase_times

T0 = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)


def _log(*entries: tuple[float, str] | tuple[float, str, EventLevel]) -> list[JobEvent]:
    return [
        JobEvent(
            created_at=T0 + timedelta(seconds=entry[0]),
            message=entry[1],
            level=entry[2] if len(entry) > 2 else EventLevel.INFO,
        )
        for entry in entries
    ]


def test_a_finished_jobs_phases_tile_its_life() -> None:
    events = _log(
        (0.0, "queued on the 'cpu' pool"),
        (1.5, "attempt 1 started on node-a"),
        (2.0, "fetching model"),
        (2.25, "loading"),
        (3.0, "step 1/1: quantization"),
        (3.5, "cancel requested", EventLevel.WARNING),  # marks no phase
        (4.0, "packing"),
        (4.5, "done"),  # the engine's end: joins packing
        (4.75, "uploading artifact"),
        (5.0, "job succeeded"),
    )
    times = phase_times(T0, events, finished=True, now=T0 + timedelta(hours=1))
    assert times == [
        PhaseTime("queue wait", 1.5),
        PhaseTime("process start", 0.5),
        PhaseTime("fetching model", 0.25),
        PhaseTime("loading", 0.75),
        PhaseTime("step 1/1: quantization", 1.0),
        PhaseTime("packing", 0.75),
        PhaseTime("uploading artifact", 0.25),
    ]
    assert sum(t.seconds for t in times) == 5.0


def test_a_retried_job_counts_its_earlier_attempts_and_a_running_one_runs_to_now() -> None:
    events = _log(
        (0.0, "queued on the 'cpu' pool"),
        (1.0, "attempt 1 started on node-a"),
        (2.0, "fetching model"),
        (10.0, "re-queued after the worker was lost", EventLevel.WARNING),
        (12.0, "attempt 2 started on node-b"),
        (13.0, "fetching model"),
    )
    times = phase_times(T0, events, finished=False, now=T0 + timedelta(seconds=20))
    assert times == [
        PhaseTime("queue wait", 1.0),
        PhaseTime("earlier attempts", 11.0),
        PhaseTime("process start", 1.0),
        PhaseTime("fetching model", 7.0),
    ]
    # a job never started has waited in the queue all along
    assert phase_times(T0, events[:1], finished=False, now=T0 + timedelta(seconds=3)) == [
        PhaseTime("queue wait", 3.0)
    ]


def test_the_histogram_labels_are_a_bounded_set() -> None:
    assert metric_label("step 2/3: low_rank") == "step: low_rank"
    assert metric_label("search round 4") == "search round"
    assert metric_label("measuring original") == "measuring original"
    assert metric_label("step 1/1: <script>") == "other"
    assert metric_label("anything a job might log") == "other"
