"""Translation with causal LMs: the batched generation engine (`engine`, `greedy`) and the
loading of trained runs or base models for user text (`session`)."""

from lowres_mt.translate.engine import (
    AnswerEnd,
    DecodeSettings,
    Engine,
    build_prompt,
    first_line,
    merge_lora,
    stop_token_ids,
)
from lowres_mt.translate.greedy import StopTables, greedy_decode, is_looping, shared_prefix_length
from lowres_mt.translate.session import (
    MAX_SENTENCE_CHARS,
    SPLIT_CHARS,
    Translator,
    open_translator,
    segment_pieces,
    split_sentences,
    translate_segments,
)

__all__ = [
    "MAX_SENTENCE_CHARS", "SPLIT_CHARS", "AnswerEnd", "DecodeSettings", "Engine", "StopTables", "Translator", "build_prompt",
    "first_line", "greedy_decode", "is_looping", "merge_lora", "open_translator", "segment_pieces",
    "shared_prefix_length", "split_sentences",
    "stop_token_ids", "translate_segments",
]
