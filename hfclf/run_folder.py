"""The run folder of `hfclf train`, and any saved model folder: its files, its results record, loading it (full or
LoRA) for prediction and export, its checkpoints and when one is complete, and where a run resumes.

Layout of a run folder: the model (`model.safetensors`, `config.json`, the model's code files), its tokenizer,
`results.json` ([`RunResults`], written last: a folder that has it is finished), `predictions.csv`, plots, and
`checkpoint-N/` folders. A LoRA run holds the adapter (`adapter_config.json`, `adapter_model.safetensors`) and
`hfclf_lora.json` (how to rebuild its base classifier) instead of the model, and `merged/` with `--merge_lora`.

Every checkpoint gets `hfclf_checkpoint.json`, written by hfclf itself after everything else in the checkpoint (so it
marks the checkpoint as complete), holding the size of every file, the learning-rate groups the optimizer state was
built with, and the training loss and time so far. Resuming reads only this JSON file: hfclf never unpickles
anything from a folder (`training_args.bin` is `Trainer`'s, and is never read).
"""

import dataclasses
import json
import logging
import math
import shutil
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .architectures import BuildInputs, get_architecture, label_fields, resolve_model_name
from .errors import HfclfInputError, first_line
from .files import TEMPORARY_PREFIX, give_default_permissions, hfclf_files, read_json, write_json
from .models import PooledEncoderConfig

logger = logging.getLogger("hfclf")

CONFIG_FILE = "config.json"
# The files a tokenizer reads its vocabulary from (fast tokenizers; WordPiece, BPE and SentencePiece ones).
VOCABULARY_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "spm.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.csv"
PER_LABEL_FILE = "per_label.csv"  # multi-label: precision, recall, F1 and support of each label
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_FILES = (ADAPTER_CONFIG_FILE, "adapter_model.safetensors")
LORA_INFO_FILE = "hfclf_lora.json"
# Set on a trained classifier's config for its users (see `model_extras`).
MODEL_EXTRAS = ("problem_type", "thresholds", "target_mean", "target_std", "input_format")
# Fields of a LoRA run's base classifier that hfclf_lora.json records under "head" besides its config fields.
LORA_HEAD_FIELDS = ("pooling", "class_weights", "pad_token_id")
MERGED_SUBDIR = "merged"
# Tokenizer files of every tokenizer family (fast and slow).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
# A saved tokenizer's `model_max_length` is the length its model was trained with; its own limit is kept here.
LENGTH_LIMIT_KEY = "hfclf_length_limit"
CHECKPOINT_RECORD = "hfclf_checkpoint.json"
CHECKPOINT_PREFIX = "checkpoint-"  # transformers' PREFIX_CHECKPOINT_DIR
RECORD_VERSION = 1


# ---------------------------------------------------------------------------------------------------- results record


def metric_prefix(split: str) -> str:
    """The prefix of a split's metrics (`Trainer`'s): `validation` -> `eval`, `test` -> `test`."""
    return "eval" if split == "validation" else split


def split_of(prefix: str) -> str:
    """The split whose metrics carry `prefix`: `eval` -> `validation`."""
    return "validation" if prefix == "eval" else prefix


RESULTS_VERSION = 2  # 1: results.json of hfclf releases without a version key (no max_length)


def precision_of(training_arguments: dict) -> str:
    """fp32, bf16 or fp16: the precision a run trained in, from its training arguments."""
    return next((p for p in ("bf16", "fp16") if training_arguments.get(p)), "fp32")


@dataclass
class RunResults:
    """`results.json`: what a run measured (metrics per split, speeds, log history) and how it was made (every
    resolved argument, hardware, library versions, the tokens per example it trained on)."""

    train: dict = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)
    arguments: dict = field(default_factory=dict)  # {"model": ..., "data": ..., "training": ...}
    settings: dict = field(default_factory=dict)  # the arguments that decide the result, as parsed (run_settings)
    problem_type: str = "single_label_classification"  # the task shape (see hfclf.data.tasks)
    max_length: int | None = None  # tokens per example in training (None: written by an hfclf without it)
    model_config: dict = field(default_factory=dict)  # the config fields a run can set, as the model was built
    best_checkpoint: str | None = None
    best_metric: float | None = None
    best_epoch: float | None = None
    epochs: float | None = None
    run_time_seconds: float | None = None  # the last process's wall time, data included (a resume: since it began)
    train_samples_per_second: float | None = None
    tokenization: dict = field(default_factory=dict)
    num_parameters: int | None = None
    num_trainable_parameters: int | None = None
    data_sizes: dict = field(default_factory=dict)
    hardware: str = ""
    num_processes: int = 1
    command: str = ""
    versions: dict = field(default_factory=dict)
    log_history: list = field(default_factory=list)
    # inference speed and peak memory (hfclf.inference.cost), empty when not measured
    cost: dict = field(default_factory=dict)
    compute: dict = field(default_factory=dict)  # training's model FLOP/s against the matmul peak (same module)
    version: int = RESULTS_VERSION

    @property
    def split(self) -> str:
        """The split the run reports: `test` when it had one, else `eval` (validation)."""
        return "test" if self.test else "eval"

    def metric(self, name: str, split: str | None = None):
        """A metric of a split (default: the reported one), e.g. `metric("accuracy")` -> `test_accuracy`."""
        split = split or self.split
        return getattr(self, split).get(f"{split}_{name}")

    @property
    def model_arguments(self) -> dict:
        return self.arguments.get("model", {})

    @property
    def data_arguments(self) -> dict:
        return self.arguments.get("data", {})

    @property
    def training_arguments(self) -> dict:
        return self.arguments.get("training", {})

    @property
    def seed(self) -> int | None:
        return self.training_arguments.get("seed")

    @property
    def precision(self) -> str:
        return precision_of(self.training_arguments)

    def save(self, folder) -> None:
        """Write `results.json` into `folder`, atomically."""
        write_json(Path(folder) / RESULTS_FILE, dataclasses.asdict(self), default=str)

    @classmethod
    def load(cls, folder) -> "RunResults | None":
        """The results of the run in `folder`, or None when it has none (an unfinished run, an exported folder)."""
        raw = read_json(Path(folder) / RESULTS_FILE)
        if raw is None:
            return None
        version = raw.get("version", 1)
        if version > RESULTS_VERSION:
            raise HfclfInputError(
                f"{Path(folder) / RESULTS_FILE} was written by a newer hfclf (results version {version}); upgrade "
                "hfclf to read it."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in raw.items() if key in known}
        for split in ("train", "eval", "test"):  # a metric with no value (a constant prediction's correlation)
            values[split] = {key: math.nan if value is None else value for key, value in values.get(split, {}).items()}
        return cls(**{**values, "version": version})


def input_format(config) -> dict:
    """How a model's texts were given in training (text and pair columns, the separator that joined several text
    columns, long-text strategy), saved on its config (an object or a dict)."""
    saved = (config.get("input_format") if isinstance(config, dict) else getattr(config, "input_format", None)) or {}
    defaults = {"text_columns": None, "text_separator": " ", "text_pair_column": None, "long_text": "truncate"}
    return {**defaults, **saved}


def default_max_length(model, tokenizer, requested: int | None = None) -> int:
    """Tokens per text: --max-length if given, else the length the model was trained with (its tokenizer's
    `model_max_length`, at most 512); capped by the model's positions."""
    limits = [requested or 512]
    if requested is None and 0 < (tokenizer.model_max_length or 0) < 1_000_000:
        limits.append(tokenizer.model_max_length)
    config = model.config
    for cfg in (config, getattr(config, "encoder_config", None)):
        positions = getattr(cfg, "max_position_embeddings", None)
        if positions:
            # RoBERTa-style encoders reserve padding_idx + 1 positions
            offset = (getattr(cfg, "pad_token_id", 0) or 0) + 1 if getattr(cfg, "model_type", "") == "roberta" else 0
            limits.append(positions - offset)
    return max(1, min(limits))


# ------------------------------------------------------------------------------------------------------ loading a run


def load_run(path) -> "Run":
    """A trained model folder (`hfclf train` output, full or LoRA, or `hfclf export` output), its files checked."""
    path = Path(path)
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise HfclfInputError(f"Model folder {path} {what}; pass the output folder of `hfclf train` or `hfclf export`.")
    run = Run(path)
    if run.is_lora:
        read_lora_spec(path)
        read_json(path / ADAPTER_CONFIG_FILE)
    elif read_json(path / CONFIG_FILE) is None:
        raise HfclfInputError(
            f"{path} has no {CONFIG_FILE}, so it is not a saved model; pass the output folder of `hfclf train`."
        )
    elif "model_type" not in run.config:
        raise HfclfInputError(
            f"{path / CONFIG_FILE} has no model_type, so no model class can read it; restore the model's own "
            f"{CONFIG_FILE}, or train or export the model again."
        )
    check_weight_files(path)
    if not run.is_lora:
        _check_safetensors(path)
        _check_head_size(path, run.config)
    return run


# PyTorch's (pickle-based) weight files, as transformers and peft name them: pytorch_model*.bin, adapter_model.bin.
PYTORCH_WEIGHTS = "*model*.bin"


def _check_safetensors(folder: Path) -> None:
    """hfclf reads a model's weights from safetensors files only: a pickled `.bin` could run code when loaded."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.glob(PYTORCH_WEIGHTS))
    found = f"only {', '.join(pickled)}, which hfclf does not read (pickle)" if pickled else "no weight file"
    raise HfclfInputError(
        f"{folder} has no model.safetensors ({found}); convert the weights with `save_pretrained` where you trust "
        "their source, or train or export the model again."
    )


# The classification head's bias, by the names transformers' sequence classifiers give it (hfclf's, BERT, RoBERTa).
HEAD_BIASES = ("classifier.bias", "classifier.out_proj.bias")


def _check_head_size(folder: Path, config: dict) -> None:
    """The classification head has one output per label of config.json (files of two models mixed in one folder fail
    here, with the numbers, instead of in transformers' loading report)."""
    from safetensors import safe_open

    labels = len(config.get("id2label") or {}) or config.get("num_labels")
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as weights:
            for name in set(HEAD_BIASES) & set(weights.keys()):
                outputs = weights.get_slice(name).get_shape()[0]
                if labels and outputs != labels:
                    raise HfclfInputError(
                        f"{folder / CONFIG_FILE} has {labels} labels but the classifier in {path.name} has {outputs} "
                        "outputs: the files come from different models. Restore the model's own config.json, or "
                        "train or export the model again."
                    )


@dataclass
class Run:
    """A model folder and what it holds: results, config, tokenizer and the model itself (a LoRA run is merged)."""

    path: Path

    @property
    def is_lora(self) -> bool:
        return is_lora_dir(self.path)

    @cached_property
    def results(self) -> RunResults | None:
        return RunResults.load(self.path)

    @cached_property
    def config(self) -> dict:
        """The classifier's config as a dict (for a LoRA run, its base classifier's; no weights are loaded)."""
        return base_config(self.path).to_dict() if self.is_lora else read_json(self.path / CONFIG_FILE)

    def model_config(self):
        """The classifier's config object (for a LoRA run, its base classifier's); no weights are loaded."""
        from transformers import AutoConfig

        from . import models  # noqa: F401

        if self.is_lora:
            return base_config(self.path)
        return _loading(self.path, "the config", lambda: AutoConfig.from_pretrained(str(self.path)))

    @property
    def is_classifier(self) -> bool:
        return self.is_lora or any(
            a.endswith("ForSequenceClassification") for a in self.config.get("architectures") or []
        )

    def check_classifier(self) -> None:
        """A one-line error unless the folder holds a sequence classifier."""
        if not self.is_classifier:
            architectures = self.config.get("architectures") or []
            found = ", ".join(architectures) or self.config.get("model_type", "unknown")
            raise HfclfInputError(
                f"{self.path} holds a model without a classifier head ({found}); pass a folder saved from a sequence "
                "classifier, e.g. the output of `hfclf train`."
            )

    def tokenizer(self):
        """The tokenizer saved with the model; its `model_max_length` is the length the model was trained with."""
        from transformers import AutoTokenizer

        # character- and byte-level tokenizers need no vocabulary file: a missing one is named only when the
        # tokenizer does not load, or loads without words
        missing = f"The tokenizer in {self.path} has no vocabulary file (e.g. tokenizer.json or vocab.txt); restore "
        missing += "the files saved with the model, or train or export the model again."
        has_vocabulary = any((self.path / name).is_file() for name in VOCABULARY_FILES)
        try:
            tokenizer = _loading(self.path, "the tokenizer", lambda: AutoTokenizer.from_pretrained(str(self.path)))
        except HfclfInputError:
            if not has_vocabulary:
                raise HfclfInputError(missing) from None
            raise
        if not set(tokenizer.get_vocab()) - set(tokenizer.all_special_tokens):  # every word would be unknown
            if not has_vocabulary:
                raise HfclfInputError(missing)
            raise HfclfInputError(
                f"The tokenizer in {self.path} has no words, only special tokens: its vocabulary file is empty. "
                "Restore it, or train or export the model again."
            )
        words = getattr(self.model_config().get_text_config(), "vocab_size", None)
        if words and len(tokenizer) > words:  # its ids past the embeddings would fail, or read other rows
            raise HfclfInputError(
                f"The tokenizer in {self.path} has {len(tokenizer)} tokens but the model has {words} word vectors: "
                "they come from different models. Restore the tokenizer files saved with the model."
            )
        return tokenizer

    def classifier(self):
        """The sequence classifier, in eval mode (a LoRA run's adapter merged into its base)."""
        from transformers import AutoModelForSequenceClassification

        from . import models  # noqa: F401  (registers hfclf's classes with the Auto classes)

        self.check_classifier()
        if self.is_lora:
            model = load_lora_model(self.path).merge_and_unload()
        else:
            model = _loading(
                self.path, "the model", lambda: _fitting_weights(self.path, AutoModelForSequenceClassification)
            )
        return model.eval()

    def encoder(self):
        """The model without its classifier, in eval mode: for hfclf models, the one whose `pooler_output` is the
        pooled sentence vector the classifier sees."""
        from transformers import AutoModel

        from . import models  # noqa: F401

        if self.is_classifier:  # its own base model: loading the folder as an AutoModel would report its head unused
            classifier = self.classifier()
            return getattr(classifier, classifier.base_model_prefix).eval()
        return _loading(self.path, "a model", lambda: AutoModel.from_pretrained(str(self.path))).eval()


def _fitting_weights(path: Path, auto_class):
    """`auto_class.from_pretrained(path)` from its safetensors files, refusing weights that do not fit the model
    (missing ones would be random, extra ones ignored) in one line, where transformers prints a loading report."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        # mismatched sizes are loaded (and reported in `info`, refused below) rather than raised as a pointer to a
        # report that the verbosity above hides
        model, info = auto_class.from_pretrained(
            str(path), output_loading_info=True, use_safetensors=True, ignore_mismatched_sizes=True
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
    for kind in ("missing", "unexpected", "mismatched"):
        names = sorted(str(key[0] if isinstance(key, tuple) else key) for key in info[f"{kind}_keys"])
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise HfclfInputError(
                f"The weights in {path} do not fit the model its {CONFIG_FILE} describes ({kind}: {shown}); restore "
                "the model's own files, or train or export the model again."
            )
    return model


def _loading(path: Path, what: str, load):
    """`load()`, with what `transformers` raises for a folder it cannot read turned into one clear error."""
    try:
        return load()
    except HfclfInputError:
        raise
    except (OSError, ValueError, RuntimeError) as err:
        raise HfclfInputError(
            f"Could not load {what} in {path} ({first_line(err)}); pass the output folder of `hfclf train` or "
            "`hfclf export`."
        ) from None


def check_weight_files(folder) -> None:
    """Every weight file of a model folder is whole: a `*.safetensors` file has a complete header and all the data it
    announces, a PyTorch `*model*.bin` is a complete zip archive (read by `transformers` without unpickling code)."""
    from safetensors import safe_open

    for path in sorted(Path(folder).glob(PYTORCH_WEIGHTS)):
        if not zipfile.is_zipfile(path):
            raise HfclfInputError(
                f"Model file {path} is damaged (not a complete PyTorch archive), e.g. truncated by an interrupted copy "
                "or save; restore it, or train or export the model again."
            )
    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as err:  # safetensors raises its own error type for damaged files
            problem = first_line(err)
            raise HfclfInputError(
                f"Model file {path} is damaged ({problem}), e.g. truncated by an interrupted copy or save; restore "
                "it, or train or export the model again."
            ) from None


# ---------------------------------------------------------------------------------------------------------- LoRA runs


def is_lora_dir(path) -> bool:
    return (Path(path) / ADAPTER_CONFIG_FILE).is_file()


def read_lora_spec(path) -> dict:
    spec = read_json(Path(path) / LORA_INFO_FILE)
    if spec is None:
        raise HfclfInputError(
            f"{path} holds a peft adapter but no {LORA_INFO_FILE}; load it with PeftModel.from_pretrained(base, "
            f"'{path}') on its base model, or point at an hfclf LoRA run folder."
        )
    return spec


def base_model_spec(model_args, model) -> dict:
    """What `load_base_model` needs to rebuild the base classifier that the adapter goes on."""
    config = model.config
    encoder = model_args.model
    spec = {
        "arch": model_args.arch,
        # Aliases (minilm) and Hub ids are kept as given, so the run loads on other machines; a local folder is
        # recorded as an absolute path, so the run loads from any working directory.
        "encoder": str(Path(encoder).resolve()) if Path(encoder).is_dir() else encoder,
        "num_labels": config.num_labels,
        "id2label": {str(i): name for i, name in config.id2label.items()},
    }
    architecture = get_architecture(model_args.arch)
    if architecture.config_class is not None:  # the head's configuration, as the trained model has it
        fields = architecture.config_fields() | set(LORA_HEAD_FIELDS)
        spec["head"] = {key: getattr(config, key) for key in sorted(fields)}
    elif model_args.config_fields():
        spec["head"] = model_args.config_fields()
    return spec


def save_lora_run(output_dir, spec: dict, config) -> None:
    """Write `hfclf_lora.json` next to the adapter that `Trainer.save_model` wrote, with what the trained model's
    users read from its config (`model_extras`)."""
    write_json(Path(output_dir) / LORA_INFO_FILE, {**spec, "extras": model_extras(config)})


def model_extras(config) -> dict:
    """What a trained classifier's config tells its users besides its fields: the task shape, the multi-label
    decision thresholds, the scale of regression targets, and how texts were given (pairs, long texts)."""
    return {key: getattr(config, key) for key in MODEL_EXTRAS if getattr(config, key, None) is not None}


def base_build_inputs(path) -> BuildInputs:
    """How to rebuild the base classifier of an hfclf LoRA run, from its `hfclf_lora.json`."""
    spec = read_lora_spec(path)
    names = [spec["id2label"][str(i)] for i in range(spec["num_labels"])]
    problem_type = spec.get("extras", {}).get("problem_type") or "single_label_classification"
    head = dict(spec.get("head") or {})
    return BuildInputs(
        model=resolve_model_name(spec["encoder"]),
        labels=label_fields(names, problem_type),
        **{field: head.pop(field, None) for field in LORA_HEAD_FIELDS},
        overrides=head,
        extras=spec.get("extras", {}),
    )


def load_base_model(path):
    """The base classifier of an hfclf LoRA run: the pretrained encoder plus a head of the run's configuration.

    The head's weights here are fresh; the adapter (`PeftModel.from_pretrained`) replaces them with the trained ones.
    """
    import torch

    torch.manual_seed(0)  # the fresh head is replaced by the adapter's; seeding only keeps loads identical
    # transformers reports a stock classifier's fresh head as missing weights "to train": here the adapter holds them
    report = logging.getLogger("transformers.modeling_utils")
    level = report.level
    report.setLevel(logging.ERROR)
    try:
        return get_architecture(read_lora_spec(path)["arch"]).build(base_build_inputs(path))
    finally:
        report.setLevel(level)


def base_config(path):
    """The config of the base classifier of an hfclf LoRA run (no weights are loaded)."""
    return get_architecture(read_lora_spec(path)["arch"]).config(base_build_inputs(path))


def load_lora_model(path, is_trainable: bool = False):
    """The `PeftModel` of an hfclf LoRA run folder (base classifier + adapter)."""
    from peft import PeftModel

    return _loading(
        Path(path),
        "the LoRA adapter",
        lambda: PeftModel.from_pretrained(load_base_model(path), str(path), is_trainable=is_trainable),
    )


def merge_lora_run(path, output_dir) -> Path:
    """Merge the adapter of a LoRA run into its base and save a plain model (+ tokenizer) that loads without peft
    into `output_dir` (callers that replace a folder write into a temporary one, see `hfclf.files.atomic_folder`)."""
    from transformers import AutoTokenizer

    merged = load_lora_model(path).merge_and_unload()
    output_dir = Path(output_dir)
    merged.save_pretrained(output_dir)
    AutoTokenizer.from_pretrained(path).save_pretrained(output_dir)
    give_default_permissions(output_dir)
    return output_dir


# -------------------------------------------------------------------------------------------------------- checkpoints


def checkpoint_step(path) -> int:
    """The global step in a checkpoint folder's name (`checkpoint-120` -> 120), or -1."""
    suffix = Path(path).name.removeprefix(CHECKPOINT_PREFIX)
    return int(suffix) if Path(path).name.startswith(CHECKPOINT_PREFIX) and suffix.isdigit() else -1


def write_checkpoint_record(checkpoint, record: dict) -> None:
    """Mark `checkpoint` complete: its files (sub-folders included) and their sizes, plus `record`, written last and
    atomically."""
    checkpoint = Path(checkpoint)
    files = {
        path.relative_to(checkpoint).as_posix(): path.stat().st_size
        for path in sorted(checkpoint.rglob("*"))
        if path.is_file() and path.name != CHECKPOINT_RECORD and not path.name.startswith(TEMPORARY_PREFIX)
    }
    write_json(checkpoint / CHECKPOINT_RECORD, {"version": RECORD_VERSION, **record, "files": files})


def checkpoint_problem(checkpoint) -> str | None:
    """Why `checkpoint` cannot be resumed from (not finished, a file missing or truncated), or None if complete."""
    checkpoint = Path(checkpoint)
    try:
        record = json.loads((checkpoint / CHECKPOINT_RECORD).read_text())
    except FileNotFoundError:
        return f"it has no {CHECKPOINT_RECORD}, so its save did not finish"
    except (OSError, ValueError):
        return f"its {CHECKPOINT_RECORD} is unreadable"
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return f"its {CHECKPOINT_RECORD} is not an hfclf checkpoint record"
    if record.get("save_only_model"):
        return "it holds the model only (--save_only_model), not the optimizer and schedule that a resume needs"
    for name, size in record["files"].items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size:,} bytes instead of {size:,} (truncated or changed)"
    for name in record["files"]:
        problem = _unreadable(checkpoint / name)
        if problem:
            return f"{name} {problem}"
    return None


def _unreadable(path: Path) -> str | None:
    """Why a checkpoint file of the recorded size does not read back (changed in place): a JSON file that does not
    parse, a safetensors header that does not, a PyTorch archive whose checksums fail. None if it reads."""
    from safetensors import safe_open

    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt"):
                pass
        elif path.suffix in (".pt", ".pth"):  # what a resume loads (training_args.bin is never read)
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
            if damaged:
                return f"is damaged ({damaged} fails its checksum)"
    except Exception as err:  # the parsers' own errors: JSON, safetensors (a Rust error type), zip
        return f"is damaged ({first_line(err)})"
    return None


def read_checkpoint_record(checkpoint) -> dict:
    """The record of a complete checkpoint."""
    return json.loads((Path(checkpoint) / CHECKPOINT_RECORD).read_text())


def checkpoints(output_dir) -> list[Path]:
    """The checkpoint folders of a run, newest (highest step) first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if p.is_dir() and checkpoint_step(p) >= 0]
    return sorted(found, key=checkpoint_step, reverse=True)


def latest_complete_checkpoint(output_dir, warn: bool = True) -> Path | None:
    """The newest complete checkpoint of a run; newer incomplete ones are skipped with a warning naming them."""
    for checkpoint in checkpoints(output_dir):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        if warn:
            logger.warning("Skipping checkpoint %s: %s", checkpoint, problem)
    return None


def resolve_resume(
    output_dir, resume: str | None, learning_rate_groups: dict, precision: str, settings: dict
) -> str | None:
    """The checkpoint to resume from for `--resume_from_checkpoint` (a folder, or `auto`), checked to be complete
    and made with the same `learning_rate_groups` (flag: value), `precision` and `settings`
    (`training_args.run_settings`) as this run; None to start fresh."""
    if not resume:
        return None
    if resume == "auto":
        checkpoint = latest_complete_checkpoint(output_dir)
        if checkpoint is None:
            logger.info("No checkpoint to resume from; starting fresh.")
            return None
        logger.info("Resuming from %s", checkpoint)
    else:
        checkpoint = Path(resume)
        if not checkpoint.is_dir():
            raise HfclfInputError(
                f"Checkpoint {checkpoint} does not exist; pass a checkpoint-N folder of the run, or "
                "--resume-from-checkpoint auto for its latest."
            )
        problem = checkpoint_problem(checkpoint)
        if problem is not None:
            raise HfclfInputError(
                f"Checkpoint {checkpoint} cannot be resumed: {problem}. Resume from an earlier checkpoint, or pass "
                "--resume-from-checkpoint auto to take the newest complete one."
            )
    _check_learning_rate_groups(checkpoint, learning_rate_groups)
    _check_precision(checkpoint, precision)
    check_same_settings(read_checkpoint_record(checkpoint).get("settings"), settings, f"Checkpoint {checkpoint}",
                        "resume with the same flags, or start a new --output-dir")  # fmt: skip
    return str(checkpoint)


def check_same_settings(saved: dict | None, now: dict, what: str, fix: str) -> None:
    """Refuse when `saved` settings (of a checkpoint or a finished run: `what`) differ from this run's `now`, naming
    the flags. Nothing to check where none were saved (an hfclf before this record) or a flag is new to one side."""
    unset = (None, "", [], {})  # an empty value and none mean the same (`lr_scheduler_kwargs: {}` or left out)
    changed = [
        name
        for name in sorted(set(saved or {}) & set(now))
        if saved[name] != now[name] and not (saved[name] in unset and now[name] in unset)
    ]
    if not changed:
        return
    shown = "; ".join(f"--{name} {saved[name]} (now {now[name]})" for name in changed[:4])
    more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
    raise HfclfInputError(
        f"{what} was made with other settings: {shown}{more}. Its result would belong to neither; {fix}."
    )


def _check_precision(checkpoint: Path, precision: str) -> None:
    """A resumed run computes in its checkpoint's precision, so that it ends where an uninterrupted run would (the
    default precision depends on the CPU, so a checkpoint moved to another machine could otherwise switch)."""
    saved = read_checkpoint_record(checkpoint).get("precision")
    if saved is not None and saved != precision:  # checkpoints from before the record kept it have none
        flag = {"bf16": "--bf16 true", "fp16": "--fp16 true"}.get(saved, "--bf16 false")
        raise HfclfInputError(
            f"{checkpoint} was trained in {saved} but this run would train in {precision}; pass {flag} to resume it in "
            "its own precision, or start a new --output-dir."
        )


def _check_learning_rate_groups(checkpoint: Path, learning_rate_groups: dict) -> None:
    """A checkpoint's optimizer state holds its learning-rate groups, so a resumed run needs the flags that made
    them (otherwise loading fails, or the old rates come back in silence)."""
    saved = read_checkpoint_record(checkpoint).get("learning_rate_groups", {})
    for flag, now in learning_rate_groups.items():
        before = saved.get(flag, now)
        if before != now:
            raise HfclfInputError(
                f"{checkpoint} was trained with --{flag.replace('_', '-')} {before} but this run asks for {now}; "
                "resume with the same value, or start a new --output-dir."
            )


def check_output_dir(training_args) -> None:
    """Refuse to write into a non-empty output directory unless asked to overwrite or resume from a checkpoint, and
    refuse a finished run (see [`clear_output_dir`] for what is removed once the run's inputs are checked)."""
    _stale_files(training_args)


def clear_output_dir(training_args) -> None:
    """Remove what a previous run left that could pass for this run's state, once every input of the run has been
    checked (so that a refused run removes nothing).

    With `--overwrite_output_dir` (and no resume) that is its checkpoints, results, predictions and LoRA files. With
    `--resume_from_checkpoint auto` and only unfinished checkpoints (a run killed while saving its first one), those
    are removed and the run starts over.
    """
    names, what = _stale_files(training_args)
    if names:
        output_dir = Path(training_args.output_dir)
        logger.warning("Removing %s from %s: %s", what, output_dir, ", ".join(sorted(names)))
        for name in names:
            path = output_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _stale_files(training_args) -> tuple[set[str], str]:
    """The names in the output directory that this run must remove first, and why; raises when it may not use it."""
    output_dir = Path(training_args.output_dir)
    contents = {p.name for p in output_dir.iterdir()} - hfclf_files(output_dir) if output_dir.is_dir() else set()
    if not contents:
        return set(), ""
    resume = training_args.resume_from_checkpoint
    if RESULTS_FILE in contents and (resume or not training_args.overwrite_output_dir):
        _check_finished_run(output_dir, resume)
    if resume and resume != "auto":
        return set(), ""
    if resume == "auto" and latest_complete_checkpoint(output_dir, warn=False) is not None:
        return set(), ""
    if resume == "auto" and contents == {p.name for p in checkpoints(output_dir)}:
        found = checkpoints(output_dir)
        if len(found) == 1 and not (found[0] / CHECKPOINT_RECORD).exists():  # killed while saving its first one
            return contents, "unfinished checkpoints of a run that stopped before completing one"
        problems = "; ".join(f"{checkpoint.name}: {checkpoint_problem(checkpoint)}" for checkpoint in found)
        raise HfclfInputError(
            f"Output directory {output_dir} has no complete checkpoint to resume from ({problems}). A killed run "
            "leaves at most one unfinished checkpoint, so these were damaged and are kept (they may hold weights "
            "worth saving); move them away, or pass --overwrite-output-dir without --resume-from-checkpoint to start "
            "over."
        )
    if training_args.overwrite_output_dir:
        previous = {name for name in contents if checkpoint_step(name) >= 0 or name in PREVIOUS_RUN_FILES}
        return previous, "what the previous run left (--overwrite-output-dir)"
    state = "has no complete checkpoint to resume from" if resume else "already exists"
    fix = "" if resume else "--resume-from-checkpoint auto to continue a run that saved checkpoints, "
    raise HfclfInputError(
        f"Output directory {output_dir} {state} and is not empty. Pass --overwrite-output-dir to replace "
        f"its files, {fix}or choose another --output-dir."
    )


def _check_finished_run(output_dir: Path, resume: str | None) -> None:
    """A finished run is final: resuming it would train nothing and rewrite its results."""
    results = RunResults.load(output_dir)
    arch = results.model_arguments.get("arch") if results else None
    pooled = arch is None or get_architecture(arch).config_class is PooledEncoderConfig
    whole = "" if pooled else "--arch hf "  # the stock loader takes the whole classifier, an LSTM's as a BERT's
    model, export = output_dir, ""
    if results and results.model_arguments.get("lora"):  # the folder holds an adapter: its merged model is whole
        model = output_dir / MERGED_SUBDIR
        if not model.is_dir():
            model, export = "MERGED", f"hfclf export {output_dir} MERGED --merge, then "
    further = f"or train further from its model with {export}{whole}--model {model} --output-dir NEW_FOLDER"
    if resume:
        raise HfclfInputError(
            f"Output directory {output_dir} holds a finished run ({RESULTS_FILE}), so there is nothing to resume. "
            f"Choose another --output-dir, train it again from the start with --overwrite-output-dir (without "
            f"--resume-from-checkpoint), {further}."
        )
    raise HfclfInputError(
        f"Output directory {output_dir} holds a finished run ({RESULTS_FILE}). Choose another --output-dir, pass "
        f"--overwrite-output-dir to train it again from the start, {further}."
    )


# Files of a finished or unfinished run that a new run in the same folder must not inherit.
PREVIOUS_RUN_FILES = {RESULTS_FILE, PREDICTIONS_FILE, *ADAPTER_FILES, LORA_INFO_FILE, MERGED_SUBDIR}
