"""Greedy decoding of a batch of prompts with the KV cache.

Two things `model.generate` does not do:

- **Shared prefix, computed once.** Prompts of one format start with the same tokens (chat
  template and instruction: about 45 tokens of a TELL prompt). That prefix runs once at batch
  size 1, its cache is repeated for every row, and the rows continue after it, each padded
  between the prefix and its own tokens: `[prefix][pad…][source + answer prefix]`. Position ids
  come from the attention mask, so every real token has the position it has in an unpadded
  prompt. When a sliding attention window could cut into a sequence, rows are left-padded
  instead (`[pad…][prompt]`), which keeps every window exact.
- **Finished rows leave the batch.** `generate` keeps computing every row until the last one
  stops; here a row that has stopped is dropped from the cache (`Cache.batch_select_indices`),
  the attention mask and the next inputs.

- **Logits for the allowed ids only.** When answers may use only some ids (`allowed`: the
  alphabet rule, a run's training vocabulary), the output layer multiplies by those rows of its
  weight alone (`OutputHead`): Gemma-3's 262,144 × 640 output layer is most of a step's work.
  On CPU that weight, sliced or whole, is packed once for oneDNN (`packed`).

Each step computes for every running row what `generate` computes (float32 argmax over the
last position's logits), so the tokens are the same up to floating-point summation order.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Sequence

import torch
from torch.utils.weak import WeakIdKeyDictionary
from transformers import DynamicCache

from lowres_mt.text import repeated_tail
from lowres_mt.translate import packed

_texts: dict[str, list[str]] = {}


def token_texts(tokenizer) -> list[str]:
    """Every id's text (special tokens as ""), as `batch_decode` gives it: decoding 262,144 ids
    takes about 2.7 s on 2 cores, so a fast tokenizer's texts are kept, in this process and in
    `<cache>/token-texts/`, under a digest of the tokenizer's whole serialization and the library
    versions (0.5 s to compute)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return _decode_each(tokenizer)
    import tokenizers
    import transformers

    blob = f"{backend.to_str()}|{len(tokenizer)}|{tokenizers.__version__}|{transformers.__version__}"
    key = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]
    if key not in _texts:
        from lowres_mt.corpora.fetch import cache_dir
        from lowres_mt.io import write_json

        path = cache_dir() / "token-texts" / f"{key}.json"
        try:
            texts = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            texts = None
        if not isinstance(texts, list) or len(texts) != len(tokenizer):
            texts = _decode_each(tokenizer)
            try:
                write_json(path, texts)
            except OSError:  # a read-only cache only costs the decoding next time
                pass
        _texts[key] = texts
    return list(_texts[key])


def _decode_each(tokenizer) -> list[str]:
    return tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)


class StopTables:
    """Per-token facts for the answer-end rule, from decoding every vocabulary id once."""

    def __init__(self, tokenizer, vocab_size: int = 0):
        texts = token_texts(tokenizer)
        texts += [""] * max(0, vocab_size - len(texts))  # ids the model has but the tokenizer lacks
        self.texts = texts
        self.newline = torch.tensor(["\n" in t for t in texts])
        self.text_then_newline = torch.tensor([t.split("\n", 1)[0].strip() != "" for t in texts])
        self.content = torch.tensor([t.strip() != "" for t in texts])

    def subset(self, ids: list[int]) -> StopTables:
        """The tables of a trimmed vocabulary whose id i is the tokenizer's `ids[i]`."""
        index = torch.tensor(ids, dtype=torch.long)
        out = object.__new__(StopTables)
        out.newline, out.text_then_newline = self.newline[index], self.text_then_newline[index]
        out.content = self.content[index]
        out.texts = [self.texts[i] for i in ids]
        return out

    # The answer-end rule, the one definition every decoder uses: an answer ends at its first
    # newline after some text (a token holding text then a newline ends it at once), or, with
    # `stop_repeats` above 0, when it loops (`is_looping`). `step` applies it a token at a time
    # (greedy decoding, CTranslate2's callback); `ended` to whole generated parts (beam search,
    # whose beams are reordered between steps); `cut` to finished ids.

    def step(self, tokens: torch.Tensor, seen_text: torch.Tensor, rows: Sequence[list[int]] = (),
             stop_repeats: int = 0) -> torch.Tensor:
        """Rows whose newest token (`tokens`) ends the answer; updates `seen_text`. `rows`: each
        row's generated ids so far, the newest included (read only for the loop stop)."""
        ends = self.newline[tokens] & (seen_text | self.text_then_newline[tokens])
        seen_text |= self.content[tokens]
        if stop_repeats:
            ends |= torch.tensor([is_looping(row, stop_repeats, self.texts) for row in rows], dtype=torch.bool)
        return ends

    def ended(self, generated: torch.Tensor, stop_repeats: int = 0) -> torch.Tensor:
        """Rows of `generated` (batch × answer tokens so far) whose answer has ended."""
        if generated.shape[1] == 0:
            return torch.zeros(generated.shape[0], dtype=torch.bool)
        content = self.content[generated].long()
        seen_before = (content.cumsum(1) - content) > 0
        hit = (self.newline[generated] & (seen_before | self.text_then_newline[generated])).any(dim=1)
        if stop_repeats:
            hit |= torch.tensor([is_looping(row, stop_repeats, self.texts) for row in generated.tolist()],
                                dtype=torch.bool)
        return hit

    def cut(self, ids: Sequence[int], stop_repeats: int = 0) -> list[int]:
        """`ids` up to and including the token where the rule ends the answer."""
        seen, done = torch.zeros(1, dtype=torch.bool), []
        for token in ids:
            done.append(token)
            if bool(self.step(torch.tensor([token]), seen, [done], stop_repeats)[0]):
                break
        return done


REPEAT_NGRAM = 4  # tokens in the n-gram whose repetition marks a degenerate loop
SPELLING_TAIL = 72  # newest tokens read for a loop through one word's spellings (`text.repeated_tail`)


def is_looping(ids: list[int], times: int, texts: list[str] | None = None) -> bool:
    """True when the newest REPEAT_NGRAM tokens have now occurred `times` times (0: never), or,
    given each id's text (`texts`), when the answer ends in one word written `times` times in a
    row in any case or spacing (`text.repeated_tail`).

    Small models under-trained on a language fall into loops ("því að þær eiga því að …") that
    would otherwise run to `max_new_tokens`; stopping there saves most of their decoding time
    and keeps what was generated up to that point. Kept from repeating tokens, they can still
    loop through spellings ("clock clock clockClock …"), which only the text shows.
    """
    n = REPEAT_NGRAM
    if times <= 1:
        return False
    if texts is not None and repeated_tail("".join(texts[i] for i in ids[-SPELLING_TAIL:]), times) is not None:
        return True
    if len(ids) < n * times:
        return False
    tail = ids[-n:]
    return sum(ids[i:i + n] == tail for i in range(len(ids) - n + 1)) >= times


def shared_prefix_length(rows: list[list[int]]) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own."""
    shortest = min(len(r) for r in rows) - 1
    n = 0
    while n < shortest and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def _forward_kwargs(model) -> dict:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(base.forward).parameters else {}


class OutputHead:
    """The last position's logits of a forward pass: over every id, or, given `allowed` ids (and a
    model whose body and linear output layer can be called apart), over those ids alone, in
    their order. With every id allowed, a CPU output layer is still called apart from the body
    when its weight can be packed for oneDNN (`packed`). `choose` turns logits into token ids;
    `positions(ids)` maps generated ids into the logits' index space (for logits processors)."""

    def __init__(self, model, allowed: torch.Tensor | None = None, *, sliced: bool = True):
        self.model, self.allowed = model, allowed
        self.extra = _forward_kwargs(model)
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        self.body = model.get_decoder() if hasattr(model, "get_decoder") else None
        apart = (sliced and isinstance(head, torch.nn.Linear) and isinstance(self.body, torch.nn.Module)
                 and self.body is not model and not hasattr(model, "peft_config"))
        self.sliced = apart and allowed is not None
        # every id allowed: apart only in a packed decoding copy (weights a training step cannot change)
        self.own = self.sliced or (apart and packed.is_packed(self.body) and packed.supported(head.weight.dtype))
        if self.own:
            self.project = _sliced_projection(head, allowed)
            self.softcap = getattr(model.config, "final_logit_softcapping", None)
        if self.sliced:
            self.position = torch.full((head.weight.shape[0],), -1, dtype=torch.long)
            self.position[allowed] = torch.arange(len(allowed))

    def __call__(self, **inputs) -> torch.Tensor:
        if not self.own:
            return self.model(**inputs, **self.extra).logits[:, -1, :]
        hidden = self.body(**inputs).last_hidden_state[:, -1, :]
        logits = self.project(hidden)
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def choose(self, logits: torch.Tensor, sampling: Sampling | None = None) -> torch.Tensor:
        """The token id of each row, among the allowed ids when there are some: the argmax, or
        drawn by `sampling`."""
        pick = sampling.draw if sampling is not None else (lambda x: x.to(torch.float32).argmax(dim=-1))
        if self.sliced:
            return self.allowed[pick(logits)]
        if self.allowed is None:
            return pick(logits)
        return self.allowed[pick(logits[:, self.allowed])]

    def positions(self, ids: torch.Tensor) -> torch.Tensor:
        return self.position[ids] if self.sliced else ids


class Sampling:
    """Epsilon sampling (Hewitt et al. 2022): draw from the tokens of probability ≥ `epsilon`
    (the most probable always stays), seeded, for the candidates of MBR decoding."""

    def __init__(self, epsilon: float, seed: int):
        self.epsilon = epsilon
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.to(torch.float32), dim=-1)
        keep = (probs >= self.epsilon) | (probs == probs.max(dim=-1, keepdim=True).values)
        return torch.multinomial(probs * keep, 1, generator=self.generator).squeeze(1)


# output layer weight -> (its version, the allowed ids, their projection); an entry goes with its model
_slices: WeakIdKeyDictionary = WeakIdKeyDictionary()


def _sliced_projection(head: torch.nn.Linear, allowed: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The output layer over `allowed`'s rows only (None: every row), packed for oneDNN where
    `packed.projection` packs, built once per weight, weight version (an optimizer step bumps
    it; a fused one does not, but training's dev translations allow every id, whose layer only
    packed decoding copies keep here) and id set: the batches of one answer language reuse it."""
    entry = _slices.get(head.weight)
    if entry is None or entry[0] != head.weight._version or entry[1] is not allowed:
        weight, bias = head.weight.detach(), None if head.bias is None else head.bias.detach()
        if allowed is not None:
            weight, bias = weight[allowed].contiguous(), None if bias is None else bias[allowed]
        entry = (head.weight._version, allowed, packed.projection(weight, bias))
        _slices[head.weight] = entry  # one answer language per model at a time
    return entry[2]


def _can_share_prefix(config, rows: list[list[int]], max_new_tokens: int) -> bool:
    """Padding after the prefix is exact only while no sliding window cuts into the sequence:
    a window counts cache slots, and padding slots in the middle would push real tokens out."""
    window = getattr(config, "sliding_window", None) or getattr(config, "attention_chunk_size", None)
    return len(rows) > 1 and (window is None or max(map(len, rows)) + max_new_tokens < window)


def _prefill(head: OutputHead, rows: list[list[int]], pad_id: int, cache: DynamicCache,
             share: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the prompts; returns (last-position logits, attention mask over the cache)."""
    shared = shared_prefix_length(rows) if share else 0
    if shared:
        prefix = torch.tensor([rows[0][:shared]], dtype=torch.long)
        head(input_ids=prefix, attention_mask=torch.ones_like(prefix), past_key_values=cache,
             position_ids=torch.arange(shared)[None], use_cache=True)
        cache.batch_repeat_interleave(len(rows))
    rest = [r[shared:] for r in rows]
    width = max(len(r) for r in rest)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rest], dtype=torch.long)
    mask = torch.tensor([[1] * shared + [0] * (width - len(r)) + [1] * len(r) for r in rest],
                        dtype=torch.long)
    position = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)[:, shared:]
    logits = head(input_ids=ids, attention_mask=mask, position_ids=position, past_key_values=cache,
                  use_cache=True)
    return logits, mask


@torch.inference_mode()
def greedy_decode(model, rows: list[list[int]], *, pad_id: int, max_new_tokens: int, stop_ids: list[int],
                  tables: StopTables, stop_repeats: int = 0,
                  allowed: torch.Tensor | None = None, processors=None,
                  slice_head: bool = True, sampling: Sampling | None = None) -> list[list[int]]:
    """Generated ids per prompt (the stop token included when one was produced); a row also
    stops when it loops (`is_looping` with `stop_repeats` and the tables' texts). `allowed`
    (ascending ids) limits the choice to those tokens, e.g. the vocabulary an adapter was trained
    over; with `slice_head` only their logits are computed (`OutputHead`). `processors`
    (transformers logits processors) see each row's generated tokens only, not its prompt.
    `sampling` draws each token instead of taking the argmax (MBR candidates)."""
    out: list[list[int]] = [[] for _ in rows]
    if max_new_tokens <= 0 or not rows:
        return out
    config = model.config.get_text_config(decoder=True)
    cache = DynamicCache(config=config)
    head = OutputHead(model, allowed, sliced=slice_head)
    logits, mask = _prefill(head, rows, pad_id, cache, _can_share_prefix(config, rows, max_new_tokens))
    stops = torch.tensor(stop_ids, dtype=torch.long)
    alive = torch.arange(len(rows))
    seen_text = torch.zeros(len(rows), dtype=torch.bool)
    for step in range(max_new_tokens):
        if processors:
            generated = torch.tensor([out[row] for row in alive.tolist()], dtype=torch.long)
            logits = processors(head.positions(generated.reshape(len(alive), step)), logits.to(torch.float32))
        tokens = head.choose(logits, sampling)
        for row, token in zip(alive.tolist(), tokens.tolist(), strict=True):
            out[row].append(token)
        done = torch.isin(tokens, stops) | tables.step(tokens, seen_text, [out[row] for row in alive.tolist()],
                                                      stop_repeats)
        if step == max_new_tokens - 1 or bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            mask, alive, tokens, seen_text = mask[keep], alive[keep], tokens[keep], seen_text[keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        position = mask.sum(dim=-1, keepdim=True) - 1
        logits = head(input_ids=tokens[:, None], attention_mask=mask, position_ids=position,
                      past_key_values=cache, use_cache=True)
    return out
