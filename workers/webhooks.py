"""Posting one webhook delivery: one attempt per call, recorded; failures retry with doubling
delays until the last attempt, each retry sent with its back-off as a countdown. The workers'
sweep re-sends only what the broker may have lost."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx

from app.db.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery, utcnow
from app.jobs import repository as jobs_repository
from app.jobs.schemas import JobRead
from app.models_upload import repository as models_repository
from app.models_upload.schemas import ModelRead
from app.queue import enqueue_webhook_delivery
from app.settings import get_settings
from app.webhooks import repository
from app.webhooks.signing import sign
from app.webhooks.targets import InvalidWebhookTarget, check_target
from workers import job_run

log = logging.getLogger("modelpress.webhooks")
USER_AGENT = "modelpress-webhooks/1"


def _resource(session: Any, event_type: str, resource_id: str) -> dict[str, Any] | None:
    """The resource as the API returns it."""
    if event_type.startswith("job."):
        job = jobs_repository.get(session, resource_id)
        if job is None:
            return None
        read = JobRead.model_validate(job).model_copy(
            update={"warnings": list((job.report or {}).get("warnings", []))}
        )
        return read.model_dump(mode="json")
    model = models_repository.get(session, resource_id)
    return None if model is None else ModelRead.model_validate(model).model_dump(mode="json")


def _same_tenant(session: Any, delivery: WebhookDelivery, hook: Webhook) -> bool:
    """Whether the delivery's resource belongs to the subscriber's tenant (a deleted resource
    counts as its own: it is reported as deleted, naming nothing new)."""
    try:
        owner = repository.resource_tenant(session, delivery.event_type, delivery.resource_id)
    except LookupError:
        return True
    return owner == hook.tenant


def _payload(session: Any, delivery: WebhookDelivery) -> str | None:
    data = _resource(session, delivery.event_type, delivery.resource_id)
    if data is None:
        return None
    body = {"type": delivery.event_type, "timestamp": utcnow().isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"))


def deliver(delivery_id: str) -> str | None:
    """Attempt one due delivery; return its status after the attempt, or None if not due."""
    settings = get_settings().webhooks
    timeout = settings.webhook_timeout_s
    with job_run.session() as session, session.begin():
        if not repository.claim_due(
            session, delivery_id, hold_until=utcnow() + timedelta(seconds=timeout * 4)
        ):
            return None
        delivery = repository.delivery(session, delivery_id)
        hook = repository.get(session, delivery.webhook_id) if delivery else None
        if delivery is None or hook is None:
            return None
        if not _same_tenant(session, delivery, hook):
            # Made before deliveries were kept to the resource's tenant: never send it, and
            # drop it so the subscriber's delivery list does not name another tenant's resource.
            log.error("webhook delivery %s crosses tenants; deleted unsent", delivery_id)
            repository.delete_delivery(session, delivery)
            return DeliveryStatus.FAILED
        if delivery.payload is None:
            delivery.payload = _payload(session, delivery)
        payload, url, secret = delivery.payload, hook.url, hook.secret
    if payload is None:
        return _record(delivery_id, status_code=None, error="the resource was deleted", final=True)
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    try:
        check_target(url, allow_private=settings.webhook_allow_private)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                secret, message_id=delivery_id, timestamp=timestamp, body=payload.encode()
            ),
        }
        response = httpx.post(
            url, content=payload, headers=headers, timeout=timeout, follow_redirects=False
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"the receiver answered {status_code}"
    except InvalidWebhookTarget as exc:
        error = exc.detail
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:512]
    elapsed_ms = (time.perf_counter() - started) * 1000
    return _record(delivery_id, status_code=status_code, error=error, duration_ms=elapsed_ms)


def _record(
    delivery_id: str,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: float = 0.0,
    final: bool = False,
) -> str:
    settings = get_settings().webhooks
    retry_in: float | None = None
    with job_run.session() as session, session.begin():
        delivery = repository.delivery(session, delivery_id)
        if delivery is None:  # its webhook was deleted meanwhile
            return DeliveryStatus.FAILED
        repository.add_attempt(
            session,
            WebhookAttempt(
                delivery_id=delivery_id,
                status_code=status_code,
                error=error[:512] if error else None,
                duration_ms=round(duration_ms, 2),
            ),
        )
        delivery.attempts += 1
        if error is None:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = utcnow()
            delivery.next_attempt_at = None
        elif final or delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        else:
            delay = settings.webhook_backoff_s * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
            retry_in = delay
        if error:
            log.warning("webhook delivery %s attempt %d: %s", delivery_id, delivery.attempts, error)
        status = delivery.status
    if retry_in is not None:  # after the commit, so the retry finds its new due time
        enqueue_webhook_delivery(delivery_id, countdown=retry_in)
    return status


def overdue_deliveries(*, after_s: float) -> list[str]:
    cutoff = utcnow() - timedelta(seconds=after_s)
    with job_run.session() as session, session.begin():
        return repository.take_overdue(session, cutoff=cutoff)
