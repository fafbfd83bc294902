"""Escapes from compressor.sandbox that a review reproduced (issue 12, items 9 and 10): many
processes each under the memory limit, root-only files read through the uid the sandbox ran
as, and what was read leaving through the rejection text or the inspection. Real child
processes, real files; the functions run inside live in tests/engine/sandbox_probe.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from compressor.errors import InvalidModelError
from compressor.formats.executable import convert_executable_to_onnx
from compressor.sandbox import SandboxError, SandboxLimits, run_sandboxed
from tests.engine.test_executable_formats import hostile_pt2

PROBE = "tests.engine.sandbox_probe"
LIMITS = SandboxLimits(memory_bytes=512 * 1024**2, cpu_seconds=60, wall_seconds=60.0)
TORCH_LIMITS = SandboxLimits(cpu_seconds=120, wall_seconds=120.0)  # torch maps over 512 MiB
MiB = 1024**2


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_forks_below_the_audit_hook_are_refused(workdir: Path) -> None:
    forked = run_sandboxed(
        f"{PROBE}:fork_many", {"n": 200}, workdir=workdir, hidden=[], limits=LIMITS
    )
    assert forked["forked"] == 0
    spawned = run_sandboxed(
        f"{PROBE}:spawn_many", {"n": 50}, workdir=workdir, hidden=[], limits=LIMITS
    )
    assert spawned["started"] == 0


def test_memory_summed_over_forked_children_stays_under_the_cap(workdir: Path) -> None:
    # 6 x 300 MiB = 1.8 GiB if each child only had its own 512 MiB limit to respect
    held = run_sandboxed(
        f"{PROBE}:hog_in_forks",
        {"children": 6, "n_bytes": 300 * MiB},
        workdir=workdir,
        hidden=[],
        limits=LIMITS,
    )
    assert held["holding"] * 300 * MiB <= LIMITS.memory_bytes


def _root_only_file(tmp_path: Path) -> Path:
    """/etc/shadow where it is root-only; else a file of our own made unreadable to others."""
    shadow = Path("/etc/shadow")
    if shadow.exists() and os.stat(shadow).st_uid == 0 and not shadow.stat().st_mode & 0o004:
        return shadow
    own = tmp_path / "secret"
    own.write_text("root:secret")
    own.chmod(0o600)
    return own


def test_root_only_files_cannot_be_read(workdir: Path, tmp_path: Path) -> None:
    secret = _root_only_file(tmp_path)
    assert secret.read_text()  # readable by the service itself
    assert not stat.S_IMODE(secret.stat().st_mode) & 0o004
    with pytest.raises(SandboxError) as info:
        run_sandboxed(
            f"{PROBE}:read_file", {"path": str(secret)}, workdir=workdir, hidden=[], limits=LIMITS
        )
    assert "Permission denied" in info.value.detail
    assert "root:" not in str(info.value)


class _ReadAndRaise:
    """Unpickling reads a file and raises with its content: a leak through the error text."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        code = f"raise ValueError('LEAK ' + open({str(self.path)!r}).read())"
        return (exec, (code,))


class _RaiseLoudly:
    def __init__(self, _path: Path) -> None:
        pass

    def __reduce__(self) -> tuple[object, ...]:
        return (exec, ("raise ValueError('LEAK ' + 'x' * 5000)",))


@pytest.mark.parametrize("payload", [_ReadAndRaise, _RaiseLoudly])
def test_rejection_of_an_executable_upload_is_a_fixed_message(
    workdir: Path, tmp_path: Path, payload: type[object]
) -> None:
    secret = _root_only_file(tmp_path)
    upload = tmp_path / "upload.pt2"
    upload.write_bytes(hostile_pt2(secret, payload))  # type: ignore[arg-type]
    with pytest.raises(InvalidModelError) as info:
        convert_executable_to_onnx(
            upload,
            tmp_path / "out",
            kind="torch_export",
            workdir=workdir,
            hidden=[],
            limits=TORCH_LIMITS,
        )
    message = str(info.value)
    assert "LEAK" not in message and "root:" not in message and len(message) < 300


def _onnx_with_names(path: Path, *, graph: str, producer: str, input_name: str) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", [input_name], ["y"], name=graph)
    model = helper.make_model(
        helper.make_graph(
            [node],
            graph,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch" * 20000, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch" * 20000, 4])],
        ),
        producer_name=producer,
        opset_imports=[helper.make_opsetid("", 17)],
    )
    onnx.save(model, str(path))
    return path


def test_inspection_strings_are_bounded(tmp_path: Path) -> None:
    """A converted graph's name becomes inspection.architecture: whatever the loader wrote
    there (a file it read) must not come back whole."""
    import json

    from compressor.formats.onnx_io import inspect_onnx

    huge = "s" * 100_000
    found = inspect_onnx(
        _onnx_with_names(tmp_path / "named.onnx", graph=huge, producer=huge, input_name="x")
    )
    assert found["architecture"].startswith("sss") and len(found["architecture"]) <= 200
    assert len(json.dumps(found)) < 4000
    with pytest.raises(InvalidModelError) as info:
        inspect_onnx(
            _onnx_with_names(tmp_path / "input.onnx", graph="g", producer="p", input_name=huge)
        )
    assert len(str(info.value)) < 300


def test_the_check_of_a_converted_onnx_has_a_time_limit(workdir: Path, tmp_path: Path) -> None:
    """A converted graph with a Loop of 10**15 iterations: the check runs it, and must stop."""
    import time

    import onnx
    from onnx import TensorProto, helper

    from compressor.formats.executable import check_converted_onnx

    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["x_in"], ["x_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [1]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node(
                "Constant",
                [],
                ["m"],
                value=helper.make_tensor("m", TensorProto.INT64, [], [10**15]),
            ),
            helper.make_node(
                "Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])
            ),
            helper.make_node("Loop", ["m", "c", "x"], ["y"], body=body),
        ],
        "forever",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    started = time.monotonic()
    with pytest.raises(InvalidModelError, match="time limit"):
        check_converted_onnx(
            path,
            "TorchScript",
            workdir=workdir,
            hidden=[],
            limits=SandboxLimits(cpu_seconds=5, wall_seconds=5.0),
        )
    assert time.monotonic() - started < 30
