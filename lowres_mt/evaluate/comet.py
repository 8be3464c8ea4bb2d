"""COMET scores through unbabel-comet (the optional `[comet]` extra).

A COMET model is named by a checkpoint file (`.../checkpoints/model.ckpt`), a model folder
holding `checkpoints/model.ckpt` and `hparams.yaml`, or a Hugging Face id such as
`Unbabel/wmt22-comet-da` (downloaded by COMET itself, so it needs hub access or a warm cache).
Without `--comet-model` nothing is loaded and reports say COMET is unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from lowres_mt.errors import UserError

NO_COMET = "n/a (no COMET model)"


def resolve_checkpoint(name: str) -> Path:
    """The checkpoint file behind a path or hub id."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        ckpt = path / "checkpoints" / "model.ckpt"
        if not ckpt.is_file():
            raise UserError(f"COMET model folder {path} has no checkpoints/model.ckpt; "
                            "pass the checkpoint file or a model folder in COMET's layout")
        return ckpt
    if name.count("/") != 1 or name.startswith((".", "/")):
        raise UserError(f"COMET model '{name}' is neither a file, a folder nor a hub id like "
                        "Unbabel/wmt22-comet-da")
    comet = _import_comet()
    try:
        return Path(comet.download_model(name))
    except KeyError:
        raise UserError(f"COMET model '{name}' could not be fetched (offline, or not a COMET model); "
                        "download it once with hub access or pass a local checkpoint") from None


def load_comet(name: str):
    """A COMET model in eval mode, loaded from a local checkpoint on the CPU."""
    checkpoint = resolve_checkpoint(name)
    comet = _import_comet()
    for logger in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "comet"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    try:
        return comet.load_from_checkpoint(str(checkpoint), local_files_only=True).eval()
    except (OSError, KeyError) as err:
        raise UserError(f"cannot load COMET checkpoint {checkpoint}: {err}; check that its "
                        "hparams.yaml names an encoder that is available offline") from None


def score_comet(model, sources: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
                batch_size: int = 8) -> dict:
    """System score (mean of segment scores) and the segment scores."""
    import torch

    if not (len(sources) == len(hyps) == len(refs)):
        raise ValueError("sources, hypotheses and references differ in length")
    samples = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(sources, hyps, refs, strict=True)]
    gpus = 1 if torch.cuda.is_available() else 0
    prediction = model.predict(samples, batch_size=batch_size, gpus=gpus, progress_bar=False,
                               num_workers=0)
    return {"score": round(float(prediction.system_score), 6),
            "segments": [round(float(s), 6) for s in prediction.scores]}


def _import_comet():
    try:
        import comet
    except ImportError:
        raise UserError("COMET scoring needs the comet extra: pip install 'lowres-mt[comet]'") from None
    return comet
