"""`modelpress-cli compress MODEL --recipe recipe.yaml`: upload, submit, follow with a progress
bar, download the artifact and print the report. Exits non-zero with the server's problem detail
when anything is refused or the job does not succeed."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from modelpress_client import AuthenticatedClient, Client
from modelpress_client.api.datasets import get_dataset, upload_dataset
from modelpress_client.api.jobs import create_job, download_artifact, get_job, get_job_report
from modelpress_client.api.models import get_model, upload_model
from modelpress_client.models import BodyUploadDataset, BodyUploadModel, JobCreate, Problem
from modelpress_client.types import File
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from modelpress_cli.events import follow
from modelpress_cli.report import report_table

console = Console(stderr=True)


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


def _wait_ready(fetch: Any, what: str) -> Any:
    while True:
        row = _ok(fetch())
        status = str(row.status)
        if status == "ready":
            return row
        if status == "rejected":
            raise Refused(f"the {what} was rejected: {row.rejection_reason}")
        time.sleep(0.5)


def _upload_model(client: Any, path: Path) -> str:
    with path.open("rb") as handle:
        body = BodyUploadModel(file=File(payload=handle, file_name=path.name))
        model = _ok(upload_model.sync(client=client, body=body))
    console.print(f"uploaded {path.name}: model {model.id}, inspecting…")
    _wait_ready(lambda: get_model.sync(model.id, client=client), "model")
    return str(model.id)


def _upload_dataset(client: Any, path: Path) -> str:
    with path.open("rb") as handle:
        body = BodyUploadDataset(file=File(payload=handle, file_name=path.name))
        dataset = _ok(upload_dataset.sync(client=client, body=body))
    _wait_ready(lambda: get_dataset.sync(dataset.id, client=client), "dataset")
    return str(dataset.id)


def _read_spec(path: Path) -> dict[str, Any]:
    spec = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    if not isinstance(spec, dict):
        raise Refused(
            f"{path} must hold a mapping: a recipe, {{recipe, target}} or {{goal, target}}"
        )
    return spec if "recipe" in spec or "goal" in spec else {"recipe": spec}


def _follow(client: Any, job_id: str) -> str:
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())  # fmt: skip
    status = "queued"
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("queued", total=1.0)
        for kind, data in follow(client.get_httpx_client(), job_id):
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


def compress(args: argparse.Namespace) -> int:
    client = _client(args)
    spec = _read_spec(args.recipe)
    model_id = _upload_model(client, args.model)
    data = {role: _upload_dataset(client, path) for role, path in (("calibration", args.calibration), ("eval", args.eval), ("train", args.train)) if path}  # fmt: skip
    body = JobCreate.from_dict({"model_id": model_id, **spec, **({"data": data} if data else {})})
    job = _ok(create_job.sync(client=client, body=body))
    console.print(f"job {job.id} submitted")
    status = _follow(client, str(job.id))
    job = _ok(get_job.sync(str(job.id), client=client))
    if status != "succeeded":
        raise Refused(f"job {job.id} {job.status}: {job.error or 'no detail'}")
    artifact = download_artifact.sync_detailed(str(job.id), client=client)
    if artifact.status_code != 200:
        raise Refused(f"the artifact could not be downloaded ({artifact.status_code})")
    name = artifact.headers.get("content-disposition", "").partition('filename="')[2].rstrip('"')
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / (name or f"modelpress-{job.id}")
    target.write_bytes(artifact.content)
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
    except Refused as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
    except OSError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
