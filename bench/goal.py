"""Goal-driven jobs through the service: a budget in, the search's choice judged on data it never
saw, beside the fixed recipe that docs/benchmarks.md reaches 41x with on its own model.

    .venv/bin/python -m bench.run --only goal-digits
    .venv/bin/python -m bench.run --only goal-scaling

Each run starts its own deployment the way the tests do (tests/fixtures/stack.py): PostgreSQL
and Redis when MODELPRESS_TEST_DATABASE_URL and MODELPRESS_TEST_BROKER_URL are set, else the
embedded SQLite + filesystem broker. The user's side of the digits split is divided into train
and eval (the search's budget check); the held-out images only judge.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import onnxruntime as ort
from sklearn.model_selection import train_test_split

from bench.common import Row, search_phases
from bench.digits import mlp_steps
from bench.page import load_average
from compressor.artifacts import pack_tar_xz
from scripts.train_digits import WEIGHTS_FILE, digits_split, train_and_save
from tests.fixtures.helpers import npz_bytes, unpack_artifact, upload_dataset_ready, upload_ready
from tests.fixtures.stack import Stack, running_stack

SEEDS = (1, 2)  # not the seed (0) of the model the fixed schedule was written on
RATIO, POINTS, BUDGET = 40.0, 0.5, 0.005
TIME_BUDGET_S = 900
GOAL = (
    f"(size, max_accuracy_drop {BUDGET}) >= {RATIO:.0f}x smaller, like for like (the "
    "artifact's model and the fp32 upload each packed alone the same way), with "
    f"<= {POINTS} points lost on held-out test data, on each of two differently seeded models"
)
SCALING_WALL_GOAL_S = 40  # issue 24, on two workers
# Quoted, not measured here: what the page said when issue 24 was filed.
SCALING_BEFORE = "85-98 s on two workers (the page when issue 24 was filed)"
SCALING_GOAL = (
    "report the search's wall time with one worker and with two, same goal; "
    f"<= {SCALING_WALL_GOAL_S} s on two workers (issue 24)"
)
SCALING_ROUNDS = 3


@dataclass(frozen=True)
class Prepared:
    model_id: str
    data: dict[str, str]
    safetensors_bytes: int
    packed_bytes: int  # the fp32 upload as a .tar.xz made by the engine's own packer
    test_accuracy: float
    x_test: np.ndarray
    y_test: np.ndarray


@contextmanager
def _stack(work: Path, workers: int, *, redis_db_offset: int = 0) -> Iterator[Stack]:
    """``redis_db_offset``: deployments up at the same time need Redis databases of their own,
    or one's workers take the other's messages (and find no such job in their database)."""
    broker = os.environ.get("MODELPRESS_TEST_BROKER_URL")
    kind = "scaleout" if os.environ.get("MODELPRESS_TEST_DATABASE_URL") and broker else "embedded"
    own_broker = None
    if kind == "scaleout" and broker and redis_db_offset:
        url = urlsplit(broker)
        db = (int(url.path.strip("/") or 0) + redis_db_offset) % 16
        own_broker = urlunsplit(url._replace(path=f"/{db}"))
    with running_stack(kind, work, broker_url=own_broker) as stack:
        for n in range(2, workers + 1):
            stack.start_worker(f"worker{n}")
        yield stack


def _prepare(stack: Stack, work: Path, seed: int) -> Prepared:
    split = digits_split(image=False)
    x_tr, x_ev, y_tr, y_ev = train_test_split(
        split.x_train, split.y_train, test_size=0.25, random_state=seed, stratify=split.y_train
    )
    # The user trained on their train part: eval rows are as new to the original as to the
    # candidates, so the budget check compares like with like.
    summary = train_and_save("mlp", work / f"mlp-seed{seed}", seed=seed, rows=(x_tr, y_tr))
    folder = Path(summary["out"])
    buf = io.BytesIO()
    packed = work / f"mlp-seed{seed}-packed"
    packed.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("architecture.json", WEIGHTS_FILE):
            zf.write(folder / name, name)
            shutil.copyfile(folder / name, packed / name)
    with stack.client() as client:
        model = upload_ready(client, buf.getvalue(), "digits-mlp.zip")
        train = upload_dataset_ready(client, npz_bytes(input=x_tr, labels=y_tr), "train.npz")
        eval_ = upload_dataset_ready(client, npz_bytes(input=x_ev, labels=y_ev), "eval.npz")
    return Prepared(
        model_id=model["id"],
        data={"train": train["id"], "eval": eval_["id"]},
        safetensors_bytes=(folder / WEIGHTS_FILE).stat().st_size,
        packed_bytes=pack_tar_xz(packed, packed.with_suffix(".tar.xz")).bytes,
        test_accuracy=float(summary["eval_accuracy"]),
        x_test=split.x_eval,
        y_test=split.y_eval,
    )


def _run(
    stack: Stack, body: dict[str, Any], work: Path, p: Prepared
) -> tuple[dict[str, Any], float, float]:
    """The job's report, its wall time, and the downloaded artifact's held-out accuracy; a
    search's report gains where its candidates' time went (``phases_summed``)."""
    with stack.client() as client:
        started = time.monotonic()
        job_id = client.post("/v1/jobs", json=body).raise_for_status().json()["id"]
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in (
            "succeeded", "failed", "cancelled",
        ):  # fmt: skip
            time.sleep(1)
        wall = time.monotonic() - started
        if job["status"] != "succeeded":
            raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
        report = client.get(f"/v1/jobs/{job_id}/report").json()["report"]
        content = client.get(f"/v1/jobs/{job_id}/artifact").content
        if "search" in report:
            report["phases_summed"] = search_phases(client, report)
    report["downloaded_bytes"] = len(content)
    folder = unpack_artifact(content, work / f"unpacked-{time.monotonic_ns()}")
    (model,) = folder.rglob("*.onnx")
    # Like for like with the fp32 side: the model alone, packed by the engine's packer.
    alone = work / f"model-alone-{time.monotonic_ns()}"
    alone.mkdir(parents=True)
    shutil.copyfile(model, alone / "model.onnx")
    report["model_packed_bytes"] = pack_tar_xz(alone, alone.with_suffix(".tar.xz")).bytes
    return report, wall, _accuracy(model, p)


def _accuracy(model: Path, p: Prepared) -> float:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = p.x_test.astype(np.float32)
    logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    return float((logits.argmax(-1) == p.y_test).mean())


def _fixed_recipe() -> dict[str, Any]:
    return {"steps": mlp_steps()}


def _verdict(p: Prepared, report: dict[str, Any], accuracy: float) -> dict[str, float]:
    """Ratios: like for like (each model packed alone), the whole download (report.json and
    recipe.json included) against packed fp32, and the download against the files as stored."""
    size = report["downloaded_bytes"]
    return {
        "packed": p.packed_bytes / report["model_packed_bytes"],
        "download": p.packed_bytes / size,
        "onnx": report["original"]["model_bytes"] / size,
        "st": p.safetensors_bytes / size,
        "lost": (p.test_accuracy - accuracy) * 100,
    }


def judge(v: dict[str, float]) -> tuple[bool, str]:
    """The goal on the like-for-like ratio; a .tar.xz against raw files flatters xz."""
    met = v["packed"] >= RATIO and v["lost"] <= POINTS
    reached = (
        f"{v['packed']:.1f}x like for like (model vs the fp32 upload, each packed alone the same "
        f"way; the whole download {v.get('download', v['packed']):.1f}x; "
        f"{v['onnx']:.1f}x / {v['st']:.1f}x vs stripped fp32 ONNX / safetensors stored "
        f"uncompressed), {v['lost']:+.2f} points lost on held-out"
    )
    if not met:
        short = [
            n for n, bad in (("size", v["packed"] < RATIO), ("accuracy", v["lost"] > POINTS)) if bad
        ]
        reached += f" (short on: {', '.join(short)})"
    return met, reached


def goal_digits(work: Path) -> list[Row]:
    rows = []
    with _stack(work / "stack", workers=2) as stack:
        for seed in SEEDS:
            p = _prepare(stack, work, seed)
            goal = {"objective": "size", "max_accuracy_drop": BUDGET}
            body = {
                "model_id": p.model_id,
                "data": p.data,
                "goal": {**goal, "time_budget_s": TIME_BUDGET_S},
            }
            report, wall, accuracy = _run(stack, body, work, p)
            fixed, _, fixed_acc = _run(
                stack, {"model_id": p.model_id, "data": p.data, "recipe": _fixed_recipe()}, work, p
            )
            v = _verdict(p, report, accuracy)
            f = _verdict(p, fixed, fixed_acc)
            search = report["search"]
            chosen = next(c for c in search["candidates"] if c["job_id"] == search["chosen_job_id"])
            met, reached = judge(v)
            rows.append(
                Row(
                    name=f"digits MLP seed {seed}: goal size, accuracy drop <= {BUDGET}",
                    figures={
                        "held-out accuracy (original)": f"{p.test_accuracy:.2%}",
                        "fp32 upload packed the same way (.tar.xz)": f"{p.packed_bytes:,} bytes",
                        "goal job": f"{report['downloaded_bytes']:,} bytes downloaded, model packed alone {report['model_packed_bytes']:,} bytes ({v['packed']:.1f}x like for like, {v['download']:.1f}x the whole download; {v['onnx']:.1f}x vs stripped fp32 ONNX, {v['st']:.1f}x vs safetensors, stored uncompressed), held-out accuracy {accuracy:.2%} ({-v['lost']:+.2f} points)",
                        "chosen": f"{chosen['purpose']}; eval drop {chosen['accuracy_drop']:.4f} + margin {chosen['budget_margin']:.4f}",
                        "search": f"{len(search['candidates'])} candidates in {search['rounds']} rounds, {wall:.0f} s on {len(search['workers'])} workers, stopped by {search['stopped_by']}",
                        "fixed schedule of the digits MLP section, same model": f"{fixed['downloaded_bytes']:,} bytes downloaded ({f['packed']:.1f}x like for like, {f['download']:.1f}x the whole download; {f['onnx']:.1f}x / {f['st']:.1f}x stored uncompressed), held-out accuracy {fixed_acc:.2%} ({-f['lost']:+.2f} points)",
                    },
                    goal=GOAL,
                    met=met,
                    reached=reached,
                    notes=f"model trained with seed {seed} on the train part only; the search saw that train part (1077 images) and an eval part (360) cut from the 1437-image training split (seed {seed}); the 360 held-out images only judge the downloaded artifact in onnxruntime after plain unpacking. {search['method']}",
                )
            )
    return rows


def goal_scaling(work: Path) -> list[Row]:
    """One and two workers alternate, best of three each, so a neighbour's burst on the shared
    machine does not land on one side only; the load average around each run is reported.
    Both deployments start once, side by side, each with the model uploaded once: the idle
    one's workers only wait on the broker while the other searches."""
    seed = SEEDS[0]
    runs: dict[int, list[tuple[float, int, int, float, float]]] = {1: [], 2: []}
    phases: dict[float, str] = {}  # a two-worker run's wall time: where its candidates' time went
    goal = {"objective": "size", "max_accuracy_drop": BUDGET, "time_budget_s": TIME_BUDGET_S}
    with ExitStack() as up:
        stacks = {
            w: up.enter_context(_stack(work / f"stack-{w}", workers=w, redis_db_offset=w - 1))
            for w in (1, 2)
        }
        prepared = {w: _prepare(stacks[w], work / f"w{w}", seed) for w in stacks}
        for _round in range(SCALING_ROUNDS):
            for workers, stack in stacks.items():
                p = prepared[workers]
                load0 = load_average()
                body = {"model_id": p.model_id, "data": p.data, "goal": goal}
                report, wall, _ = _run(stack, body, work, p)
                search = report["search"]
                if workers == 2:
                    phases[wall] = report["phases_summed"]
                runs[workers].append(
                    (wall, len(search["candidates"]), search["rounds"], load0, load_average())
                )
    best = {n: min(r) for n, r in runs.items()}
    cores = os.cpu_count() or 1
    figures = {
        f"{n} worker(s), best of {len(r)}": f"{best[n][0]:.0f} s, {best[n][1]} candidates in "
        f"{best[n][2]} rounds; every run: " + ", ".join(f"{w:.0f} s" for w, *_ in r)
        for n, r in runs.items()
    }
    loads = [x for r in runs.values() for _, _, _, a, b in r for x in (a, b)]
    figures["1-minute load average around the runs"] = f"{min(loads)} to {max(loads)}"
    figures["where the best two-worker run's candidate time went (their /phases, summed)"] = phases[
        best[2][0]
    ]
    figures["before (quoted)"] = SCALING_BEFORE
    return [
        Row(
            name="goal search wall time, one worker vs two (digits MLP, size goal)",
            figures=figures,
            goal=SCALING_GOAL,
            met=best[2][0] <= SCALING_WALL_GOAL_S,
            reached=f"{best[2][0]:.0f} s on two workers, {best[1][0] / best[2][0]:.2f}x faster "
            f"than one on {cores} cores (best of {SCALING_ROUNDS} each, load average "
            f"{min(loads)} to {max(loads)})",
            notes="each worker runs one job at a time with one thread; the goal job's own process "
            f"runs candidates too, so one worker still searches; {SCALING_ROUNDS} rounds, each a "
            "one-worker search then a two-worker one, on two deployments started once side by "
            "side (the idle one waits on its broker), best of each kept",
        )
    ]
