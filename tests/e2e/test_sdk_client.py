"""The shipped SDK (clients/python) drives a whole job through its typed calls, no raw HTTP:
upload, wait for inspection, submit, wait, download, and resubmit the job's own recipe. The
README's SDK example runs here as written (with the hand-written helpers of
modelpress_cli.sdk), so it cannot drift from what works."""

from __future__ import annotations

import hashlib
import io
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnxruntime as ort
import pytest

from scripts.train_digits import digits_split
from tests.fixtures.helpers import digits_upload, unpack_artifact
from tests.fixtures.stack import ROOT, Stack

try:
    import modelpress_client  # noqa: F401  (installed with pip install clients/python)
except ImportError:
    sys.path.insert(0, str(ROOT / "clients" / "python"))

from modelpress_cli.sdk import ModelpressError, filename_from, wait_for_job, wait_until_ready
from modelpress_client import AuthenticatedClient, Client
from modelpress_client.api.jobs import (
    cancel_job,
    create_job,
    download_artifact,
    get_job,
    get_job_report,
)
from modelpress_client.api.models import get_model, upload_model
from modelpress_client.models import (
    BodyUploadModel,
    CompressionReport,
    JobCreate,
    JobRead,
    JobReport,
    JobStatus,
    ModelRead,
    ModelReadStatus,
    Problem,
    QuantizationConfig,
    QuantizationConfigScheme,
    Recipe,
)
from modelpress_client.types import File


@pytest.fixture(scope="module")
def stack(scaleout_stack: Stack) -> Stack:
    return scaleout_stack


pytestmark = pytest.mark.e2e

T = TypeVar("T")
FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


def poll(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            assert done(value), f"timed out waiting for {what}: {value}"
            return value
        time.sleep(0.5)


def typed(value: Any, kind: type[T]) -> T:
    assert isinstance(value, kind), value
    return value


@pytest.fixture(scope="module")
def sdk(stack: Stack) -> Iterator[AuthenticatedClient | Client]:
    client: AuthenticatedClient | Client
    if stack.api_key:
        client = AuthenticatedClient(
            stack.base_url, token=stack.api_key, raise_on_unexpected_status=True
        )
    else:
        client = Client(stack.base_url, raise_on_unexpected_status=True)
    with client:
        yield client


@pytest.fixture(scope="module")
def model(sdk: AuthenticatedClient | Client, tmp_path_factory: pytest.TempPathFactory) -> ModelRead:
    archive = digits_upload(tmp_path_factory.mktemp("digits-mlp"))
    upload = BodyUploadModel(
        file=File(
            payload=io.BytesIO(archive), file_name="digits-mlp.zip", mime_type="application/zip"
        )
    )
    created = typed(upload_model.sync(client=sdk, body=upload), ModelRead)
    assert created.status == ModelReadStatus.PENDING
    return poll(
        lambda: typed(get_model.sync(created.id, client=sdk), ModelRead),
        lambda m: m.status in {ModelReadStatus.READY, ModelReadStatus.REJECTED},
        timeout=300,
        what="the inspection",
    )


def test_upload_job_artifact_through_typed_calls(
    sdk: AuthenticatedClient | Client, model: ModelRead, stack: Stack, tmp_path: Path
) -> None:
    assert model.status == ModelReadStatus.READY, model.rejection_reason
    assert model.inspection.format_ == "architecture"
    inputs = model.inspection.inputs
    assert isinstance(inputs, list) and inputs[0].shape == [None, 64]

    recipe = Recipe(steps=[QuantizationConfig(scheme=QuantizationConfigScheme.INT8_DYNAMIC)])
    submitted = create_job.sync_detailed(
        client=sdk, body=JobCreate(model_id=model.id, recipe=recipe)
    )
    job = typed(submitted.parsed, JobRead)
    assert submitted.headers["location"] == f"/v1/jobs/{job.id}"
    job = poll(
        lambda: typed(get_job.sync(job.id, client=sdk), JobRead),
        lambda j: j.status in FINISHED,
        timeout=600,
        what=f"job {job.id}\n{stack.logs()}",
    )
    assert job.status == JobStatus.SUCCEEDED, job.error

    report = typed(get_job_report.sync(job.id, client=sdk), JobReport).report
    assert isinstance(report, CompressionReport)
    assert report.compression_ratio > 1.5
    assert report.steps[0].technique == "quantization"

    download = download_artifact.sync_detailed(job.id, client=sdk)
    artifact = typed(download.parsed, File).payload.read()
    assert hashlib.sha256(artifact).hexdigest() == job.artifact_sha256
    assert download.headers["x-checksum-sha256"] == job.artifact_sha256

    folder = unpack_artifact(artifact, tmp_path / "artifact")
    onnx_file = next(folder.rglob("*.onnx"))
    split = digits_split(image=False)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: split.x_eval})[0]
    accuracy = float(np.mean(logits.argmax(axis=1) == split.y_eval))
    assert accuracy > 0.8, accuracy

    # The job's recipe, as the SDK read it back, is a valid recipe for a new job.
    again = create_job.sync(client=sdk, body=JobCreate(model_id=model.id, recipe=job.recipe))
    again = typed(again, JobRead)
    assert again.recipe.to_dict() == job.recipe.to_dict()
    cancel_job.sync(again.id, client=sdk)


def test_errors_come_back_as_problems(sdk: AuthenticatedClient | Client) -> None:
    missing = typed(get_job.sync("no-such-job", client=sdk), Problem)
    assert missing.status == 404 and missing.type_ == "/problems/job-not-found"
    refused = create_job.sync(
        client=sdk,
        body=JobCreate(
            model_id="no-such-model",
            recipe=Recipe(steps=[QuantizationConfig(scheme=QuantizationConfigScheme.INT8_DYNAMIC)]),
        ),
    )
    assert typed(refused, Problem).status == 404


def readme_sdk_example() -> str:
    """The python block of the README's "Python SDK" paragraph."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Python SDK**") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the README's SDK paragraph has no python block"
    return found.group(1)


def test_readme_sdk_example_runs_as_written(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the helpers, create_job right after upload_model got a 409 Problem (the model was
    still pending) and the example's next line, job.id, raised."""
    from scripts.conv_digits import export
    from scripts.train_digits import train

    trained, split = train("mlp", epochs=1)
    export(trained, split.x_eval, tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELPRESS_URL", stack.base_url)
    monkeypatch.setenv("MODELPRESS_API_KEY", str(stack.api_key))
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(readme_sdk_example(), "README.md", "exec"), namespace)  # noqa: S102

    job = typed(namespace["job"], JobRead)
    assert job.status == JobStatus.SUCCEEDED, f"{job.error}\n{stack.logs()}"
    [artifact] = (tmp_path / "out").iterdir()
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == job.artifact_sha256
    assert artifact.name.endswith((".tar.xz", ".zip")), artifact.name


def test_helpers_raise_what_the_server_said(sdk: AuthenticatedClient | Client) -> None:
    with pytest.raises(ModelpressError) as missing:
        wait_until_ready(sdk, "no-such-model", timeout=5)
    assert missing.value.problem is not None and missing.value.problem.status == 404
    with pytest.raises(ModelpressError) as stream:
        wait_for_job(sdk, "no-such-job", timeout=5)
    assert stream.value.problem is not None and stream.value.problem.status == 404


@pytest.mark.parametrize(
    ("disposition", "name"),
    [
        ('attachment; filename="modelpress-1.tar.xz"', "modelpress-1.tar.xz"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ("attachment; filename=/tmp/x.zip", "x.zip"),
        ('attachment; filename="..\\..\\evil.zip"', "evil.zip"),
        ("attachment; filename*=UTF-8''%2e%2e%2Fm%C3%BCde.zip", "müde.zip"),
        ('attachment; filename=".."', "modelpress-j"),
        (None, "modelpress-j"),
    ],
)
def test_artifact_file_name_is_a_plain_base_name(disposition: str | None, name: str) -> None:
    assert filename_from(disposition, "modelpress-j") == name
