"""Linear layers whose weights are packed once for oneDNN, for decoding on CPU.

`F.linear` takes a plain weight on every call. oneDNN can take it reordered once into the layout
its kernels read (`torch.ops.mkldnn._reorder_linear_weight`, what inductor's weight freezing does),
and `torch.ops.mkldnn._linear_pointwise` multiplies by that packed weight. At decoding's shapes
(32 rows × 640 → 2,048) this measured 1.3–2.4× faster per call in bfloat16 on a Zen 5 EPYC, with
results equal to `F.linear`'s (`tests/test_packed.py`; bit for bit on that CPU). Weights packed
this way cannot be trained, so only decoding copies of a model are packed (`backends.decoding_copy`)
and the output layer's rows an answer may use (`greedy.OutputHead`).
"""

from __future__ import annotations

import weakref
from functools import cache

import torch
import torch.nn.functional as F


@cache
def supported(dtype: torch.dtype = torch.bfloat16) -> bool:
    """Whether this torch build packs and multiplies `dtype` weights on this CPU, giving what
    `F.linear` gives (checked once on a small case)."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(24, 16, generator=generator).to(dtype)
        x = torch.randn(3, 16, generator=generator).to(dtype)
        out = _multiply(x, torch.ops.mkldnn._reorder_linear_weight(weight), None)
        return bool(torch.allclose(out.float(), F.linear(x, weight).float(), rtol=1e-2, atol=1e-2))
    except (AttributeError, RuntimeError, TypeError):  # an op missing or changed in this build
        return False


def _multiply(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class PackedLinear(torch.nn.Module):
    """`F.linear(x, weight, bias)` with `weight` packed for oneDNN (inference only)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())
        self.bias = None if bias is None else bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _multiply(x, self.packed, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def projection(weight: torch.Tensor, bias: torch.Tensor | None = None):
    """A callable computing `F.linear(x, weight, bias)`: packed where `supported` for a CPU
    weight of this dtype, else `F.linear` itself."""
    if weight.device.type == "cpu" and supported(weight.dtype):
        return PackedLinear(weight, bias)
    return lambda x: F.linear(x, weight, bias)


_packed: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()


def pack_linears(module: torch.nn.Module, keep: tuple[torch.nn.Module, ...] = ()) -> int:
    """Replace every `nn.Linear` inside `module` but those in `keep` by its `PackedLinear`, in
    place, where `supported` (CPU weights); returns how many were replaced. `is_packed(module)`
    is true afterwards: its weights are not to be trained."""
    targets = [(name, child) for name, child in module.named_modules()
               if isinstance(child, torch.nn.Linear) and child.weight.device.type == "cpu"
               and supported(child.weight.dtype) and not any(child is k for k in keep)]
    for name, linear in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, PackedLinear(linear.weight, linear.bias))
    _packed.add(module)
    return len(targets)


def is_packed(module: torch.nn.Module) -> bool:
    """Whether `pack_linears` packed `module` (a decoding copy, whose weights stay as they are)."""
    return module in _packed
