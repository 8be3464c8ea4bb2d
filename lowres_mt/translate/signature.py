"""What a decoding's answers depend on, as one record: `eval`'s cache keys and result records
(`System.signature`) and `synth`'s resumable files are built from the same `decoding_identity`.

Like sacrebleu's `Metric.get_signature()`, it is derived from the settings' own fields
(`dataclasses.asdict`), so a new `DecodeSettings` field is part of it without anyone adding it;
only the fields named in `NOT_IDENTITY` stay out.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from lowres_mt.text import alphabet_letters
from lowres_mt.translate.backends import choose
from lowres_mt.translate.engine import DecodeSettings

# DecodeSettings fields that change how fast answers come, not which
NOT_IDENTITY = ("batch_size", "device")


# fields that change answers only when MBR samples them
SAMPLING_ONLY = ("epsilon", "seed")


def decoding_identity(settings: DecodeSettings, tgt_lang: str,
                      model_config: Callable[[], object] | None = None) -> dict:
    """Every field of `settings` that can change an answer into `tgt_lang`, as JSON. The backend
    and quantization are the ones that decode (`backends.choose`: `auto` on CPU is torch, torch
    has no quantization, and an architecture CTranslate2 does not convert falls back to torch,
    checked on `model_config()` when CTranslate2 would otherwise decode), so outputs of different
    backends never share an identity; the alphabet is the letters beyond a–z answers into
    `tgt_lang` may use (None: no limit); sampling fields count only when MBR samples."""
    fields = {k: v for k, v in dataclasses.asdict(settings).items() if k not in NOT_IDENTITY}
    choice = choose(settings)
    if choice.backend != "torch" and model_config is not None:
        choice = choose(settings, model_config())
    fields.update(backend=choice.backend, quantization=choice.quantization,
                  alphabet=alphabet_letters(tgt_lang, settings.alphabet))
    return json.loads(json.dumps(without_unused(fields), sort_keys=True))


def without_unused(identity: dict) -> dict:
    """`identity` less the fields its search does not use (a record written before they were left
    out compares equal to one written after)."""
    return {k: v for k, v in identity.items() if identity.get("mbr_samples") or k not in SAMPLING_ONLY}
