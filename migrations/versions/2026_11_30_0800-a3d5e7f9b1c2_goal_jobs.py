"""goal-driven jobs: a job's goal, and candidate jobs pointing at their parent

A goal job has no recipe until its search chose one: the recipe column keeps NOT NULL and holds
a JSON null meanwhile, because relaxing the constraint on SQLite means a batch copy of ``jobs``,
which the foreign keys of job_events and job_inputs forbid once rows exist.

Revision ID: a3d5e7f9b1c2
Revises: f2c9a4b7e310
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3d5e7f9b1c2"
down_revision: str | None = "f2c9a4b7e310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("goal", sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite takes a REFERENCES clause in ADD COLUMN (the column defaults to NULL), not a
        # separate constraint.
        op.execute(
            "ALTER TABLE jobs ADD COLUMN parent_id VARCHAR(36) "
            "REFERENCES jobs (id) ON DELETE CASCADE"
        )
    else:
        op.add_column("jobs", sa.Column("parent_id", sa.String(length=36), nullable=True))
        op.create_foreign_key(
            "fk_jobs_parent_id_jobs", "jobs", "jobs", ["parent_id"], ["id"], ondelete="CASCADE"
        )
    op.create_index("ix_jobs_parent_id", "jobs", ["parent_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_parent_id", table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("parent_id")
        batch_op.drop_column("goal")
