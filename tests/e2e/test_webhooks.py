"""Webhooks against a receiver this test runs: signed per Standard Webhooks, retried after a
failure with the same id, every attempt listed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.helpers import (
    digits_upload,
    submit_job,
    upload_ready,
    wait_for_job,
    wait_until,
)
from tests.fixtures.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


class Receiver(ThreadingHTTPServer):
    """Records every POST; answers 500 to the first one so the service has to retry."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.received.append({"headers": dict(self.headers.items()), "body": body})
        self.send_response(500 if len(self.server.received) == 1 else 204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module", params=["scaleout"])  # one kind keeps CI in bounds
def hook_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"hooks-{request.param}")
    # The receiver is on loopback, which the SSRF guard refuses unless allowed.
    env = {"MODELPRESS_WEBHOOK_ALLOW_PRIVATE": "true", "MODELPRESS_WEBHOOK_BACKOFF_S": "1",
           "MODELPRESS_HEARTBEAT_S": "1"}  # fmt: skip
    with running_stack(request.param, tmp, **env) as running:
        yield running


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side of the Standard Webhooks spec, written out independently."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    lowered = {k.lower(): v for k, v in headers.items()}
    signed = f"{lowered['webhook-id']}.{lowered['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [sig.split(",", 1)[1] for sig in lowered["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, sig) for sig in offered)


def test_job_event_is_signed_retried_and_listed(
    hook_stack: Stack, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.received.clear()
    with hook_stack.client() as client:
        events = ["model.ready", "job.succeeded", "job.failed"]
        created = client.post("/v1/webhooks", json={"url": receiver.url, "events": events})
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"].startswith("whsec_")
        assert created.headers["location"] == f"/v1/webhooks/{hook['id']}"
        assert "secret" not in client.get(f"/v1/webhooks/{hook['id']}").json()

        model = upload_ready(client, digits_upload(tmp_path / "mlp"))
        job_id = submit_job(client, model["id"], [{"technique": "quantization", "scheme": "fp16"}])
        job = wait_for_job(client, job_id, stack=hook_stack)
        assert job["status"] == "succeeded", f"{job}\n{hook_stack.logs()}"
        # Two events, the first of which the receiver refused once: three posts.
        wait_until(lambda: len(receiver.received) >= 3, 60, "both deliveries, one retried")

        for message in receiver.received:
            assert verify(hook["secret"], message["headers"], message["body"])
            assert not verify(hook["secret"], message["headers"], message["body"] + b" ")
        refused = receiver.received[0]
        retried = [
            m
            for m in receiver.received[1:]
            if m["headers"]["webhook-id"] == refused["headers"]["webhook-id"]
        ]
        assert [m["body"] for m in retried] == [refused["body"]]  # same id, same signed body
        by_type = {
            json.loads(m["body"])["type"]: json.loads(m["body"])["data"] for m in receiver.received
        }
        assert by_type["model.ready"]["id"] == model["id"]
        assert by_type["model.ready"]["status"] == "ready"
        assert by_type["job.succeeded"]["id"] == job_id
        assert by_type["job.succeeded"]["status"] == "succeeded"

        deliveries = client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
        assert {d["event_type"] for d in deliveries} == {"model.ready", "job.succeeded"}
        assert all(d["status"] == "delivered" for d in deliveries), deliveries
        logs = {d["id"]: [a["status_code"] for a in d["attempt_log"]] for d in deliveries}
        assert logs[refused["headers"]["webhook-id"]] == [500, 204]
        assert sorted(map(len, logs.values())) == [1, 2]

        assert client.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
        assert client.get(f"/v1/webhooks/{hook['id']}").status_code == 404
