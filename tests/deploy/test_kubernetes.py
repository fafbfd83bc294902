"""deploy/kubernetes (issue 27): every overlay renders offline, validates against the Kubernetes
schemas, passes checkov, and agrees with the code it deploys: queue names (app/broker.py), job
time and memory limits (app/settings.py), routes and port, and docker-compose.yml's commands."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

from app import settings as settings_module
from app.broker import QueueName, make_celery
from app.health.routes import router as health_router
from app.settings import Settings
from tests.deploy.manifests import (
    OVERLAYS,
    ROOT,
    SECRET_TEMPLATE,
    Manifest,
    find,
    load_all,
    one,
    option,
    pod_labels,
    pod_spec,
    quantity_bytes,
    render,
    selects,
    workers,
    workloads,
)

# The newest schemas kubernetes-validate ships (1.37.0); strict: unknown fields are errors.
KUBERNETES_VERSION = "1.37.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
# Memory a worker needs beyond its jobs' RLIMIT_DATA: the Celery parent, shared libraries and
# page cache, which that limit does not count.
MIN_HEADROOM_BYTES = 2 * 1024**3
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {overlay: load_all(render(overlay)) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def gpu(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    return rendered["gpu"]


@pytest.fixture(scope="module")
def secrets() -> list[Manifest]:
    return load_all(SECRET_TEMPLATE.read_text())


@pytest.fixture(scope="module")
def config(gpu: list[Manifest]) -> dict[str, str]:
    return one(gpu, "ConfigMap", "modelpress-settings")["data"]


@pytest.fixture
def deployed_settings(
    config: dict[str, str], secrets: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The app's own settings, read from the ConfigMap and the Secret template, as a pod would."""
    for key, value in {**config, **_app_secret(secrets)["stringData"]}.items():
        monkeypatch.setenv(key, value)
    return Settings()


def _app_secret(secrets: list[Manifest]) -> Manifest:
    return one(secrets, "Secret", "modelpress-secrets")


def test_overlays_differ_only_by_the_gpu_pool(rendered: dict[str, list[Manifest]]) -> None:
    assert set(workers(rendered["cpu-only"])) == {"cpu", "inspect"}
    assert set(workers(rendered["gpu"])) == {"cpu", "gpu", "inspect"}
    names = {o: {(m["kind"], m["metadata"]["name"]) for m in objs} for o, objs in rendered.items()}
    assert names["gpu"] - names["cpu-only"] == {
        ("Deployment", "modelpress-worker-gpu"),
        ("ScaledObject", "modelpress-worker-gpu"),
    }
    for objects in rendered.values():
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == "modelpress", obj["metadata"]["name"]
            assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "modelpress"


@pytest.mark.parametrize("source", [*OVERLAYS, "secret.template.yaml"])
def test_manifests_validate_against_kubernetes_schemas(
    source: str, rendered: dict[str, list[Manifest]], secrets: list[Manifest]
) -> None:
    objects = secrets if source == "secret.template.yaml" else rendered[source]
    checked = 0
    for obj in objects:
        if obj["kind"] in KEDA_KINDS:  # CRDs: no schema ships; test_keda_objects covers them
            assert obj["apiVersion"] == "keda.sh/v1alpha1"
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= (2 if source == "secret.template.yaml" else 15)


def test_keda_objects_are_well_formed(gpu: list[Manifest], secrets: list[Manifest]) -> None:
    auth = one(gpu, "TriggerAuthentication", "modelpress-broker")
    keda_secret = one(secrets, "Secret", "modelpress-keda-redis")
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["name"] == "modelpress-keda-redis"
        assert ref["key"] in keda_secret["stringData"]
    assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {"address", "password"}
    scaled = find(gpu, "ScaledObject")
    assert len(scaled) == 3
    for so in scaled:
        spec = so["spec"]
        one(gpu, "Deployment", spec["scaleTargetRef"]["name"])
        assert 0 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
        names = []
        for trigger in spec["triggers"]:
            assert trigger["type"] == "redis"
            assert trigger["authenticationRef"]["name"] == "modelpress-broker"
            assert int(trigger["metadata"]["listLength"]) > 0
            names.append(trigger["name"])
        modifiers = spec["advanced"]["scalingModifiers"]
        # The formula sums every trigger, each once.
        assert sorted(re.findall(r"\w+", modifiers["formula"])) == sorted(names)
        assert set(modifiers["formula"].replace(" ", "")) - set("".join(names)) <= {"+"}
        assert int(modifiers["target"]) > 0


def _redis_lists(queue: str, broker_url: str) -> set[str]:
    """The lists Celery's Redis transport keeps for a queue, from the app's own options."""
    options = make_celery(_settings_with_broker(broker_url)).conf.broker_transport_options
    sep, steps = options["sep"], options["priority_steps"]
    return {queue if step == 0 else f"{queue}{sep}{step}" for step in steps}


def _settings_with_broker(broker_url: str) -> Settings:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELPRESS_BROKER_URL", broker_url)
        return Settings()


def test_scaled_objects_watch_every_list_of_their_queue(
    gpu: list[Manifest], secrets: list[Manifest]
) -> None:
    """A renamed queue (app/broker.py) fails here, and so would a priority list left unwatched."""
    broker_url = _app_secret(secrets)["stringData"]["MODELPRESS_BROKER_URL"]
    assert broker_url.endswith("/0")  # the triggers' databaseIndex
    by_pool = {
        so["metadata"]["labels"]["modelpress.io/pool"]: so for so in find(gpu, "ScaledObject")
    }
    assert set(by_pool) == {str(q) for q in QueueName}
    for queue in QueueName:
        triggers = by_pool[str(queue)]["spec"]["triggers"]
        lists = [t["metadata"]["listName"] for t in triggers]
        assert sorted(lists) == sorted(_redis_lists(str(queue), broker_url))
        assert {t["metadata"]["databaseIndex"] for t in triggers} == {"0"}
        target = by_pool[str(queue)]["spec"]["scaleTargetRef"]["name"]
        assert target == workers(gpu)[str(queue)]["metadata"]["name"]
    assert by_pool["gpu"]["spec"]["minReplicaCount"] == 0
    assert by_pool["cpu"]["spec"]["minReplicaCount"] >= 1  # the reaper must run somewhere


def test_workers_consume_their_queue_as_compose_starts_them(gpu: list[Manifest]) -> None:
    compose = {
        name.removeprefix("worker-"): s["command"]
        for name, s in COMPOSE["services"].items()
        if name.startswith("worker-")
    }
    for pool, deployment in workers(gpu).items():
        command = pod_spec(deployment)["containers"][0]["command"]
        assert command[:2] == ["modelpress", "worker"]
        assert option(command, "--queues") == pool
        assert pool in {str(q) for q in QueueName}
        if pool in compose:
            assert command[:3] == compose[pool][:3]
            assert option(command, "--concurrency") == option(compose[pool], "--concurrency")
    consumed = {
        option(pod_spec(d)["containers"][0]["command"], "--queues") for d in workers(gpu).values()
    }
    assert consumed == {str(q) for q in QueueName}


def test_grace_period_outlasts_the_longest_job(
    gpu: list[Manifest], deployed_settings: Settings
) -> None:
    longest_job = deployed_settings.broker.visibility_timeout_s - 60  # app/jobs/service.py
    celery_hard_limit = make_celery(deployed_settings).conf.task_time_limit
    for pool in ("cpu", "gpu"):
        grace = pod_spec(workers(gpu)[pool])["terminationGracePeriodSeconds"]
        assert grace > max(
            longest_job, celery_hard_limit, deployed_settings.worker.job_soft_time_limit_s
        )
    inspect_grace = pod_spec(workers(gpu)["inspect"])["terminationGracePeriodSeconds"]
    assert inspect_grace > deployed_settings.uploads.sandbox_time_limit_s


def test_worker_memory_fits_their_jobs_with_headroom(
    gpu: list[Manifest], deployed_settings: Settings
) -> None:
    job_memory = deployed_settings.worker.job_memory_bytes
    assert job_memory is not None, "MODELPRESS_JOB_MEMORY_BYTES must be set in the ConfigMap"
    per_task = {"cpu": job_memory, "gpu": job_memory}
    per_task["inspect"] = deployed_settings.uploads.sandbox_memory_bytes
    for pool, deployment in workers(gpu).items():
        container = pod_spec(deployment)["containers"][0]
        concurrency = int(option(container["command"], "--concurrency"))
        resources = container["resources"]
        limit = quantity_bytes(resources["limits"]["memory"])
        assert limit >= concurrency * per_task[pool] + MIN_HEADROOM_BYTES, pool
        assert quantity_bytes(resources["requests"]["memory"]) == limit  # never overcommitted


def _settings_env_names() -> set[str]:
    classes = [
        c
        for c in vars(settings_module).values()
        if isinstance(c, type) and issubclass(c, BaseSettings) and c is not BaseSettings
    ]
    return {f"MODELPRESS_{field.upper()}" for c in classes for field in c.model_fields}


def test_every_modelpress_variable_is_a_real_setting(
    gpu: list[Manifest], secrets: list[Manifest], config: dict[str, str]
) -> None:
    known = _settings_env_names()
    named = set(config) | set(_app_secret(secrets)["stringData"])
    for workload in workloads(gpu):
        for container in pod_spec(workload)["containers"]:
            named |= {e["name"] for e in container.get("env", [])}
    unknown = {n for n in named if n.startswith("MODELPRESS_")} - known
    assert not unknown, f"not settings in app/settings.py: {sorted(unknown)}"
    assert {"MODELPRESS_DATABASE_URL", "MODELPRESS_BROKER_URL"} <= set(
        _app_secret(secrets)["stringData"]
    )
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(_app_secret(secrets)["stringData"])


def test_settings_in_the_configmap_are_valid(deployed_settings: Settings) -> None:
    assert deployed_settings.storage.storage_backend == "s3"  # scratch-only data dirs
    assert deployed_settings.auth.auth_required
    assert deployed_settings.broker_url.startswith("redis://")


def test_pods_are_locked_down(gpu: list[Manifest], config: dict[str, str]) -> None:
    writable = {config["MODELPRESS_DATA_DIR"], "/tmp", config["HOME"]}
    for workload in workloads(gpu):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in ctx["capabilities"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert writable <= set(mounts), name
            assert {mounts[p] for p in writable} <= empty_dirs, name


def test_api_probes_port_service_and_budget(gpu: list[Manifest]) -> None:
    api = one(gpu, "Deployment", "modelpress-api")
    container = pod_spec(api)["containers"][0]
    assert container["command"] == COMPOSE["services"]["api"]["command"]
    routes = {r.path for r in health_router.routes}  # type: ignore[attr-defined]
    assert {"/readyz", "/healthz"} <= routes
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e["value"] for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(env["MODELPRESS_PORT"])
    assert env["MODELPRESS_HOST"] == "0.0.0.0"
    service = one(gpu, "Service", "modelpress-api")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(api))
    budget = one(gpu, "PodDisruptionBudget", "modelpress-api")
    assert selects(budget["spec"]["selector"], pod_labels(api))
    assert budget["spec"]["minAvailable"] < api["spec"]["replicas"]


def test_gpu_pool_lands_on_gpu_nodes_with_the_gpu_image(gpu: list[Manifest]) -> None:
    spec = pod_spec(workers(gpu)["gpu"])
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    ort_gpu = COMPOSE["services"]["worker-gpu"]["build"]["args"]["ONNXRUNTIME_GPU"]
    version = ort_gpu.split("==")[1]
    assert container["image"].endswith(f"-onnxruntime-gpu-{version}")
    for pool in ("cpu", "inspect"):
        assert "nvidia.com/gpu" not in str(pod_spec(workers(gpu)[pool]))


def test_migration_job_and_what_it_needs_are_applied_first(gpu: list[Manifest]) -> None:
    job = one(gpu, "Job", "modelpress-migrate")
    assert pod_spec(job)["containers"][0]["command"] == COMPOSE["services"]["migrate"]["command"]
    first = {
        (o["kind"], o["metadata"]["name"])
        for o in gpu
        if o["metadata"]["labels"].get("modelpress.io/apply-phase") == "migrate"
    }
    assert ("Job", "modelpress-migrate") in first
    assert ("Namespace", "modelpress") in first
    assert ("ConfigMap", "modelpress-settings") in first
    assert ("ServiceAccount", pod_spec(job)["serviceAccountName"]) in first
    # Every policy that lets the Job's pod out is applied with it, and nothing long-running is.
    for policy in find(gpu, "NetworkPolicy"):
        if selects(policy["spec"]["podSelector"], pod_labels(job)):
            assert ("NetworkPolicy", policy["metadata"]["name"]) in first
    assert not {kind for kind, _ in first} & {"Deployment", "ScaledObject"}


def _allowed(policies: list[Manifest], labels: dict[str, str], direction: str) -> set[int]:
    ports: set[int] = set()
    for policy in policies:
        if selects(policy["spec"]["podSelector"], labels):
            for rule in policy["spec"].get(direction, []):
                ports |= {p["port"] for p in rule.get("ports", [])}
    return ports


def test_network_policies_deny_by_default_and_admit_only_the_api(gpu: list[Manifest]) -> None:
    policies = find(gpu, "NetworkPolicy")
    deny = one(gpu, "NetworkPolicy", "default-deny-all")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    dns, database, broker, storage = 53, 5432, 6379, 443
    for workload in workloads(gpu):
        labels = pod_labels(workload)
        component = labels["app.kubernetes.io/component"]
        ingress = _allowed(policies, labels, "ingress")
        egress = _allowed(policies, labels, "egress")
        assert ingress == ({8000} if component == "api" else set()), workload["metadata"]["name"]
        expected = {
            "api": {dns, database, broker, storage},
            "migration": {dns, database},
            "worker": {dns, database, broker, storage},
        }[component]
        if labels.get("modelpress.io/pool") == "inspect":
            expected |= {80, 443}  # webhook deliveries ride the inspect queue
        assert egress == expected, workload["metadata"]["name"]


def _checkov() -> list[str] | None:
    """checkov pins packages (networkx<2.7, packaging<24, boto3) that conflict with
    constraints.txt, so it is not in the dev extra: `make test` installs it in a venv of its own
    (.venv-checkov, pinned by constraints-checkov.txt) and names it in MODELPRESS_CHECKOV."""
    named = os.environ.get("MODELPRESS_CHECKOV")
    if named and Path(named).exists():
        return [named]
    if importlib.util.find_spec("checkov") is not None:
        return [sys.executable, "-m", "checkov.main"]
    found = shutil.which("checkov")
    return [found] if found else None


@pytest.fixture(scope="module")
def checkov_scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """One checkov run over both rendered overlays and the Secret template."""
    command = _checkov()
    if command is None:
        message = "checkov is not installed (`make install` puts it in .venv-checkov)"
        if os.environ.get("MODELPRESS_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    folder: Path = tmp_path_factory.mktemp("rendered")
    for overlay in OVERLAYS:
        (folder / f"{overlay}.yaml").write_text(render(overlay))
    shutil.copy(SECRET_TEMPLATE, folder / SECRET_TEMPLATE.name)
    result = subprocess.run(
        [*command, "-d", str(folder), "--framework", "kubernetes", "secrets"]
        + ["--skip-download", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    report = json.loads(result.stdout)
    return folder, report if isinstance(report, list) else [report]


def _justification(skipped: dict, folder: Path, objects: list[Manifest]) -> str:
    """Why a check was skipped, from where the skip is written: a manifest's
    `checkov.io/skipN: CHECK=reason` annotation, or a `# checkov:skip=CHECK: reason` comment
    (checkov's JSON carries neither reason)."""
    check = skipped["check_id"]
    if check.startswith("CKV_SECRET"):
        first, last = skipped["file_line_range"]
        lines = (folder / skipped["file_path"].lstrip("/")).read_text().splitlines()
        for line in lines[max(first - 2, 0) : last]:
            if f"checkov:skip={check}:" in line:
                return line.split(f"checkov:skip={check}:", 1)[1]
        return ""
    kind, namespace, name = skipped["resource"].split(".", 2)
    (obj,) = [
        o
        for o in objects
        if (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        == (kind, namespace, name)
    ]
    for key, value in obj["metadata"].get("annotations", {}).items():
        if key.startswith("checkov.io/skip") and value.startswith(f"{check}="):
            return value.split("=", 1)[1]
    return ""


def test_checkov_passes_with_every_skip_justified(
    checkov_scan: tuple[Path, list[dict]], gpu: list[Manifest]
) -> None:
    folder, reports = checkov_scan
    by_type = {r["check_type"]: r for r in reports}
    assert set(by_type) == {"kubernetes", "secrets"}
    kube = by_type["kubernetes"]["summary"]
    assert kube["resource_count"] >= 2 * 15 and kube["passed"] > 100
    for report in reports:
        failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
        assert not failed, failed
        assert report["summary"]["parsing_errors"] == 0
        for skipped in report["results"]["skipped_checks"]:
            reason = _justification(skipped, folder, gpu)
            assert len(reason.strip()) >= 20, (skipped["check_id"], skipped["resource"])
