"""Goal-driven jobs through the API: a budget in, candidates as child jobs on two workers, the
chosen artifact judged on digits the search never saw.

The user's side of the digits split is divided into train and eval (the search's budget check);
the held-out test images stay with the test, which scores the downloaded artifact on them in
onnxruntime after plain unpacking.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.model_selection import train_test_split

from scripts.train_digits import digits_split, train_and_save
from tests.fixtures.helpers import (
    assert_problem,
    npz_bytes,
    unpack_artifact,
    upload_dataset_ready,
    upload_ready,
    wait_for_job,
    wait_until,
)
from tests.fixtures.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

BUDGET = 0.03  # accuracy points, as a fraction: loose enough for a 3-epoch model's noise
TIME_BUDGET_S = 150


def _zip(folder: Path) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("architecture.json", "model.safetensors"):
            zf.write(folder / name, name)
    return buf.getvalue()


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack("scaleout", tmp_path_factory.mktemp("goal-stack")) as stack:
        stack.start_worker("worker2")
        yield stack


@pytest.fixture(scope="module")
def digits_goal(two_workers: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("goal-digits")
    split = digits_split(image=False)
    x_train, x_eval, y_train, y_eval = train_test_split(
        split.x_train, split.y_train, test_size=0.25, random_state=7, stratify=split.y_train
    )
    summary = train_and_save("mlp", tmp / "model", rows=(x_train, y_train))
    with two_workers.client() as client:
        model = upload_ready(client, _zip(tmp / "model"), "digits-mlp.zip")
        train = upload_dataset_ready(client, npz_bytes(input=x_train, labels=y_train), "t.npz")
        eval_ = upload_dataset_ready(client, npz_bytes(input=x_eval, labels=y_eval), "e.npz")
    return {
        "model": model["id"],
        "data": {"train": train["id"], "eval": eval_["id"]},
        "test_accuracy": summary["eval_accuracy"],  # the original, on the held-out split
        "x_test": split.x_eval,
        "y_test": split.y_eval,
    }


def _ort_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    return float((logits.argmax(-1) == y).mean())


def test_size_goal_fans_out_on_two_workers_and_holds_on_unseen_data(
    two_workers: Stack, digits_goal: dict[str, Any], tmp_path: Path
) -> None:
    goal = {"objective": "size", "max_accuracy_drop": BUDGET, "time_budget_s": TIME_BUDGET_S}
    body = {"model_id": digits_goal["model"], "goal": goal, "data": digits_goal["data"]}
    with two_workers.client() as client:
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        assert (
            submitted.json()["recipe"] is None and submitted.json()["goal"]["objective"] == "size"
        )
        job = wait_for_job(client, submitted.json()["id"], stack=two_workers, timeout=1200)
        assert job["status"] == "succeeded", f"{job}\n{two_workers.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        children = client.get("/v1/jobs", params={"parent_id": job["id"], "limit": 100}).json()
        content = client.get(f"/v1/jobs/{job['id']}/artifact").content
        plot = client.get(f"/v1/jobs/{job['id']}/plot")

    search = report["search"]
    candidates = search["candidates"]
    # Every candidate is an ordinary job under the goal job, and both workers ran some.
    assert {c["id"] for c in children["items"]} == {c["job_id"] for c in candidates}
    assert all(c["parent_id"] == job["id"] for c in children["items"])
    assert len({c["worker"] for c in candidates if c["worker"]}) == 2, candidates
    assert search["rounds"] >= 2, search  # the walk went past its first bracket
    chosen = next(c for c in candidates if c["job_id"] == search["chosen_job_id"])
    assert chosen["meets_budget"] and chosen["on_front"], chosen
    meeting = [c for c in candidates if c["meets_budget"]]
    assert chosen["bytes"] == min(c["bytes"] for c in meeting)
    assert job["recipe"] == chosen["recipe"]  # resubmittable as it is
    assert job["artifact_bytes"] == chosen["bytes"]
    assert report["artifact"]["bytes"] < report["original"]["model_bytes"] / 4

    # The judge: held-out digits the search never saw, the artifact as a user unpacks it.
    folder = unpack_artifact(content, tmp_path / "artifact")
    (onnx_file,) = folder.rglob("*.onnx")
    accuracy = _ort_accuracy(onnx_file, digits_goal["x_test"], digits_goal["y_test"])
    drop = digits_goal["test_accuracy"] - accuracy
    print(
        f"goal job: {len(candidates)} candidates in {search['rounds']} rounds, "
        f"{search['wall_s']} s on {search['workers']}; chosen {chosen['purpose']}: "
        f"{chosen['bytes']} bytes ({report['original']['model_bytes'] / chosen['bytes']:.1f}x), "
        f"held-out accuracy {digits_goal['test_accuracy']:.4f} -> {accuracy:.4f}"
    )
    assert drop <= BUDGET, (digits_goal["test_accuracy"], accuracy, chosen)

    assert plot.status_code == 200, plot.text
    assert plot.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in plot.content


def test_goal_and_recipe_together_or_without_eval_data_are_422(
    two_workers: Stack, digits_goal: dict[str, Any]
) -> None:
    goal = {"objective": "size", "max_accuracy_drop": 0.01}
    recipe = {"steps": [{"technique": "quantization"}]}
    with two_workers.client() as client:
        both = client.post(
            "/v1/jobs",
            json={
                "model_id": digits_goal["model"],
                "goal": goal,
                "recipe": recipe,
                "data": digits_goal["data"],
            },
        )
        no_eval = client.post(
            "/v1/jobs",
            json={"model_id": digits_goal["model"], "goal": goal, "data": {}},
        )
        two_budgets = client.post(
            "/v1/jobs",
            json={
                "model_id": digits_goal["model"],
                "goal": {**goal, "min_cosine": 0.99},
                "data": digits_goal["data"],
            },
        )
    assert "either a recipe or a goal" in str(assert_problem(both, 422))
    assert "data.eval" in str(assert_problem(no_eval, 422))
    assert "exactly one budget" in str(assert_problem(two_budgets, 422))


def test_cancelling_a_goal_job_cancels_its_candidates(
    two_workers: Stack, digits_goal: dict[str, Any]
) -> None:
    goal = {"objective": "size", "min_top1_agreement": 0.9, "time_budget_s": 600}
    body = {"model_id": digits_goal["model"], "goal": goal, "data": digits_goal["data"]}
    with two_workers.client() as client:
        job_id = client.post("/v1/jobs", json=body).json()["id"]

        def candidates() -> list[dict[str, Any]]:
            page = client.get("/v1/jobs", params={"parent_id": job_id}).json()
            return list(page["items"])

        wait_until(candidates, 120, "the first round's candidates")
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200

        def all_settled() -> bool:
            jobs = [client.get(f"/v1/jobs/{job_id}").json(), *candidates()]
            return all(j["status"] in ("cancelled", "succeeded", "failed") for j in jobs)

        wait_until(all_settled, 120, "the goal job and its candidates to stop")
        parent = client.get(f"/v1/jobs/{job_id}").json()
        statuses = [c["status"] for c in candidates()]
    assert parent["status"] == "cancelled", parent
    assert "cancelled" in statuses, statuses  # the ones not finished by then went with it
