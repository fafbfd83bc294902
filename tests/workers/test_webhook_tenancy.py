"""Each guard of issue 28 on its own (the e2e test sees only both together): ``emit`` makes
deliveries for the resource's own tenant's subscriptions only, and ``deliver`` drops, unsent, a
delivery that crosses tenants anyway; retries and the sweep never pile up copies of one delivery."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from app.db.models import Webhook, WebhookDelivery, utcnow
from app.webhooks import service
from app.webhooks.schemas import EventType
from tests.fixtures.rows import model_row
from tests.workers.conftest import add_job, broker_messages, session
from workers import webhooks
from workers.maintenance import resend_overdue_webhooks

ALL = [str(event) for event in EventType]


def _hook(tenant: str | None) -> str:
    with session() as s, s.begin():
        hook = Webhook(tenant=tenant, url="http://127.0.0.1:9/hook", events=ALL, secret="whsec_x")
        s.add(hook)
        s.flush()
        return hook.id


def _model(tenant: str | None) -> str:
    with session() as s, s.begin():
        return model_row(s, tenant=tenant)


def _deliveries() -> dict[str, list[str]]:
    """Subscription id -> resource ids of its deliveries."""
    with session() as s:
        rows = s.execute(select(WebhookDelivery.webhook_id, WebhookDelivery.resource_id)).all()
    found: dict[str, list[str]] = {}
    for hook_id, resource_id in rows:
        found.setdefault(hook_id, []).append(resource_id)
    return found


def test_emit_reaches_only_the_owners_subscriptions(db: Path) -> None:
    hooks = {tenant: _hook(tenant) for tenant in ("alpha", "beta", None)}
    for tenant in hooks:
        model_id = _model(tenant)
        job_id = add_job(model_id=model_id, tenant=tenant)
        with session() as s, s.begin():  # a worker's session: no tenant scope
            service.emit_model_inspected(s, model_id, "ready")
            service.emit_job_ended(s, job_id, "succeeded")
        assert sorted(_deliveries()[hooks[tenant]]) == sorted([model_id, job_id])
    assert sum(map(len, _deliveries().values())) == 6


def test_a_crossing_delivery_is_deleted_unsent(db: Path) -> None:
    beta_hook = _hook("beta")
    alpha_model = _model("alpha")
    with session() as s, s.begin():  # as emit made them before the fix
        crossing = WebhookDelivery(
            webhook_id=beta_hook, event_type="model.ready", resource_id=alpha_model
        )
        s.add(crossing)
        s.flush()
        crossing_id = crossing.id
    # The target (port 9, discard) is never tried: no attempt is recorded.
    assert webhooks.deliver(crossing_id) == "failed"
    with session() as s:
        assert s.get(WebhookDelivery, crossing_id) is None


def test_the_sweep_resends_only_overdue_deliveries_once(db: Path) -> None:
    hook = _hook(None)
    model_id = _model(None)
    with session() as s, s.begin():
        fresh = WebhookDelivery(webhook_id=hook, event_type="model.ready", resource_id=model_id)
        old = WebhookDelivery(
            webhook_id=hook,
            event_type="model.ready",
            resource_id=model_id,
            next_attempt_at=utcnow() - timedelta(hours=1),
        )
        s.add_all([fresh, old])
        s.flush()
        old_id = old.id
    before = len(broker_messages(db))
    # The fresh one's message (sent at commit) is still to be consumed: not re-sent.
    assert resend_overdue_webhooks() == [old_id]
    assert resend_overdue_webhooks() == []  # re-stamped: the next tick sends no copy
    assert len(broker_messages(db)) == before + 1
