"""worker restarts under `modelpress run`: count and last reason

Revision ID: 8f3d2c61a7e5
Revises: 5e1c7a2b9d04
Create Date: 2026-11-30 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8f3d2c61a7e5"
down_revision: str | None = "5e1c7a2b9d04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restarts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("last_restart_reason", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("last_restart_reason")
        batch_op.drop_column("restarts")
