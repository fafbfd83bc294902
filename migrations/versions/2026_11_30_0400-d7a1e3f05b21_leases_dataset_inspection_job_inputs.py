"""leases on running jobs and inspections, datasets inspected in a worker, job inputs with keys

Jobs and models gain a lease (owner + expiry) the supervisor renews, so a reaper can take over
an attempt whose worker looks alive but stopped renewing. Datasets gain the models' lifecycle
(pending -> inspecting -> ready | rejected). job_inputs records which datasets and uploaded
students a job reads, with RESTRICT foreign keys, so a delete racing a submission loses.

Revision ID: d7a1e3f05b21
Revises: c41e7d2a9b36
Create Date: 2026-11-30 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d7a1e3f05b21"
down_revision: str | None = "c41e7d2a9b36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inspect_owner", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        # Rows from before this revision were inspected in the request: they are ready.
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="ready")
        )
        batch_op.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("inspect_owner", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE datasets SET updated_at = created_at")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index(batch_op.f("ix_datasets_updated_at"), ["updated_at"], unique=False)
    op.create_table(
        "job_inputs",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=36), nullable=True),
        sa.Column("model_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("job_id", "role"),
    )
    op.create_index("ix_job_inputs_dataset_id", "job_inputs", ["dataset_id"])
    op.create_index("ix_job_inputs_model_id", "job_inputs", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_job_inputs_model_id", table_name="job_inputs")
    op.drop_index("ix_job_inputs_dataset_id", table_name="job_inputs")
    op.drop_table("job_inputs")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_datasets_updated_at"))
        for column in ("updated_at", "lease_expires_at", "inspect_owner", "rejection_reason", "status"):
            batch_op.drop_column(column)
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("inspect_owner")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
