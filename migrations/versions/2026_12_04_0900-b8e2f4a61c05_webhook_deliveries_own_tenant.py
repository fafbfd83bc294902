"""drop webhook deliveries that crossed tenants

Before deliveries were kept to the resource's tenant, every subscription got every tenant's
events. The rows made then name another tenant's resources in the subscriber's delivery list;
they are deleted (with their attempts), whether sent or not. Nothing replaces them.

Revision ID: b8e2f4a61c05
Revises: a3d5e7f9b1c2
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b8e2f4a61c05"
down_revision: str | None = "a3d5e7f9b1c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A tenant is NULL when authentication is off; NULL owns NULL, so compare null-safely.
_SAME = {"sqlite": "{a} IS {b}", "postgresql": "{a} IS NOT DISTINCT FROM {b}"}


def upgrade() -> None:
    same = _SAME.get(op.get_bind().dialect.name, _SAME["postgresql"])
    owner = "(SELECT {alias}.tenant FROM {table} {alias} WHERE {alias}.id = d.resource_id)"
    job_owner = owner.format(alias="j", table="jobs")
    model_owner = owner.format(alias="m", table="models")
    crossed = f"""
        SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
        WHERE (d.event_type LIKE 'job.%' AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = d.resource_id)
               AND NOT ({same.format(a=job_owner, b="w.tenant")}))
           OR (d.event_type LIKE 'model.%'
               AND EXISTS (SELECT 1 FROM models m WHERE m.id = d.resource_id)
               AND NOT ({same.format(a=model_owner, b="w.tenant")}))
    """
    op.execute(f"DELETE FROM webhook_attempts WHERE delivery_id IN ({crossed})")
    op.execute(f"DELETE FROM webhook_deliveries WHERE id IN ({crossed})")


def downgrade() -> None:
    pass  # the deleted rows leaked; they are not restored
