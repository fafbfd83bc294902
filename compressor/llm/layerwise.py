"""Quantize a causal LM one decoder layer at a time, so memory follows the largest layer.

The non-layer parts (embeddings, rotary tables, final norm, lm_head) are built for real from a
one-layer copy of the config; each decoder layer is then a copy of that layer with its own
weights read from the memory-mapped safetensors. The calibration activations enter the first
layer as the model itself feeds it (its arguments are recorded by a catcher), every Linear's
input Hessian is accumulated on them, the layer is quantized, and the quantized layer's outputs
feed the next, as in GPTQ's reference code. Finished tensors go to the sink at once.
"""

from __future__ import annotations

import contextlib
import copy
import json
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.llm.awq import ScaleChoice, awq_search, scale_layer
from compressor.llm.heap import trim
from compressor.llm.linears import linear_weight, quantizable, set_weight
from compressor.llm.quantized import QuantizedWeight, WeightSink
from compressor.llm.rounding import default_group_size, gptq, output_error, rtn
from compressor.llm.smoothquant import InputStats, quantize_tokens
from compressor.llm.sparsity import prune

HEAD_GROUP = 16  # the LM head's groups at 4 bits (see _quantize_head)


@dataclass(frozen=True)
class ModuleRecord:
    name: str
    in_features: int
    group_size: int
    damp: float | None
    relative_error: float | None
    bits: int | None = None  # None: pruned, not on a grid


@dataclass
class WalkSummary:
    method: str
    bits: int
    records: list[ModuleRecord] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    # AWQ's or SmoothQuant's, by layer
    scales: dict[str, list[ScaleChoice]] = field(default_factory=dict)

    def kept_8bit(self) -> list[str]:
        """The linears a keep_8bit step put on 8 bits under a 4-bit walk."""
        return [r.name for r in self.records if r.bits == 8 and self.bits != 8]


class _Weights:
    """Tensors by name from the upload's safetensors (one file or shards), read on demand.

    The files are memory-mapped, and every page a read touches stays mapped, and counted in
    the job's memory, for as long as the file is open: ``release`` closes them after each layer
    (SmolLM2-135M: the walk grew by each layer's 14 MB until it held the whole upload)."""

    def __init__(self, folder: Path) -> None:
        index = folder / "model.safetensors.index.json"
        files = (
            sorted(set(json.loads(index.read_text())["weight_map"].values()))
            if index.exists()
            else [p.name for p in sorted(folder.glob("*.safetensors"))]
        )
        self._paths = [folder / f for f in files]
        self._handles: dict[Path, Any] = {}
        self._where: dict[str, Path] = {}
        for path in self._paths:
            self._where.update(dict.fromkeys(self._handle(path).keys(), path))
        self.release()

    def _handle(self, path: Path) -> Any:
        from safetensors import safe_open

        if path not in self._handles:
            self._handles[path] = safe_open(str(path), framework="pt")
        return self._handles[path]

    def names(self) -> list[str]:
        return list(self._where)

    def get(self, name: str) -> torch.Tensor:
        return self._handle(self._where[name]).get_tensor(name)

    def release(self) -> None:
        self._handles.clear()
        trim()


class _Caught(Exception):
    pass


class _Catcher(torch.nn.Module):
    """Stands in for the first layer: records what the model passes it, then stops the model."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.layer, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        raise _Caught


def _layer_list(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.split(".")[-1] in ("layers", "h"):
            return name, module
    raise UnsupportedModelError("found no decoder layer list (model.layers or transformer.h)")


def _skeleton(source_dir: Path, weights: _Weights) -> tuple[Any, Any, str, torch.nn.Module]:
    """The model with one layer, its non-layer weights loaded; the layer list's name and the
    template layer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(source_dir))
    one = copy.deepcopy(config)
    one.num_hidden_layers = 1
    if isinstance(getattr(one, "layer_types", None), list):
        one.layer_types = one.layer_types[:1]
    model = AutoModelForCausalLM.from_config(one, dtype=torch.float32).eval()
    prefix, layers = _layer_list(model)
    state = {
        k: weights.get(k).float()
        for k in model.state_dict()
        if not k.startswith(prefix + ".") and k in weights.names()
    }
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    return config, model, prefix, layers[0]


def _capture(model: Any, layers: torch.nn.ModuleList, calibration: torch.Tensor) -> _Catcher:
    catcher = _Catcher(layers[0])
    layers[0] = catcher
    for row in calibration:
        with contextlib.suppress(_Caught):
            model(input_ids=row[None], use_cache=False)
    layers[0] = catcher.layer
    return catcher


def _layer_out(layer: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    out = layer(*args, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def quantize_causal_lm(
    source_dir: Path,
    sink: WeightSink,
    *,
    bits: int,
    method: Literal["rtn", "gptq", "awq", "sparsegpt", "wanda"],
    calibration: torch.Tensor | None,
    group_size: int | None = None,
    symmetric: bool = False,
    damp: float = 0.01,
    progress: Callable[[float], None] | None = None,
    head_bits: int | None = None,
    w8a8_smoothing: float | None = None,
    sparsity: tuple[int, int] | None = None,
    keep_8bit: Sequence[str] = (),
) -> WalkSummary:
    """``keep_8bit``: names (suffix, full name or a layer's prefix) of linears rounded to 8 bits,
    symmetric, instead of ``bits``; each must match one (else InvalidRecipeError).

    ``head_bits``: also put the LM head (a tied model's shared table) on a grid of that many
    bits, by the same method; None leaves it to the format writer.

    ``w8a8_smoothing``: W8A8 (``bits`` 8): weights symmetric per output channel, activations
    rounded per token as the runtime does, after SmoothQuant up to that alpha (0: none).

    ``sparsity`` (n, m): no grid; every decoder linear keeps n of each m consecutive inputs'
    weights, pruned by ``method`` (sparsegpt or wanda, compressor/llm/sparsity.py), and is
    written in float."""
    started = time.monotonic()
    weights = _Weights(source_dir)
    config, model, prefix, template = _skeleton(source_dir, weights)
    if calibration is None:
        if method != "rtn":
            raise ValueError(f"{method} needs calibration token ids")
        calibration = torch.zeros((1, 2), dtype=torch.long)
    with torch.inference_mode():
        caught = _capture(model, _layer_list(model)[1], calibration)
    hidden = [args[0] for args, _ in caught.calls]
    calls = [(args[1:], kwargs) for args, kwargs in caught.calls]
    summary = WalkSummary(method=method, bits=bits)
    n_layers = int(config.num_hidden_layers)
    for index in range(n_layers):
        layer = _load_layer(template, weights, f"{prefix}.{index}", index)
        hidden = _walk_layer(
            layer, hidden, calls, sink, summary,
            name=f"{prefix}.{index}", bits=bits, method=method, group_size=group_size,
            symmetric=symmetric, damp=damp, w8a8_smoothing=w8a8_smoothing, sparsity=sparsity,
            keep_8bit=keep_8bit,
        )  # fmt: skip
        del layer
        weights.release()
        if progress is not None:
            progress((index + 1) / n_layers)
    _check_kept(keep_8bit, summary)
    head = None
    if head_bits is not None:
        head = _quantize_head(
            model, hidden, summary, bits=head_bits, method=method, symmetric=symmetric, damp=damp
        )
    _finish(model, prefix, weights, sink, config, head=head)
    summary.seconds = round(time.monotonic() - started, 2)
    summary.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return summary


def matches(linear: str, names: Sequence[str]) -> bool:
    """``linear`` (a full name) is named by one of ``names``: itself, a dotted suffix of it, or
    a dotted prefix (a whole layer)."""
    return any(linear == n or linear.endswith("." + n) or linear.startswith(n + ".") for n in names)


def _check_kept(names: Sequence[str], summary: WalkSummary) -> None:
    linears = [r.name for r in summary.records]
    unmatched = [n for n in names if not any(matches(linear, [n]) for linear in linears)]
    if unmatched:
        examples = sorted({r.split(".", 3)[-1] for r in linears})[:8]
        raise InvalidRecipeError(
            f"keep_8bit names no Linear layer of this model: {', '.join(unmatched)}; its "
            f"layers' linears are named like {', '.join(examples)}"
        )


def _load_layer(template: torch.nn.Module, weights: _Weights, name: str, index: int) -> Any:
    layer = copy.deepcopy(template)
    for module in layer.modules():
        if hasattr(module, "layer_idx"):
            setattr(module, "layer_idx", index)  # noqa: B010 (typed as a Module attribute)
    state = {k: weights.get(f"{name}.{k}").float() for k in layer.state_dict()}
    layer.load_state_dict(state)
    return layer.eval()


def _hessians(
    modules: dict[str, torch.nn.Module],
    layer: torch.nn.Module,
    hidden: list[torch.Tensor],
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    stats: InputStats | None = None,
) -> dict[str, torch.Tensor]:
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = dict.fromkeys(modules, 0)

    def hook(name: str) -> Callable[..., None]:
        def record(_module: Any, inputs: tuple[torch.Tensor, ...], _out: Any) -> None:
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).float()
            sums[name] = sums.get(name, 0) + x.t() @ x  # type: ignore[assignment]
            counts[name] += x.shape[0]
            if stats is not None:
                stats.add(name, x)

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        for h, (args, kwargs) in zip(hidden, calls, strict=True):
            _layer_out(layer, (h, *args), kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return {n: 2 * sums[n] / max(counts[n], 1) for n in sums}


def _walk_layer(
    layer: torch.nn.Module,
    hidden: list[torch.Tensor],
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    sink: WeightSink,
    summary: WalkSummary,
    *,
    name: str,
    bits: int,
    method: str,
    group_size: int | None,
    symmetric: bool,
    damp: float,
    w8a8_smoothing: float | None = None,
    sparsity: tuple[int, int] | None = None,
    keep_8bit: Sequence[str] = (),
) -> list[torch.Tensor]:
    modules = quantizable(layer)
    w8a8 = w8a8_smoothing is not None
    stats = InputStats(sum(h.shape[0] * h.shape[1] for h in hidden)) if w8a8 else None
    with torch.inference_mode():
        hessians = (
            _hessians(modules, layer, hidden, calls, stats) if method != "rtn" or w8a8 else {}
        )

    def group_of(width: int) -> int:
        if w8a8:
            return width  # one scale per output channel: the int8 GEMM's weight grid
        chosen = group_size if group_size and width % group_size == 0 else None
        return chosen or default_group_size(width)

    def output() -> torch.Tensor:
        return _layer_out(layer, (hidden[0], *calls[0][0]), calls[0][1])

    search = None
    if stats is not None and w8a8_smoothing:
        search = stats.search(max_alpha=w8a8_smoothing)
    elif method == "awq":
        search = awq_search(hessians, bits=bits, group_of=group_of, symmetric=symmetric)
    if search is not None:
        with torch.inference_mode():
            summary.scales[name] = scale_layer(layer, hessians, output, search=search)
    del stats
    quantized_params = set()
    for mod_name, module in modules.items():
        weight = linear_weight(module)
        if sparsity is not None:  # stays in the layer's state, written with the float tensors
            record = _prune_module(
                module, hessians[mod_name], f"{name}.{mod_name}", method, sparsity, damp
            )
            summary.records.append(record)
            continue
        group = group_of(weight.shape[1])
        kept = matches(f"{name}.{mod_name}", keep_8bit)
        q, damp_used, error = _round(
            weight, hessians.get(mod_name), 8 if kept else bits, group,
            symmetric or w8a8 or kept, damp, method=method,
        )  # fmt: skip
        set_weight(module, q.dequantize())
        bias = getattr(module, "bias", None)
        sink.add_quantized(f"{name}.{mod_name}", q, bias.data if bias is not None else None)
        quantized_params.update({f"{mod_name}.weight", f"{mod_name}.bias"})
        summary.records.append(
            ModuleRecord(f"{name}.{mod_name}", weight.shape[1], group, damp_used, error, q.bits)
        )
    for pname, tensor in layer.state_dict().items():
        if pname not in quantized_params:
            sink.add_float(f"{name}.{pname}", tensor)
    with torch.inference_mode(), _tokens_rounded(modules.values(), enabled=w8a8):
        # the next layer reads what the runtime computes: int8 activations included
        return [
            _layer_out(layer, (h, *args), kwargs)
            for h, (args, kwargs) in zip(hidden, calls, strict=True)
        ]


def _prune_module(
    module: torch.nn.Module,
    hessian: torch.Tensor,
    name: str,
    method: str,
    sparsity: tuple[int, int],
    damp: float,
) -> ModuleRecord:
    weight = linear_weight(module)
    n, m = sparsity
    sparse, damp_used = prune(method, weight, hessian, n=n, m=m, damp=damp)
    set_weight(module, sparse)
    return ModuleRecord(name, weight.shape[1], m, damp_used, output_error(weight, sparse, hessian))


@contextlib.contextmanager
def _tokens_rounded(modules: Any, *, enabled: bool) -> Iterator[None]:
    def hook(_module: Any, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        return (quantize_tokens(inputs[0]), *inputs[1:])

    handles = [m.register_forward_pre_hook(hook) for m in modules] if enabled else []
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _round(
    weight: torch.Tensor,
    hessian: torch.Tensor | None,
    bits: int,
    group: int,
    symmetric: bool,
    damp: float,
    *,
    method: str,
) -> tuple[QuantizedWeight, float | None, float | None]:
    """GPTQ; or for AWQ (weights already scaled), round to nearest on the grid clipped by the
    Hessian's diagonal; or plain round to nearest."""
    if hessian is None:
        return rtn(weight, bits=bits, group_size=group, symmetric=symmetric), None, None
    if method != "gptq":
        importance = hessian.diagonal()
        q = rtn(weight, bits=bits, group_size=group, symmetric=symmetric, importance=importance)
        return q, None, output_error(weight, q.dequantize(), hessian)
    q, stats = gptq(weight, hessian, bits=bits, group_size=group, symmetric=symmetric, damp=damp)
    return q, stats.damp, stats.relative_error


def _quantize_head(
    model: Any,
    hidden: list[torch.Tensor],
    summary: WalkSummary,
    *,
    bits: int,
    method: str,
    symmetric: bool,
    damp: float,
) -> QuantizedWeight:
    """The LM head on the grid, GPTQ'd on what it really reads: the final norm of the last
    quantized layer's outputs. Its error reaches every logit directly, so at 4 bits its groups
    are HEAD_GROUP wide (SmolLM2-135M, tied, held-out perplexity over fp32's 27.3 with the
    layers at int4: head 8-bit RTN 30.9, 4-bit RTN g32 33.8, 4-bit GPTQ g64 32.4, g32 31.9; the
    GenAI job at embedding_bits 4 read +17.7% at g32 and +16.8% at g16, for 84.3 MB against
    80.3 MB: the head's scales and zero points double, the layers' do not)."""
    weight = model.get_output_embeddings().weight.detach().float()
    hessian = None
    if method != "rtn":
        norm = model.get_decoder().norm  # Llama-family (the runtimes that take a head on a grid)
        total, rows = torch.zeros(weight.shape[1], weight.shape[1]), 0
        with torch.inference_mode():
            for h in hidden:
                x = norm(h).reshape(-1, weight.shape[1]).float()
                total += x.t() @ x
                rows += x.shape[0]
        hessian = 2 * total / max(rows, 1)
    width = weight.shape[1]
    group = HEAD_GROUP if bits == 4 and width % HEAD_GROUP == 0 else default_group_size(width)
    q, damp_used, error = _round(weight, hessian, bits, group, symmetric, damp, method=method)
    summary.records.append(ModuleRecord("lm_head", width, group, damp_used, error))
    return q


def _finish(
    model: Any,
    prefix: str,
    weights: _Weights,
    sink: WeightSink,
    config: Any,
    *,
    head: QuantizedWeight | None = None,
) -> None:
    """Everything outside the decoder layers, in the upload's dtype; then the sink closes.
    A tied model with its head on a grid gets that grid's table as its embedding too, since
    the runtime's lookup reads the head's own quantized table (compressor/llm/genai.py)."""
    tied = bool(getattr(config, "tie_word_embeddings", False))
    if head is not None:
        sink.add_quantized("lm_head", head)
    table = _parameter_name(model, model.get_input_embeddings().weight)
    for key in _outside(weights.names(), prefix):
        if (tied or head is not None) and key.startswith("lm_head."):
            continue
        tensor = weights.get(key)
        if head is not None and tied and key == table:
            tensor = head.dequantize(tensor.dtype)
        sink.add_float(key, tensor)
    sink.close(config.to_dict(), tied_embeddings=tied)


def _parameter_name(model: torch.nn.Module, parameter: torch.Tensor) -> str:
    return next(n for n, p in model.named_parameters(remove_duplicate=False) if p is parameter)


def _outside(names: list[str], prefix: str) -> Iterator[str]:
    return (k for k in sorted(names) if not k.startswith(prefix + "."))


__all__ = ["ModuleRecord", "WalkSummary", "output_error", "quantize_causal_lm"]
