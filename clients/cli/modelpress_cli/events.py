"""Following a job's server-sent events, resuming with Last-Event-ID when a stream closes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


def _parse(lines: Iterator[str]) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    event, event_id, data = "message", None, ""
    for line in lines:
        if not line:
            if data:
                yield event, event_id, json.loads(data)
            event, event_id, data = "message", None, ""
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()


def follow(http: httpx.Client, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, data) for each state change and log line, until the job ends."""
    last_id: str | None = None
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        with http.stream(
            "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=None
        ) as response:
            response.raise_for_status()
            for event, event_id, data in _parse(response.iter_lines()):
                if event_id:
                    last_id = event_id
                yield event, data
                if event == "end":
                    return
