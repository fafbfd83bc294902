"""Subscriptions, and the events that create deliveries in the same transaction as the change
they report, so an event is never announced for a change that rolled back, nor lost."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from sqlalchemy.orm import Session

from app import errors
from app.db.models import JobStatus, ModelStatus, Webhook, WebhookDelivery
from app.db.session import on_commit
from app.queue import enqueue_webhook_delivery
from app.settings import get_settings
from app.webhooks import repository
from app.webhooks.schemas import EventType, WebhookCreate
from app.webhooks.signing import new_secret
from app.webhooks.targets import check_target


class WebhookNotFound(errors.NotFound):
    slug, title = "webhook-not-found", "Webhook not found"


def create_webhook(session: Session, *, body: WebhookCreate) -> Webhook:
    check_target(body.url, allow_private=get_settings().webhooks.webhook_allow_private)
    hook = Webhook(url=body.url, events=sorted({str(e) for e in body.events}), secret=new_secret())
    session.add(hook)
    session.flush()
    return hook


def get_webhook(session: Session, *, webhook_id: str) -> Webhook:
    hook = repository.get(session, webhook_id)
    if hook is None:
        raise WebhookNotFound(f"no webhook with id {webhook_id!r}")
    return hook


def list_webhooks(session: Session, *, limit: int, offset: int) -> tuple[Sequence[Webhook], int]:
    return repository.list_page(session, limit=limit, offset=offset)


def delete_webhook(session: Session, *, webhook_id: str) -> None:
    session.delete(get_webhook(session, webhook_id=webhook_id))
    session.flush()


def emit(session: Session, event: EventType, resource_id: str) -> None:
    """One delivery per subscription, of the resource's own tenant, to ``event``; sent once the
    caller's transaction commits (and re-sent by the workers' sweep if that message is lost)."""
    tenant = repository.resource_tenant(session, str(event), resource_id)
    for hook in repository.subscribed_to(session, str(event), tenant=tenant):
        delivery = WebhookDelivery(
            webhook_id=hook.id, event_type=str(event), resource_id=resource_id
        )
        session.add(delivery)
        session.flush()
        delivery_id = delivery.id
        on_commit(session, partial(enqueue_webhook_delivery, delivery_id))


_JOB_EVENTS = {
    JobStatus.SUCCEEDED: EventType.JOB_SUCCEEDED,
    JobStatus.FAILED: EventType.JOB_FAILED,
    JobStatus.CANCELLED: EventType.JOB_CANCELLED,
}


def emit_job_ended(session: Session, job_id: str, status: str) -> None:
    event = _JOB_EVENTS.get(JobStatus(status))
    if event is not None:
        emit(session, event, job_id)


def emit_model_inspected(session: Session, model_id: str, status: str) -> None:
    ready = status == ModelStatus.READY
    emit(session, EventType.MODEL_READY if ready else EventType.MODEL_REJECTED, model_id)
