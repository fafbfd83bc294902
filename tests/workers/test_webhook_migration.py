"""Migration b8e2f4a61c05 deletes the webhook deliveries that crossed tenants before deliveries
were kept to the resource's own tenant (issue 28), on both databases, and keeps every other."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import Job, Webhook, WebhookAttempt, WebhookDelivery
from tests.fixtures.rows import model_row
from tests.fixtures.stack import ROOT

BEFORE = "a3d5e7f9b1c2"


def _alembic(url: str, revision: str, data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPRESS_")}
    env.update(MODELPRESS_DATABASE_URL=url, MODELPRESS_DATA_DIR=str(data_dir))
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", revision],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip


def _job_at_before(session: Session, *, tenant: str | None, model_id: str) -> str:
    """A queued job written with the columns given and those with defaults: a Core insert, so
    columns later migrations add (jobs.waiting_reason) stay out of a table that lacks them."""
    job_id = str(uuid.uuid4())
    session.execute(
        sa.insert(Job.__table__).values(
            id=job_id, tenant=tenant, model_id=model_id, recipe={"steps": []}, target={}
        )
    )
    return job_id


def test_crossed_deliveries_are_deleted_and_own_ones_kept(
    database_url: str, tmp_path: Path
) -> None:
    _alembic(database_url, BEFORE, tmp_path)
    engine = sa.create_engine(database_url)
    with Session(engine) as session, session.begin():
        hooks = {t: Webhook(tenant=t, url="https://x.example/", events=[], secret="s") for t in
                 ("alpha", "beta", None)}  # fmt: skip
        session.add_all(hooks.values())
        session.flush()
        models = {t: model_row(session, tenant=t) for t in hooks}
        jobs = {t: _job_at_before(session, tenant=t, model_id=models[t]) for t in hooks}
        kept, crossed = [], []
        for owner in hooks:
            for subscriber, hook in hooks.items():
                for event, resource in (
                    ("model.ready", models[owner]),
                    ("job.failed", jobs[owner]),
                ):
                    delivery = WebhookDelivery(
                        webhook_id=hook.id, event_type=event, resource_id=resource
                    )
                    session.add(delivery)
                    session.flush()
                    (kept if owner == subscriber else crossed).append(delivery.id)
                    session.add(WebhookAttempt(delivery_id=delivery.id, duration_ms=1.0))
        # A delivery whose resource is gone names nothing new: it stays.
        gone = WebhookDelivery(
            webhook_id=hooks["alpha"].id, event_type="job.succeeded", resource_id="deleted-job"
        )
        session.add(gone)
        session.flush()
        kept.append(gone.id)
        gone_id = gone.id

    _alembic(database_url, "head", tmp_path)

    with Session(engine) as session:
        left = set(session.scalars(sa.select(WebhookDelivery.id)))
        attempts = set(session.scalars(sa.select(WebhookAttempt.delivery_id)))
    engine.dispose()
    assert len(crossed) == 12 and len(kept) == 7
    assert left == set(kept)
    assert attempts == set(kept) - {gone_id}
