"""Goal-driven jobs through the API: a budget in, candidates as child jobs on two workers, the
chosen artifact judged on digits the search never saw.

The user's side of the digits split is divided into train and eval (the search's budget check);
the held-out test images stay with the test, which scores the downloaded artifact on them in
onnxruntime after plain unpacking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from compressor.measure.fidelity import paired_standard_error
from tests.fixtures.goal import BUDGET
from tests.fixtures.helpers import assert_problem, unpack_artifact, wait_for_job, wait_until
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.e2e


def _ort_predictions(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    return np.asarray(logits.argmax(-1))


def test_size_goal_fans_out_on_two_workers_and_holds_on_unseen_data(
    goal_stack: Stack, digits_goal: dict[str, Any], size_goal_job: dict[str, Any], tmp_path: Path
) -> None:
    submitted, job, report = (size_goal_job[k] for k in ("submitted", "job", "report"))
    assert submitted["recipe"] is None and submitted["goal"]["objective"] == "size"
    children, content = size_goal_job["children"], size_goal_job["artifact"]
    with goal_stack.client() as client:
        plot = client.get(f"/v1/jobs/{job['id']}/plot")
        phases = [p["phase"] for p in client.get(f"/v1/jobs/{job['id']}/phases").json()["phases"]]
        baselines = [
            client.get(f"/v1/jobs/{c['id']}/report").json()["report"]["original"]["baseline"]
            for c in children
            if c["status"] == "succeeded"
        ]
    # The goal job measured the original once, before the fan-out; every candidate reused it.
    assert "measuring original" in phases, phases
    assert baselines and all(b["reused"] for b in baselines), baselines
    assert len({b["key"] for b in baselines}) == 1

    search = report["search"]
    candidates = search["candidates"]
    # Every candidate is an ordinary job under the goal job, and both workers ran some.
    assert {c["id"] for c in children} == {c["job_id"] for c in candidates}
    assert all(c["parent_id"] == job["id"] for c in children)
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
    predicted = _ort_predictions(onnx_file, digits_goal["x_test"])
    accuracy = float((predicted == digits_goal["y_test"]).mean())
    drop = digits_goal["test_accuracy"] - accuracy
    original = digits_goal["test_predictions"]
    assert float((original == digits_goal["y_test"]).mean()) == digits_goal["test_accuracy"]
    # The search's own margin (compressor/search/outcome.py), for these rows' sampling error.
    allowance = paired_standard_error(float((original == predicted).mean()), len(original))
    print(
        f"goal job: {len(candidates)} candidates in {search['rounds']} rounds, "
        f"{search['wall_s']} s on {search['workers']}; chosen {chosen['purpose']}: "
        f"{chosen['bytes']} bytes ({report['original']['model_bytes'] / chosen['bytes']:.1f}x), "
        f"held-out accuracy {digits_goal['test_accuracy']:.4f} -> {accuracy:.4f} "
        f"(one standard error {allowance:.4f})"
    )
    # The search promises the budget on data.eval plus one standard error; 360 unseen rows
    # carry a sampling error of their own (one row is 0.28 points), so the claim checked here is
    # the same one: within the budget plus one standard error of this paired difference.
    assert drop <= BUDGET + allowance, (digits_goal["test_accuracy"], accuracy, allowance, chosen)

    assert plot.status_code == 200, plot.text
    assert plot.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in plot.content


def test_goal_and_recipe_together_or_without_eval_data_are_422(
    goal_stack: Stack, digits_goal: dict[str, Any]
) -> None:
    goal = {"objective": "size", "max_accuracy_drop": 0.01}
    recipe = {"steps": [{"technique": "quantization"}]}
    with goal_stack.client() as client:
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
    goal_stack: Stack, digits_goal: dict[str, Any]
) -> None:
    goal = {"objective": "size", "min_top1_agreement": 0.9, "time_budget_s": 600}
    body = {"model_id": digits_goal["model"], "goal": goal, "data": digits_goal["data"]}
    with goal_stack.client() as client:
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


def test_a_latency_goal_re_times_its_fastest_candidates_before_choosing(
    goal_stack: Stack, digits_goal: dict[str, Any]
) -> None:
    """The candidates were timed by two workers side by side; the ones that decide are timed
    again by the goal job, in turns, and those figures choose (issue 24)."""
    goal = {
        "objective": "latency",
        "min_top1_agreement": 0.9,
        "techniques": ["quantization"],
        "time_budget_s": 120,
    }
    body = {"model_id": digits_goal["model"], "goal": goal, "data": digits_goal["data"]}
    with goal_stack.client() as client:
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        job = wait_for_job(client, job_id, stack=goal_stack, timeout=600)
        assert job["status"] == "succeeded", f"{job}\n{goal_stack.logs()}"
        search = client.get(f"/v1/jobs/{job_id}/report").json()["report"]["search"]
        phases = [p["phase"] for p in client.get(f"/v1/jobs/{job_id}/phases").json()["phases"]]
    retimed = [c for c in search["candidates"] if c["retimed_p50_ms"] is not None]
    assert len(retimed) >= 2 and all(c["meets_budget"] for c in retimed), search["candidates"]
    assert search["retimed"] and "re-timing candidates" in phases, (search, phases)
    chosen = next(c for c in retimed if c["job_id"] == search["chosen_job_id"])
    assert chosen["retimed_p50_ms"] == min(c["retimed_p50_ms"] for c in retimed)
    assert "re-timed" in search["why"], search["why"]
