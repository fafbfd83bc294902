"""OpenAPI links: which response carries the id that another operation takes.

Clients, and stateful testers such as schemathesis, follow them from a created resource to the
operations on it. Targets are JSON pointers (``operationRef``), so renaming an operation id does
not break a link.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

MODEL = "/v1/models/{model_id}"
DATASET = "/v1/datasets/{dataset_id}"
JOB = "/v1/jobs/{job_id}"


def _ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _to(path: str, method: str, **parameters: str) -> dict[str, Any]:
    return {"operationRef": _ref(path, method), "parameters": parameters}


def _on_model(id_at: str) -> dict[str, Any]:
    return {
        "GetModel": _to(MODEL, "get", model_id=id_at),
        "DeleteModel": _to(MODEL, "delete", model_id=id_at),
        "ListModelResults": _to(f"{MODEL}/results", "get", model_id=id_at),
        "SubmitJob": {"operationRef": _ref("/v1/jobs", "post"), "requestBody": {"model_id": id_at}},
    }


def _on_job(id_at: str) -> dict[str, Any]:
    return {
        "GetJob": _to(JOB, "get", job_id=id_at),
        "CancelJob": _to(f"{JOB}/cancel", "post", job_id=id_at),
        "GetJobReport": _to(f"{JOB}/report", "get", job_id=id_at),
        "DownloadArtifact": _to(f"{JOB}/artifact", "get", job_id=id_at),
        "StreamJobEvents": _to(f"{JOB}/events", "get", job_id=id_at),
        "GetJobLogs": _to(f"{JOB}/logs", "get", job_id=id_at),
        "GetJobPlot": _to(f"{JOB}/plot", "get", job_id=id_at),
        "ListCandidateJobs": _to("/v1/jobs", "get", parent_id=id_at),
    }


def _on_dataset(id_at: str) -> dict[str, Any]:
    return {
        "GetDataset": _to(DATASET, "get", dataset_id=id_at),
        "DeleteDataset": _to(DATASET, "delete", dataset_id=id_at),
    }


# (path, method, status) -> links from that response
LINKS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("/v1/models", "post", "201"): _on_model("$response.body#/id"),
    ("/v1/models", "get", "200"): _on_model("$response.body#/items/0/id"),
    ("/v1/datasets", "post", "201"): _on_dataset("$response.body#/id"),
    ("/v1/datasets", "get", "200"): _on_dataset("$response.body#/items/0/id"),
    ("/v1/jobs", "post", "202"): _on_job("$response.body#/id"),
    ("/v1/jobs", "get", "200"): _on_job("$response.body#/items/0/id"),
    (f"{JOB}/cancel", "post", "200"): _on_job("$response.body#/id"),
}


def add_links(spec: dict[str, Any]) -> dict[str, Any]:
    paths = spec.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            raise RuntimeError(f"no {status} response on {method.upper()} {path} to link from")
        response["links"] = links
    return spec


def install_links(app: FastAPI) -> None:
    """Wrap whatever builds the spec, so the links are added once, to the cached document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = add_links(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
