"""`modelpress-cli compress MODEL --recipe recipe.yaml`: upload, submit, follow with a progress
bar, download the artifact and print the report. Exits non-zero with the server's problem detail
when anything is refused or the job does not succeed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from modelpress_client import AuthenticatedClient, Client
from modelpress_client.api.datasets import upload_dataset
from modelpress_client.api.jobs import cancel_job, get_job, get_job_report
from modelpress_client.api.models import delete_model, upload_model
from modelpress_client.models import BodyUploadDataset, BodyUploadModel, JobRead, Problem
from modelpress_client.types import File
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from modelpress_cli.report import report_table
from modelpress_cli.sdk import ModelpressError, download_artifact, job_events, wait_until_ready

console = Console(stderr=True)


# No model has this id: a submission naming it is refused with 404 only after the body, the
# registration and the quota passed every check that does not need the model.
PROBE_MODEL_ID = "00000000-0000-0000-0000-000000000000"


class Refused(Exception):
    """The server said no; the message is its problem detail."""


def _ok(result: Any) -> Any:
    if isinstance(result, Problem):
        raise Refused(f"{result.title} ({result.status}): {result.detail}")
    if result is None:
        raise Refused("the server gave an unexpected answer")
    return result


def _client(args: argparse.Namespace) -> Client | AuthenticatedClient:
    if args.api_key:
        return AuthenticatedClient(base_url=args.url, token=args.api_key, timeout=600)
    return Client(base_url=args.url, timeout=600)


def _upload_model(client: Any, path: Path) -> str:
    with path.open("rb") as handle:
        body = BodyUploadModel(file=File(payload=handle, file_name=path.name))
        model = _ok(upload_model.sync(client=client, body=body))
    console.print(f"uploaded {path.name}: model {model.id}, inspecting…")
    return str(model.id)


def _upload_dataset(client: Any, path: Path) -> str:
    with path.open("rb") as handle:
        body = BodyUploadDataset(file=File(payload=handle, file_name=path.name))
        dataset = _ok(upload_dataset.sync(client=client, body=body))
    wait_until_ready(client, str(dataset.id), timeout=3600, kind="dataset")
    return str(dataset.id)


def _read_spec(path: Path) -> dict[str, Any]:
    spec = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    if not isinstance(spec, dict):
        raise Refused(
            f"{path} must hold a mapping: a recipe, {{recipe, target}} or {{goal, target}}"
        )
    return spec if "recipe" in spec or "goal" in spec else {"recipe": spec}


def _post_job(client: Any, body: dict[str, Any]) -> JobRead | Problem:
    """POST /v1/jobs with the user's body as written. The generated JobCreate would drop the
    fields it does not know (a typo such as "bits") instead of letting the server refuse them."""
    response = client.get_httpx_client().post("/v1/jobs", json=body)
    if response.status_code == 202:
        return JobRead.from_dict(response.json())
    try:
        return Problem.from_dict(response.json())
    except (ValueError, KeyError, TypeError):
        raise Refused(f"HTTP {response.status_code}: {response.text[:200]}") from None


def _validate(client: Any, spec: dict[str, Any]) -> None:
    """Refuse a bad recipe before anything is uploaded. The API has no validation route, and the
    generated models check little (unknown techniques and fields pass), so the server's own
    validator judges it: a submission naming no model is refused with 422 when the recipe is
    wrong, 404 when only the model is missing. It creates nothing."""
    answer = _post_job(client, {**spec, "model_id": PROBE_MODEL_ID})
    if isinstance(answer, Problem) and answer.status == 404:
        return
    if isinstance(answer, JobRead):  # cannot happen unless a model has that id: undo it
        cancel_job.sync(str(answer.id), client=client)
        raise Refused(f"a model with the probe id {PROBE_MODEL_ID} exists on this server")
    _ok(answer)


def _follow(client: Any, job_id: str) -> str:
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())  # fmt: skip
    status = "queued"
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("queued", total=1.0)
        for kind, data in job_events(client, job_id):
            if kind == "state":
                status = str(data["status"])
                progress.update(
                    task, completed=float(data["progress"]), description=str(data["phase"])
                )
            elif kind == "log":
                progress.console.print(f"  {data['message']}")
            elif kind == "end":
                status = str(data.get("status", status))
    return status


def _submit(client: Any, args: argparse.Namespace, spec: dict[str, Any]) -> JobRead:
    """Upload and submit; a model this command uploaded is deleted again if it is rejected or
    the job is refused, so a failed command leaves nothing behind."""
    model_id = _upload_model(client, args.model)
    try:
        wait_until_ready(client, model_id, timeout=3600)
        data = {role: _upload_dataset(client, path) for role, path in (("calibration", args.calibration), ("eval", args.eval), ("train", args.train)) if path}  # fmt: skip
        body = {**spec, "model_id": model_id, **({"data": data} if data else {})}
        return _ok(_post_job(client, body))  # type: ignore[no-any-return]
    except (Refused, ModelpressError):
        delete_model.sync_detailed(model_id, client=client)
        raise


def compress(args: argparse.Namespace) -> int:
    client = _client(args)
    spec = _read_spec(args.recipe)
    _validate(client, spec)
    job = _submit(client, args, spec)
    console.print(f"job {job.id} submitted")
    status = _follow(client, str(job.id))
    job = _ok(get_job.sync(str(job.id), client=client))
    if status != "succeeded":
        raise Refused(f"job {job.id} {job.status}: {job.error or 'no detail'}")
    target = download_artifact(client, str(job.id), args.out)
    report = _ok(get_job_report.sync(str(job.id), client=client))
    Console().print(report_table(report.report.to_dict()))
    Console().print(f"artifact: {target}")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelpress-cli", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("MODELPRESS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("MODELPRESS_API_KEY"))
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("compress", help="upload a model, run a recipe, download the result")
    run.add_argument("model", type=Path, help="model file: .onnx, .zip, .tar.gz, …")
    run.add_argument(
        "--recipe",
        type=Path,
        required=True,
        help="recipe (or {recipe, target}, or {goal, target}) as JSON or YAML",
    )
    for role in ("calibration", "eval", "train"):
        run.add_argument(f"--{role}", type=Path, help=f"{role} dataset file")
    run.add_argument("--out", type=Path, default=Path("."), help="where the artifact goes")
    args = parser.parse_args(argv)
    try:
        sys.exit(compress(args))
    except (Refused, ModelpressError, TimeoutError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
    except OSError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
