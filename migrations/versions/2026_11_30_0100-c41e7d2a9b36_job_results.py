"""job_results: each succeeded job's headline figures as typed, indexed columns; backfilled

Revision ID: c41e7d2a9b36
Revises: 8f3d2c61a7e5
Create Date: 2026-11-30 01:00:00
"""

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "c41e7d2a9b36"
down_revision: str | None = "8f3d2c61a7e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXED = (
    "compressed_bytes",
    "latency_p50_ms",
    "compression_ratio",
    "speedup",
    "fidelity_min",
    "accuracy_drop",
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """The report layout as of this revision, frozen here so later engine changes cannot alter
    what this migration backfills (app/results/service.headline_figures is the live copy)."""
    original = report.get("original") or {}
    compressed = report.get("compressed") or {}
    fidelity = report.get("fidelity") or {}
    target = report.get("target") or {}
    top1 = _number(fidelity.get("top1_agreement"))
    if _number(fidelity.get("cosine_mean")) is not None:
        metric, low, mean = "cosine", fidelity.get("cosine_min"), fidelity.get("cosine_mean")
    elif top1 is not None:
        metric, low, mean = "top1_agreement", top1, top1
    else:
        metric, low, mean = None, None, None
    before = _number(fidelity.get("accuracy_original"))
    after = _number(fidelity.get("accuracy_compressed"))
    runtime = "onnxruntime" if original.get("format") == "onnx" else target.get("runtime")
    sizes = [_number(original.get("model_bytes")), _number(compressed.get("model_bytes"))]
    return {
        "original_bytes": int(sizes[0]) if sizes[0] is not None else None,
        "compressed_bytes": int(sizes[1]) if sizes[1] is not None else None,
        "original_latency_p50_ms": _number(original.get("latency_p50_ms")),
        "latency_p50_ms": _number(compressed.get("latency_p50_ms")),
        "compression_ratio": _number(report.get("compression_ratio")),
        "speedup": _number(report.get("speedup_p50")),
        "fidelity_metric": metric,
        "fidelity_min": _number(low),
        "fidelity_mean": _number(mean),
        "top1_agreement": top1,
        "accuracy_drop": before - after if before is not None and after is not None else None,
        "device": str(target["device"]) if target.get("device") else None,
        "provider": str(runtime) if runtime else None,
    }


def upgrade() -> None:
    results = op.create_table(
        "job_results",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("original_bytes", sa.BigInteger(), nullable=True),
        sa.Column("compressed_bytes", sa.BigInteger(), nullable=True),
        sa.Column("original_latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("compression_ratio", sa.Float(), nullable=True),
        sa.Column("speedup", sa.Float(), nullable=True),
        sa.Column("fidelity_metric", sa.String(length=32), nullable=True),
        sa.Column("fidelity_min", sa.Float(), nullable=True),
        sa.Column("fidelity_mean", sa.Float(), nullable=True),
        sa.Column("top1_agreement", sa.Float(), nullable=True),
        sa.Column("accuracy_drop", sa.Float(), nullable=True),
        sa.Column("device", sa.String(length=16), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_results_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_results")),
    )
    with op.batch_alter_table("job_results", schema=None) as batch_op:
        for column in INDEXED:
            batch_op.create_index(batch_op.f(f"ix_job_results_{column}"), [column], unique=False)
    _backfill(results)


def _backfill(results: sa.Table) -> None:
    jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("status", sa.String))
    jobs.append_column(sa.column("report", sa.JSON))
    stmt = sa.select(jobs.c.id, jobs.c.report).where(
        jobs.c.status == "succeeded", jobs.c.report.is_not(None)
    )
    now = datetime.now(UTC)
    rows = [
        {"job_id": job_id, "recorded_at": now, **_figures(report)}
        for job_id, report in op.get_bind().execute(stmt)
        if isinstance(report, dict)
    ]
    if rows:
        op.bulk_insert(results, rows)


def downgrade() -> None:
    with op.batch_alter_table("job_results", schema=None) as batch_op:
        for column in INDEXED:
            batch_op.drop_index(batch_op.f(f"ix_job_results_{column}"))
    op.drop_table("job_results")
