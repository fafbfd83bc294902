"""Runtime onnxruntime-genai: our int4 codes reach MatMulNBits unchanged, and the folder loads and
generates in ONNX Runtime GenAI with the logits of a torch model holding the dequantized weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from safetensors.torch import load_file

from compressor.errors import UnsupportedModelError
from compressor.llm.genai import build_genai_folder, builder_int4_peer
from compressor.llm.gptq_checkpoint_sink import GptqCheckpointSink
from compressor.llm.quantized import QuantizedWeight
from tests.fixtures.causal_lm import save_tiny_causal_lm

os.environ["HF_HUB_OFFLINE"] = "1"
PROMPT = "The quick brown fox jumps over"


def rtn(weight: torch.Tensor, bits: int, group: int, symmetric: bool) -> QuantizedWeight:
    """Round-to-nearest on ``group``-wide blocks: the simplest quantizer, for the tests."""
    out_features, in_features = weight.shape
    blocks = weight.reshape(out_features, in_features // group, group)
    if symmetric:
        scale = (blocks.abs().amax(-1) / (2 ** (bits - 1) - 1)).clamp(min=1e-8)
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        low, high = blocks.amin(-1).clamp(max=0), blocks.amax(-1).clamp(min=0)
        scale = ((high - low) / (2**bits - 1)).clamp(min=1e-8)
        zero = torch.round(-low / scale).clamp(0, 2**bits - 1)
    codes = (torch.round(blocks / scale[..., None]) + zero[..., None]).clamp(0, 2**bits - 1)
    return QuantizedWeight(
        codes=codes.reshape(out_features, in_features).to(torch.uint8),
        scales=scale.float(),
        zero_points=None if symmetric else zero.to(torch.uint8),
        bits=bits,
        group_size=group,
    )


def quantize_into_sink(
    source: Path, checkpoint: Path, *, group: int, symmetric: bool, lm_head_bits: int
) -> dict[str, QuantizedWeight]:
    """What the layer walker does, by RTN: every decoder Linear at int4, the LM head at
    ``lm_head_bits`` (from the embedding table when tied), the rest float."""
    config = json.loads((source / "config.json").read_text())
    tied = bool(config.get("tie_word_embeddings", False))
    state = load_file(str(source / "model.safetensors"))
    if tied:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    sink = GptqCheckpointSink(checkpoint)
    quantized: dict[str, QuantizedWeight] = {}
    for key, tensor in state.items():
        module = key.removesuffix(".weight")
        if key.endswith(".weight") and tensor.ndim == 2 and "embed_tokens" not in key:
            bits = lm_head_bits if module == "lm_head" else 4
            quantized[module] = rtn(tensor, bits, group, symmetric)
            sink.add_quantized(module, quantized[module], state.get(f"{module}.bias"))
        elif not (key.endswith(".bias") and key.removesuffix(".bias") + ".weight" in state):
            sink.add_float(key, tensor)
    sink.close(config, tied_embeddings=tied)
    return quantized


def dequantized_torch_model(source: Path, quantized: dict[str, QuantizedWeight]):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32).eval()
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, weight in quantized.items():
            # tied: setting lm_head sets the embedding too, as GatherBlockQuantized shares it
            modules[name].weight.copy_(weight.dequantize())
    return model


def genai_prompt_logits(folder: Path, token_ids: list[int]) -> np.ndarray:
    import onnxruntime_genai as og

    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(token_ids) + 8, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(token_ids)
    return np.asarray(generator.get_output("logits"))[0]


def genai_greedy(folder: Path, token_ids: list[int], new_tokens: int) -> list[int]:
    import onnxruntime_genai as og

    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(token_ids) + new_tokens, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(token_ids)
    while not generator.is_done():
        generator.generate_next_token()
    return list(generator.get_sequence(0))[len(token_ids) :]


def matmul_nbits(folder: Path) -> dict[str, tuple[onnx.NodeProto, dict[str, np.ndarray]]]:
    model = onnx.load(str(folder / "model.onnx"))
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    return {
        node.name: (node, {name: weights[name] for name in node.input if name in weights})
        for node in model.graph.node
        if node.op_type == "MatMulNBits"
    }


def unpack_codes(packed: np.ndarray, bits: int, k: int) -> np.ndarray:
    """MatMulNBits' B (N, blocks, blob) uint8, low bits first, back to (N, K) codes."""
    flat = packed.reshape(packed.shape[0], -1)
    per_byte = 8 // bits
    codes = np.stack([(flat >> (bits * i)) & (2**bits - 1) for i in range(per_byte)], axis=-1)
    return codes.reshape(packed.shape[0], -1)[:, :k]


def expected_weight(quantized: dict[str, QuantizedWeight], node_name: str) -> QuantizedWeight:
    """Our weight behind a builder node, concatenated along N where the builder fused q/k/v."""
    parts = node_name.strip("/").split("/")[:-1]  # e.g. model, layers.0, attn, qkv_proj
    module = ".".join(parts).replace(".attn.", ".self_attn.")
    if module in quantized:
        return quantized[module]
    prefix, kind = module.rsplit(".", 1)
    if kind in ("gate_proj", "up_proj"):  # phi3's fused gate_up_proj, split by the builder
        fused = quantized[f"{prefix}.gate_up_proj"]
        half = fused.codes.shape[0] // 2
        rows = slice(0, half) if kind == "gate_proj" else slice(half, None)
        pieces = [replace(fused, codes=fused.codes[rows], scales=fused.scales[rows])]
    else:
        pieces = [quantized[f"{prefix}.{p}"] for p in ("q_proj", "k_proj", "v_proj")]
    return QuantizedWeight(
        codes=torch.cat([p.codes for p in pieces]),
        scales=torch.cat([p.scales for p in pieces]),
        zero_points=None,
        bits=pieces[0].bits,
        group_size=pieces[0].group_size,
    )


def assert_codes_unchanged(folder: Path, quantized: dict[str, QuantizedWeight], group: int):
    nodes = matmul_nbits(folder)
    assert len(nodes) >= 5  # q/k/v (fused), o, mlp, lm_head
    for name, (node, weights) in nodes.items():
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ours = expected_weight(quantized, name)
        assert attrs["block_size"] == group and attrs["bits"] == ours.bits, name
        codes = unpack_codes(weights[node.input[1]], ours.bits, attrs["K"])
        np.testing.assert_array_equal(codes, ours.codes.numpy(), err_msg=name)
        scales = weights[node.input[2]].reshape(ours.scales.shape)
        np.testing.assert_array_equal(scales, ours.scales.numpy(), err_msg=name)


@pytest.fixture(scope="module")
def tokenizer_ids():
    from transformers import AutoTokenizer

    def encode(folder: Path) -> list[int]:
        return AutoTokenizer.from_pretrained(str(folder))(PROMPT)["input_ids"]

    return encode


CASES = [
    ("llama", 32, True, 4),  # tied: embedding shares the int4 LM head
    ("llama", 64, False, 8),  # tied, asymmetric, int8 LM head shared by the lookup
    ("qwen2", 32, True, 8),  # untied
    ("qwen2", 64, False, 4),
    ("mistral", 64, True, 8),
    ("phi3", 32, True, 8),
]


@pytest.mark.parametrize(("arch", "group", "symmetric", "lm_head_bits"), CASES)
def test_our_codes_reach_genai_unchanged(
    tmp_path, tokenizer_ids, arch, group, symmetric, lm_head_bits
):
    source = save_tiny_causal_lm(arch, tmp_path / "source")
    checkpoint = tmp_path / "gptq"
    quantized = quantize_into_sink(
        source, checkpoint, group=group, symmetric=symmetric, lm_head_bits=lm_head_bits
    )
    build = build_genai_folder(
        checkpoint,
        tmp_path / "genai",
        cache_dir=tmp_path / "cache",
        tokenizer_dir=source,
        embedding_bits=None,  # untied embedding stays float so torch sees the same table
        accuracy_level=1,  # float32 activations: logits comparable to torch
    )
    assert (build.folder / "genai_config.json").exists()
    assert_codes_unchanged(build.folder, quantized, group)

    ids = tokenizer_ids(source)
    ours = genai_prompt_logits(build.folder, ids)
    reference = dequantized_torch_model(source, quantized)(torch.tensor([ids])).logits[0]
    # measured 3e-7 (float32 round-off) at accuracy_level 1
    np.testing.assert_allclose(ours, reference.detach().numpy(), atol=1e-5, rtol=0)
    greedy = reference.argmax(-1)[-1].item()
    assert genai_greedy(build.folder, ids, 1) == [greedy]


def lookup_table(folder: Path) -> tuple[onnx.NodeProto, dict[str, np.ndarray]]:
    model = onnx.load(str(folder / "model.onnx"))
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    node = next(
        n
        for n in model.graph.node
        if n.name.startswith("/model/embed_tokens/") and n.op_type.startswith("Gather")
    )
    return node, {name: weights[name] for name in node.input if name in weights}


def test_untied_embedding_int8_and_int4(tmp_path):
    source = save_tiny_causal_lm("qwen2", tmp_path / "source")
    table = load_file(str(source / "model.safetensors"))["model.embed_tokens.weight"].numpy()
    quantize_into_sink(source, tmp_path / "gptq", group=32, symmetric=True, lm_head_bits=8)
    builds = {
        bits: build_genai_folder(
            tmp_path / "gptq",
            tmp_path / f"e{bits}",
            cache_dir=tmp_path / "c",
            tokenizer_dir=source,
            embedding_bits=bits,
        )
        for bits in (None, 8, 4)
    }
    float_node, _ = lookup_table(builds[None].folder)
    assert float_node.op_type == "Gather"
    node, weights = lookup_table(builds[8].folder)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert node.op_type == "GatherBlockQuantized" and attrs["bits"] == 8
    codes, scales, zero = (weights[node.input[i]] for i in (0, 2, 3))
    block = attrs["block_size"]
    dequantized = (codes.astype(np.float32).reshape(*scales.shape, block) - zero[..., None]) * (
        scales[..., None]
    )
    error = np.abs(dequantized.reshape(table.shape) - table).reshape(*scales.shape, block)
    assert (error <= scales[..., None] / 2 + 1e-7).all()  # round to nearest, nothing worse
    node4, _ = lookup_table(builds[4].folder)
    assert node4.op_type == "GatherBlockQuantized"
    float_bytes = table.size * 4
    saved8 = builds[None].onnx_bytes - builds[8].onnx_bytes
    saved4 = builds[None].onnx_bytes - builds[4].onnx_bytes
    assert 0.7 * float_bytes < saved8 < saved4 < float_bytes
    for build in builds.values():
        assert len(genai_greedy(build.folder, [1, 2, 3], 4)) == 4


@pytest.mark.parametrize("bits", [8, 4, None])
def test_tied_float_lm_head_is_quantized_and_shared_by_builder(tmp_path, bits):
    """The walker left the tied LM head in float: the builder quantizes it to ``bits`` and the
    lookup reads the same table (GatherBlockQuantized), or one float table when ``None``."""
    source = save_tiny_causal_lm("llama", tmp_path / "source")
    sink = GptqCheckpointSink(tmp_path / "gptq")
    for key, tensor in load_file(str(source / "model.safetensors")).items():
        if tensor.ndim == 2 and "embed_tokens" not in key:
            sink.add_quantized(key.removesuffix(".weight"), rtn(tensor, 4, 32, True))
        else:
            sink.add_float(key, tensor)
    sink.close(json.loads((source / "config.json").read_text()), tied_embeddings=True)
    build = build_genai_folder(
        tmp_path / "gptq",
        tmp_path / "out",
        cache_dir=tmp_path / "c",
        tokenizer_dir=source,
        embedding_bits=bits,
    )
    lookup, _ = lookup_table(build.folder)
    head = matmul_nbits(build.folder).get("/lm_head/MatMul_Q4")
    if bits is None:
        assert lookup.op_type == "Gather" and lookup.input[0].endswith("Transpose/output_0")
        assert head is None
    else:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in lookup.attribute}
        assert lookup.op_type == "GatherBlockQuantized" and attrs["bits"] == bits
    table = 49152 * 64
    per_value = 4 if bits is None else bits / 8 + 4 / 32  # codes + a float32 scale per 32
    assert build.onnx_bytes < table * per_value * 1.3  # one table, not two
    assert len(genai_greedy(build.folder, [1, 2, 3], 3)) == 3


def test_builder_peer_builds_and_generates(tmp_path):
    source = save_tiny_causal_lm("llama", tmp_path / "source")
    peer = builder_int4_peer(source, tmp_path / "peer", cache_dir=tmp_path / "cache")
    assert peer.options["precision"] == "int4" and peer.onnx_bytes > 0
    nodes = matmul_nbits(peer.folder)
    assert nodes and all(
        onnx.helper.get_attribute_value(a) == 4
        for node, _ in nodes.values()
        for a in node.attribute
        if a.name == "bits"
    )
    assert len(genai_greedy(peer.folder, [1, 2, 3], 5)) == 5


def test_gpt2_is_refused_by_name(tmp_path):
    source = save_tiny_causal_lm("gpt2", tmp_path / "source")
    with pytest.raises(UnsupportedModelError, match="LlamaForCausalLM"):
        builder_int4_peer(source, tmp_path / "peer", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("method", ["gptq", "awq"])  # awq: the scaled norms reach GenAI too
def test_the_walk_puts_a_tied_head_on_the_int4_grid_that_genai_serves(
    tmp_path, tokenizer_ids, method
):
    """head_bits=4: the walker GPTQs the LM head (groups of HEAD_GROUP beside the layers' 64) and a
    tied embedding reads that same table; the torch model of the dequantized walk (what judges
    the candidate) gives GenAI's logits, so the judged model is the served one."""
    from compressor.llm.candidates import _Tee
    from compressor.llm.ct_sink import DequantizedSink
    from compressor.llm.layerwise import HEAD_GROUP, quantize_causal_lm

    source = save_tiny_causal_lm("llama", tmp_path / "source")
    ids = torch.randint(0, 1000, (4, 32), generator=torch.Generator().manual_seed(0))
    sink = _Tee(DequantizedSink(tmp_path / "deq"), GptqCheckpointSink(tmp_path / "gptq"))
    summary = quantize_causal_lm(source, sink, bits=4, method=method, calibration=ids, head_bits=4)
    head = next(r for r in summary.records if r.name == "lm_head")
    assert head.group_size == HEAD_GROUP and head.relative_error is not None
    reference = load_file(str(tmp_path / "deq" / "model.safetensors"))
    table = reference["model.embed_tokens.weight"]
    assert table.reshape(-1, HEAD_GROUP).unique(dim=0).shape[0] > 1
    for row in table.reshape(-1, HEAD_GROUP)[:64].double():  # each group on its 4-bit grid
        steps = row.unique().diff()
        levels = (row.max() - row.min()) / steps.min()
        assert levels <= 15 + 1e-3 and torch.allclose(
            steps / steps.min(), (steps / steps.min()).round(), atol=1e-3
        )
    build = build_genai_folder(
        tmp_path / "gptq", tmp_path / "genai", cache_dir=tmp_path / "cache",
        tokenizer_dir=source, embedding_bits=4, accuracy_level=1,
    )  # fmt: skip
    prompt = tokenizer_ids(source)
    from transformers import AutoModelForCausalLM

    judged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "deq"), dtype=torch.float32)
    expected = judged(torch.tensor([prompt])).logits[0].detach().numpy()
    np.testing.assert_allclose(genai_prompt_logits(build.folder, prompt), expected, atol=1e-5)
