"""Issue 28's event-stream holes, on a live stack with authentication on: one tenant holding
every stream of the process (everyone else got 503), and a stream outliving its revoked key."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.keys import hash_key
from app.db.models import ApiKey
from app.jobs.events import TooManyTenantStreams, _Slots
from app.settings import EventStreamSettings
from tests.fixtures.helpers import assert_problem
from tests.fixtures.rows import job_row
from tests.fixtures.stack import ROOT, Stack, running_stack

PROCESS_CAP = 8
TENANT_CAP = 2
RECHECK_S = 1
LIFETIME_S = 20  # a stream that outlives its key ends here at the latest (default: 300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """No compute pool: the jobs stay queued, so their streams stay open."""
    with running_stack(
        "scaleout",
        tmp_path_factory.mktemp("stream-fairness"),
        worker=False,
        MODELPRESS_EVENT_STREAMS_MAX=str(PROCESS_CAP),
        MODELPRESS_EVENT_STREAMS_PER_TENANT_MAX=str(TENANT_CAP),
        MODELPRESS_EVENT_STREAM_RECHECK_S=str(RECHECK_S),
        MODELPRESS_EVENT_STREAM_MAX_S=str(LIFETIME_S),
    ) as running:
        yield running


@contextmanager
def _db(stack: Stack) -> Iterator[Session]:
    engine = sa.create_engine(stack.database_url)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _queued_job(stack: Stack, tenant: str) -> str:
    """A queued job row of ``tenant`` (its stream needs nothing but the row)."""
    with _db(stack) as session:
        return job_row(session, tenant=tenant)


def _key_id(stack: Stack, key: str) -> str:
    with _db(stack) as session:
        return session.scalars(sa.select(ApiKey.id).where(ApiKey.key_hash == hash_key(key))).one()


def _open(held: ExitStack, client: httpx.Client, job_id: str) -> httpx.Response:
    """A stream held open until ``held`` closes, its first event read (so it is being served)."""
    response = held.enter_context(client.stream("GET", f"/v1/jobs/{job_id}/events"))
    if response.status_code == 200:
        lines = cast(Generator[str, None, None], response.iter_lines())  # it is a generator
        # Held until ``held`` closes: collected, the iterator would close the connection.
        held.callback(lines.close)
        assert next(lines).startswith("event: state")
    else:
        response.read()
    return response


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield kind, json.loads(line.removeprefix("data: "))


class TestTenantShare:
    def test_a_tenant_past_its_share_gets_429_and_others_still_get_streams(
        self, stack: Stack
    ) -> None:
        alpha, beta = stack.create_key("alpha"), stack.create_key("beta")
        alpha_job, beta_job = _queued_job(stack, "alpha"), _queued_job(stack, "beta")
        with (
            ExitStack() as held,
            stack.client(alpha) as as_alpha,
            stack.client(beta) as as_beta,
        ):
            first = [_open(held, as_alpha, alpha_job) for _ in range(TENANT_CAP)]
            assert [r.status_code for r in first] == [200] * TENANT_CAP
            over = _open(held, as_alpha, alpha_job)
            assert over.status_code == 429, "a stream past alpha's share was let in"
            body = assert_problem(over, 429)
            assert body["type"] == "/problems/too-many-tenant-streams", body
            assert int(over.headers["retry-after"]) >= 1
            assert _open(held, as_beta, beta_job).status_code == 200, "beta was starved"

            first[0].close()  # alpha's share comes back once the server sees it leave
            deadline = time.monotonic() + 10
            while (again := _open(held, as_alpha, alpha_job)).status_code != 200:
                assert again.status_code == 429 and time.monotonic() < deadline
                time.sleep(0.2)


class TestRevokedKey:
    def test_a_stream_ends_once_its_key_is_revoked(self, stack: Stack) -> None:
        key = stack.create_key("gamma")
        job_id = _queued_job(stack, "gamma")
        with (
            stack.client(key) as client,
            client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=30) as response,
        ):
            assert response.status_code == 200
            events = _events(response.iter_lines())
            assert next(events)[0] == "state"
            subprocess.run(
                [sys.executable, "-m", "app.cli", "api-key", "revoke", _key_id(stack, key)],
                cwd=ROOT, env=stack.env, check=True, capture_output=True,
            )  # fmt: skip
            revoked = time.monotonic()
            rest = list(events)  # until the server closes the stream
            waited = time.monotonic() - revoked
        assert rest and rest[-1] == ("end", {"reason": "key revoked"}), rest
        assert waited <= RECHECK_S + 3, waited


class TestSettings:
    def test_the_default_share_is_a_quarter_of_the_process_cap(self) -> None:
        assert EventStreamSettings(event_streams_max=200).tenant_streams_max() == 50
        assert EventStreamSettings(event_streams_max=3).tenant_streams_max() == 1

    def test_a_share_above_the_process_cap_stops_start_up(self) -> None:
        with pytest.raises(ValidationError, match="PER_TENANT_MAX must not exceed"):
            EventStreamSettings(event_streams_max=4, event_streams_per_tenant_max=5)


def test_callers_without_a_key_share_one_tenants_share() -> None:
    """Authentication off: every caller is tenant None, and together they get one share."""
    slots = _Slots()
    slots.take(None, limit=8, tenant_limit=2)
    slots.take(None, limit=8, tenant_limit=2)
    with pytest.raises(TooManyTenantStreams):
        slots.take(None, limit=8, tenant_limit=2)
    slots.take("alpha", limit=8, tenant_limit=2)
    slots.give_back(None)
    slots.take(None, limit=8, tenant_limit=2)
