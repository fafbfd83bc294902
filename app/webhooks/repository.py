from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.models import (
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    is_valid_id,
    utcnow,
)


def get(session: Session, webhook_id: str) -> Webhook | None:
    return session.get(Webhook, webhook_id) if is_valid_id(webhook_id) else None


def list_page(session: Session, *, limit: int, offset: int) -> tuple[Sequence[Webhook], int]:
    total = session.scalar(select(func.count()).select_from(Webhook)) or 0
    rows = session.scalars(
        select(Webhook).order_by(Webhook.created_at.desc(), Webhook.id).limit(limit).offset(offset)
    ).all()
    return rows, total


def subscribed_to(session: Session, event_type: str) -> list[Webhook]:
    # JSON containment differs between SQLite and PostgreSQL; subscriptions are few.
    return [hook for hook in session.scalars(select(Webhook)) if event_type in hook.events]


def deliveries(
    session: Session, webhook_id: str, *, limit: int, offset: int
) -> tuple[Sequence[WebhookDelivery], int]:
    where = WebhookDelivery.webhook_id == webhook_id
    total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(where)) or 0
    rows = session.scalars(
        select(WebhookDelivery)
        .where(where)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


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


def due(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= utcnow(),
            )
        )
    )
