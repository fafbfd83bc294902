"""Job and pool figures, computed from the database each time /metrics is scraped."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from app.db.models import JobStatus
from app.db.session import get_sessionmaker
from app.jobs import repository as jobs_repository
from app.pools.repository import live_workers
from app.settings import get_settings

# Seconds from start to finish: jobs run from a few seconds to hours.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)
# Seconds a phase takes: from a fraction of a second (packing a small model) to hours (training).
PHASE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def techniques(recipe: dict[str, Any] | None) -> list[str]:
    """A job counts once under each technique its recipe uses."""
    steps = (recipe or {}).get("steps") or []
    names = {str(step.get("technique")) for step in steps if isinstance(step, dict)}
    return sorted(names) or ["none"]


class JobCollector(Collector):
    def collect(self) -> Iterator[Any]:
        with get_sessionmaker()() as session:
            finished = jobs_repository.timings(session, statuses=TERMINAL)
            phases = jobs_repository.phase_histogram(session, PHASE_BUCKETS)
            queued = jobs_repository.queued_per_pool(session)
            stale = get_settings().worker.stale_after_s
            workers = [node.queues for node in live_workers(session, stale_after_s=stale)]
        yield self._finished(finished)
        yield self._durations(finished)
        yield self._phases(phases)
        yield self._per_pool("modelpress_jobs_queued", "Jobs waiting in each pool's queue", queued)
        yield self._per_pool(
            "modelpress_workers_live",
            "Workers with a fresh heartbeat consuming each queue",
            Tally(queue for queues in workers for queue in queues),
        )

    @staticmethod
    def _finished(rows: Sequence[Any]) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "modelpress_jobs_finished",
            "Jobs that reached a final status, by status and technique",
            labels=["status", "technique"],
        )
        tally = Tally((str(row.status), name) for row in rows for name in techniques(row.recipe))
        for (status, technique), count in sorted(tally.items()):
            family.add_metric([status, technique], count)
        return family

    @staticmethod
    def _durations(rows: Sequence[Any]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "modelpress_job_duration_seconds",
            "Time from a job's last start to its end, by final status",
            labels=["status"],
        )
        by_status: dict[str, list[float]] = {}
        for row in rows:
            if row.started_at is not None and row.finished_at is not None:
                seconds = (row.finished_at - row.started_at).total_seconds()
                by_status.setdefault(str(row.status), []).append(max(seconds, 0.0))
        for status, seconds in sorted(by_status.items()):
            buckets = [(str(edge), sum(s <= edge for s in seconds)) for edge in DURATION_BUCKETS]
            buckets.append(("+Inf", len(seconds)))
            family.add_metric([status], buckets, sum_value=sum(seconds))
        return family

    @staticmethod
    def _phases(rows: Sequence[Any]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "modelpress_job_phase_seconds",
            "Seconds each phase of a finished job took (queue wait, process start, fetching "
            "model, each step by technique, exporting, measuring, packing, uploading, ...)",
            labels=["phase"],
        )
        for row in rows:
            buckets = [(str(edge), int(row[3 + n] or 0)) for n, edge in enumerate(PHASE_BUCKETS)]
            buckets.append(("+Inf", int(row.count)))
            family.add_metric([row.label], buckets, sum_value=float(row.total or 0.0))
        return family

    @staticmethod
    def _per_pool(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, documentation, labels=["pool"])
        for pool in sorted(counts):
            family.add_metric([pool], counts[pool])
        return family
