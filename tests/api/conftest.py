from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.fixtures.helpers import upload_ready
from tests.fixtures.stack import Stack, redis_db_above, running_stack

LIMIT = 150 * 1024 * 1024


@contextmanager
def api_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, *, broker_url: str | None = None
) -> Iterator[Stack]:
    """PostgreSQL + Redis (one kind: CI time; e2e covers both), no compute pool: jobs stay
    queued, uploads are still inspected."""
    with running_stack(
        "scaleout",
        tmp_path_factory.mktemp(name),
        worker=False,
        broker_url=broker_url,
        MODELPRESS_MAX_UPLOAD_BYTES=str(LIMIT),
    ) as running:
        yield running


def uploaded_minilm(stack: Stack, minilm_targz: bytes) -> Iterator[str]:
    with stack.client() as client:
        model = upload_ready(client, minilm_targz, "minilm.tar.gz")
        yield model["id"]
        client.delete(f"/v1/models/{model['id']}")


# One stack and one inspected MiniLM for every module in this package that leaves them as it
# found them: a stack and a MiniLM inspection per module cost CI minutes. So tests here compare
# rows and files before and after instead of expecting them empty (test_bad_input.leftovers).
# A module that needs settings of its own, or stops the stack's workers, or deletes what others
# use, overrides `api` (and `model_id`) in its own file, e.g. with `own_api`.


@pytest.fixture(scope="package")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    broker = redis_db_above(os.environ.get("MODELPRESS_TEST_BROKER_URL", ""), 2)
    with api_stack(tmp_path_factory, "api-shared", broker_url=broker) as running:
        yield running


@pytest.fixture(scope="package")
def model_id(api: Stack, minilm_targz: bytes) -> Iterator[str]:
    yield from uploaded_minilm(api, minilm_targz)


@pytest.fixture(scope="module")
def own_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack for this module alone, on the test Redis database like every module stack."""
    with api_stack(
        tmp_path_factory, f"api-{request.module.__name__.rsplit('.', 1)[-1]}"
    ) as running:
        yield running
