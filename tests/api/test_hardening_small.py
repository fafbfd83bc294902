"""Issue 12's smaller holes, each reproduced on a live stack: a Last-Event-ID that is not an
ASCII number, unbounded event streams, /readyz telling strangers where the database lives, and a
tokenizer that asks stdin whether to run the upload's code."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.fixtures.helpers import assert_problem, submit_job, upload_ready
from tests.fixtures.stack import ROOT, Stack, free_port, running_stack

STREAM_CAP = 120
STREAM_LIFETIME_S = 25  # long enough to open STREAM_CAP streams on a busy machine
QUICK = [{"technique": "quantization", "scheme": "int8_dynamic"}]
Event = tuple[str | None, str, dict[str, Any]]


@pytest.fixture(scope="module", params=["scaleout"])  # one kind: CI time; e2e covers both
def streams(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """No compute pool: submitted jobs stay queued, so their event streams stay open."""
    tmp = tmp_path_factory.mktemp(f"streams-{request.param}")
    with running_stack(
        request.param,
        tmp,
        worker=False,
        MODELPRESS_EVENT_STREAMS_MAX=str(STREAM_CAP),
        MODELPRESS_EVENT_STREAMS_PER_TENANT_MAX=str(STREAM_CAP),  # one tenant fills the server
        MODELPRESS_EVENT_STREAM_MAX_S=str(STREAM_LIFETIME_S),
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def queued_jobs(streams: Stack, minilm_targz: bytes) -> list[str]:
    with streams.client() as client:
        model = upload_ready(client, minilm_targz, "minilm.tar.gz")
        return [submit_job(client, model["id"], QUICK) for _ in range(3)]


def parse_sse(lines: list[str]) -> list[Event]:
    events: list[Event] = []
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "event" in fields:
                events.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return events


def read_whole_stream(
    client: httpx.Client, job_id: str, last_event_id: str | None = None
) -> list[Event]:
    """Every event until the server ends the stream, or until twice its lifetime has passed."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    url = f"/v1/jobs/{job_id}/events"
    give_up = time.monotonic() + 2 * STREAM_LIFETIME_S
    lines: list[str] = []
    with client.stream("GET", url, headers=headers, timeout=STREAM_LIFETIME_S + 5) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            lines.append(line)
            if time.monotonic() > give_up:
                break
    return parse_sse(lines)


class TestLastEventId:
    @pytest.mark.parametrize(
        "value",
        ["²".encode("latin-1"), "¹³".encode("latin-1"), b"1" * 40, b"-1", b"12a", b"1 2"],
        ids=["superscript-two", "superscripts", "forty-digits", "negative", "letters", "space"],
    )
    def test_anything_but_an_ascii_number_is_a_422_problem(
        self, streams: Stack, queued_jobs: list[str], value: bytes
    ) -> None:
        url = f"/v1/jobs/{queued_jobs[0]}/events"
        with streams.client() as client:
            response = client.get(url, headers={"Last-Event-ID": value}, timeout=10)
        body = assert_problem(response, 422)
        assert "last-event-id" in body["detail"].lower(), body

    def test_a_stream_ends_at_its_lifetime_and_resumes_after_the_last_id(
        self, streams: Stack, queued_jobs: list[str]
    ) -> None:
        with streams.client() as client:
            started = time.monotonic()
            first = read_whole_stream(client, queued_jobs[0])
            lasted = time.monotonic() - started
            ids = [int(i) for i, kind, _ in first if kind == "log" and i is not None]
            assert ids, first
            resumed = read_whole_stream(client, queued_jobs[0], str(ids[-1]))
        assert STREAM_LIFETIME_S - 1 <= lasted <= STREAM_LIFETIME_S + 5, lasted
        assert "end" not in {kind for _, kind, _ in first}, "the job is still queued"
        assert [kind for _, kind, _ in resumed] == ["state"], resumed
        assert resumed[0][2]["status"] == "queued"


def _async_client(stack: Stack) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=STREAM_CAP + 10)
    return httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers, timeout=30, limits=limits
    )


async def _open_stream(
    client: httpx.AsyncClient, stack: AsyncExitStack, job_id: str
) -> httpx.Response:
    """A stream held open, its first event read (so the server is serving it)."""
    response = await stack.enter_async_context(client.stream("GET", f"/v1/jobs/{job_id}/events"))
    if response.status_code == 200:
        lines = response.aiter_lines()
        # Held until the stack closes: collected, the iterator would close the connection.
        stack.push_async_callback(lines.aclose)
        await anext(lines)
    return response


def _median_latency(stack: Stack, path: str, count: int = 30) -> float:
    with stack.client() as client:
        client.get(path)
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            assert client.get(path).status_code == 200
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _event_reads(stack: Stack) -> int:
    """Scans of the job_events table in the stack's PostgreSQL database.

    Only the event poller reads that table, so other requests (authentication, the latency
    probe) do not count here, even when PostgreSQL publishes their statistics late: an idle
    backend may hold them for up to ten seconds.
    """
    url = sa.make_url(stack.database_url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            return int(
                conn.execute(
                    sa.text(
                        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) "
                        "FROM pg_stat_user_tables WHERE relname = 'job_events'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _api_cpu_s(stack: Stack) -> float:
    """CPU seconds the API process (all its threads) has used."""
    fields = Path(f"/proc/{stack.procs['api'].pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_per_s(stack: Stack, seconds: float = 5.0) -> tuple[float, float | None]:
    """The API's CPU share, and (PostgreSQL only) the event table's reads per second."""
    postgres = stack.database_url.startswith("postgresql")
    time.sleep(1.5)  # PostgreSQL publishes backend statistics up to a second late
    cpu, reads = _api_cpu_s(stack), _event_reads(stack) if postgres else 0
    time.sleep(seconds)
    cpu_share = (_api_cpu_s(stack) - cpu) / seconds
    return cpu_share, (_event_reads(stack) - reads) / seconds if postgres else None


class TestStreamLimits:
    def test_streams_beyond_the_cap_get_503_with_retry_after(
        self, streams: Stack, queued_jobs: list[str]
    ) -> None:
        async def scenario() -> None:
            async with (
                _async_client(streams) as client,
                AsyncExitStack() as held,
            ):
                opened = await asyncio.gather(
                    *(
                        _open_stream(client, held, queued_jobs[i % len(queued_jobs)])
                        for i in range(STREAM_CAP)
                    )
                )
                assert {r.status_code for r in opened} == {200}
                async with client.stream("GET", f"/v1/jobs/{queued_jobs[0]}/events") as over:
                    assert over.status_code == 503, "one stream past the cap was let in"
                    await over.aread()
                body = assert_problem(over, 503)
                assert int(over.headers["retry-after"]) >= 1
                assert "stream" in body["detail"], body
                await opened[0].aclose()
                deadline = time.monotonic() + 10
                while True:  # the server notices the disconnect and frees the slot
                    async with client.stream("GET", f"/v1/jobs/{queued_jobs[0]}/events") as again:
                        if again.status_code == 200 or time.monotonic() > deadline:
                            assert again.status_code == 200
                            break
                    await asyncio.sleep(0.2)

        asyncio.run(scenario())

    def test_many_streams_leave_the_api_fast_and_the_database_quiet(
        self, streams: Stack, queued_jobs: list[str]
    ) -> None:
        quiet = _median_latency(streams, "/v1/models")

        async def scenario() -> tuple[
            float, tuple[float, float | None], tuple[float, float | None]
        ]:
            async with (
                _async_client(streams) as client,
                AsyncExitStack() as held,
            ):
                await _open_stream(client, held, queued_jobs[0])
                one = await asyncio.to_thread(_load_per_s, streams)
                await asyncio.gather(
                    *(_open_stream(client, held, queued_jobs[i % 3]) for i in range(STREAM_CAP - 1))
                )
                many = await asyncio.to_thread(_load_per_s, streams)
                busy = await asyncio.to_thread(_median_latency, streams, "/v1/models")
                return busy, one, many

        busy, (cpu_one, reads_one), (cpu_many, reads_many) = asyncio.run(scenario())
        print(
            f"{streams.name}: GET /v1/models median {quiet * 1000:.1f} ms quiet, "
            f"{busy * 1000:.1f} ms with {STREAM_CAP} streams; API CPU {cpu_one:.1%} with one "
            f"stream, {cpu_many:.1%} with {STREAM_CAP}; event reads/s {reads_one} -> {reads_many}"
        )
        assert busy <= 3 * quiet + 0.020, (quiet, busy)
        assert cpu_many <= cpu_one + 0.10, (cpu_one, cpu_many)
        if reads_one is not None and reads_many is not None:
            # One poll a tick whatever the number of streams; one per stream would be 120x.
            assert reads_many <= 1.5 * reads_one + 2, (reads_one, reads_many)


class TestReadiness:
    def test_an_unreachable_broker_is_named_but_not_described(self, tmp_path: Path) -> None:
        port = free_port()  # nothing listens there
        broker = f"redis://modelpress:hunter2@127.0.0.1:{port}/3"
        with (
            running_stack("embedded", tmp_path, worker=False, broker_url=broker) as stack,
            stack.client() as client,
        ):
            response = client.get("/readyz")
            api_log = (stack.data_dir / "api.log").read_text()
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "not ready"
        assert body["checks"] == {"database": "ok", "broker": "unavailable", "storage": "ok"}
        for secret in (str(port), "127.0.0.1", "hunter2", "modelpress:", "Error", "redis://"):
            assert secret not in response.text, (secret, response.text)
        assert str(port) in api_log, "the detail belongs in the server log"


def _model_with_custom_tokenizer(src: Path, dest: Path) -> Path:
    """A model whose config type has no built-in tokenizer, and whose tokenizer_config.json maps
    AutoTokenizer to a module in the upload; the module leaves a mark if it is ever imported."""
    dest.mkdir()
    for name in ("model.safetensors", "tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, dest / name)
    config = json.loads((src / "config.json").read_text())
    (dest / "config.json").write_text(json.dumps({**config, "model_type": "vit"}))
    (dest / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "EvilTokenizer",
                "auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]},
            }
        )
    )
    (dest / "tokenization_evil.py").write_text(
        f"import pathlib\npathlib.Path({str(dest / 'RAN')!r}).touch()\n"
        "from transformers import BertTokenizer\n\n"
        "class EvilTokenizer(BertTokenizer):\n    pass\n"
    )
    return dest


def test_custom_tokenizer_code_is_refused_without_asking(minilm_dir: Path, tmp_path: Path) -> None:
    """Jobs load tokenizers in a worker's main thread, where transformers would prompt on stdin
    for 15 s, and run the upload's code if stdin answers yes."""
    model = _model_with_custom_tokenizer(minilm_dir, tmp_path / "model")
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from compressor.errors import InvalidModelError\n"
        "from compressor.formats.hf import load_tokenizer\n"
        "try:\n    load_tokenizer(Path(sys.argv[1]))\n"
        "except InvalidModelError as exc:\n    print('REFUSED:', exc)\n"
        "else:\n    print('LOADED')\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script, str(model)],
        input=b"y\n",
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    took = time.monotonic() - started
    output = (done.stdout + done.stderr).decode()
    assert "[y/N]" not in output, output
    assert not (model / "RAN").exists(), "the upload's tokenizer code ran"
    refusal = next(line for line in done.stdout.decode().splitlines() if "REFUSED" in line)
    assert "custom code" in refusal and "tokenizer_config.json" in refusal, refusal
    assert str(tmp_path) not in refusal, "server paths stay out of user-facing messages"
    assert took < 60, took
