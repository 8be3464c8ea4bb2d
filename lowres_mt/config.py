"""Recipes: YAML files parsed into frozen, validated dataclasses.

A recipe may `extends:` another (by name or path); mappings merge deeply, the child wins.
Dotted overrides from the CLI (`task.tokens=20000`) apply after merging and before validation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from lowres_mt.errors import UserError
from lowres_mt.io import read_text
from lowres_mt.typed import at_least, build, to_dict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# what `train --method` builds and trains; +context: each prompt carries retrieved evidence (`context:`)
Method = Literal["tell", "sft", "tell+book", "tell+context", "sft+context"]
METHODS: tuple[str, ...] = get_args(Method)


def recipes_dir() -> Path:
    return Path(os.environ.get("LOWRES_MT_RECIPES", PROJECT_ROOT / "recipes"))


def runs_dir() -> Path:
    """Where runs live: $LOWRES_MT_RUNS, else ./runs (absolute, resolved once per call)."""
    return Path(os.environ.get("LOWRES_MT_RUNS", "runs")).resolve()


@dataclass(frozen=True)
class TaskConfig:
    train: tuple[str, ...] = ()  # corpus set refs ("corpus:set") holding training pairs
    tokens: int = at_least(1, 10_000)  # task-token budget (both directions together), base-model tokenizer
    dev: str | None = None  # set ref for the dev sample (dev loss / dev chrF during training)
    dev_size: int = at_least(0, 64)  # pairs per direction in dev.jsonl
    guard: tuple[str, ...] = ()  # every dev/test set whose sentences must never be trained on
    max_chars: int = at_least(1, 400)  # drop training pairs with a side longer than this
    min_chars: int = at_least(0, 2)
    # times each task pair is shown; repetition e gives pair i direction (i + e) mod 2, so two
    # epochs show every pair in both directions. General data is seen once and its ratio counts
    # unique task tokens.
    epochs: int = at_least(1, 1)
    # quality filters (lowres_mt.data.filters), each counted per corpus in the data manifest
    ratio_range: tuple[float, float] = (0.5, 2.0)  # keep pairs with chars(src) / chars(tgt) inside
    min_letters: float = 0.5  # drop fragments: a side with fewer letters than this share of its
    # letters, digits and symbols (`2016/EES/18/27`), or a table row; 0 = off
    near_copies: bool = True  # drop pairs whose sides are (near-)copies of each other
    langid: bool = True  # drop pairs with a side identified as another language (lowres_mt.langid)
    langid_min_chars: int = 20  # shorter sides are not identified (unreliable on a few characters)
    # sampling weight of each pair of a task.train corpus (unnamed corpora weigh 1): a corpus of
    # weight w is drawn w times as readily, without replacement, so in-domain sets fill more of
    # the budget
    weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for ref, weight in self.weights.items():
            if ref not in self.train:
                raise UserError(f"task.weights names '{ref}', which is not in task.train "
                                f"({', '.join(self.train) or 'empty'}): add it to task.train or "
                                f"drop its weight (task.weights={{}} drops them all)")
            if not weight > 0:
                raise UserError(f"task.weights['{ref}'] must be above 0, got {weight}")
        low, high = self.ratio_range
        if not 0 <= low <= high:
            raise UserError(f"task.ratio_range must be [low, high] with 0 <= low <= high, not "
                            f"[{low}, {high}]")
        if not 0 <= self.min_letters <= 1:
            raise UserError(f"task.min_letters is a share between 0 and 1, not {self.min_letters}")


@dataclass(frozen=True)
class AnchorConfig:
    # TELL anchor: fixed instruction per direction; {src_name}/{tgt_name} are language names.
    instruction: str = (
        "This text is in {src_name} and needs to be translated into {tgt_name}. Please translate "
        "only the text, strictly maintaining the original content order, and do not add any "
        "explanations or additional content."
    )
    lead_in: str = "Sure, here is the {tgt_name} translation:"
    # plain prompt used by the `sft` method and by zero-shot / ICL baselines
    plain: str = "Translate from {src_name} to {tgt_name}."


@dataclass(frozen=True)
class S2LConfig:
    """SmallToLarge selection settings (`lowres-mt select`; CLI options override them)."""

    budget: int = at_least(0, 0)  # general examples to select (0: must be given with --budget)
    proxy: str = "smollm2-135m"  # small proxy model whose loss trajectories are clustered
    clusters: int = at_least(1, 100)  # k-means clusters (clamped to the pool size)
    pool: int = at_least(0, 0)  # score a seeded random subset of this many candidates (0: all)
    epochs: float = 3.0  # proxy fine-tuning epochs over the pool
    checkpoints: int = at_least(1, 12)  # points per loss trajectory
    stratify: bool = False  # split the budget across source corpora first


@dataclass(frozen=True)
class GeneralConfig:
    corpora: tuple[str, ...] = ()  # corpus set refs holding instruction data
    ratio: float = at_least(0, 10.0)  # general tokens = ratio × task tokens (TELL only)
    select: Literal["random", "s2l"] = "random"
    selection: str | None = None  # path to a selection file (S2L); default runs/<recipe>-s2l/
    s2l: S2LConfig = S2LConfig()
    max_tokens: int = at_least(1, 512)  # drop general examples longer than this (tokens)


@dataclass(frozen=True)
class MonoConfig:
    """Target-language monolingual text, learned as plain text (loss on every token) by every
    method: the model practises writing the language it has to translate into."""

    corpora: tuple[str, ...] = ()  # monolingual corpus set refs
    ratio: float = at_least(0, 0.0)  # monolingual tokens = ratio × unique task tokens (0 = none)
    max_tokens: int = at_least(1, 256)  # drop longer texts (tokens)


@dataclass(frozen=True)
class SyntheticConfig:
    """Synthetic pairs (`lowres-mt synth` files: back-translations, a model's output on the source
    side, real text on the target side) added to the task data, each in the one direction it was
    made for, through the same length and quality filters and contamination guard as real pairs.
    `task.tokens` keeps counting real pairs only; the manifest counts synthetic ones apart."""

    corpora: tuple[str, ...] = ()  # synth JSONL files (paths, relative to the recipe)
    ratio: float = at_least(0, 0.0)  # synthetic content tokens = ratio × the real task tokens (0 = none)
    tagged: bool = True  # training prompts show `tag` before a synthetic source; inference never does
    tag: str = "<bt>"
    # share of the filtered synthetic pairs kept, highest `source_gain` first (the score
    # `lowres-mt synth` writes: how much the synthetic source explains the real target); 1 = all
    keep: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.keep <= 1:
            raise UserError(f"synthetic.keep is a share above 0 and at most 1, not {self.keep}")


@dataclass(frozen=True)
class TrainConfig:
    method: Method = "tell"
    epochs: float = 1.0
    max_steps: int = -1  # > 0 caps optimizer steps
    # tokens per micro-batch (rows × longest row): keep it small on CPU, raise grad_accum instead
    batch_tokens: int = at_least(1, 1024)
    # several examples per max_length row (block-diagonal attention); off is faster on CPU
    # (docs/training.md)
    pack: bool = False
    grad_accum: int = at_least(1, 1)
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_length: int = at_least(1, 512)  # tokens per example and per packed row; longer examples are truncated
    # (or dropped when no answer token is left) and counted in metrics.jsonl
    eval_every: int = 50  # steps between dev evaluations (0: no dev chrF, dev loss at the end only)
    dev_chrf_size: int = 32  # dev sentences per direction translated for dev chrF (picks adapter/)
    save_every: int = 25  # steps between checkpoints (0: none); a kill loses at most these steps
    trim_vocab: bool = True
    threads: int = 0  # torch threads per process, 0 = all cores / processes on this machine
    # frozen base weights: auto = bfloat16 where it is faster (GPUs with bf16, CPUs where a probe
    # measures it >= 1.5x float32: AMX, Zen 5; precision.native_bf16),
    # float32 elsewhere; LoRA weights and optimizer state stay fp32 (lowres_mt.precision)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # bf16 autocast for full fine-tuning: auto = on where bf16 is faster (as for dtype; docs/training.md)
    mixed_precision: Literal["auto", "fp32", "bf16"] = "auto"
    keep: Literal["best", "last"] = "best"  # adapter/ holds the best-dev-chrF or the last weights
    scheduler: Literal["linear", "cosine", "constant"] = "cosine"  # learning-rate decay after warmup
    max_grad_norm: float = 1.0  # gradient clipping (0: off)
    keep_checkpoints: int = 2  # newest checkpoints kept under checkpoints/


@dataclass(frozen=True)
class PublishedScore:
    """A score from the literature, shown in the report as a labelled reference row (not run here)."""

    system: str  # who/what produced it, e.g. "Claude 2, wordlist + sentences + grammar in context"
    testset: str
    direction: str  # src-tgt
    metric: str  # chrF, chrF++ or BLEU
    score: str  # as published: "44.7", or a range "34–39"
    source: str = ""  # the publication


@dataclass(frozen=True)
class EndpointConfig:
    """An OpenAI-compatible server evaluated as system `openai:<name>` (llama.cpp's llama-server,
    vLLM, Ollama, a hosted API, `lowres-mt serve`): our prompts, its model."""

    base_url: str  # up to and including /v1, e.g. http://127.0.0.1:8000/v1
    model: str = ""  # the `model` field sent with each request ("" = omitted)
    api_key_env: str = ""  # environment variable holding the API key ("" = no key)
    mode: Literal["chat", "completions"] = "chat"  # completions: the prompt rendered as plain text
    # chat: send the answer's start (the target-language label) as a final assistant message for the
    # server to continue (llama.cpp and lowres-mt serve do); false for servers that cannot
    prefill: bool = True
    shots: int = at_least(0, 0)  # k retrieved examples in the prompt (0 = zero-shot), as `icl`
    concurrency: int = at_least(1, 4)  # requests in flight at once
    timeout_s: float = at_least(1.0, 120.0)
    retries: int = at_least(0, 4)  # after a 429/5xx answer or a dropped connection, with backoff


@dataclass(frozen=True)
class EvalConfig:
    # tell/sft = runs/<recipe>-tell|-sft; any other name = runs/<name>; apertium is skipped
    # with a note when it is not installed
    systems: tuple[str, ...] = ("tell", "sft", "icl", "zero-shot", "copy", "apertium", "external")
    testsets: tuple[str, ...] = ()
    sample: int = at_least(0, 200)  # sentences per test set and direction (0 = all), seeded by `seed`
    icl_k: int = 4
    batch_size: int = at_least(1, 32)
    max_new_tokens: int = at_least(1, 128)
    num_beams: int = at_least(1, 1)
    # end a hypothesis whose newest 4 tokens occur this often, or that ends in one word written this
    # often in a row in any case or spacing (cut back to its first copy): a loop; 0 = off
    stop_repeats: int = 3
    # repetition controls over the answer's own tokens, chosen on FLORES dev (docs/evaluation.md, Decoding):
    no_repeat_ngram: int = at_least(0, 3)  # never repeat an n-gram of the answer (0 = off)
    repetition_penalty: float = at_least(1.0, 1.1)  # damp the logits of answer tokens used (1 = off)
    train_vocabulary: bool = False  # a trimmed run answers only with the ids it was trained over
    # answers into a language use only a-z and its letters: true = those of text.EXTRA_LETTERS
    # (docs/evaluation.md, Alphabet); auto = those that >= text.MIN_LETTER_WORDS words of the
    # language's side of task.train use; false = off
    alphabet: bool | Literal["auto"] = True
    # the decoder (lowres_mt.translate.backends): auto = CTranslate2 on CUDA, torch on CPU, where
    # CTranslate2 measured slower (docs/evaluation.md, Backends); ctranslate2 = always where it
    # decodes alike (falls back to torch with a notice)
    backend: Literal["auto", "torch", "ctranslate2"] = "auto"
    # the compute type: auto = bfloat16 torch under backend auto where the device measures bf16
    # faster (a 2-core Zen 5 EPYC: yes; Zen 4, AVX2-only and Xeons without AMX: no), else float32
    # (CTranslate2: float32); bfloat16 = torch in bf16; or CTranslate2's types
    quantization: Literal["auto", "float32", "int8_float32", "int8", "float16", "bfloat16", "int8_float16"] = "auto"
    # MBR decoding: this many epsilon-sampled answers a sentence, the consensus one kept (chrF
    # against the others; lowres_mt.translate.mbr); 0 = off. Costs about that many decodes
    mbr_samples: int = at_least(0, 0)
    mbr_epsilon: float = 0.02
    bootstrap: int = 1000  # paired bootstrap resamples for CIs and p-values
    baseline: str = "sft"  # every other system is tested for significance against this one
    comet_model: str | None = None  # COMET checkpoint path or hub id; --comet-model overrides
    threads: int = 0  # torch threads while generating, 0 = leave torch's default (all cores)
    published: tuple[PublishedScore, ...] = ()  # reference rows from the literature for the report
    openai: dict[str, EndpointConfig] = field(default_factory=dict)  # systems openai:<name>


@dataclass(frozen=True)
class ContextConfig:
    """Evidence in the prompt of the +context methods, at training and at inference alike: wordlist
    entries for the source's words (W) and example pairs retrieved by BM25 from the training pool
    (S), never the example itself or a near-duplicate of it. Material comes from `book:`
    (wordlists) and `book.sentences` or `task.train` (pairs), all through the contamination guard."""

    setting: Literal["W", "S", "W+S"] = "W+S"
    tokens: int = at_least(16, 256)  # the evidence block's budget per sentence (base-model tokens)
    entries_per_word: int = at_least(1, 2)


@dataclass(frozen=True)
class BookConfig:
    """The grammar-book track: resources (corpus set refs) for in-context prompts (`icl-book`) and
    the auxiliary tasks mixed into TELL by `tell+book`. Templates take {src_name} (the object
    language) and {tgt_name} (the language of glosses and translations)."""

    wordlists: tuple[str, ...] = ()  # sets of wordlist entries (headword → gloss)
    grammar: tuple[str, ...] = ()  # sets of grammar-book sections
    glossed: tuple[str, ...] = ()  # sets of interlinear glossed examples
    sentences: tuple[str, ...] = ()  # parallel sentences retrieved in context; default task.train
    ratio: float = 1.0  # tell+book: book-task tokens = ratio × task tokens
    tasks: dict[str, float] = field(default_factory=lambda: {
        "words": 1.0, "gloss": 1.0, "gloss-translation": 1.0, "passages": 1.0})  # token shares
    passage_words: int = 160  # words per grammar passage (first part prompt, rest continuation)
    context: Literal["W", "W+S", "W+S+G"] = "W+S+G"  # in-context material, as in MTOB
    context_tokens: int = 1024  # budget for the in-context material of one sentence
    entries_per_word: int = 2  # wordlist entries shown per source word
    gloss_instruction: str = (
        "This text is in {src_name} and needs an interlinear gloss. Please gloss every word morpheme "
        "by morpheme with Leipzig abbreviations, strictly maintaining the original word order, and "
        "do not add any explanations or additional content.")
    gloss_lead_in: str = "Sure, here is the interlinear gloss:"
    unglossed_instruction: str = (
        "This text is an interlinear gloss of a {src_name} sentence. Please write the {src_name} "
        "sentence it glosses, with its morpheme boundaries, and do not add any explanations or "
        "additional content.")
    unglossed_lead_in: str = "Sure, here is the {src_name} sentence:"
    gloss_translation_instruction: str = (
        "This text is an interlinear gloss of a {src_name} sentence and needs to be translated into "
        "{tgt_name}. Please translate only the text, strictly maintaining the original content "
        "order, and do not add any explanations or additional content.")
    passage_instruction: str = "This text is from a grammar of {src_name}. Please continue it."
    passage_lead_in: str = "Sure, here is the continuation:"


@dataclass(frozen=True)
class RecipeConfig:
    name: str
    languages: tuple[str, str]
    description: str = ""
    directions: tuple[str, ...] = ()  # default: both directions of `languages`
    language_names: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    base_model: str = "gemma-3-270m"
    # text: plain "English: …\nIcelandic: …" prompts for base models; chat: the model's chat
    # template; auto: what the model registry says, else chat when the tokenizer ships a template
    prompt_format: Literal["auto", "text", "chat"] = "auto"
    task: TaskConfig = TaskConfig()
    anchor: AnchorConfig = AnchorConfig()
    general: GeneralConfig = GeneralConfig()
    mono: MonoConfig = MonoConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    train: TrainConfig = TrainConfig()
    # passed straight to peft.LoraConfig; null: full fine-tuning, every weight trained (float32)
    lora: dict[str, Any] | None = field(default_factory=dict)
    eval: EvalConfig = EvalConfig()
    book: BookConfig = BookConfig()
    context: ContextConfig = ContextConfig()

    def __post_init__(self) -> None:
        from lowres_mt.languages import language_name

        for code in self.languages:
            language_name(code, self.language_names)  # a code with no name fails at load
        if not self.directions:
            a, b = self.languages
            object.__setattr__(self, "directions", (f"{a}-{b}", f"{b}-{a}"))

    def to_dict(self) -> dict:
        return to_dict(self)


def list_recipes() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml") if not p.stem.startswith("_"))


_given_as: dict[str, str] = {}  # recipe name -> how the command line named it (a name or a path)


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> RecipeConfig:
    """Load a recipe by name (recipes/<name>.yaml) or path, apply overrides, validate.

    File paths in set-ref keys (task.train, eval.testsets, …; `corpora.local.REF_KEYS`) are made
    absolute: relative to the recipe file that wrote them, or to the current folder for overrides.
    Each is declared to `corpora.local` with the kind of records its key expects."""
    path = _find_recipe(name_or_path)
    data = _load_merged(path, seen=())
    data.pop("extends", None)
    for item in overrides:
        _apply_override(data, item)
    _resolve_paths(data, Path.cwd())
    cfg = build(RecipeConfig, data, where=str(path))
    _declare_files(cfg)
    if not (path.parent / "run.json").is_file():  # a run's saved config.yaml is not how users name it
        _given_as[cfg.name] = name_or_path
    return cfg


def recipe_arg(cfg: RecipeConfig) -> str:
    """The recipe as the user named it on the command line (for hints such as `lowres-mt train X`)."""
    return _given_as.get(cfg.name, cfg.name)


def _resolve_paths(data: dict, base: Path) -> None:
    """Make every file path in a set-ref key of `data` absolute, relative to `base`."""
    from lowres_mt.corpora.local import REF_KEYS, is_path_ref

    def resolve(ref):
        if not isinstance(ref, str) or not is_path_ref(ref):
            return ref
        return os.path.normpath(base / Path(ref).expanduser())

    for section, key in REF_KEYS:
        node = data.get(section)
        if isinstance(node, dict) and key in node:
            value = node[key]
            node[key] = [resolve(v) for v in value] if isinstance(value, list) else resolve(value)
    task = data.get("task")
    if isinstance(task, dict) and isinstance(task.get("weights"), dict):
        task["weights"] = {resolve(k): v for k, v in task["weights"].items()}


def _declare_files(cfg: RecipeConfig) -> None:
    from lowres_mt.corpora import local

    for (section, key), kind in local.REF_KEYS.items():
        value = getattr(getattr(cfg, section), key)
        for ref in (value,) if isinstance(value, str) else (value or ()):
            if not local.is_path_ref(ref):
                continue
            if kind is None:
                raise UserError(f"{section}.{key} takes shipped sets (CORPUS:SET, see `lowres-mt "
                                f"corpora list`), not files: '{ref}'")
            local.declare(ref, kind, cfg.languages, cfg.language_names)


def _find_recipe(name_or_path: str) -> Path:
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml"):
        if candidate.is_file():
            return candidate.absolute()
        raise UserError(f"no recipe file {name_or_path} (write one with `lowres-mt init PAIR`, or "
                        "name a shipped recipe: `lowres-mt recipes list`)")
    path = recipes_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(list_recipes()) or "none"
        raise UserError(f"unknown recipe '{name_or_path}' (known: {known}; or give a YAML file's "
                        "path); see `lowres-mt recipes list`")
    return path


def _load_merged(path: Path, seen: tuple[Path, ...]) -> dict:
    if path in seen:
        raise UserError(f"{path}: `extends` forms a cycle")
    try:
        data = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: invalid YAML{at}; fix the syntax and retry") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a recipe must be a mapping of keys to values")
    _resolve_paths(data, path.parent)
    parent = data.get("extends")
    if parent is None:
        return data
    parent_path = _find_parent(path, str(parent))
    base = _load_merged(parent_path, seen + (path,))
    base.pop("extends", None)
    return deep_merge(base, {k: v for k, v in data.items() if k != "extends"})


def _find_parent(path: Path, parent: str) -> Path:
    """The file `extends: parent` names: beside the recipe, else a shipped recipe (`_base`)."""
    file_name = parent if parent.endswith((".yaml", ".yml")) else f"{parent}.yaml"
    for candidate in (path.parent / file_name, recipes_dir() / file_name):
        if candidate.is_file():
            return candidate
    raise UserError(f"{path}: `extends: {parent}` names no file (looked for {path.parent / file_name} "
                    f"and the shipped {recipes_dir() / file_name})")


def deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _apply_override(data: dict, item: str) -> None:
    if "=" not in item:
        raise UserError(f"override '{item}' must look like KEY=VALUE (e.g. task.tokens=20000)")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        if node.get(part) is None:  # missing, or a section set to null (lora: null) starts empty
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise UserError(f"override '{item}': '{part}' is not a section")
    node[parts[-1]] = value


def dump_recipe(cfg: RecipeConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True, width=120)
