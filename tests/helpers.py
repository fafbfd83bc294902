from __future__ import annotations

import io
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa

from tests.stack import Stack


def upload(client: httpx.Client, content: bytes, filename: str = "model.zip") -> httpx.Response:
    return client.post(
        "/v1/models", files={"file": (filename, content, "application/octet-stream")}
    )


def wait_for_model(client: httpx.Client, model_id: str, *, timeout: float = 300) -> dict[str, Any]:
    """Poll until a worker has inspected the upload (``ready`` or ``rejected``)."""
    deadline = time.monotonic() + timeout
    model: dict[str, Any] = {}
    while time.monotonic() < deadline:
        model = client.get(f"/v1/models/{model_id}").json()
        if model["status"] != "pending":
            return model
        time.sleep(0.3)
    raise AssertionError(f"model {model_id} was not inspected in {timeout} s: {model}")


def upload_ready(
    client: httpx.Client, content: bytes, filename: str = "model.zip"
) -> dict[str, Any]:
    """Upload and wait for the inspection to accept it; returns the ready model."""
    response = upload(client, content, filename)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    model = wait_for_model(client, response.json()["id"])
    assert model["status"] == "ready", model
    return model


def wait_for_job(
    client: httpx.Client, job_id: str, *, stack: Stack, timeout: float = 600
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not finish: {job}\n{stack.logs()}")


def unpack_artifact(content: bytes, dest: Path) -> Path:
    """Unpack a downloaded artifact the plain way a user would: unzip, or tar xf for .tar.xz."""
    dest.mkdir(parents=True, exist_ok=True)
    if content[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:xz") as tf:
            tf.extractall(dest, filter="data")
    return dest


def row_count(stack: Stack, table: str) -> int:
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def stored_files(stack: Stack) -> list[Path]:
    roots = [stack.data_dir / "storage", stack.data_dir / "tmp"]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float64)
    return (hidden * weights).sum(1) / weights.sum(1)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def digits_upload(folder: Path, family: str = "mlp", *, epochs: int = 3) -> bytes:
    """A zipped digits model (architecture.json + model.safetensors), trained only briefly."""
    from scripts.train_digits import train_and_save

    train_and_save(family, folder, epochs=epochs)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("architecture.json", "model.safetensors"):
            zf.write(folder / name, name)
    return buf.getvalue()


def submit_job(
    client: httpx.Client, model_id: str, steps: list[dict[str, Any]], **extra: Any
) -> str:
    body = {"model_id": model_id, "recipe": {"steps": steps}, **extra}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with the given status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"], body
    return body


def job_artifact_files(stack: Stack, job_id: str) -> list[Path]:
    folder = stack.data_dir / "storage" / "artifacts" / job_id
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
