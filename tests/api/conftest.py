from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.helpers import upload_ready
from tests.fixtures.stack import Stack, running_stack

LIMIT = 150 * 1024 * 1024


@pytest.fixture(scope="module", params=["scaleout"])  # one kind: CI time; e2e covers both
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    with running_stack(
        request.param, tmp, worker=False, MODELPRESS_MAX_UPLOAD_BYTES=str(LIMIT)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def model_id(api: Stack, minilm_targz: bytes) -> Iterator[str]:
    with api.client() as client:
        model = upload_ready(client, minilm_targz, "minilm.tar.gz")
        yield model["id"]
        client.delete(f"/v1/models/{model['id']}")
