"""TorchScript and torch.export uploads: detection, conversion to ONNX in the sandbox, and the
sandbox's isolation, each shown with real processes, real files and real hostile payloads.

The functions run inside the sandbox live in tests/engine/sandbox_probe.py, so the child can
import them without importing pytest.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import socket
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from compressor.errors import InvalidModelError
from compressor.formats.executable import convert_executable_to_onnx, detect_executable
from compressor.sandbox import SandboxError, SandboxLimits, default_hidden, run_sandboxed

PROBE = "tests.engine.sandbox_probe"
LIMITS = SandboxLimits(memory_bytes=4 * 1024**3, cpu_seconds=120, wall_seconds=120.0)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(72, 3)
    ).eval()


class _BakedBatch(torch.nn.Module):
    """Traces into a graph that only takes batches of 8: the 8 becomes a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.reshape(8, 64))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("uploads")
    model = _model()
    # Recorded with batch 8 (traced) and 4 with a symbolic batch (exported): the ONNX models
    # must take any batch size.
    torch.jit.trace(model, torch.randn(8, 1, 8, 8)).save(str(root / "traced.pt"))
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.randn(4, 1, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(root / "exported.pt2"))
    torch.jit.trace(_BakedBatch().eval(), torch.randn(8, 1, 8, 8)).save(str(root / "baked.pt"))
    torch.save(model.state_dict(), root / "state_dict.pt")
    (root / "raw.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    (root / "random.bin").write_bytes(np.random.default_rng(0).bytes(4096))

    class TwoInputs(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a + b

    torch.jit.script(TwoInputs()).save(str(root / "scripted.pt"))
    return {"root": root, "model": model}


@pytest.fixture()
def sandbox_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A workdir and, beside it, a 'data directory' holding another user's upload."""
    workdir, data = tmp_path / "work", tmp_path / "data"
    workdir.mkdir()
    (data / "other-user").mkdir(parents=True)
    (data / "other-user" / "model.onnx").write_text("someone else's model")
    return workdir, data


def _ort_output(onnx_path: Path, name: str, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: x.numpy()})[0]


# ---------------------------------------------------------------------------------------------
# Detection


def test_detect_by_content(files: dict[str, Any], tmp_path: Path) -> None:
    root = files["root"]
    onnx_file = tmp_path / "model.onnx"
    torch.onnx.export(files["model"], (torch.randn(1, 1, 8, 8),), str(onnx_file), dynamo=False)
    assert detect_executable(root / "traced.pt") == "torchscript"
    assert detect_executable(root / "scripted.pt") == "torchscript"
    assert detect_executable(root / "exported.pt2") == "torch_export"
    assert detect_executable(root / "state_dict.pt") == "pickle"
    assert detect_executable(root / "raw.pkl") == "pickle"
    assert detect_executable(onnx_file) is None
    assert detect_executable(root / "random.bin") is None
    # the suffix plays no part
    renamed = tmp_path / "weights.onnx"
    renamed.write_bytes((root / "exported.pt2").read_bytes())
    assert detect_executable(renamed) == "torch_export"


# ---------------------------------------------------------------------------------------------
# Conversion


@pytest.mark.parametrize(
    ("upload", "kind"), [("traced.pt", "torchscript"), ("exported.pt2", "torch_export")]
)
def test_converts_to_onnx_that_computes_the_same_for_any_batch_size(
    files: dict[str, Any], sandbox_dirs: tuple[Path, Path], tmp_path: Path, upload: str, kind: Any
) -> None:
    workdir, data = sandbox_dirs
    out = tmp_path / "out"
    found = convert_executable_to_onnx(
        files["root"] / upload, out, kind=kind, workdir=workdir, hidden=[data], limits=LIMITS
    )
    assert found["source_format"] == kind
    # recorded with batch 8 / 4: the batch dimension is symbolic in the ONNX model
    assert found["inputs"] == [{"name": "input", "shape": [None, 1, 8, 8], "dtype": "float32"}]
    assert found["dynamic_batch"] is True
    assert found["opset"] >= 13
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]  # weights embedded
    for batch in (360, 5):  # a whole data set at once; a size no one recorded
        x = torch.randn(batch, 1, 8, 8)
        with torch.no_grad():
            expected = files["model"](x).numpy()
        got = _ort_output(out / "model.onnx", "input", x)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_trace_with_a_baked_in_batch_size_gets_fixed_shapes(
    files: dict[str, Any], sandbox_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    workdir, data = sandbox_dirs
    found = convert_executable_to_onnx(
        files["root"] / "baked.pt",
        tmp_path / "out",
        kind="torchscript",
        workdir=workdir,
        hidden=[data],
        limits=LIMITS,
    )
    assert found["dynamic_batch"] is False
    assert found["inputs"] == [{"name": "x", "shape": [8, 1, 8, 8], "dtype": "float32"}]
    x = torch.randn(8, 1, 8, 8)
    module = torch.jit.load(str(files["root"] / "baked.pt"))
    with torch.no_grad():
        expected = module(x).numpy()
    got = _ort_output(tmp_path / "out" / "model.onnx", "x", x)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_scripted_module_without_traced_inputs_is_refused_with_a_hint(
    files: dict[str, Any], sandbox_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    workdir, data = sandbox_dirs
    with pytest.raises(InvalidModelError, match=r"torch\.jit\.trace") as info:
        convert_executable_to_onnx(
            files["root"] / "scripted.pt",
            tmp_path / "out",
            kind="torchscript",
            workdir=workdir,
            hidden=[data],
            limits=LIMITS,
        )
    assert "ONNX" in str(info.value)
    assert not (tmp_path / "out" / "model.onnx").exists()


# ---------------------------------------------------------------------------------------------
# Hostile uploads: torch.export.load's pre-2.8 layout unpickles serialized_state_dict.pt, and
# after weights_only=True refuses it, retries with weights_only=False, running the payload.


class _WriteMarker:
    """Unpickling calls Path.write_text(marker): a plain Python write."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "pwned"))


class _NativeWriteMarker:
    """Unpickling runs code that creates the marker through libc, out of the audit hook's sight."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        code = f"import ctypes; ctypes.CDLL(None).creat({str(self.marker).encode()!r}, 0o644)"
        return (exec, (code,))


def hostile_pt2(marker: Path, payload: type[Any] = _WriteMarker) -> bytes:
    """An old-layout .pt2 archive whose loading creates `marker` (also used by the e2e tests)."""
    from torch._export.serde.schema import SCHEMA_VERSION
    from torch._export.serde.serialize import serialize

    program = torch.export.export(torch.nn.Linear(4, 2), (torch.randn(1, 4),))
    artifact = serialize(program)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("version", ".".join(map(str, SCHEMA_VERSION)))
        zf.writestr("serialized_exported_program.json", artifact.exported_program)
        zf.writestr("serialized_state_dict.pt", pickle.dumps(payload(marker), protocol=2))
        zf.writestr("serialized_constants.pt", artifact.constants)
        zf.writestr("serialized_example_inputs.pt", artifact.example_inputs)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_WriteMarker, "tried to write outside its working folder, which is not allowed"),
        (_NativeWriteMarker, "could not convert"),
    ],
)
def test_hostile_pt2_runs_its_payload_unsandboxed_but_not_in_the_sandbox(
    sandbox_dirs: tuple[Path, Path], tmp_path: Path, payload: Any, reason: str
) -> None:
    workdir, data = sandbox_dirs
    # Control: a plain torch.export.load really executes the payload.
    marker_a = tmp_path / "marker-a"
    unsafe = tmp_path / "control.pt2"
    unsafe.write_bytes(hostile_pt2(marker_a, payload))
    assert detect_executable(unsafe) == "torch_export"
    with contextlib.suppress(Exception):
        torch.export.load(str(unsafe))
    assert marker_a.exists()

    marker_b = tmp_path / "marker-b"
    upload = tmp_path / "upload.pt2"
    upload.write_bytes(hostile_pt2(marker_b, payload))
    with pytest.raises(InvalidModelError, match=reason):
        convert_executable_to_onnx(
            upload,
            tmp_path / "out",
            kind="torch_export",
            workdir=workdir,
            hidden=[data],
            limits=LIMITS,
        )
    assert not marker_b.exists()
    assert not (tmp_path / "out" / "model.onnx").exists()


# ---------------------------------------------------------------------------------------------
# The sandbox itself


def test_normal_call_returns_its_result_with_a_stripped_environment(
    sandbox_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir, data = sandbox_dirs
    monkeypatch.setenv("MODELPRESS_DATABASE_URL", "postgresql://secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    result = run_sandboxed(
        f"{PROBE}:echo", {"value": 21}, workdir=workdir, hidden=[data], limits=LIMITS
    )
    assert result["double"] == 42
    assert result["cwd"] == str(workdir.resolve())
    assert not [k for k in result["env"] if k.startswith(("MODELPRESS_", "AWS_"))]
    assert "OMP_NUM_THREADS" in result["env"]


def test_no_network_not_even_loopback_to_the_host(sandbox_dirs: tuple[Path, Path]) -> None:
    workdir, data = sandbox_dirs
    # The test needs something listening on the host's loopback that the sandbox could reach.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # reachable from outside the sandbox
        with pytest.raises(SandboxError, match="network connection, which is not allowed"):
            run_sandboxed(
                f"{PROBE}:connect",
                {"host": "127.0.0.1", "port": port},
                workdir=workdir,
                hidden=[data],
                limits=LIMITS,
            )
        # Below the audit hook, the empty network namespace refuses it as well.
        result = run_sandboxed(
            f"{PROBE}:native_connect",
            {"host": "127.0.0.1", "port": port},
            workdir=workdir,
            hidden=[data],
            limits=LIMITS,
        )
    assert result["connected"] is False and result["errno"] != 0


def test_hidden_paths_and_host_processes_are_invisible(
    sandbox_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    workdir, data = sandbox_dirs
    database = tmp_path / "modelpress.db"
    database.write_text("users and their jobs")
    hidden = [data, database]
    other = data / "other-user" / "model.onnx"
    with pytest.raises(SandboxError) as missing:
        run_sandboxed(
            f"{PROBE}:read_file",
            {"path": str(other)},
            workdir=workdir,
            hidden=hidden,
            limits=LIMITS,
        )
    assert "No such file" in missing.value.detail
    listing = run_sandboxed(
        f"{PROBE}:list_dir", {"path": str(data)}, workdir=workdir, hidden=hidden, limits=LIMITS
    )
    # Empty, or not there at all: as root, the sandbox runs as nobody, who cannot get past
    # pytest's temp root, so that is covered too, showing only the way down to workdir.
    assert listing["entries"] in ([], None)
    db = run_sandboxed(
        f"{PROBE}:peek", {"path": str(database)}, workdir=workdir, hidden=hidden, limits=LIMITS
    )
    assert db["text"] in ("", None)
    # Only its own PID namespace: no /proc/<host pid>/root to reach the host's view of `data`.
    pids = run_sandboxed(f"{PROBE}:visible_pids", {}, workdir=workdir, hidden=hidden, limits=LIMITS)
    assert pids["pids"] == [1]
    assert other.read_text() == "someone else's model"  # still there for the host


def test_writes_outside_workdir_fail_even_below_the_audit_hook(
    sandbox_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    workdir, data = sandbox_dirs
    outside = tmp_path / "escaped"
    result = run_sandboxed(
        f"{PROBE}:native_write",
        {"path": str(outside)},
        workdir=workdir,
        hidden=[data],
        limits=LIMITS,
    )
    assert result == {"written": False, "errno": 30}  # EROFS
    assert not outside.exists()
    inside = run_sandboxed(
        f"{PROBE}:native_write",
        {"path": str(workdir / "scratch")},
        workdir=workdir,
        hidden=[data],
        limits=LIMITS,
    )
    assert inside["written"] is True and (workdir / "scratch").read_bytes() == b"escaped"


def test_memory_limit(sandbox_dirs: tuple[Path, Path]) -> None:
    workdir, data = sandbox_dirs
    limits = SandboxLimits(memory_bytes=512 * 1024**2, wall_seconds=60.0)
    with pytest.raises(SandboxError, match=r"memory limit of 0\.5 GiB"):
        run_sandboxed(
            f"{PROBE}:allocate",
            {"n_bytes": 2 * 1024**3},
            workdir=workdir,
            hidden=[data],
            limits=limits,
        )


def test_cpu_limit(sandbox_dirs: tuple[Path, Path]) -> None:
    workdir, data = sandbox_dirs
    with pytest.raises(SandboxError, match="CPU time limit of 1 s"):
        run_sandboxed(
            f"{PROBE}:burn",
            {},
            workdir=workdir,
            hidden=[data],
            limits=SandboxLimits(cpu_seconds=1, wall_seconds=30.0),
        )


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("probe", ["spin", "leave_group_and_spin"])
def test_wall_time_limit_kills_everything_in_the_sandbox(
    sandbox_dirs: tuple[Path, Path], probe: str
) -> None:
    workdir, data = sandbox_dirs
    started = time.monotonic()
    with pytest.raises(SandboxError, match="time limit of 3 s"):
        run_sandboxed(
            f"{PROBE}:{probe}",
            {},
            workdir=workdir,
            hidden=[data],
            limits=SandboxLimits(wall_seconds=3.0),
        )
    assert time.monotonic() - started < 10
    # The sandbox's processes are named by their call file, which lies in workdir.
    assert _processes_mentioning(str(workdir.resolve())) == []


def test_a_hidden_folder_holding_workdir_shows_nothing_else(tmp_path: Path) -> None:
    """The system temp dir holds every conversion's workdir: each sees only its own."""
    cages = tmp_path / "cages"
    workdir = cages / "mine"
    workdir.mkdir(parents=True)
    neighbour = cages / "other" / "secret.onnx"
    neighbour.parent.mkdir()
    neighbour.write_text("someone else's model")
    hidden = [cages]

    listing = run_sandboxed(
        f"{PROBE}:list_dir", {"path": str(cages)}, workdir=workdir, hidden=hidden, limits=LIMITS
    )
    assert listing["entries"] == ["mine"]
    seen = run_sandboxed(
        f"{PROBE}:exists", {"path": str(neighbour)}, workdir=workdir, hidden=hidden, limits=LIMITS
    )
    assert seen["exists"] is False
    written = run_sandboxed(
        f"{PROBE}:native_write",
        {"path": str(workdir / "scratch")},
        workdir=workdir,
        hidden=hidden,
        limits=LIMITS,
    )
    assert written["written"] is True and (workdir / "scratch").read_bytes() == b"escaped"
    # the folders leading down to workdir are read-only
    beside = run_sandboxed(
        f"{PROBE}:native_write",
        {"path": str(cages / "planted")},
        workdir=workdir,
        hidden=hidden,
        limits=LIMITS,
    )
    assert beside == {"written": False, "errno": 30}  # EROFS
    assert not (cages / "planted").exists() and neighbour.read_text() == "someone else's model"


def test_workdir_that_is_itself_hidden_is_refused(sandbox_dirs: tuple[Path, Path]) -> None:
    _, data = sandbox_dirs
    with pytest.raises(ValueError, match="is itself a hidden path"):
        run_sandboxed(f"{PROBE}:echo", {"value": 1}, workdir=data, hidden=[data], limits=LIMITS)


def test_default_hidden_covers_sockets_and_temp_but_never_python(tmp_path: Path) -> None:
    sockets = tmp_path / "run"
    sockets.mkdir()
    hidden = default_hidden([sockets])
    assert hidden[0] == sockets
    needed = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, Path.cwd())]
    temp = Path(tempfile.gettempdir()).resolve()
    # a checkout under /tmp (a CI clone) keeps the temp dir visible: Python must see our code
    assert (temp in hidden) != any(temp == p or temp in p.parents for p in needed)
    for path in hidden[1:]:
        assert not any(path.resolve() == p or path.resolve() in p.parents for p in needed)
    # a service's unix socket (PostgreSQL, Redis, Docker): reachable outside, not inside, and
    # the workdir lies in the (hidden) temp dir like the worker's
    workdir = tmp_path / "cage"
    workdir.mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sockets / "service.sock"))
        server.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(sockets / "service.sock"))
        result = run_sandboxed(
            f"{PROBE}:native_unix_connect",
            {"path": str(sockets / "service.sock")},
            workdir=workdir,
            hidden=hidden,
            limits=LIMITS,
        )
    assert result == {"connected": False, "errno": 2}  # ENOENT
