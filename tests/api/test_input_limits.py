"""Input the service cannot use is refused with a 4xx that says why, and rejection reasons
never show where the server keeps files (issue 28, item 4)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.labels import InvalidLabels, parse_form_labels
from compressor.errors import InvalidRecipeError
from compressor.formats.hf import max_sequence_length
from compressor.recipe import check_target_fits_model
from compressor.target import Target
from tests.api.test_bad_input import assert_nothing_left, leftovers
from tests.fixtures.helpers import (
    assert_problem,
    npz_bytes,
    upload,
    upload_dataset_ready,
    upload_ready,
    wait_for_model,
)
from tests.fixtures.stack import Stack
from workers.reasons import relative_reason

DEEP_LABELS = "[" * 40_000  # under the form field's 64 KB limit; json.loads recursed past it
POSITIONS = 16  # the tiny model's max_position_embeddings
INT8 = [{"technique": "quantization", "scheme": "int8_dynamic"}]


def _zip_dir(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
    return buf.getvalue()


def _tiny_bert(folder: Path, **config: Any) -> Path:
    """A random-init BERT small enough to inspect in a second; no tokenizer."""
    import transformers

    bert = transformers.BertConfig(
        vocab_size=64,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=POSITIONS,
        type_vocab_size=1,
    )
    transformers.BertModel(bert).save_pretrained(folder, safe_serialization=True)
    if config:
        path = folder / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return folder


class TestLabelNesting:
    def test_parser_refuses_deep_nesting_without_recursing(self) -> None:
        for raw in (DEEP_LABELS, '{"a":' * 10_000, '{"a": {"b": {"c": {"d": {"e": "f"}}}}}'):
            with pytest.raises(InvalidLabels, match="nested more than"):
                parse_form_labels(raw)
        # Brackets inside strings are text, not nesting.
        assert parse_form_labels('{"team": "[[[[[{{{{\\"x"}') == {"team": '[[[[[{{{{"x'}

    @pytest.mark.parametrize("route", ["/v1/models", "/v1/datasets"])
    def test_deep_labels_are_422(self, api: Stack, route: str) -> None:
        as_found = leftovers(api)
        with api.client() as client:
            response = client.post(
                route, files={"file": ("x.bin", b"irrelevant")}, data={"labels": DEEP_LABELS}
            )
        body = assert_problem(response, 422)
        assert body["type"] == "/problems/invalid-labels", body
        assert "nested" in body["detail"]
        assert_nothing_left(api, as_found)

    def test_deep_json_job_body_is_4xx(self, api: Stack) -> None:
        with api.client() as client:
            response = client.post(
                "/v1/jobs", content=DEEP_LABELS, headers={"content-type": "application/json"}
            )
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.fixture(scope="module")
def tiny_bert_id(api: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    content = _zip_dir(_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))
    with api.client() as client:
        model = upload_ready(client, content, "tiny-bert.zip")
        yield model["id"]
        client.delete(f"/v1/models/{model['id']}")


class TestSequenceLength:
    def test_limit_from_config(self) -> None:
        assert max_sequence_length({"model_type": "bert", "max_position_embeddings": 512}) == 512
        assert max_sequence_length({"model_type": "gpt2", "n_positions": 1024}) == 1024
        # RoBERTa's positions start after the padding index: 514 rows, 512 tokens.
        roberta = {"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}
        assert max_sequence_length(roberta) == 512
        assert max_sequence_length({"model_type": "t5"}) is None
        check_target_fits_model(Target(sequence_length=512), inspection={})
        with pytest.raises(InvalidRecipeError, match="at most 512"):
            check_target_fits_model(
                Target(sequence_length=513), inspection={"max_sequence_length": 512}
            )

    def test_inspection_records_the_limit(self, api: Stack, tiny_bert_id: str) -> None:
        with api.client() as client:
            model = client.get(f"/v1/models/{tiny_bert_id}").json()
        assert model["inspection"]["max_sequence_length"] == POSITIONS

    def test_recipe_job_longer_than_the_model_is_422(self, api: Stack, tiny_bert_id: str) -> None:
        with api.client() as client:
            too_long = {"model_id": tiny_bert_id, "recipe": {"steps": INT8}}
            too_long["target"] = {"sequence_length": POSITIONS * 2}
            body = assert_problem(client.post("/v1/jobs", json=too_long), 422)
            assert body["type"] == "/problems/target-too-large", body
            assert f"at most {POSITIONS} tokens" in body["detail"]
            assert body["max_sequence_length"] == POSITIONS
            # At the limit the same job is accepted: the refusal was the length, nothing else.
            fits = {**too_long, "target": {"sequence_length": POSITIONS}}
            accepted = client.post("/v1/jobs", json=fits)
            assert accepted.status_code == 202, accepted.text
            client.post(f"/v1/jobs/{accepted.json()['id']}/cancel")

    def test_goal_job_longer_than_the_model_is_422(self, api: Stack, tiny_bert_id: str) -> None:
        tokens = np.ones((8, POSITIONS), dtype=np.int64)
        with api.client() as client:
            dataset = upload_dataset_ready(
                client, npz_bytes(input_ids=tokens, attention_mask=tokens), "eval.npz"
            )
            goal = {"objective": "size", "min_cosine": 0.9, "time_budget_s": 60}
            body = {"model_id": tiny_bert_id, "goal": goal, "data": {"eval": dataset["id"]}}
            too_long = {**body, "target": {"sequence_length": POSITIONS + 1}}
            problem = assert_problem(client.post("/v1/jobs", json=too_long), 422)
            assert f"at most {POSITIONS} tokens" in problem["detail"], problem
            accepted = client.post(
                "/v1/jobs", json={**body, "target": {"sequence_length": POSITIONS}}
            )
            assert accepted.status_code == 202, accepted.text
            client.post(f"/v1/jobs/{accepted.json()['id']}/cancel")
            client.delete(f"/v1/datasets/{dataset['id']}")


class TestRejectionReasonPaths:
    def test_paths_made_relative_to_the_upload(self, tmp_path: Path) -> None:
        work = tmp_path / "data" / "tmp" / "inspect-abc"
        reason = f"cannot read {work}/model/sub/config.json; see {work}/model and {work}/x.bin"
        found = relative_reason(
            reason, upload_root=work / "model", server_dirs=(work, tmp_path / "data")
        )
        assert found == "cannot read sub/config.json; see the upload and <server path>"

    def test_rejected_upload_names_no_server_path(
        self, api: Stack, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        # transformers' refusal of custom code quotes the directory it was given, twice.
        folder = _tiny_bert(
            tmp_path_factory.mktemp("custom-code"),
            model_type="custom",
            auto_map={"AutoConfig": "configuration_custom.CustomConfig"},
        )
        with api.client() as client:
            created = upload(client, _zip_dir(folder))
            assert created.status_code == 201, created.text
            model = wait_for_model(client, created.json()["id"])
            client.delete(f"/v1/models/{model['id']}")
        reason = str(model["rejection_reason"])
        assert model["status"] == "rejected", model
        assert "config.json" in reason, reason
        for secret in ("/tmp", str(api.data_dir), "inspect-", str(Path.cwd())):
            assert secret not in reason, reason
