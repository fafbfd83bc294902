"""The job plot: the renderer on reports built here, then the route's negotiation and states."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.jobs.plot import NotAcceptable, negotiate, render
from app.jobs.plot_routes import _format
from compressor.report import CompressionReport
from compressor.search.report import SearchReport
from tests.fixtures.helpers import assert_problem, digits_upload, submit_job, upload_ready
from tests.fixtures.stack import Stack

PLOT_CONTENT = ("image/svg+xml", "image/png", "application/octet-stream")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"
RUNTIME = {
    "latency_p95_ms": 1.0,
    "throughput_per_s": 1000.0,
    "peak_memory_bytes": 1,
    "batch_size": 1,
}
PARAMS = {"parameters": 100, "nonzero_parameters": 100, "dtypes": {"float32": 100}}


def _report(search: dict[str, Any] | None = None) -> CompressionReport:
    report: dict[str, Any] = {
        "target": {},
        "measurement": {
            "threads": 1,
            "warmup": 1,
            "iterations": 1,
            "sequence_length": 1,
            "inputs": "test",
            "labelled": True,
            "training_data": None,
            "fresh_process": True,
        },
        "original": {
            **RUNTIME,
            **PARAMS,
            "latency_p50_ms": 0.5,
            "format": "architecture",
            "architecture": "mlp",
            "runtime_format": "onnx",
            "model_bytes": 400_000,
            "upload_weight_bytes": 400_000,
        },
        "compressed": {
            **RUNTIME,
            **PARAMS,
            "latency_p50_ms": 0.3,
            "format": "onnx",
            "model_bytes": 10_000,
            "archive": None,
        },
        "fidelity": {"samples": 10, "cosine_mean": 0.99, "cosine_min": 0.98, "max_abs_error": 0.1},
        "steps": [],
        "compression_ratio": 40.0,
        "speedup_p50": 1.67,
    }
    if search is not None:
        report["search"] = search
    return CompressionReport.model_validate(report)


def _candidate(n: int, **figures: Any) -> dict[str, Any]:
    return {
        "job_id": f"cand-{n}",
        "round": 1 + n // 3,
        "purpose": f"try {n}",
        "recipe": {"steps": []},
        "status": "succeeded",
        "worker": f"w{n % 2}",
        **figures,
    }


def _search() -> dict[str, Any]:
    candidates = [
        _candidate(0, bytes=100_000, latency_p50_ms=0.40, budget_value=0.000, meets_budget=True),
        _candidate(1, bytes=30_000, latency_p50_ms=0.35, budget_value=0.002, meets_budget=True),
        _candidate(2, bytes=10_000, latency_p50_ms=0.30, budget_value=0.004, meets_budget=True,
                   on_front=True),
        _candidate(3, bytes=5_000, latency_p50_ms=0.28, budget_value=0.030),
        _candidate(4, bytes=60_000, latency_p50_ms=0.20, budget_value=0.001, meets_budget=True,
                   on_front=True),
        {**_candidate(5), "status": "failed", "error": "did not export"},
    ]  # fmt: skip
    search = {
        "goal": {"objective": "size", "max_accuracy_drop": 0.005, "time_budget_s": 60},
        "budget": "accuracy drop <= 0.005",
        "method": "sensitivity first, then a guided walk",
        "rounds": 2,
        "candidates": candidates,
        "chosen_job_id": "cand-2",
        "why": "the smallest candidate within the budget",
        "original": {"bytes": 400_000, "latency_p50_ms": 0.5, "accuracy": 0.97},
        "workers": ["w0", "w1"],
        "wall_s": 12.5,
        "stopped_by": "converged",
    }
    SearchReport.model_validate(search)
    return search


def _ids(svg: bytes) -> set[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    return {el.attrib["id"] for el in root.iter() if "id" in el.attrib}


def test_goal_plot_marks_every_measured_candidate_the_front_the_choice_and_the_original() -> None:
    svg = render(_report(_search()), job_id="goal-job", fmt="svg")
    ids = _ids(svg)
    # One marker per candidate that has figures; the failed one has none to draw.
    assert {i for i in ids if i.startswith("candidate-")} == {
        f"candidate-cand-{n}" for n in range(5)
    }
    assert {"chosen", "front", "original"} <= ids
    text = svg.decode()
    assert "chosen: 10 kB, 0.3 ms" in text
    assert "accuracy drop on data.eval<" in text  # the colour bar
    assert "Goal job goal-job: accuracy drop &lt;= 0.005" in text
    assert "misses the budget" in text and "meets the budget" in text


def test_recipe_plot_shows_original_and_compressed() -> None:
    ids = _ids(render(_report(), job_id="recipe-job", fmt="svg"))
    assert {"original", "compressed"} <= ids
    assert not any(i.startswith("candidate-") or i == "chosen" for i in ids)


def test_png_is_a_png() -> None:
    for report in (_report(), _report(_search())):
        assert render(report, job_id="j", fmt="png").startswith(PNG_SIGNATURE)


def test_same_report_draws_the_same_svg() -> None:
    report = _report(_search())
    assert render(report, job_id="j") == render(report, job_id="j")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "svg"),
        ("*/*", "svg"),
        ("image/*", "svg"),
        ("image/png", "png"),
        ("image/svg+xml;q=0.5, image/png", "png"),
        ("image/png;q=0.4, image/*;q=0.8", "svg"),
        ("text/html, image/avif, image/webp, image/apng, */*;q=0.8", "svg"),  # a browser's <img>
    ],
)
def test_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize("accept", ["application/json", "image/png;q=0, image/svg+xml;q=0"])
def test_negotiation_refuses_what_allows_neither(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept)


def test_bytes_clients_get_the_default_svg() -> None:
    assert _format("application/octet-stream") == "svg"
    assert _format("image/png, application/octet-stream;q=0.5") == "png"
    with pytest.raises(NotAcceptable):
        _format("application/json")


class TestPlotSpec:
    """The spec itself says what the plot's 200 is, so generators need no mapping of ours."""

    @pytest.fixture(scope="class")
    def spec(self) -> dict[str, Any]:
        from app.main import create_app

        return create_app().openapi()

    def test_declares_each_media_type_as_binary(self, spec: dict[str, Any]) -> None:
        content = spec["paths"]["/v1/jobs/{job_id}/plot"]["get"]["responses"]["200"]["content"]
        assert set(content) == set(PLOT_CONTENT)
        for media in PLOT_CONTENT:
            assert content[media]["schema"] == {"type": "string", "format": "binary"}

    def test_client_generated_without_our_config_returns_the_bytes(
        self, spec: dict[str, Any], tmp_path: Path
    ) -> None:
        """openapi-python-client as anyone would run it: no content_type_overrides."""
        import json
        import os
        import subprocess
        import sys

        (tmp_path / "openapi.json").write_text(json.dumps(spec))
        venv_bin = Path(sys.executable).parent
        env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = subprocess.run(
            [str(venv_bin / "openapi-python-client"), "generate", "--path", "openapi.json",
             "--meta", "none", "--output-path", "client"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "/plot" not in done.stdout, done.stdout  # no "response will be omitted" warning
        plot_module = (tmp_path / "client" / "api" / "jobs" / "get_job_plot.py").read_text()
        assert "File(payload=BytesIO(response.content))" in plot_module


@pytest.fixture(scope="module")
def queued_job(api: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A job that stays queued: the `api` stack has no compute worker."""
    archive = digits_upload(Path(tmp_path_factory.mktemp("plot-digits")), epochs=1)
    with api.client() as client:
        model = upload_ready(client, archive, "digits.zip")
        yield submit_job(
            client, model["id"], [{"technique": "quantization", "scheme": "int8_dynamic"}]
        )


@pytest.mark.e2e
def test_plot_route_states_and_negotiation(api: Stack, queued_job: str) -> None:
    with api.client() as client:
        path = f"/v1/jobs/{queued_job}/plot"
        conflict = assert_problem(client.get(path), 409)
        assert "queued" in conflict["detail"]
        assert_problem(client.get(path, headers={"Accept": "application/json"}), 406)
        assert_problem(client.get("/v1/jobs/00000000-0000-0000-0000-000000000000/plot"), 404)
        # The same authentication as every /v1 route.
        assert_problem(client.get(path, headers={"Authorization": ""}), 401)
        operation = client.get("/openapi.json").json()["paths"]["/v1/jobs/{job_id}/plot"]["get"]
        assert set(operation["responses"]["200"]["content"]) == set(PLOT_CONTENT)
        assert {"401", "404", "406", "409"} <= set(operation["responses"])
