"""Target-only loss: logits are computed only where a label is, a chunk at a time, never for the
whole batch and vocabulary at once.

The base transformer gives hidden states; the states one position before each labelled token are
gathered, and `linear_cross_entropy` applies the output layer and cross-entropy in chunks of rows.
Its gradient with respect to the hidden states is computed in the same pass (the logits chunk is
freed at once), so neither the forward nor the backward holds more than one chunk of logits —
with Gemma's 262k vocabulary the full fp32 logits of an 8×128 batch alone would be ~1 GB.
"""

from __future__ import annotations

import torch
from torch import nn

from lowres_mt.train.batching import Batch
from lowres_mt.train.tokenize import IGNORE

CHUNK_ROWS = 1024  # labelled positions per output-layer chunk


class _LinearCrossEntropy(torch.autograd.Function):
    """sum_i CE(softcap(h_i · Wᵀ), t_i), with d/dh (and d/dW when W is trained) made chunk by chunk."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, softcap: float | None):
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.weight_dtype = weight.dtype
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk):
            h, t = hidden[start:start + chunk], targets[start:start + chunk]
            z = (h @ weight.T).float()
            if softcap:
                z = torch.tanh(z / softcap).mul_(softcap)
            lse = torch.logsumexp(z, dim=-1)
            rows = torch.arange(t.shape[0], device=t.device)
            total += (lse - z[rows, t]).sum()
            if not (need_h or need_w):
                continue
            if softcap:
                dcap = 1 - (z / softcap) ** 2  # d softcap(x)/dx, from the capped value
            z.sub_(lse[:, None]).exp_()  # z is now softmax
            z[rows, t] -= 1  # d CE / d logits
            if softcap:
                z.mul_(dcap)
            g = z.to(h.dtype)
            if need_h:
                grad_h[start:start + chunk] = g @ weight
            if need_w:
                grad_w += g.T.float() @ h.float()
        ctx.save_for_backward(grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        gw = (grad_w * grad_out).to(ctx.weight_dtype) if grad_w is not None else None
        return gh, gw, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                         chunk: int = CHUNK_ROWS, softcap: float | None = None) -> torch.Tensor:
    """Summed cross-entropy of `hidden @ weight.T` (rows = labelled positions) against `targets`."""
    if hidden.shape[0] == 0:
        return hidden.sum() * 0.0 + weight.sum() * 0.0
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk, softcap)


def causal_lm_parts(model: nn.Module) -> tuple[nn.Module, nn.Module, float | None]:
    """(transformer body, output layer, final logit soft-cap) of a (peft-wrapped) causal LM."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = base.get_decoder()
    head = base.get_output_embeddings()
    return body, head, getattr(base.config, "final_logit_softcapping", None)


class TargetOnlyLoss(nn.Module):
    """Wraps a causal LM; `forward(batch)` returns (summed loss over labelled positions, label count).

    The training loop hands this module to accelerate, so distributed data parallel sees the
    forward pass it has to synchronise."""

    def __init__(self, model: nn.Module, chunk: int = CHUNK_ROWS):
        super().__init__()
        self.model = model
        self.chunk = chunk

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        body, head, softcap = causal_lm_parts(self.model)
        if getattr(head, "bias", None) is not None:
            raise ValueError("output layers with a bias are not supported")
        hidden = body(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state
        targets = labels[:, 1:]
        keep = targets != IGNORE
        picked = hidden[:, :-1][keep]
        loss = linear_cross_entropy(picked, head.weight, targets[keep], chunk=self.chunk, softcap=softcap)
        return loss, keep.sum()


def batch_loss(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    return module(batch.input_ids, batch.position_ids, batch.labels)


@torch.no_grad()
def packing_isolated(model: nn.Module) -> bool:
    """Whether restarting position ids keep packed examples apart in this model's attention."""
    body, _, _ = causal_lm_parts(model)
    was_training = model.training
    model.eval()
    device = next(body.parameters()).device
    vocab = body.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randint(0, vocab, (1, n), generator=gen).to(device) for n in (6, 5))
    alone = body(input_ids=b, use_cache=False).last_hidden_state
    packed_pos = torch.cat([torch.arange(6), torch.arange(5)])[None].to(device)
    packed = body(input_ids=torch.cat([a, b], 1), position_ids=packed_pos, use_cache=False).last_hidden_state
    model.train(was_training)
    return torch.allclose(packed[:, 6:].float(), alone.float(), atol=1e-3, rtol=1e-3)
