"""Results you can query: each succeeded job's headline figures as indexed rows.

Live: three tiny digits jobs with different recipes on a real stack, then the list and the
per-model comparison are ranked and filtered, and checked against the jobs' own reports.
Migration: a job that succeeded before ``job_results`` existed gets its row on upgrade.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scripts.train_digits import digits_split, train_and_save
from tests.fixtures.helpers import upload_ready, wait_for_dataset, wait_for_job
from tests.fixtures.stack import ROOT, Stack

RECIPES = {
    "int8": [{"technique": "quantization", "scheme": "int8_dynamic"}],
    "fp16": [{"technique": "quantization", "scheme": "fp16"}],
    "pruned": [{"technique": "pruning", "sparsity": 0.5}],
}


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """What the report itself says, in the API's names."""
    fidelity = report["fidelity"]
    return {
        "speedup": report["speedup_p50"],
        "compression_ratio": report["compression_ratio"],
        "compressed_bytes": report["compressed"]["model_bytes"],
        "original_bytes": report["original"]["model_bytes"],
        "latency_p50_ms": report["compressed"]["latency_p50_ms"],
        "fidelity_min": fidelity["cosine_min"],
        "accuracy_drop": fidelity["accuracy_original"] - fidelity["accuracy_compressed"],
    }


@pytest.fixture(scope="module")
def digits_jobs(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One digits MLP, one job per recipe; yields the model id and each job's report figures."""
    tmp = tmp_path_factory.mktemp("results")
    train_and_save("mlp", tmp, epochs=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("architecture.json", "model.safetensors"):
            zf.write(tmp / name, name)
    split = digits_split(image=False)
    with stack.client() as client:
        model = upload_ready(client, buf.getvalue(), "digits-mlp.zip")
        eval_ds = client.post(
            "/v1/datasets",
            files={"file": ("eval.npz", _npz(input=split.x_eval, labels=split.y_eval))},
        )
        assert eval_ds.status_code == 201, eval_ds.text
        assert wait_for_dataset(client, eval_ds.json()["id"])["status"] == "ready"
        submitted = {}
        for name, steps in RECIPES.items():
            body = {
                "model_id": model["id"],
                "recipe": {"steps": steps},
                "data": {"eval": eval_ds.json()["id"]},
            }
            response = client.post("/v1/jobs", json=body)
            assert response.status_code == 202, response.text
            submitted[name] = response.json()["id"]
        figures = {}
        for name, job_id in submitted.items():
            job = wait_for_job(client, job_id, stack=stack)
            assert job["status"] == "succeeded", f"{name}: {job}\n{stack.logs()}"
            report = client.get(f"/v1/jobs/{job_id}/report").json()["report"]
            figures[job_id] = _figures(report)
        yield {"model_id": model["id"], "figures": figures, "names": submitted}


def _list(stack: Stack, path: str, **params: Any) -> list[dict[str, Any]]:
    with stack.client() as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


class TestListJobsByFigures:
    @pytest.mark.parametrize("key", ["speedup", "compression_ratio", "compressed_bytes"])
    def test_sorted_as_the_reports_say(
        self, stack: Stack, digits_jobs: dict[str, Any], key: str
    ) -> None:
        figures = digits_jobs["figures"]
        model_id = digits_jobs["model_id"]
        descending = _list(stack, "/v1/jobs", model_id=model_id, sort=f"-{key}")
        ascending = _list(stack, "/v1/jobs", model_id=model_id, sort=key)
        assert {j["id"] for j in descending} == set(figures)
        down = [figures[j["id"]][key] for j in descending]
        up = [figures[j["id"]][key] for j in ascending]
        assert down == sorted(down, reverse=True), down
        assert up == sorted(up), up
        # The three recipes differ in size, so the ranking is not one by accident of ties.
        if key != "speedup":
            assert len(set(down)) == len(down), down

    def test_min_and_max_filters(self, stack: Stack, digits_jobs: dict[str, Any]) -> None:
        figures = digits_jobs["figures"]
        model_id = digits_jobs["model_id"]
        for key, param, keep in (
            ("compression_ratio", "min_compression_ratio", lambda v, t: v >= t),
            ("speedup", "min_speedup", lambda v, t: v >= t),
            ("accuracy_drop", "max_accuracy_drop", lambda v, t: v <= t),
            ("compressed_bytes", "max_compressed_bytes", lambda v, t: v <= t),
        ):
            threshold = sorted(f[key] for f in figures.values())[1]  # the middle job's figure
            got = _list(stack, "/v1/jobs", model_id=model_id, **{param: threshold})
            want = {job_id for job_id, f in figures.items() if keep(f[key], threshold)}
            assert {j["id"] for j in got} == want, (param, threshold, figures)
            assert 0 < len(want) < len(figures) or len(set(f[key] for f in figures.values())) < 3

    def test_default_order_is_newest_first(self, stack: Stack, digits_jobs: dict[str, Any]) -> None:
        jobs = _list(stack, "/v1/jobs", model_id=digits_jobs["model_id"])
        created = [j["created_at"] for j in jobs]
        assert created == sorted(created, reverse=True)
        assert len(jobs) == len(RECIPES)

    @pytest.mark.parametrize("path", ["/v1/jobs", "/v1/models/{model}/results"])
    def test_unknown_sort_key_is_a_422_listing_the_allowed(
        self, stack: Stack, digits_jobs: dict[str, Any], path: str
    ) -> None:
        with stack.client() as client:
            response = client.get(
                path.format(model=digits_jobs["model_id"]), params={"sort": "-bogus"}
            )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert "speedup" in body["allowed"] and "bogus" in body["detail"]
        assert "compression_ratio" in body["detail"]


class TestModelResults:
    def test_side_by_side_with_the_reports_figures(
        self, stack: Stack, digits_jobs: dict[str, Any]
    ) -> None:
        figures = digits_jobs["figures"]
        names = {job_id: name for name, job_id in digits_jobs["names"].items()}
        rows = _list(
            stack,
            f"/v1/models/{digits_jobs['model_id']}/results",
            sort="-compression_ratio",
        )
        assert [r["job_id"] for r in rows] == sorted(
            figures, key=lambda j: figures[j]["compression_ratio"], reverse=True
        )
        for row in rows:
            want = figures[row["job_id"]]
            assert row["status"] == "succeeded"
            technique = RECIPES[names[row["job_id"]]][0]["technique"]
            assert row["recipe_summary"].startswith(technique), row
            got = row["figures"]
            for key in ("speedup", "compression_ratio", "compressed_bytes", "original_bytes"):
                assert got[key] == want[key], (key, row)
            assert got["latency_p50_ms"] == pytest.approx(want["latency_p50_ms"])
            assert got["fidelity_min"] == pytest.approx(want["fidelity_min"])
            assert got["accuracy_drop"] == pytest.approx(want["accuracy_drop"])
            assert got["fidelity_metric"] == "cosine" and got["device"] == "cpu"
            assert got["provider"] == "CPUExecutionProvider"  # ran_on, not the target

    def test_unknown_model_is_404(self, stack: Stack) -> None:
        with stack.client() as client:
            response = client.get(f"/v1/models/{uuid.uuid4()}/results")
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "/problems/model-not-found"


# -- migration -------------------------------------------------------------------------------

BEFORE_RESULTS = "8f3d2c61a7e5"


def _alembic(db: Path, revision: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPRESS_")}
    env["MODELPRESS_DATABASE_URL"] = f"sqlite:///{db}"
    env["MODELPRESS_DATA_DIR"] = str(db.parent)
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", revision],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def _insert_job(con: sqlite3.Connection, model_id: str, status: str, report: Any) -> str:
    job_id = str(uuid.uuid4())
    con.execute(
        "INSERT INTO jobs (id, model_id, status, queue, recipe, target, data, priority, phase,"
        " progress, cancel_requested, attempts, report, created_at, updated_at) VALUES"
        " (?, ?, ?, 'cpu', '{}', '{}', '{}', 5, 'done', 1.0, 0, 1, ?, '2026-11-30', '2026-11-30')",
        (job_id, model_id, status, None if report is None else json.dumps(report)),
    )
    return job_id


def test_migration_backfills_succeeded_jobs(tmp_path: Path) -> None:
    db = tmp_path / "scratch.db"
    _alembic(db, BEFORE_RESULTS)
    report = {
        "target": {"device": "cpu", "runtime": "onnxruntime"},
        "original": {"format": "safetensors", "model_bytes": 4096, "latency_p50_ms": 0.5},
        "compressed": {"format": "onnx", "model_bytes": 1024, "latency_p50_ms": 0.25},
        "fidelity": {
            "cosine_min": 0.97,
            "cosine_mean": 0.99,
            "top1_agreement": 0.95,
            "accuracy_original": 0.9,
            "accuracy_compressed": 0.85,
        },
        "compression_ratio": 4.0,
        "speedup_p50": 2.0,
    }
    model_id = str(uuid.uuid4())
    with sqlite3.connect(db) as con:
        con.execute(
            "INSERT INTO models (id, filename, format, status, size_bytes, sha256, storage_key,"
            " inspection, created_at, updated_at) VALUES (?, 'm.zip', 'archive', 'ready', 1,"
            " 'x', 'k', '{}', '2026-11-30', '2026-11-30')",
            (model_id,),
        )
        succeeded = _insert_job(con, model_id, "succeeded", report)
        failed = _insert_job(con, model_id, "failed", None)
    _alembic(db, "head")
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = {r["job_id"]: dict(r) for r in con.execute("SELECT * FROM job_results")}
    assert set(rows) == {succeeded}, rows
    assert failed not in rows
    row = rows[succeeded]
    assert row["original_bytes"] == report["original"]["model_bytes"]
    assert row["compressed_bytes"] == report["compressed"]["model_bytes"]
    assert row["speedup"] == report["speedup_p50"]
    assert row["compression_ratio"] == report["compression_ratio"]
    assert row["latency_p50_ms"] == report["compressed"]["latency_p50_ms"]
    assert row["original_latency_p50_ms"] == report["original"]["latency_p50_ms"]
    assert (row["fidelity_min"], row["fidelity_mean"]) == (0.97, 0.99)
    assert row["top1_agreement"] == 0.95 and row["fidelity_metric"] == "cosine"
    assert row["accuracy_drop"] == pytest.approx(0.9 - 0.85)
    assert (row["device"], row["provider"]) == ("cpu", "onnxruntime")
