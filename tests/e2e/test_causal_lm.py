"""A causal LM through the API to both LLM runtimes: int4 jobs for vllm (compressed-tensors) and
onnxruntime-genai, each artifact opened in its runtime to generate, and the report's perplexity
and greedy agreement recomputed here, outside the engine.

A tiny random-init Llama keeps this module in seconds of compute; SmolLM2's figures are in the
bench (docs/benchmarks.md), measured by the same code."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from compressor.llm.texts import default_prompts
from tests.fixtures.causal_lm import save_tiny_causal_lm
from tests.fixtures.helpers import unpack_artifact, upload_dataset_ready, upload_ready, wait_for_job
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.e2e

EVAL_TEXT = (
    "The ferry left the harbour an hour late because a lorry had broken down on the ramp. "
    "Most passengers took it calmly; a few bought coffee and watched the gulls follow the wake. "
    "By the time the island came into view the sun had burned through the morning haze, and the "
    "children at the rail were counting the white houses above the beach. The captain "
    "apologised over the speakers and promised the return crossing would leave on time."
)
CALIBRATION = [
    "Water the seedlings in the evening, when the soil is cool and less of it evaporates. Thin "
    "them once the second leaves appear, and keep the strongest plant in each pot.",
    "The committee met on Tuesday and agreed to repair the library roof before winter. The "
    "treasurer warned that the grant would cover only half of the cost, so a sale of old books "
    "was planned for the spring.",
    "She folded the map, put it in her coat pocket and walked towards the old bridge. The river "
    "was high after a week of rain, and the path along the bank had turned to mud.",
    "Preheat the oven, grease the tin, and beat the butter and sugar until pale. Add the eggs one "
    "at a time, fold in the flour, and bake for forty minutes or until a skewer comes out clean.",
]
NEW_TOKENS = 12


def _zip_dir(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"tiny-llama/{path.name}")
    return buf.getvalue()


def _jsonl(texts: list[str]) -> bytes:
    return "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()


@pytest.fixture(scope="module")
def stack(scaleout_stack: Stack) -> Stack:
    return scaleout_stack


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_causal_lm("llama", tmp_path_factory.mktemp("lm") / "tiny-llama")


def _run_job(
    stack: Stack,
    folder: Path,
    runtime: str,
    method: str,
    scheme: str = "int4_weight_only",
    step: dict | None = None,
) -> tuple[dict, bytes]:
    with stack.client() as client:
        model = upload_ready(client, _zip_dir(folder), "tiny-llama.zip")
        assert model["inspection"]["kind"] == "causal_lm", model["inspection"]
        calibration = upload_dataset_ready(client, _jsonl(CALIBRATION), "calibration.jsonl")
        evaluation = upload_dataset_ready(client, _jsonl([EVAL_TEXT]), "eval.jsonl")
        step = step or {"technique": "quantization", "scheme": scheme, "method": method}
        body = {
            "model_id": model["id"],
            "recipe": {"steps": [step]},
            "target": {"runtime": runtime},
            "data": {"calibration": calibration["id"], "eval": evaluation["id"]},
        }
        refused = client.post("/v1/jobs", json={**body, "target": {"runtime": "onnxruntime"}})
        assert refused.status_code == 422, refused.text
        assert "onnxruntime-genai" in refused.json()["detail"], refused.json()
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        archive = client.get(f"/v1/jobs/{job['id']}/artifact").content
    return report, archive


def _perplexity(model: Any, ids: torch.Tensor) -> float:
    with torch.no_grad():
        loss = model(input_ids=ids[None], labels=ids[None]).loss
    return math.exp(float(loss))


def _greedy(model: Any, tokenizer: Any, prompt: str) -> list[int]:
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=NEW_TOKENS, do_sample=False)
    return out[0, ids["input_ids"].shape[1] :].tolist()


def _agreed(a: list[int], b: list[int]) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _original(folder: Path) -> tuple[Any, Any, torch.Tensor]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    ids = torch.tensor(tokenizer(EVAL_TEXT)["input_ids"])
    return model, tokenizer, ids


def test_vllm_int4_artifact_loads_in_transformers_and_its_figures_hold(
    stack: Stack, tiny_llama: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    report, archive = _run_job(stack, tiny_llama, "vllm", "auto")
    folder = unpack_artifact(archive, tmp_path / "artifact")
    config = json.loads((folder / "config.json").read_text())
    quant = config["quantization_config"]
    assert quant["quant_method"] == "compressed-tensors", quant
    bits = {g["weights"]["num_bits"] for g in quant["config_groups"].values()}
    assert bits == {4}, quant

    original, tokenizer, ids = _original(tiny_llama)
    compressed = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    llm = report["llm"]
    assert llm["method"] in ("rtn", "gptq", "awq") and len(llm["candidates"]) == 3, llm
    refit = "walked again on all 8 blocks" in llm["calibration"]
    assert refit == (llm["method"] != "rtn"), llm["calibration"]
    assert llm["perplexity"]["tokens"] == ids.numel() - 1  # one window: all but the first
    assert llm["perplexity"]["original"] == pytest.approx(_perplexity(original, ids), rel=1e-3)
    assert llm["perplexity"]["compressed"] == pytest.approx(_perplexity(compressed, ids), rel=1e-3)
    agreed = [
        _agreed(_greedy(original, tokenizer, p), _greedy(compressed, tokenizer, p))
        for p in default_prompts()
    ]
    assert llm["generation"]["agreed_tokens"] == agreed
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        layers = {k: handle.get_tensor(k) for k in handle.keys() if ".layers." in k}  # noqa: SIM118
    packed = {k: t for k, t in layers.items() if k.endswith(".weight_packed")}
    assert len(packed) == 2 * 7 and not [k for k in layers if k.endswith("proj.weight")]
    q_proj = packed["model.layers.0.self_attn.q_proj.weight_packed"]
    assert q_proj.dtype == torch.int32 and q_proj.shape == (64, 64 // 8)  # 8 int4 an int32
    # Smaller than the upload; the tiny model is mostly its (16-bit) vocabulary table.
    assert report["compressed"]["model_bytes"] < report["original"]["model_bytes"] / 2


def test_vllm_w8a8_artifact_rounds_activations_in_transformers_as_judged(
    stack: Stack, tiny_llama: Path, tmp_path: Path
) -> None:
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    report, archive = _run_job(stack, tiny_llama, "vllm", "auto", scheme="int8_dynamic")
    folder = unpack_artifact(archive, tmp_path / "artifact")
    quant = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert quant["format"] == "int-quantized", quant
    (group,) = quant["config_groups"].values()
    assert group["input_activations"]["dynamic"] is True, group
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        q_proj = handle.get_tensor("model.layers.0.self_attn.q_proj.weight")
        scale = handle.get_tensor("model.layers.0.self_attn.q_proj.weight_scale")
    assert q_proj.dtype == torch.int8 and q_proj.shape == (64, 64) and scale.shape == (64, 1)

    original, tokenizer, ids = _original(tiny_llama)
    compressed = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    llm = report["llm"]
    assert [c["method"] for c in llm["candidates"]] == ["rtn", "gptq"], llm
    assert llm["bits"] == 8 and llm["symmetric"] is True and "per token" in llm["activations"]
    assert llm["smoothing"]["pairs"] == 2 * 3, llm["smoothing"]
    compressed_ppl = _perplexity(compressed, ids)
    assert llm["perplexity"]["compressed"] == pytest.approx(compressed_ppl, rel=1e-3)
    # the activations really are rounded in that figure: the same weights (smoothed norms
    # included) in float layers give another one
    weights_only = AutoModelForCausalLM.from_pretrained(str(tiny_llama), dtype=torch.float32)
    float_state = {
        k: v.detach().float() for k, v in compressed.named_parameters() if "_scale" not in k
    }
    assert weights_only.load_state_dict(float_state, strict=False).unexpected_keys == []
    assert _perplexity(weights_only.eval(), ids) != pytest.approx(compressed_ppl, rel=1e-6)
    agreed = [
        _agreed(_greedy(original, tokenizer, p), _greedy(compressed, tokenizer, p))
        for p in default_prompts()
    ]
    assert llm["generation"]["agreed_tokens"] == agreed


def test_vllm_2_4_artifact_keeps_the_pattern_and_its_figures_hold(
    stack: Stack, tiny_llama: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    report, archive = _run_job(stack, tiny_llama, "vllm", "", step={"technique": "nm_sparsity"})
    folder = unpack_artifact(archive, tmp_path / "artifact")
    quant = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert quant["sparsity_config"]["sparsity_structure"] == "2:4", quant
    original, tokenizer, ids = _original(tiny_llama)
    compressed = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    down = compressed.model.layers[1].mlp.down_proj.weight
    assert ((down != 0).reshape(down.shape[0], -1, 4).sum(-1) <= 2).all()
    llm = report["llm"]
    assert [c["method"] for c in llm["candidates"]] == ["sparsegpt", "wanda"], llm
    assert llm["sparsity"].startswith("2:4 on every decoder linear (50%"), llm["sparsity"]
    assert llm["perplexity"]["original"] == pytest.approx(_perplexity(original, ids), rel=1e-3)
    assert llm["perplexity"]["compressed"] == pytest.approx(_perplexity(compressed, ids), rel=1e-3)
    agreed = [
        _agreed(_greedy(original, tokenizer, p), _greedy(compressed, tokenizer, p))
        for p in default_prompts()
    ]
    assert llm["generation"]["agreed_tokens"] == agreed


def test_genai_int4_folder_generates_in_onnxruntime_genai(
    stack: Stack, tiny_llama: Path, tmp_path: Path
) -> None:
    import onnx
    import onnxruntime_genai as og

    report, archive = _run_job(stack, tiny_llama, "onnxruntime-genai", "gptq")
    folder = unpack_artifact(archive, tmp_path / "artifact")
    assert (folder / "genai_config.json").is_file()
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    bits = {
        n.name: {a.name: a.i for a in n.attribute}["bits"]
        for n in graph.node
        if n.op_type == "MatMulNBits"
    }
    layers = [b for name, b in bits.items() if "/layers." in name]
    assert layers and set(layers) == {4}, bits  # decoder layers int4; the lm_head int8
    assert not [n for n in graph.node if n.op_type == "MatMul" and "/layers." in n.name]
    assert any("past_key_values" in i.name or "past" in i.name for i in graph.input)

    original, tokenizer, _ids = _original(tiny_llama)
    model = og.Model(str(folder))
    agreed = []
    for prompt in default_prompts():
        ids = tokenizer(prompt)["input_ids"]
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=len(ids) + NEW_TOKENS)
        generator = og.Generator(model, params)
        generator.append_tokens(ids)
        out: list[int] = []
        while not generator.is_done() and len(out) < NEW_TOKENS:
            generator.generate_next_token()
            out.append(int(generator.get_next_tokens()[0]))
        agreed.append(_agreed(_greedy(original, tokenizer, prompt), out))
    prefill = og.GeneratorParams(model)
    prefill.set_search_options(max_length=len(_ids) + 1)
    generator = og.Generator(model, prefill)
    generator.append_tokens(_ids.tolist())
    logits = torch.from_numpy(np.array(generator.get_output("logits"))[0, :-1]).float()
    genai_ppl = math.exp(float(torch.nn.functional.cross_entropy(logits, _ids[1:])))
    llm = report["llm"]
    assert llm["perplexity"]["original"] == pytest.approx(_perplexity(original, _ids), rel=1e-3)
    assert llm["perplexity"]["compressed"] == pytest.approx(genai_ppl, rel=1e-3)
    assert llm["method"] == "gptq"
    assert llm["generation"]["agreed_tokens"] == agreed
    assert llm["decode"]["runtime"] == "onnxruntime-genai"
    assert llm["decode"]["tokens_per_s_compressed"] > 0


def test_a_perplexity_goal_picks_the_smallest_setting_within_budget(
    stack: Stack, tiny_llama: Path, tmp_path: Path
) -> None:
    """A size goal with max_perplexity_increase and no data.eval (the default held-out text):
    one candidate per setting vLLM serves (one with 8-bit linears among 4-bit ones), each
    child's own report read back, the smallest within budget chosen, and its artifact loads."""
    from transformers import AutoModelForCausalLM

    with stack.client() as client:
        model = upload_ready(client, _zip_dir(tiny_llama), "tiny-llama.zip")
        calibration = upload_dataset_ready(client, _jsonl(CALIBRATION), "calibration.jsonl")
        goal = {"objective": "size", "max_perplexity_increase": 0.5}
        body = {
            "model_id": model["id"],
            "goal": goal,
            "target": {"runtime": "vllm"},
            "data": {"calibration": calibration["id"]},
        }
        for wrong, words in (
            ({"goal": {"objective": "size", "min_cosine": 0.99}}, "max_perplexity_increase"),
            ({"target": {"runtime": "onnxruntime"}}, "llama.cpp"),
        ):
            refused = client.post("/v1/jobs", json={**body, **wrong})
            assert refused.status_code == 422 and words in refused.json()["detail"], refused.text
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        search = report["search"]
        own = {
            c["job_id"]: client.get(f"/v1/jobs/{c['job_id']}/report").json()["report"]
            for c in search["candidates"]
        }
        archive = client.get(f"/v1/jobs/{job['id']}/artifact").content
    candidates = search["candidates"]
    assert len(candidates) == 4 and search["rounds"] == 1, candidates
    # one child kept the attention values and MLP down projections at 8 bits, and says so
    kept = [own[c["job_id"]]["llm"].get("kept_8bit") for c in candidates]
    mixed = [k for k in kept if k]
    assert len(mixed) == 1 and all(n.endswith(("v_proj", "down_proj")) for n in mixed[0]), kept
    for c in candidates:
        assert c["budget_value"] == own[c["job_id"]]["llm"]["perplexity"]["relative_increase"]
        assert c["meets_budget"] == (c["budget_value"] <= 0.5)
        assert own[c["job_id"]]["llm"]["perplexity"]["text"].startswith("modelpress's default")
    meeting = [c for c in candidates if c["meets_budget"]]
    assert meeting, candidates
    assert search["chosen_job_id"] == min(meeting, key=lambda c: c["bytes"])["job_id"]
    assert "perplexity increase <= 0.5" in search["budget"]
    folder = unpack_artifact(archive, tmp_path / "artifact")
    AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
