from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import (
    DeliveryStatus,
    Job,
    ModelFile,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    utcnow,
)
from app.db.repository_base import RepositoryBase

_webhooks = RepositoryBase(Webhook)
_deliveries = RepositoryBase(WebhookDelivery)
get = _webhooks.get
delivery = _deliveries.get


def list_page(session: Session, *, limit: int, offset: int) -> tuple[Sequence[Webhook], int]:
    return _webhooks.page(session, limit=limit, offset=offset)


def subscribed_to(session: Session, event_type: str, *, tenant: str | None) -> list[Webhook]:
    """The subscriptions of ``tenant`` (None: authentication off) to ``event_type``; never
    another tenant's, even in a worker's session, which has no tenant scope."""
    owned = Webhook.tenant.is_(None) if tenant is None else Webhook.tenant == tenant
    # JSON containment differs between SQLite and PostgreSQL; one tenant's subscriptions are few.
    return [
        hook for hook in session.scalars(select(Webhook).where(owned)) if event_type in hook.events
    ]


def resource_tenant(session: Session, event_type: str, resource_id: str) -> str | None:
    """The tenant owning an event's resource; raises if the resource does not exist, since an
    event for a row nobody owns must not go to everybody."""
    table = Job if event_type.startswith("job.") else ModelFile
    row = session.execute(select(table.tenant).where(table.id == resource_id)).one_or_none()
    if row is None:
        raise LookupError(f"{event_type}: no {table.__tablename__} row {resource_id!r}")
    return row.tenant


def deliveries(
    session: Session, webhook_id: str, *, limit: int, offset: int
) -> tuple[Sequence[WebhookDelivery], int]:
    return _deliveries.page(
        session, WebhookDelivery.webhook_id == webhook_id, limit=limit, offset=offset
    )


def attempts(session: Session, delivery_id: str) -> Sequence[WebhookAttempt]:
    return session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.id)
    ).all()


def claim_due(session: Session, delivery_id: str, *, hold_until: datetime) -> bool:
    """Take a due delivery for one attempt; pushing next_attempt_at out keeps a second worker
    (a re-sent message) from posting it at the same time."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= utcnow(),
        )
        .values(next_attempt_at=hold_until)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def take_overdue(session: Session, *, cutoff: datetime) -> list[str]:
    """Pending deliveries due since before ``cutoff``: their message (sent at commit, or with the
    retry's countdown) should have been consumed by now, so the broker may have lost it. Each is
    re-stamped due now, so no later sweep (of any worker) re-sends it before the next cutoff: a
    backlog is never flooded with copies of the same delivery."""
    ids = list(
        session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= cutoff,
            )
        )
    )
    taken = []
    for delivery_id in ids:  # conditional: another worker's sweep may have taken it meanwhile
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= cutoff,
            )
            .values(next_attempt_at=utcnow())
        )
        if int(getattr(result, "rowcount", 0) or 0) == 1:
            taken.append(delivery_id)
    return taken


def delete_delivery(session: Session, row: WebhookDelivery) -> None:
    session.delete(row)


def add_attempt(session: Session, attempt: WebhookAttempt) -> WebhookAttempt:
    session.add(attempt)
    return attempt
