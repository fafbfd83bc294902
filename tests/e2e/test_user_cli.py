"""The user's CLI (clients/cli) on a live stack, read through a pseudo-terminal as a user sees
it: MiniLM compressed from the command line with a live progress bar, a refused upload or recipe
ending non-zero with the server's problem detail (a bad recipe before anything is uploaded), and
the report's wording of ratios below one."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelpress_cli.report import change

from tests.fixtures.helpers import digits_upload, unpack_artifact
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
    assert artifact.suffix == ".zip", artifact.name  # MiniLM is over the .tar.xz size limit
    names = [
        p.name for p in unpack_artifact(artifact.read_bytes(), tmp_path / "unpacked").iterdir()
    ]
    assert {"model.onnx", "report.json", "recipe.json"} <= set(names), names


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


def _models_total(stack: Stack) -> int:
    with stack.client() as client:
        return int(client.get("/v1/models").json()["total"])


@pytest.mark.parametrize(
    "recipe",
    [
        {"steps": [{"technique": "quantization", "scheme": "int3"}]},
        {"steps": [{"technique": "quantisation", "scheme": "fp16"}]},
        {"steps": [{"technique": "quantization", "scheme": "fp16", "bits": 4}]},
    ],
    ids=["unknown-scheme", "unknown-technique", "unknown-field"],
)
def test_bad_recipe_is_refused_before_the_upload(
    stack: Stack, tmp_path: Path, recipe: dict[str, object]
) -> None:
    """A model the server would accept: before the fix it was uploaded, then the job refused."""
    model = tmp_path / "digits.zip"
    model.write_bytes(digits_upload(tmp_path / "train", epochs=1))
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(recipe))
    before = _models_total(stack)
    code, output = run_in_pty(
        [CLI, "--url", stack.base_url, "--api-key", str(stack.api_key), "compress", str(model),
         "--recipe", str(recipe_file)]
    )  # fmt: skip
    assert code == 1, output
    assert "error:" in output and "422" in output, output
    assert "uploaded" not in output, output
    assert _models_total(stack) == before


@pytest.mark.parametrize(
    ("ratio", "gain", "loss", "words"),
    [
        (2.0, "smaller", "larger", "2.00x smaller"),
        (0.9, "smaller", "larger", "1.11x larger"),
        (1.3, "faster", "slower", "1.30x faster"),
        (0.76, "faster", "slower", "1.32x slower"),
        (1.001, "faster", "slower", "unchanged"),
        (None, "faster", "slower", "-"),
    ],
)
def test_ratio_wording(ratio: float | None, gain: str, loss: str, words: str) -> None:
    assert change(ratio, gain=gain, loss=loss) == words
