"""The user's CLI (clients/cli) on a live stack, read through a pseudo-terminal as a user sees
it: MiniLM compressed from the command line with a live progress bar, and a refused recipe
ending non-zero with the server's problem detail."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One kind of stack: the CLI is a client, and the API's two backends are tested elsewhere."""
    with running_stack("embedded", tmp_path_factory.mktemp("cli")) as running:
        yield running


CLI = str(Path(sys.executable).with_name("modelpress-cli"))  # installed beside our python


def run_in_pty(args: list[str], *, timeout: float = 900) -> tuple[int, str]:
    """Run the CLI with a terminal for stdout and stderr; return its exit code and all it wrote."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError(
                "the CLI went silent: " + b"".join(chunks).decode(errors="replace")
            )
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the CLI exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_cli_compresses_minilm_with_a_progress_bar(
    stack: Stack, minilm_targz: bytes, tmp_path: Path
) -> None:
    model = tmp_path / "minilm.tar.gz"
    model.write_bytes(minilm_targz)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("steps:\n  - technique: quantization\n    scheme: int8_dynamic\n")
    out = tmp_path / "out"
    code, output = run_in_pty(
        [CLI, "--url", stack.base_url, "--api-key", str(stack.api_key), "compress", str(model),
         "--recipe", str(recipe), "--out", str(out)]
    )  # fmt: skip
    assert code == 0, output
    assert "━" in output and "100%" in output, output  # rich's bar, drawn on a terminal
    assert "model bytes" in output and "x smaller" in output, output
    [artifact] = list(out.iterdir())
    with tarfile.open(artifact) as archive:
        names = archive.getnames()
    assert "model.onnx" in names, names


def test_cli_exits_non_zero_with_the_problem_detail(stack: Stack, tmp_path: Path) -> None:
    model = tmp_path / "junk.onnx"
    model.write_bytes(b"not a model at all")
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"steps": [{"technique": "quantization", "scheme": "fp16"}]}))
    code, output = run_in_pty(
        [CLI, "--url", stack.base_url, "--api-key", str(stack.api_key), "compress", str(model),
         "--recipe", str(recipe)]
    )  # fmt: skip
    assert code == 1, output
    assert "error:" in output and "422" in output, output
