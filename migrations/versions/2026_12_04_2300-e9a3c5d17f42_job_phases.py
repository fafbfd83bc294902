"""job_phases: each finished job's phases and their seconds (issue 24)

A new table only, filled as jobs finish; no existing row changes.

Revision ID: e9a3c5d17f42
Revises: d4b7e1a96c20
Create Date: 2026-12-04 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e9a3c5d17f42"
down_revision: str | None = "d4b7e1a96c20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_phases",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_phases_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "position", name=op.f("pk_job_phases")),
    )
    op.create_index(op.f("ix_job_phases_label"), "job_phases", ["label"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_job_phases_label"), table_name="job_phases")
    op.drop_table("job_phases")
