"""Random-init Llama-architecture causal LMs of any size, written as a user uploads them (sharded
safetensors, config.json, SmolLM2's tokenizer) one tensor at a time, so a model larger than half
this machine's memory can be made without holding it: the memory-bound test and the bench's
memory-growth rows use them.

Values are normal with a standard deviation of 0.02, as transformers initialises Llama (norm
weights 1): the model generates nonsense, but every compression step and measurement runs on it
as on a trained one, at its size."""

from __future__ import annotations

from pathlib import Path

import torch

SHARD_BYTES = 2 << 30  # shards of about 2 GiB, as Hugging Face's own uploads are split
INIT_STD = 0.02


def random_llama_config(
    *, hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int
) -> object:
    from transformers import AutoConfig

    from scripts.smollm2 import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    config = AutoConfig.for_model(
        "llama",
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        tie_word_embeddings=True,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config.architectures = ["LlamaForCausalLM"]
    return config


def save_random_llama(
    folder: Path,
    *,
    hidden: int,
    intermediate: int,
    layers: int,
    heads: int,
    kv_heads: int,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> int:
    """Writes the model to ``folder``; returns its weight bytes."""
    from transformers import AutoModelForCausalLM

    from compressor.llm.shards import ShardWriter
    from scripts.smollm2 import smollm2_tokenizer

    config = random_llama_config(
        hidden=hidden, intermediate=intermediate, layers=layers, heads=heads, kv_heads=kv_heads
    )
    with torch.device("meta"):  # names and shapes only: nothing allocated
        shapes = {
            k: v.shape for k, v in AutoModelForCausalLM.from_config(config).state_dict().items()
        }
    shapes.pop("lm_head.weight", None)  # tied to the embedding table
    generator = torch.Generator().manual_seed(seed)
    writer = ShardWriter(folder, shard_bytes=SHARD_BYTES)
    total = 0
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            tensor = torch.ones(shape, dtype=dtype)
        else:
            tensor = torch.randn(shape, generator=generator, dtype=dtype).mul_(INIT_STD)
        total += tensor.numel() * tensor.element_size()
        writer.put(name, tensor)
        del tensor
    writer.finish(single_file=True)
    config.dtype = dtype  # type: ignore[attr-defined]
    config.save_pretrained(str(folder))  # type: ignore[attr-defined]
    smollm2_tokenizer().save_pretrained(str(folder))
    return total


__all__ = ["random_llama_config", "save_random_llama"]
