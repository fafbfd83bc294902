"""The OpenAPI document is one a generator can use, and the committed SDK is generated from it."""

from __future__ import annotations

import filecmp
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.dump_openapi import spec_json

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
BIN = Path(sys.executable).parent
CLEAN_ID = r"^[a-z]+(_[a-z]+)*$"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(spec_json()))


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]


class TestDocument:
    def test_operation_ids_are_the_route_names(self, spec: dict[str, Any]) -> None:
        ids = {op["operationId"] for _, _, op in operations(spec)}
        assert {"upload_model", "create_job", "get_job", "list_jobs", "cancel_job"} <= ids
        assert {"download_artifact", "upload_dataset", "delete_model"} <= ids
        for op_id in ids:
            assert "_v1_" not in op_id and "__" not in op_id, op_id
        assert len(ids) == len(operations(spec))

    def test_uploads_are_binary(self, spec: dict[str, Any]) -> None:
        for name in ("Body_upload_model", "Body_upload_dataset"):
            field = spec["components"]["schemas"][name]["properties"]["file"]
            assert field == {"format": "binary", "title": "File", "type": "string"}

    def test_artifact_is_a_binary_response_with_its_checksum(self, spec: dict[str, Any]) -> None:
        ok = spec["paths"]["/v1/jobs/{job_id}/artifact"]["get"]["responses"]["200"]
        assert set(ok["content"]) == {
            "application/zip",
            "application/x-xz",
            "application/octet-stream",
        }
        assert all(c["schema"]["format"] == "binary" for c in ok["content"].values())
        assert "X-Checksum-Sha256" in ok["headers"]

    def test_every_error_is_the_one_problem_schema(self, spec: dict[str, Any]) -> None:
        schemas = spec["components"]["schemas"]
        assert "Problem" in schemas and "HTTPValidationError" not in schemas
        for method, path, op in operations(spec):
            for status, response in op["responses"].items():
                if int(status) < 400 or path == "/readyz":
                    continue
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)

    def test_statuses_and_headers_are_declared(self, spec: dict[str, Any]) -> None:
        create = spec["paths"]["/v1/jobs"]["post"]["responses"]
        assert {"202", "400", "401", "404", "409", "413", "422", "429"} <= set(create)
        assert "Location" in create["202"]["headers"]
        assert "Retry-After" in create["409"]["headers"]
        for path in ("/v1/models", "/v1/datasets"):
            upload = spec["paths"][path]["post"]["responses"]
            assert {"201", "401", "413", "422", "429"} <= set(upload)
            assert "Location" in upload["201"]["headers"]
        assert "503" in spec["paths"]["/readyz"]["get"]["responses"]

    def test_authenticated_routes_declare_the_key_and_401(self, spec: dict[str, Any]) -> None:
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        for method, path, op in operations(spec):
            if path.startswith("/v1/"):
                assert "401" in op["responses"], (method, path)
        assert "403" in spec["paths"]["/v1/workers"]["get"]["responses"]
        assert "security" not in spec["paths"]["/healthz"]["get"]

    def test_recipe_report_and_inspection_are_typed(self, spec: dict[str, Any]) -> None:
        schemas = spec["components"]["schemas"]
        recipe_or_goal = {"anyOf": [{"$ref": "#/components/schemas/Recipe"}, {"type": "null"}]}
        for schema in ("JobRead", "JobCreate"):  # a goal job has no recipe (until it chose one)
            recipe = schemas[schema]["properties"]["recipe"]
            assert {k: v for k, v in recipe.items() if k != "description"} == recipe_or_goal
        assert schemas["JobCreate"]["properties"]["goal"]["anyOf"][0] == {
            "$ref": "#/components/schemas/Goal"
        }
        report = schemas["JobReport"]["properties"]["report"]
        assert report == {"$ref": "#/components/schemas/CompressionReport"}
        inspection = schemas["ModelRead"]["properties"]["inspection"]
        assert inspection == {"$ref": "#/components/schemas/ModelInspection"}
        assert "inputs" in schemas["ModelInspection"]["properties"]
        inspection = schemas["DatasetRead"]["properties"]["inspection"]
        assert inspection == {"$ref": "#/components/schemas/DatasetInspection"}


def generate(out: Path) -> Path:
    """What `make sdk` does, into ``out``."""
    document = out / "openapi.json"
    document.write_text(spec_json())
    client = out / "python"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--config",
            str(CLIENTS / "openapi-python-client.yaml"),
            "--meta",
            "setup",
            "--output-path",
            str(client),
            "--overwrite",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def differences(committed: Path, fresh: Path, where: str = "") -> list[str]:
    built = [p.name for p in committed.glob("*.egg-info")]  # what a pip install leaves behind
    cmp = filecmp.dircmp(committed, fresh, ignore=["__pycache__", ".ruff_cache", "build", *built])
    found = [f"no longer generated: {where}{n}" for n in cmp.left_only]
    found += [f"missing: {where}{n}" for n in cmp.right_only]
    found += [
        f"differs: {where}{n}"
        for n in cmp.common_files
        if (committed / n).read_bytes() != (fresh / n).read_bytes()
    ]
    for name in cmp.subdirs:
        found += differences(committed / name, fresh / name, f"{where}{name}/")
    return found


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("sdk"))


class TestCommittedClient:
    def test_committed_document_is_current(self, fresh: Path) -> None:
        committed = (CLIENTS / "openapi.json").read_text()
        assert committed == (fresh / "openapi.json").read_text(), (
            "clients/openapi.json is out of date: run make sdk"
        )

    def test_committed_client_is_current(self, fresh: Path) -> None:
        drift = differences(CLIENTS / "python", fresh / "python")
        assert not drift, "clients/python is out of date: run make sdk\n" + "\n".join(drift)

    def test_errors_are_one_problem_model(self) -> None:
        models = {p.stem for p in (CLIENTS / "python/modelpress_client/models").glob("*.py")}
        assert "problem" in models
        # What generators name an error body declared inline: <operation>_response_404, ...
        inline = sorted(m for m in models if re.search(r"_response_[45]\d\d$|validation_error", m))
        assert not inline

    def test_installs_with_pip(self, tmp_path: Path) -> None:
        target = tmp_path / "site"
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
             "--no-build-isolation", "--target", str(target), str(CLIENTS / "python")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        probe = "import modelpress_client.api.jobs.create_job as m; print(m.__file__)"
        where = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, "PYTHONPATH": str(target)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert where.startswith(str(target))
