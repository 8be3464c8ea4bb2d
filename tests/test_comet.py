"""The real COMET code path, offline: a tiny random XLM-R encoder and a tiny regression checkpoint
built in the test, loaded with comet.load_from_checkpoint and used to score."""

import math

import pytest
import yaml

from lowres_mt.errors import UserError
from lowres_mt.evaluate.comet import load_comet, resolve_checkpoint, score_comet

comet = pytest.importorskip("comet")

LINES = ["The cat sat on the mat.", "Kötturinn sat á mottunni.", "Good morning to you all.",
         "Góðan daginn öll sömul.", "Where is the station?", "Hvar er stöðin?"] * 10


def _tiny_encoder(folder):
    """A 2-layer, 32-dim XLM-R config and a 100-piece unigram tokenizer in XLM-R's format."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaConfig, XLMRobertaTokenizerFast

    raw = Tokenizer(models.Unigram())
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    raw.decoder = decoders.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    raw.train_from_iterator(LINES, trainers.UnigramTrainer(vocab_size=100, special_tokens=specials,
                                                           unk_token="<unk>"))
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = XLMRobertaTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>",
                                        sep_token="</s>", cls_token="<s>", unk_token="<unk>",
                                        pad_token="<pad>", mask_token="<mask>")
    tokenizer.save_pretrained(folder)
    XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=130,
                     pad_token_id=tokenizer.pad_token_id).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_comet(tmp_path_factory):
    import pytorch_lightning
    import torch
    from comet.models import RegressionMetric

    root = tmp_path_factory.mktemp("comet")
    _tiny_encoder(root / "tiny-xlmr")
    torch.manual_seed(0)
    model = RegressionMetric(pretrained_model=str(root / "tiny-xlmr"), load_pretrained_weights=False,
                             hidden_sizes=[16], local_files_only=True)
    folder = root / "tiny-comet"
    (folder / "checkpoints").mkdir(parents=True)
    hparams = dict(model.hparams)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams,
                "pytorch-lightning_version": pytorch_lightning.__version__},
               folder / "checkpoints" / "model.ckpt")
    (folder / "hparams.yaml").write_text(yaml.safe_dump({**hparams, "class_identifier": "regression_metric"}))
    return folder


def test_tiny_checkpoint_scores_offline(tiny_comet):
    model = load_comet(str(tiny_comet))
    srcs = ["The cat sat.", "Good morning.", "Where is it?"]
    hyps = ["Kötturinn sat.", "Góðan daginn.", ""]
    refs = ["Kötturinn sat.", "Góðan daginn.", "Hvar er það?"]
    scored = score_comet(model, srcs, hyps, refs, batch_size=2)
    assert len(scored["segments"]) == 3
    assert all(math.isfinite(s) for s in scored["segments"])
    assert scored["score"] == pytest.approx(sum(scored["segments"]) / 3, abs=1e-5)
    again = score_comet(model, srcs[::-1], hyps[::-1], refs[::-1], batch_size=2)
    assert again["segments"] == pytest.approx(scored["segments"][::-1], abs=1e-5)  # order kept


def test_checkpoint_file_and_folder_resolve_the_same(tiny_comet):
    ckpt = tiny_comet / "checkpoints" / "model.ckpt"
    assert resolve_checkpoint(str(tiny_comet)) == ckpt
    assert resolve_checkpoint(str(ckpt)) == ckpt


def test_bad_comet_names_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no checkpoints/model.ckpt"):
        resolve_checkpoint(str(tmp_path))
    with pytest.raises(UserError, match="neither a file"):
        resolve_checkpoint("not-a-model")
