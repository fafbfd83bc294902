"""tenant running-job shares: the operator's share per tenant, and why a queued job is held

``jobs.waiting_reason`` is set while a queued job is held in the database because its tenant's
running-job share is full; existing rows were all sent to the broker, so they stay NULL.

Revision ID: c6f1a9d27e48
Revises: b8e2f4a61c05
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c6f1a9d27e48"
down_revision: str | None = "b8e2f4a61c05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("waiting_reason", sa.String(length=255), nullable=True))
    op.create_table(
        "tenant_shares",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("running_jobs", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )


def downgrade() -> None:
    op.drop_table("tenant_shares")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("waiting_reason")
