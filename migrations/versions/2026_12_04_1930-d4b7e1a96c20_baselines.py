"""baselines: the original's measurement, kept per tenant and key for later jobs to reuse

A new table only; no existing row changes. Its outputs live in storage (``outputs_key``).
``model_sha256`` names the upload that measured it, so deleting the tenant's last model with
those bytes deletes its baselines too.

Revision ID: d4b7e1a96c20
Revises: c6f1a9d27e48
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4b7e1a96c20"
down_revision: str | None = "c6f1a9d27e48"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "baselines",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("outputs_key", sa.String(length=255), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "key", name=op.f("pk_baselines")),
    )
    op.create_index(
        "ix_baselines_tenant_model_sha256",
        "baselines",
        ["tenant", "model_sha256"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_baselines_tenant_model_sha256", table_name="baselines")
    op.drop_table("baselines")
