"""onnx2torch modules that read a stored constant tensor at run time, rewritten with the
constant as plain Python numbers: torch.export cannot trace ``.tolist()`` on a tensor, so a
converted graph with them could be trained but never exported back to ONNX."""

from __future__ import annotations

import torch
from torch.nn import functional as F


class StaticResize(torch.nn.Module):
    """ONNX Resize by constant scales or sizes (batch and channel unscaled), as interpolate."""

    def __init__(
        self,
        onnx_mode: str,
        align_corners: bool | None,
        *,
        scales: list[float] | None,
        sizes: list[int] | None,
    ) -> None:
        super().__init__()
        self.onnx_mode = onnx_mode
        self.align_corners = align_corners
        self.scales = scales
        self.sizes = sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from onnx2torch.node_converters.resize import _onnx_mode_to_torch_mode

        return F.interpolate(
            x,
            size=self.sizes,
            scale_factor=self.scales,
            mode=_onnx_mode_to_torch_mode(self.onnx_mode, x.dim() - 2),
            align_corners=self.align_corners,
        )


def _constant(module: torch.fx.GraphModule, arg: object) -> torch.Tensor | None:
    if getattr(arg, "op", None) != "get_attr":
        return None
    return module.get_buffer(str(arg.target))  # type: ignore[attr-defined]


def static_resizes(module: torch.fx.GraphModule) -> int:
    """Replace every onnx2torch Resize whose scales or sizes are stored constants, in place."""
    from onnx2torch.node_converters.resize import OnnxResize

    changed = 0
    for node in list(module.graph.nodes):
        if node.op != "call_module" or node.kwargs:
            continue
        layer = module.get_submodule(str(node.target))
        if not isinstance(layer, OnnxResize):
            continue
        args = list(node.args) + [None] * (4 - len(node.args))
        roi, scales, sizes = (_constant(module, a) for a in args[1:4])
        if not layer.ignore_roi and args[1] is not None and (roi is None or roi.numel()):
            continue  # a crop-and-resize region: left to onnx2torch
        if (args[2] is not None and scales is None) or (args[3] is not None and sizes is None):
            continue  # computed at run time: left to onnx2torch
        scale_list = scales.tolist() if scales is not None and scales.numel() else None
        size_list = sizes.tolist() if sizes is not None and sizes.numel() else None
        if scale_list is not None and scale_list[:2] != [1, 1]:
            continue  # batch or channels scaled: interpolate cannot, onnx2torch says so
        replacement = StaticResize(
            layer.onnx_mode,
            layer.align_corners,
            scales=[float(v) for v in scale_list[2:]] if scale_list else None,
            sizes=[int(v) for v in size_list[2:]] if size_list else None,
        )
        module.add_submodule(str(node.target), replacement)
        node.args = (node.args[0],)
        changed += 1
    if changed:
        module.graph.eliminate_dead_code()
        module.recompile()
    return changed
