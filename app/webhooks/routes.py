from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import Limit, Offset, SessionDep
from app.errors import problem_responses
from app.openapi import LOCATION
from app.pagination import Page
from app.webhooks import repository, service
from app.webhooks.schemas import (
    AttemptRead,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={201: {"headers": LOCATION}, **problem_responses(422)},
    summary="Subscribe a URL to events; the response holds the signing secret, shown once",
)
def create_webhook(body: WebhookCreate, session: SessionDep, response: Response) -> WebhookCreated:
    hook = service.create_webhook(session, body=body)
    response.headers["Location"] = f"/v1/webhooks/{hook.id}"
    return WebhookCreated.model_validate(hook)


@router.get("", response_model=Page[WebhookRead])
def list_webhooks(session: SessionDep, limit: Limit = 50, offset: Offset = 0) -> Page[WebhookRead]:
    rows, total = service.list_webhooks(session, limit=limit, offset=offset)
    items = [WebhookRead.model_validate(row) for row in rows]
    return Page[WebhookRead](items=items, total=total, limit=limit, offset=offset)


@router.get("/{webhook_id}", response_model=WebhookRead, responses=problem_responses(404))
def get_webhook(webhook_id: str, session: SessionDep) -> WebhookRead:
    return WebhookRead.model_validate(service.get_webhook(session, webhook_id=webhook_id))


@router.delete("/{webhook_id}", status_code=204, responses=problem_responses(404))
def delete_webhook(webhook_id: str, session: SessionDep) -> Response:
    service.delete_webhook(session, webhook_id=webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries", response_model=Page[DeliveryRead], responses=problem_responses(404)
)
def list_webhook_deliveries(
    webhook_id: str, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[DeliveryRead]:
    """Every event sent to this webhook, newest first, each with its attempts."""
    service.get_webhook(session, webhook_id=webhook_id)
    rows, total = repository.deliveries(session, webhook_id, limit=limit, offset=offset)
    items = [
        DeliveryRead.model_validate(row).model_copy(
            update={
                "attempt_log": [
                    AttemptRead.model_validate(a) for a in repository.attempts(session, row.id)
                ]
            }
        )
        for row in rows
    ]
    return Page[DeliveryRead](items=items, total=total, limit=limit, offset=offset)
