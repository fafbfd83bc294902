"""Hand-written helpers over the generated SDK (modelpress_client): wait for an upload's
inspection, wait for a job by following its event stream, stream its artifact to a file.

They live in this package, not in clients/python, because `make sdk` owns that directory:
openapi-python-client rewrites its metadata and package files on every run, so anything added
there would be one generator change away from being deleted or drifting from the spec.

    from modelpress_cli.sdk import download_artifact, wait_for_job, wait_until_ready
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote

import httpx
from modelpress_client import AuthenticatedClient, Client
from modelpress_client.api.datasets import get_dataset
from modelpress_client.api.jobs import get_job
from modelpress_client.api.models import get_model
from modelpress_client.models import DatasetRead, JobRead, ModelRead, Problem

AnyClient: TypeAlias = Client | AuthenticatedClient
POLL_S = 0.5
# A stream that closes early (a restarted API, a proxy's idle limit) is reopened this soon.
RECONNECT_S = 1.0
CHUNK = 1 << 20


class ModelpressError(Exception):
    """The server refused, or a resource ended somewhere other than where the caller waited."""

    def __init__(self, message: str, *, problem: Problem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


def checked(result: Any) -> Any:
    """The generated call's typed result, or ModelpressError carrying its Problem."""
    if isinstance(result, Problem):
        raise ModelpressError(f"{result.title} ({result.status}): {result.detail}", problem=result)
    if result is None:
        raise ModelpressError("the server gave an unexpected answer")
    return result


def _refuse(response: httpx.Response) -> None:
    """ModelpressError for a streamed call's non-2xx answer, with its Problem when it has one."""
    response.read()
    try:
        problem = Problem.from_dict(response.json())
    except (ValueError, KeyError, TypeError):
        raise ModelpressError(f"HTTP {response.status_code}: {response.text[:200]}") from None
    checked(problem)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("retry-after", RECONNECT_S)), 0.0)
    except ValueError:
        return RECONNECT_S


def wait_until_ready(
    client: AnyClient,
    model_id: str,
    timeout: float = 600.0,
    *,
    kind: Literal["model", "dataset"] = "model",
) -> ModelRead | DatasetRead:
    """The upload once inspected and ready (a job on a pending model gets 409); pass
    kind="dataset" for a dataset id. ModelpressError if rejected, TimeoutError past timeout."""
    fetch = get_dataset.sync if kind == "dataset" else get_model.sync
    deadline = time.monotonic() + timeout
    while True:
        row = checked(fetch(model_id, client=client))
        status = str(row.status)
        if status == "ready":
            return row  # type: ignore[no-any-return]
        if status == "rejected":
            raise ModelpressError(f"the {kind} {model_id} was rejected: {row.rejection_reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {kind} {model_id} is still {status} after {timeout:.0f} s")
        time.sleep(POLL_S)


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


def job_events(
    client: AnyClient, job_id: str, *, timeout: float | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, data) for each event of `GET /v1/jobs/{id}/events` until "end". A stream that
    closes or drops is reopened with Last-Event-ID, so no event is seen twice or missed."""
    http = client.get_httpx_client()
    deadline = None if timeout is None else time.monotonic() + timeout
    last_id: str | None = None
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(f"job {job_id} did not end within {timeout:.0f} s")
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            with http.stream(
                "GET",
                f"/v1/jobs/{job_id}/events",
                headers=headers,
                timeout=httpx.Timeout(30.0, read=left),
            ) as response:
                if response.status_code in {429, 503}:  # too many open streams: come back later
                    pause = _retry_after(response)
                elif response.status_code != 200:
                    _refuse(response)
                else:
                    pause = RECONNECT_S / 10  # the server closed a long stream; resume now
                    for event, event_id, data in _parse(response.iter_lines()):
                        if event_id:
                            last_id = event_id
                        yield event, data
                        if event == "end":
                            return
        except httpx.ReadTimeout:
            continue  # the deadline check above ends it
        except httpx.TransportError:  # a restarted API or a dropped connection
            pause = RECONNECT_S
        time.sleep(pause if left is None else min(pause, max(left, 0)))


def wait_for_job(client: AnyClient, job_id: str, timeout: float = 3600.0) -> JobRead:
    """The job once it ended (succeeded, failed or cancelled), read after its stream's "end";
    TimeoutError past timeout. Check `.status` before using the artifact."""
    for _kind, _data in job_events(client, job_id, timeout=timeout):
        pass
    return checked(get_job.sync(job_id, client=client))  # type: ignore[no-any-return]


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))', re.IGNORECASE)


def filename_from(disposition: str | None, fallback: str) -> str:
    """The Content-Disposition file name, reduced to a plain base name: a server (or a proxy)
    cannot make us write outside dest_dir with "../x" or "/etc/x"."""
    name = ""
    if disposition:
        if star := _FILENAME_STAR.search(disposition):
            name = unquote(star.group(2).strip(), encoding=star.group(1) or "utf-8")
        elif plain := _FILENAME.search(disposition):
            name = plain.group(1) if plain.group(1) is not None else plain.group(2).strip()
    base = PurePosixPath(name.replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable())
    return fallback if base in {"", ".", ".."} else base


def download_artifact(client: AnyClient, job_id: str, dest_dir: str | Path) -> Path:
    """Stream a succeeded job's artifact into dest_dir under the server's file name; returns the
    path. The file appears only once complete (written to a .part name, then renamed)."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    http = client.get_httpx_client()
    # S3 storage may answer with a redirect to a presigned URL; httpx drops our Authorization
    # header when the redirect leaves the API's origin.
    with http.stream("GET", f"/v1/jobs/{job_id}/artifact", follow_redirects=True) as response:
        if response.status_code != 200:
            _refuse(response)
        target = dest / filename_from(
            response.headers.get("content-disposition"), f"modelpress-{job_id}"
        )
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return target
