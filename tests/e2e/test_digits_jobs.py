"""Every engine technique through the job API on small digits models, with datasets.

Each job's artifact is opened with onnxruntime (not with modelpress) and its effect is
checked on the saved weights and on held-out accuracy.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from scripts.train_digits import ARCHITECTURES, digits_split, train_and_save
from tests.fixtures.floors import accuracy_floor
from tests.fixtures.helpers import unpack_artifact, upload_ready, wait_for_dataset, wait_for_job
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.e2e

# Fine-tune the pruned model by distilling from the original upload (Deep Compression's retrain).
HEAL = {"technique": "distillation", "student": "current", "epochs": 8, "lr": 1e-3}


def _zip_folder(folder: Path, names: tuple[str, ...]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            zf.write(folder / name, name)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _predicted(folder: Path, x: np.ndarray) -> np.ndarray:
    """The uploaded model's classes on the held-out rows, from its own weights in torch."""
    import json

    import torch
    from safetensors.torch import load_file

    from compressor.zoo import ArchitectureSpec

    spec = ArchitectureSpec.model_validate(json.loads((folder / "architecture.json").read_text()))
    model = spec.build()
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).argmax(-1).numpy()


@pytest.fixture(scope="module")
def digits(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("digits")
    ids: dict[str, Any] = {}
    with stack.client() as client:
        for family in ("mlp", "cnn"):
            summary = train_and_save(family, tmp / family)
            archive = _zip_folder(tmp / family, ("architecture.json", "model.safetensors"))
            created = upload_ready(client, archive, f"digits-{family}.zip")
            split = digits_split(image=family == "cnn")
            eval_ds = client.post(
                "/v1/datasets",
                files={"file": ("eval.npz", _npz(input=split.x_eval, labels=split.y_eval))},
            )
            train_ds = client.post(
                "/v1/datasets",
                files={"file": ("train.npz", _npz(input=split.x_train, labels=split.y_train))},
            )
            assert eval_ds.status_code == 201, eval_ds.text
            assert wait_for_dataset(client, eval_ds.json()["id"])["status"] == "ready"
            assert train_ds.status_code == 201, train_ds.text
            assert wait_for_dataset(client, train_ds.json()["id"])["status"] == "ready"
            ids[family] = {
                "model": created["id"],
                "eval": eval_ds.json()["id"],
                "train": train_ds.json()["id"],
                "accuracy": summary["eval_accuracy"],
                "predicted": _predicted(tmp / family, split.x_eval),
                "x_eval": split.x_eval,
                "y_eval": split.y_eval,
            }
    yield ids


def run_job(
    stack: Stack,
    model: dict[str, Any],
    steps: list[dict[str, Any]],
    tmp: Path,
    *,
    train: bool = False,
) -> tuple[dict[str, Any], Path]:
    data = {"eval": model["eval"], **({"train": model["train"]} if train else {})}
    body = {"model_id": model["model"], "recipe": {"steps": steps}, "data": data}
    with stack.client() as client:
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        content = client.get(f"/v1/jobs/{job['id']}/artifact").content
    folder = unpack_artifact(content, tmp)
    onnx_files = sorted(folder.rglob("*.onnx"))
    assert len(onnx_files) == 1, list(folder.rglob("*"))
    return report, onnx_files[0]


def ort_predicted(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed_name = session.get_inputs()[0].name
    want = session.get_inputs()[0].type
    x_in = x.astype(np.float16 if "float16" in want else np.float32)
    return np.asarray(session.run(None, {feed_name: x_in})[0]).argmax(-1)


def assert_accuracy_holds(model: dict[str, Any], path: Path, what: str) -> None:
    """The artifact's held-out accuracy in onnxruntime, against the original's minus the
    larger of a point and three paired standard errors (tests/fixtures/floors.py)."""
    predicted = ort_predicted(path, model["x_eval"])
    accuracy = float((predicted == model["y_eval"]).mean())
    floor = accuracy_floor(model["predicted"], predicted, model["y_eval"])
    print(f"digits, {what}: accuracy {model['accuracy']:.4f} -> {accuracy:.4f}, floor {floor:.4f}")
    assert accuracy >= floor, (what, accuracy, floor, model["accuracy"])


def weights(path: Path) -> dict[str, np.ndarray]:
    graph = onnx.load(str(path)).graph
    return {i.name: numpy_helper.to_array(i) for i in graph.initializer if len(i.dims) >= 2}


def linear_weights_out_by_in(path: Path) -> list[np.ndarray]:
    """Each MatMul/Gemm weight as [out, in], whichever way the graph stores it."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    found = []
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm") or node.input[1] not in inits:
            continue
        w = inits[node.input[1]]
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        found.append(w if trans_b else w.T)  # MatMul's B is [in, out]
    return found


def stored_zero_fraction(path: Path) -> float:
    """Share of 8-bit weights that dequantize to exactly zero (uint8 ones sit at their zero
    point, not at 0)."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    zero = total = 0
    for name, w in inits.items():
        if w.ndim < 2 or w.dtype not in (np.int8, np.uint8):
            continue
        point = inits.get(name.removesuffix("_quantized") + "_zero_point", np.zeros((), w.dtype))
        zero += int((w == point).sum())
        total += w.size
    assert total, "no integer weights in the artifact"
    return zero / total


class TestTechniquesThroughTheApi:
    def test_prune_then_int8(self, stack: Stack, digits: dict[str, Any], tmp_path: Path) -> None:
        mlp = digits["mlp"]
        steps = [
            {"technique": "pruning", "sparsity": 0.9, "scope": "global"},
            HEAL,
            {"technique": "quantization", "scheme": "int8_dynamic"},
        ]
        report, path = run_job(stack, mlp, steps, tmp_path, train=True)
        assert report["measurement"]["labelled"] is True
        assert report["steps"][0]["sparsity_reached"] >= 0.89
        assert stored_zero_fraction(path) >= 0.85
        assert_accuracy_holds(mlp, path, "prune 0.9, heal, int8")
        assert report["fidelity"]["accuracy_original"] == pytest.approx(mlp["accuracy"], abs=1e-6)

    def test_structured_pruning_shrinks_cnn(
        self, stack: Stack, digits: dict[str, Any], tmp_path: Path
    ) -> None:
        cnn = digits["cnn"]
        steps = [{"technique": "structured_pruning", "amount": 0.5}, HEAL]
        report, path = run_job(stack, cnn, steps, tmp_path, train=True)
        total = sum(w.size for w in weights(path).values())
        assert total < 0.6 * report["original"]["parameters"]
        assert [s["technique"] for s in report["steps"]] == ["structured_pruning", "distillation"]
        assert_accuracy_holds(cnn, path, "structured pruning 0.5, heal")

    def test_low_rank(self, stack: Stack, digits: dict[str, Any], tmp_path: Path) -> None:
        mlp = digits["mlp"]
        report, path = run_job(stack, mlp, [{"technique": "low_rank", "energy": 0.9}], tmp_path)
        assert sum(w.size for w in weights(path).values()) < report["original"]["parameters"]
        assert_accuracy_holds(mlp, path, "low rank energy 0.9")

    def test_distillation_with_train_dataset(
        self, stack: Stack, digits: dict[str, Any], tmp_path: Path
    ) -> None:
        mlp = digits["mlp"]
        steps = [{"technique": "distillation", "width": 0.5, "epochs": 5}]
        report, path = run_job(stack, mlp, steps, tmp_path, train=True)
        assert report["measurement"]["training_data"]
        assert sum(w.size for w in weights(path).values()) < 0.6 * report["original"]["parameters"]
        assert_accuracy_holds(mlp, path, "distillation, half width")

    def test_distillation_into_an_uploaded_student(
        self, stack: Stack, digits: dict[str, Any], tmp_path: Path
    ) -> None:
        import json

        import torch
        from safetensors.torch import save_file

        from compressor.zoo import ArchitectureSpec

        spec = {"family": "mlp", "args": {"in_features": 64, "hidden": [48], "num_classes": 10}}
        torch.manual_seed(0)
        untrained = ArchitectureSpec.model_validate(spec).build()
        folder = tmp_path / "student"
        folder.mkdir()
        (folder / "architecture.json").write_text(json.dumps(spec))
        save_file(dict(untrained.state_dict()), str(folder / "model.safetensors"))
        with stack.client() as client:
            student = upload_ready(
                client, _zip_folder(folder, ("architecture.json", "model.safetensors"))
            )
        mlp = digits["mlp"]
        step = {
            "technique": "distillation",
            "student": "uploaded",
            "student_model_id": student["id"],
            "epochs": 30,
            "lr": 3e-3,
        }
        report, path = run_job(stack, mlp, [step], tmp_path / "job", train=True)
        shapes = sorted(w.shape for w in weights(path).values())
        assert shapes == sorted([(64, 48), (48, 10)]), shapes
        assert report["steps"][0]["student_shape"]["kind"] == "uploaded"
        # From random weights to close to the teacher: learned, not copied.
        assert_accuracy_holds(mlp, path, "distillation into an uploaded student")

    def test_nm_sparsity_and_fp16(
        self, stack: Stack, digits: dict[str, Any], tmp_path: Path
    ) -> None:
        mlp = digits["mlp"]
        args = ARCHITECTURES["mlp"]["args"]
        inputs = [args["in_features"], *args["hidden"]]
        eligible = [n for n in inputs if n % 4 == 0]  # nm_sparsity needs in_features % m == 0
        report, path = run_job(stack, mlp, [{"technique": "nm_sparsity"}], tmp_path / "nm")
        matrices = linear_weights_out_by_in(path)
        assert sorted(w.shape[1] for w in matrices) == sorted(eligible)
        for w in matrices:
            # The engine's pattern: of every 4 consecutive inputs of an output row, 2 stay.
            kept = np.count_nonzero(w.reshape(w.shape[0], -1, 4), axis=-1)
            assert kept.max() <= 2, w.shape
        assert report["steps"][0]["layers_left_dense"] == {}

        report, path = run_job(
            stack, mlp, [{"technique": "quantization", "scheme": "fp16"}], tmp_path / "fp16"
        )
        # Only ops listed in FP32_OPS may keep fp32 weights; this MLP has none of them.
        assert report["steps"][0]["ops_kept_in_float32"] == {}
        floats = {
            i.name: numpy_helper.to_array(i).dtype
            for i in onnx.load(str(path)).graph.initializer
            if numpy_helper.to_array(i).dtype.kind == "f"
        }
        assert len(floats) == 2 * len(inputs)  # a weight and a bias per Linear
        assert set(floats.values()) == {np.dtype(np.float16)}, floats
        assert_accuracy_holds(mlp, path, "fp16")


def _scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with stack.client() as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


class TestMetrics:
    def test_metrics_count_the_jobs_this_stack_ran(
        self, stack: Stack, digits: dict[str, Any], tmp_path: Path
    ) -> None:
        before = _scrape(stack)
        key = (
            "modelpress_jobs_finished_total",
            (("status", "succeeded"), ("technique", "quantization")),
        )
        run_job(stack, digits["mlp"], [{"technique": "quantization", "scheme": "fp16"}], tmp_path)
        after = _scrape(stack)
        assert after[key] == before.get(key, 0) + 1
        with stack.client() as client:
            jobs = client.get("/v1/jobs", params={"limit": 200}).json()["items"]
        finished = [job for job in jobs if job["status"] in ("succeeded", "failed", "cancelled")]
        counted = sum(
            value
            for (name, labels), value in after.items()
            if name == "modelpress_job_duration_seconds_count"
        )
        assert counted == len(finished)
        assert after[("modelpress_workers_live", (("pool", "cpu"),))] >= 1
        requests = ("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "200")
        assert after[("modelpress_http_requests_total", requests)] >= 1

    def test_each_phase_of_a_job_is_timed_reported_and_counted(
        self, stack: Stack, digits: dict[str, Any]
    ) -> None:
        model = digits["mlp"]
        steps = [{"technique": "quantization", "scheme": "int8_dynamic"}]
        body = {
            "model_id": model["model"],
            "recipe": {"steps": steps},
            "data": {"eval": model["eval"]},
        }
        before = _scrape(stack)
        with stack.client() as client:
            submitted = client.post("/v1/jobs", json=body)
            assert submitted.status_code == 202, submitted.text
            job = wait_for_job(client, submitted.json()["id"], stack=stack)
            assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
            timed = client.get(f"/v1/jobs/{job['id']}/phases").json()
            report = client.get(f"/v1/jobs/{job['id']}/report").json()
        names = [p["phase"] for p in timed["phases"]]
        assert names[:3] == ["queue wait", "process start", "fetching model"], names
        for phase in ("loading", "step 1/1: quantization", "measuring compressed", "packing"):
            assert phase in names, names
        assert names[-1] == "uploading artifact", names
        assert all(p["seconds"] >= 0 for p in timed["phases"])
        # the phases tile the job's life: created to finished, nothing lost or counted twice
        created, finished = (datetime.fromisoformat(job[k]) for k in ("created_at", "finished_at"))
        assert timed["total_seconds"] == pytest.approx(
            (finished - created).total_seconds(), abs=0.1
        )
        assert report["phases"] == timed["phases"]

        after = _scrape(stack)
        for label in ("queue wait", "process start", "step: quantization", "uploading artifact"):
            key = ("modelpress_job_phase_seconds_count", (("phase", label),))
            assert after[key] == before.get(key, 0) + 1, label
