"""model inspection in a worker: pending status, rejection reason, updated_at

Revision ID: 5e1c7a2b9d04
Revises: 29d49c61f5a9
Create Date: 2026-11-28 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1c7a2b9d04"
down_revision: str | None = "29d49c61f5a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    # Rows from before this revision were inspected at upload; their last change is their creation.
    op.execute("UPDATE models SET updated_at = created_at")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index(batch_op.f("ix_models_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_models_updated_at"))
        batch_op.drop_column("updated_at")
        batch_op.drop_column("rejection_reason")
