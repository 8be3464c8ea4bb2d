"""Vocabulary trimming: keep only the token ids a run's data uses, for fast training on CPU.

Gemma-3's 262k-token output layer and cross-entropy dominate a CPU training step. A run only ever
sees a few thousand distinct ids, so `trim_vocab` slices the input embedding and the output head
down to those rows. Nothing LoRA adapts changes (attention and MLP projections keep their shapes),
so an adapter trained on the trimmed model loads unchanged onto the original, untrimmed base.

Ids are remapped on the way in (`VocabMap.to_new`) and generated ids mapped back for decoding
(`VocabMap.to_old`). Save adapters of trimmed models with `lowres_mt.models.save_adapter`: peft's
default save would notice the smaller vocabulary and write the trimmed embedding into the adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

IGNORE_INDEX = -100  # label id for positions without loss; passes through remapping unchanged


@dataclass(frozen=True, eq=False)  # tensors: compare maps with torch.equal, not ==
class VocabMap:
    """Old (full-vocabulary) ids <-> new (trimmed) ids."""

    new_to_old: torch.Tensor  # (kept,) long, ascending: new id i is old id new_to_old[i]
    old_to_new: torch.Tensor  # (full vocabulary,) long, -1 where the old id was dropped

    def __len__(self) -> int:
        return len(self.new_to_old)

    @property
    def full_size(self) -> int:
        return len(self.old_to_new)

    def kept(self, old_id: int) -> bool:
        return 0 <= old_id < self.full_size and int(self.old_to_new[old_id]) >= 0

    def to_new(self, ids, *, fallback: int | None = None) -> torch.Tensor:
        """Map old ids to trimmed ids; negative ids (label padding -100) pass through.

        An id outside the kept set raises ValueError, or maps to `fallback` (an old id that is kept,
        e.g. the unknown token) when one is given.
        """
        ids = torch.as_tensor(ids, dtype=torch.long)
        valid = ids >= 0
        if (ids >= self.full_size).any():
            raise ValueError(f"token id {int(ids.max())} is outside the vocabulary ({self.full_size})")
        mapped = torch.where(valid, self.old_to_new[ids.clamp(min=0)], ids)
        missing = valid & (mapped < 0)
        if missing.any():
            if fallback is None or not self.kept(fallback):
                dropped = sorted({int(i) for i in ids[missing]})
                raise ValueError(f"{len(dropped)} token id(s) were trimmed away, e.g. {dropped[:5]}; "
                                 "build keep_ids from every text the trimmed model will see")
            mapped = torch.where(missing, self.old_to_new[fallback], mapped)
        return mapped

    def to_old(self, ids) -> torch.Tensor:
        """Map trimmed ids (e.g. generated ones) back to full-vocabulary ids; negatives pass through."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        return torch.where(ids >= 0, self.new_to_old[ids.clamp(min=0)], ids)

    def remap_batch(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A copy of a collated batch with `input_ids` and `labels` in trimmed ids."""
        out = dict(batch)
        for key in ("input_ids", "labels"):
            if key in out:
                out[key] = self.to_new(out[key])
        return out


def keep_ids_for(tokenizer, token_id_lists: Iterable[Iterable[int]]) -> list[int]:
    """Ids to keep: every id in `token_id_lists`, the special tokens, and the chat-template markers."""
    keep = {int(i) for i in tokenizer.all_special_ids}
    if tokenizer.chat_template:
        turns = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
        keep.update(tokenizer.apply_chat_template(turns, tokenize=True))
        keep.update(tokenizer.apply_chat_template(turns[:1], tokenize=True, add_generation_prompt=True))
    for ids in token_id_lists:
        keep.update(int(i) for i in ids)
    return sorted(keep)


def trim_vocab(model, keep_ids: Iterable[int]) -> VocabMap:
    """Slice `model`'s input embedding and output head to `keep_ids`, in place; return the id map.

    Call it before `attach_lora`. Tied embeddings stay tied (one sliced matrix serves both). The
    config's vocab size and token ids (pad/bos/eos, also in the generation config) are updated to
    trimmed ids; those special ids are always kept. The map is also left on `model.vocab_map`.
    """
    if hasattr(model, "peft_config"):
        raise ValueError("trim_vocab needs the plain base model: trim first, then attach_lora")
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    full = emb.num_embeddings
    keep = _keep_tensor(keep_ids, _config_token_ids(model), full)
    old_to_new = torch.full((full,), -1, dtype=torch.long)
    old_to_new[keep] = torch.arange(len(keep))
    vmap = VocabMap(new_to_old=keep, old_to_new=old_to_new)

    tied = head is not None and head.weight is emb.weight
    emb.weight = nn.Parameter(emb.weight.detach()[keep].clone(), requires_grad=emb.weight.requires_grad)
    emb.num_embeddings = len(keep)
    if emb.padding_idx is not None:
        emb.padding_idx = int(old_to_new[emb.padding_idx]) if vmap.kept(emb.padding_idx) else None
    if head is not None:
        head.weight = emb.weight if tied else nn.Parameter(
            head.weight.detach()[keep].clone(), requires_grad=head.weight.requires_grad)
        if getattr(head, "bias", None) is not None:
            head.bias = nn.Parameter(head.bias.detach()[keep].clone(), requires_grad=head.bias.requires_grad)
        head.out_features = len(keep)
    model.config.vocab_size = len(keep)
    if hasattr(model, "vocab_size"):
        model.vocab_size = len(keep)  # some heads (Gemma-3) read their own copy in the loss
    _remap_config_ids(model, vmap)
    model.vocab_map = vmap
    return vmap


_TOKEN_ID_FIELDS = ("pad_token_id", "bos_token_id", "eos_token_id")


def _configs(model) -> list:
    gen = getattr(model, "generation_config", None)
    return [model.config] + ([gen] if gen is not None else [])


def _config_token_ids(model) -> set[int]:
    ids: set[int] = set()
    for cfg in _configs(model):
        for field in _TOKEN_ID_FIELDS:
            value = getattr(cfg, field, None)
            ids.update([value] if isinstance(value, int) else (value or []))
    return ids


def _remap_config_ids(model, vmap: VocabMap) -> None:
    for cfg in _configs(model):
        for field in _TOKEN_ID_FIELDS:
            value = getattr(cfg, field, None)
            if isinstance(value, int):
                setattr(cfg, field, int(vmap.old_to_new[value]))
            elif value:
                setattr(cfg, field, [int(vmap.old_to_new[v]) for v in value])


def _keep_tensor(keep_ids: Iterable[int], always: set[int], full: int) -> torch.Tensor:
    keep = {int(i) for i in keep_ids} | {i for i in always if 0 <= i < full}
    if not keep:
        raise ValueError("keep_ids is empty: pass the token ids of the run's data (see keep_ids_for)")
    out_of_range = [i for i in keep if not 0 <= i < full]
    if out_of_range:
        raise ValueError(f"keep_ids holds ids outside the vocabulary of {full}: {sorted(out_of_range)[:5]}")
    return torch.tensor(sorted(keep), dtype=torch.long)
