"""The arguments of a run, as dataclasses for `HfArgumentParser`, and the one way they are parsed: from command-line
words, a YAML/JSON file of flags, or a mapping (a `compare` variant), with the defaults resolved once.

Values from a file or mapping become the parser's defaults and command-line words override them, so every value goes
through the same type conversion and checks whatever its source, and no mapping is turned back into words.
"""

import argparse
import json
import logging
import math
import os
import re
import sys
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from transformers import HfArgumentParser, TrainingArguments

from .architectures import (
    ARCHITECTURES,
    MANAGED_FIELDS,
    architectures_with,
    check_lora,
    default_pooling,
    get_architecture,
    lora_architectures,
    pretrained_architectures,
    size_flag_help,
    typed_config_value,
)
from .data.loading import DataArguments
from .data.tasks import LOWER_IS_BETTER
from .errors import HfclfInputError, first_line

CONFIG_FILE_SUFFIXES = (".yaml", ".yml", ".json")
TRAIN_EXAMPLES = """A YAML or JSON file of flags may come first; the flags after it override it.

examples:
  hfclf train --dataset sst2 --pooling attention --max_train_samples 2000 --output_dir runs/sst2
  hfclf train --dataset imdb --arch lstm --lstm_layers 2 --bidirectional true --max_length 256
  hfclf train --train_file train.csv --text_columns title,body --label_column topic --num_train_epochs 3
  hfclf train --dataset sst2 --lora --lora_r 8 --merge_lora --output_dir runs/sst2-lora
  hfclf train my_run.yaml --learning_rate 3e-5
  accelerate launch recipes/finetune.py --dataset sst2 --pooling attention
"""
# Flags that split the optimizer into learning-rate groups, each with the value that leaves `Trainer`'s own groups.
LEARNING_RATE_GROUP_FLAGS = {"head_learning_rate": None, "layerwise_lr_decay": 1.0}
THRESHOLD_CHOICES = ("tune", "tune_per_label")
# Arguments whose values are secrets: never written to a file, a log or a report.
SECRET_ARGUMENTS = ("hub_token", "token")
SECRET_FLAGS = tuple(f"--{spelling}" for name in SECRET_ARGUMENTS for spelling in {name, name.replace("_", "-")})
# An optional true/false flag that may also stand alone (`--pre_layer_norm`), as `bool` flags do.
OPTIONAL_BOOL = {"nargs": "?", "const": True}
LORA_FLAGS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "merge_lora")
# Arguments that change neither what a run trains nor what it reports: where it writes, logs and pushes, how fast it
# loads data, what it does with the model afterwards. A resumed run, or a comparison that skips a finished variant,
# may change these and no other (see `run_settings`).
FREE_ARGUMENTS = frozenset(
    {
        *SECRET_ARGUMENTS,
        *("output_dir", "overwrite_output_dir", "resume_from_checkpoint", "run_name", "project", "report_to"),
        *("disable_tqdm", "log_level", "log_level_replica", "log_on_each_node", "logging_first_step"),
        *("logging_nan_inf_filter", "logging_steps", "logging_strategy", "skip_memory_metrics", "debug"),
        *("save_steps", "save_strategy", "save_total_limit", "save_only_model", "save_on_each_node"),
        *("push_to_hub", "hub_always_push", "hub_model_id", "hub_private_repo", "hub_revision", "hub_strategy"),
        *("trackio_bucket_id", "trackio_space_id", "trackio_static_space_id", "merge_lora", "measure_inference_texts"),
        *("dataloader_num_workers", "dataloader_persistent_workers", "dataloader_pin_memory"),
        *("dataloader_prefetch_factor", "dataloader_multiprocessing_context", "preprocessing_num_workers"),
        *("data_dir", "local_rank", "ddp_timeout", "per_device_eval_batch_size", "eval_accumulation_steps"),
        *("torch_empty_cache_steps", "include_num_input_tokens_seen", "do_train", "do_eval", "do_predict"),
        *("gradient_checkpointing", "gradient_checkpointing_kwargs", "activation_checkpointing", "use_cpu"),
        *("activation_checkpointing_kwargs", "auto_find_batch_size", "eval_on_start", "eval_do_concat_batches"),
        *("torch_compile", "torch_compile_backend", "torch_compile_mode"),
    }
)


def learning_rate_groups(args) -> dict:
    """The flags that shape the optimizer's parameter groups, as a run has them (each checkpoint records them)."""
    return {flag: getattr(args, flag, off) for flag, off in LEARNING_RATE_GROUP_FLAGS.items()}


def splits_learning_rates(args) -> bool:
    """Whether training arguments (any `TrainingArguments`) ask for a head rate or layer-wise decay."""
    return any(getattr(args, flag, off) != off for flag, off in LEARNING_RATE_GROUP_FLAGS.items())


@dataclass
class ModelArguments:
    """Which model to build: architecture, checkpoint, pooling head and model size.

    Model size is set on the config class of `--arch`, whose defaults stand unless changed: by the size flags below,
    by `--config_overrides "field=value,..."`, or by a `model_config:` mapping in a config file.
    """

    # The flags given explicitly (not a field): a flag that only some task shapes use is refused when given for
    # another, even at its default value. Set by `parse_values`.
    given: typing.ClassVar[frozenset] = frozenset()

    arch: str = field(
        default="pooled",
        metadata={
            "help": "; ".join(f"{name}: {architecture.help}" for name, architecture in ARCHITECTURES.items()) + ".",
            "choices": list(ARCHITECTURES),
        },
    )
    model: str = field(
        default="minilm",
        metadata={
            "help": "Hub id or local folder of the pretrained encoder (pooled, hf), or of the tokenizer and word "
            "vectors (lstm, transformer). 'minilm' is the embedded all-MiniLM-L6-v2."
        },
    )
    pooling: str | None = field(
        default=None,
        metadata={
            "help": "; ".join(
                f"{name}: {'|'.join(architecture.poolings)} (default {architecture.default_pooling})"
                for name, architecture in ARCHITECTURES.items()
                if architecture.poolings
            )
            + "."
        },
    )
    tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer: a Hub id or folder, or 'train' to train a WordPiece vocabulary on the train split "
            "(architectures trained from scratch). Default: the tokenizer of --model."
        },
    )
    class_weights: str | None = field(
        default=None,
        metadata={"help": "'balanced' (inverse class frequency in train) or comma-separated weights, one per label."},
    )
    word_vectors: bool = field(
        default=True,
        metadata={"help": "Initialize the LSTM's word vectors from --model's input embeddings (needs its tokenizer)."},
    )
    # Model size: each flag sets one field of the architecture's config class (see `Architecture.size_flags`).
    classifier_dropout: float | None = field(
        default=None, metadata={"help": size_flag_help("classifier_dropout", "Dropout before the classifier")}
    )
    attention_hidden_size: int | None = field(
        default=None, metadata={"help": size_flag_help("attention_hidden_size", "Width of attention pooling's MLP")}
    )
    embedding_dim: int | None = field(
        default=None, metadata={"help": size_flag_help("embedding_dim", "Word vector size without --word-vectors")}
    )
    lstm_hidden_size: int | None = field(
        default=None, metadata={"help": size_flag_help("lstm_hidden_size", "Hidden size per direction")}
    )
    lstm_layers: int | None = field(default=None, metadata={"help": size_flag_help("lstm_layers", "Stacked layers")})
    bidirectional: bool | None = field(
        default=None,
        metadata={"help": size_flag_help("bidirectional", "Read right to left too (true/false)"), **OPTIONAL_BOOL},
    )
    freeze_embeddings: bool | None = field(
        default=None,
        metadata={
            "help": size_flag_help(
                "freeze_embeddings",
                "Keep the word vectors fixed: no gradients, no optimizer state (a pretrained encoder's word "
                "embeddings; the LSTM's config field)",
            ),
            **OPTIONAL_BOOL,
        },
    )
    d_model: int | None = field(default=None, metadata={"help": size_flag_help("d_model", "Width")})
    num_heads: int | None = field(default=None, metadata={"help": size_flag_help("num_heads", "Attention heads")})
    num_layers: int | None = field(default=None, metadata={"help": size_flag_help("num_layers", "Layers")})
    ff_size: int | None = field(default=None, metadata={"help": size_flag_help("ff_size", "Feed-forward width")})
    pre_layer_norm: bool | None = field(
        default=None,
        metadata={"help": size_flag_help("pre_layer_norm", "Pre-LN instead of post-LN layers"), **OPTIONAL_BOOL},
    )
    dropout: float | None = field(default=None, metadata={"help": size_flag_help("dropout", "Dropout")})
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Fields of the --arch config class, e.g. 'num_layers=2,dropout=0.1' (LSTMConfig) or "
            "'hidden_dropout_prob=0.2' (the config of --model, --arch hf)."
        },
    )
    model_config: dict | str | None = field(
        default=None,
        metadata={"help": "The same as a mapping (in a YAML/JSON file: 'model_config: {num_layers: 2}')."},
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without improvement of the main metric."}
    )
    threshold: str = field(
        default="0.5",
        metadata={
            "help": "Multi-label decision threshold: a probability (default 0.5), 'tune' (the one threshold that "
            "maximizes macro-F1 on the validation split) or 'tune_per_label' (one per label). Saved with the model."
        },
    )
    normalize_targets: bool = field(
        default=False,
        metadata={
            "help": "Regression: train on standardized targets; their mean and standard deviation are saved with the "
            "model, which predicts on the targets' own scale."
        },
    )
    # LoRA (peft), see hfclf.training.lora
    lora: bool = field(
        default=False,
        metadata={
            "help": f"Train LoRA adapters (peft) instead of all weights (--arch {' or '.join(lora_architectures())})."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated layers to adapt, e.g. query,value. Default: per encoder family (BERT, RoBERTa, "
            "ELECTRA: query,value; DistilBERT: q_lin,v_lin; ...)."
        },
    )
    merge_lora: bool = field(
        default=False, metadata={"help": "With --lora, also write a plain merged model to <output_dir>/merged."}
    )

    def __post_init__(self):
        architecture = get_architecture(self.arch)
        if self.model and _is_local_path(self.model) and not Path(self.model).expanduser().exists():
            raise ValueError(
                f"--model {self.model} does not exist; pass a model folder, a Hub id (user/name) or minilm."
            )
        if self.lora:
            check_lora(self.arch)
        # A trained vocabulary cannot read --model's word vectors by their ids: the run has none (and records so).
        self.word_vectors_dropped = self.tokenizer == "train" and self.word_vectors
        self.word_vectors = self.word_vectors and not self.word_vectors_dropped
        if self.merge_lora and not self.lora:
            raise ValueError("--merge-lora needs --lora; add --lora or drop --merge-lora.")
        if self.lora and self.lora_r < 1:
            raise ValueError(f"--lora-r must be a positive rank, got {self.lora_r}; pass e.g. --lora-r 8.")
        if self.lora and self.lora_alpha <= 0:  # scale = alpha / r: 0 trains an adapter that changes nothing
            raise ValueError(f"--lora-alpha must be positive, got {self.lora_alpha}; pass e.g. --lora-alpha 16.")
        if self.lora and not 0 <= self.lora_dropout < 1:
            raise ValueError(f"--lora-dropout must be from 0 to below 1, got {self.lora_dropout}; e.g. 0.1.")
        if self.class_weights and architecture.config_class is None:
            raise ValueError("--class-weights needs an hfclf head; use --arch pooled.")
        if self.normalize_targets and architecture.config_class is None:
            raise ValueError("--normalize-targets needs an hfclf head, which undoes it; use --arch pooled.")
        if self.threshold not in THRESHOLD_CHOICES:
            try:
                valid = 0 < float(self.threshold) < 1
            except ValueError:
                valid = False
            if not valid:
                raise ValueError(
                    f"--threshold takes a probability between 0 and 1, tune or tune_per_label; got '{self.threshold}'."
                )
            self.threshold = str(float(self.threshold))  # one spelling of each value: 0.50 and .5 are 0.5
        if self.pooling is None:
            self.pooling = default_pooling(architecture, self.model)
        elif not architecture.poolings:
            raise ValueError(f"--pooling does not apply to --arch {self.arch} (its head is fixed); use --arch pooled.")
        elif self.pooling not in architecture.poolings:
            raise ValueError(
                f"Unknown pooling '{self.pooling}' for --arch {self.arch}; choose one of: "
                f"{', '.join(architecture.poolings)}."
            )
        if isinstance(self.model_config, str):
            try:
                self.model_config = json.loads(self.model_config)
            except ValueError:
                self.model_config = None
            if not isinstance(self.model_config, dict):
                raise ValueError("--model-config takes a JSON mapping, e.g. '{\"num_layers\": 2}'.")
        self.config_fields()  # checked now, not after the data is loaded

    def config_fields(self) -> dict:
        """The config fields this run sets (size flags, `config_overrides`, `model_config`), checked against the
        config class of `--arch` and typed like each field's default."""
        architecture = get_architecture(self.arch)
        defaults = architecture.config_class() if architecture.config_class is not None else None
        values, sources = {}, {}
        for flag, config_field in architecture.size_flags.items():
            if getattr(self, flag) is not None:
                values[config_field], sources[config_field] = getattr(self, flag), f"--{flag}"
        overrides = parse_config_overrides(self.config_overrides)
        for source, given in (("--model_config", self.model_config or {}), ("--config_overrides", overrides)):
            for key, value in given.items():
                if key in values and _config_value(defaults, key, values[key]) != _config_value(defaults, key, value):
                    raise ValueError(
                        f"{key} is set twice ({values[key]} by {sources[key]} and {value} by {source}); set it once."
                    )
                values[key], sources[key] = value, source
        if defaults is None:
            return values
        allowed = architecture.config_fields()
        unknown = sorted(set(values) - allowed)
        if unknown:
            why = " (hfclf sets it)" if set(unknown) & MANAGED_FIELDS else ""
            raise ValueError(
                f"{', '.join(unknown)}{why} is not a field of {architecture.config_class.__name__} that a run can "
                f"set; choose from: {', '.join(sorted(allowed))}."
            )
        return {key: _config_value(defaults, key, value) for key, value in values.items()}


def parse_config_overrides(text: str | None) -> dict:
    """`--config_overrides "a=1,b=x"` as a mapping of strings."""
    if not text:
        return {}
    values = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise ValueError(f"--config-overrides takes 'field=value,...', got '{item}'.")
        if key in values:
            raise ValueError(f"--config-overrides sets {key} twice; set it once.")
        values[key] = value.strip()
    return values


def _is_local_path(name: str) -> bool:
    """Whether a model name can only be a local path: absolute, relative to . or ~, or deeper than a Hub id
    (namespace/name)."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


def _config_value(defaults, key: str, value):
    """`value` typed like the field `key` of the config `defaults` (as given when there is no config class)."""
    return value if defaults is None else typed_config_value(key, value, getattr(defaults, key, None))


@dataclass
class ClassifierTrainingArguments(TrainingArguments):
    """`TrainingArguments` with defaults that suit classifier fine-tuning, plus output-directory safety."""

    output_dir: str | None = field(
        default=None,
        metadata={"help": "Where the model, metrics and plots go (default: runs/<dataset>-<arch>-<pooling>)."},
    )
    push_to_hub: bool = field(
        default=False,
        metadata={
            "help": "After training, push the exported model folder (weights, code, tokenizer, model card) once to "
            "--hub_model_id; checked before training (repo id, token, not HF_HUB_OFFLINE)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Allow writing into a non-empty output directory (its files are replaced)."}
    )
    learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Peak learning rate (default: "
            + ", ".join(f"{entry.default_learning_rate:g} {name}" for name, entry in ARCHITECTURES.items())
            + ")."
        },
    )
    num_train_epochs: float = field(default=3.0, metadata={"help": "Training epochs."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Batch size per device for evaluation."})
    warmup_steps: float = field(default=0.06, metadata={"help": "Warm-up steps, or a ratio of total steps if < 1."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    head_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Peak learning rate of the freshly initialized head (pooling and classifier); --learning-rate "
            f"then applies to the pretrained encoder (--arch {' or '.join(pretrained_architectures())}). Default: "
            "--learning-rate."
        },
    )
    layerwise_lr_decay: float = field(
        default=1.0,
        metadata={
            "help": "Layer-wise learning-rate decay of the encoder, e.g. 0.9: its top layer trains at --learning-rate, "
            "each layer below at 0.9 x the one above, the embeddings at 0.9^layers (--arch "
            f"{' or '.join(pretrained_architectures())})."
        },
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save a checkpoint: no, steps, epoch, best."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best one always is)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint at the end."})
    metric_for_best_model: str | None = field(
        default="auto",
        metadata={
            "help": "Metric that picks the best checkpoint; auto: the task's main one (accuracy, macro-F1 for "
            "multi-label, Pearson for regression)."
        },
    )
    restore_callback_states_from_checkpoint: bool = field(
        default=True,
        metadata={
            "help": "Resume callbacks' state from the checkpoint (early stopping's count of evaluations without "
            "improvement), so that a resumed run stops where an uninterrupted one would."
        },
    )
    logging_steps: float = field(default=0.02, metadata={"help": "Log every N steps, or a ratio of total if < 1."})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "Sampler: group_by_length (default: batches of similar length, less padding), random, ...",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    measure_inference_texts: int = field(
        default=256,
        metadata={
            "help": "After training, time inference on this many texts of the reported split (texts/s in batches; "
            "latency of single texts on the first 50) and record it with the peak memory in results.json; 0: skip."
        },
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bf16 mixed precision (autocast). Default: on when training on a CPU that computes bf16 natively "
            "(AVX512-BF16 or AMX) with no GPU, where it trains about 1.4 to 1.5x and evaluates about 1.7x faster at "
            "the same accuracy (docs/PERFORMANCE.md); off elsewhere. --bf16 false trains in fp32.",
            **OPTIONAL_BOOL,
        },
    )
    report_to: None | str | list[str] = field(
        default="none", metadata={"help": "Experiment trackers to report to (none, all, tensorboard, wandb, ...)."}
    )

    def __post_init__(self):
        _check_numbers(self)
        if self.head_learning_rate is not None and not self.head_learning_rate > 0:  # also refuses nan
            raise ValueError(f"--head-learning-rate must be positive, got {self.head_learning_rate}.")
        if self.metric_for_best_model:  # `Trainer` takes `eval_f1_macro` and `f1_macro` alike; hfclf reads the latter
            self.metric_for_best_model = self.metric_for_best_model.removeprefix("eval_")
        if self.greater_is_better is None and self.metric_for_best_model not in (None, "auto"):
            # `Trainer` would take every metric but a loss as higher-is-better, and keep the worst MAE checkpoint
            self.greater_is_better = self.metric_for_best_model not in LOWER_IS_BETTER
        if not 0 <= self.seed < 2**32:  # numpy's seeds
            raise ValueError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}.")
        if self.label_names is not None:
            raise ValueError("--label-names is set by hfclf (its inputs' label column); drop it.")
        if not 0 < self.layerwise_lr_decay <= 1:
            raise ValueError(
                f"--layerwise-lr-decay must be in (0, 1], got {self.layerwise_lr_decay}; 1 turns it off, 0.9 is common."
            )
        launcher_precision = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")  # `accelerate launch --mixed_precision`
        self.bf16_guessed = self.bf16 is None and launcher_precision == "no"  # the run logs it and how to override it
        if self.bf16 is None:  # the launcher's choice, else this machine's default; recorded in results.json either way
            self.bf16 = launcher_precision == "bf16" or (launcher_precision == "no" and bf16_by_default(self))
        if not _accelerator_available():
            # Several processes (torchrun, `accelerate launch --multi_gpu`) on a machine without an accelerator:
            # train one model with DDP over gloo instead of N independent copies.
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                self.use_cpu = True
            if self.bf16:  # bf16 autocast on the CPU, which `Trainer` allows only with use_cpu
                self.use_cpu = True
            self.dataloader_pin_memory = False  # pinned memory only helps copies to an accelerator
        super().__post_init__()


def _check_numbers(args: ClassifierTrainingArguments) -> None:
    """Values `Trainer` would take and then fail on (or train nothing with), refused before anything runs."""
    rules = (
        ("learning_rate", args.learning_rate is None or 0 < args.learning_rate < math.inf, "positive, e.g. 1e-4"),
        ("per_device_train_batch_size", args.per_device_train_batch_size >= 1, "at least 1"),
        ("per_device_eval_batch_size", args.per_device_eval_batch_size >= 1, "at least 1"),
        ("gradient_accumulation_steps", args.gradient_accumulation_steps >= 1, "at least 1"),
        ("weight_decay", 0 <= args.weight_decay < math.inf, "0 or more"),
        ("warmup_steps", 0 <= args.warmup_steps < math.inf, "0 or more (a ratio of the steps when below 1)"),
        (
            "num_train_epochs",
            args.max_steps > 0 or 0 < args.num_train_epochs < math.inf,
            "above 0 (or set --max-steps), e.g. 3",
        ),
        ("logging_steps", args.logging_steps > 0, "above 0 (a ratio of the steps when below 1)"),
        ("save_steps", str(args.save_strategy) != "steps" or args.save_steps > 0, "above 0 with --save-strategy steps"),
        ("eval_steps", args.eval_steps is None or args.eval_steps > 0, "above 0 (or unset: --logging-steps)"),
    )
    for flag, ok, expected in rules:
        if not ok:
            raise ValueError(f"--{flag.replace('_', '-')} must be {expected}, got {getattr(args, flag)}.")


def cpu_computes_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16), read from /proc/cpuinfo (Linux)."""
    try:
        flags = next(line for line in Path(cpuinfo).read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def warn_if_bf16_is_emulated(fix: str) -> None:
    """Warn, where bf16 was asked for on a CPU without native bf16, that the CPU emulates it: far slower than fp32 (a
    BERT-sized linear layer 7x, a 2048x2048 matmul 230x, on an AVX2 core). `fix`: how to compute in fp32."""
    if not cpu_computes_bf16():
        logging.getLogger("hfclf").warning(
            "This CPU has no native bf16 (AVX512-BF16 or AMX), so it emulates bf16, several times slower than fp32; "
            "%s to compute in fp32.",
            fix,
        )


def bf16_by_default(args: TrainingArguments) -> bool:
    """bf16 autocast unless asked otherwise: only when training on a CPU with native bf16, and not beside fp16."""
    on_cpu = args.use_cpu or not _accelerator_available()
    return on_cpu and not args.fp16 and cpu_computes_bf16()


def _accelerator_available() -> bool:
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


# ---------------------------------------------------------------------------------------------------------- parsing

RUN_ARGUMENTS = (ModelArguments, DataArguments, ClassifierTrainingArguments)


def read_mapping_file(path: str, what: str = "Config file") -> dict:
    """A YAML or JSON file holding one mapping."""
    if not os.path.isfile(path):
        state = "is a folder" if os.path.isdir(path) else "does not exist"
        raise HfclfInputError(f"{what} {path} {state}; pass the path of a .yaml or .json file.")
    import yaml

    with open(path) as f:
        try:
            values = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            problem = " ".join(str(err).split())
            raise HfclfInputError(
                f"{what} {path} is not valid {'JSON' if path.endswith('.json') else 'YAML'}: {problem}. Fix the file."
            ) from None
    if not isinstance(values, dict):
        raise HfclfInputError(f"{what} {path} must hold a mapping of key: value pairs, e.g. 'pooling: mean'.")
    return values


def parse_args(argv: list[str] | None = None, prog: str | None = None):
    """`(ModelArguments, DataArguments, ClassifierTrainingArguments)` from command-line words; a YAML or JSON file
    of flags may come first, and the words after it override it. `prog`: the command's name in --help."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(CONFIG_FILE_SUFFIXES) and not argv[0].startswith("-"):
        return parse_values(read_mapping_file(argv[0]), argv[1:], source=argv[0], prog=prog)
    return parse_values({}, argv, prog=prog)


def parse_values(
    values: dict, argv: list[str] = (), source: str = "the command line", types=RUN_ARGUMENTS, prog: str | None = None
):
    """The argument dataclasses `types` from a mapping of flag values, overridden by command-line words.

    Every value is converted and checked by the same parser, bad input is one `HfclfInputError`, and what depends
    on other arguments is resolved here, once: the pooling, the learning rate and the output folder defaults.
    """
    parser = _parser(types, source, prog)
    values = _typed_values(parser, values, source)
    parser.set_defaults(**values)
    parser.source = "the command line"  # the values are in; what is parsed now are the command-line words
    namespace = vars(parser.parse_args(list(argv)))
    written = _flags_in(argv)
    given = set(values) | written  # null values were dropped: they keep the default
    if "arch" in namespace:
        _command_line_sets_model_size(namespace, values, written)
    if "output_dir" in namespace and namespace["output_dir"] is None:
        namespace["output_dir"] = default_output_dir(namespace)
    if namespace.get("learning_rate", 0) is None:
        namespace["learning_rate"] = get_architecture(namespace["arch"]).default_learning_rate
    try:
        parsed = tuple(dtype(**{f.name: namespace[f.name] for f in fields(dtype) if f.init}) for dtype in types)
        if types == RUN_ARGUMENTS:
            parsed[0].given = frozenset(given & {f.name for f in fields(ModelArguments)})
            check_flags_apply(parsed[0], given)
            check_long_text_flags(parsed[1], given)
            check_learning_rate_groups(parsed[0], parsed[2])
            if parsed[0].lora and parsed[2].label_names is None:
                parsed[2].label_names = ["labels"]  # PeftModel hides forward's signature from `Trainer`
    except (ValueError, TypeError) as err:  # the dataclasses' own checks (unknown pooling, ...)
        raise HfclfInputError(first_line(err)) from None
    return parsed


def _command_line_sets_model_size(namespace: dict, values: dict, written: set[str]) -> None:
    """Model size from a file (`values`) and from the command line (`written` flags), as every other flag is: a config
    field that the command line sets (by a size flag, `--config_overrides` or `--model_config`) replaces the file's
    value of it, and the file's other fields stay."""
    try:  # a malformed value is left for ModelArguments to refuse, with the form it takes
        overrides = parse_config_overrides(namespace["config_overrides"])
        written_config = json.loads(namespace["model_config"]) if "model_config" in written else {}
    except ValueError:
        return
    if not isinstance(written_config, dict):
        return
    size_flags = get_architecture(namespace["arch"]).size_flags  # flag -> config field
    written_fields = {config_field for flag, config_field in size_flags.items() if flag in written}
    written_fields |= set(written_config) | (set(overrides) if "config_overrides" in written else set())
    if not written_fields:
        return
    file_config = values.get("model_config") if isinstance(values.get("model_config"), dict) else {}
    merged = {**{key: value for key, value in file_config.items() if key not in written_fields}, **written_config}
    namespace["model_config"] = merged or None
    for flag, config_field in size_flags.items():
        if flag not in written and config_field in written_fields:
            namespace[flag] = None  # the file's size flag gives way
    if "config_overrides" not in written and overrides:  # the file's overrides give way too
        kept = [f"{key}={value}" for key, value in overrides.items() if key not in written_fields]
        namespace["config_overrides"] = ",".join(kept) or None


def check_values(values: dict, source: str) -> None:
    """Refuse, in one line naming `source`, a flag of `values` that does not exist or a value of the wrong type."""
    _typed_values(_parser(RUN_ARGUMENTS, source), values, source)


def _typed_values(parser: HfArgumentParser, values: dict, source: str) -> dict:
    """Values from a file or mapping, converted and checked as the same words on the command line would be: by
    each flag's type and choices. A null (or empty) value keeps the default; a mapping stays a mapping."""
    actions = {action.dest: action for action in parser._actions}
    # (from the annotations: `HfArgumentParser` narrows the fields' own types, e.g. `str | list[str]` to `str`)
    hints = {name: hint for dtype in parser.dataclass_types for name, hint in typing.get_type_hints(dtype).items()}
    takes_lists = {name for name, hint in hints.items() if "list" in str(hint)}
    takes_mappings = {name for name, hint in hints.items() if "dict" in str(hint)}
    typed = {}
    for key, value in values.items():
        key = key.replace("-", "_")
        if key not in actions:
            negated = key.removeprefix("no_")
            if negated != key and negated in actions:  # `--no_x` is the command line's way to write `x: false`
                meant = str(not value).lower() if isinstance(value, bool) else "false"
                raise HfclfInputError(f"Unknown flag '{key}' in {source}; write '{negated}: {meant}' instead.")
            raise HfclfInputError(f"Unknown flag '{key}' in {source}; see --help for every flag.")
        if value is None:
            continue
        action = actions[key]
        if isinstance(value, dict):
            if key not in takes_mappings:
                raise HfclfInputError(f"argument --{key} takes one value, not a mapping ({value!r}, in {source}).")
            typed[key] = value
            continue
        if isinstance(value, list) and action.nargs not in ("+", "*") and key not in takes_lists:
            raise HfclfInputError(f"argument --{key} takes one value, not a list ({value!r}, in {source}).")
        convert = action.type or str
        try:
            items = [convert(str(item)) for item in (value if isinstance(value, list) else [value])]
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            kind = getattr(convert, "__name__", "valid")
            raise HfclfInputError(
                f"argument --{key}: invalid {kind} value: {value!r} (in {source}); see --help for every flag and its "
                "type."
            ) from None
        if action.choices and any(item not in action.choices for item in items):
            raise HfclfInputError(
                f"argument --{key}: invalid choice {value!r} (in {source}); choose from {', '.join(action.choices)}."
            )
        typed[key] = items if isinstance(value, list) else items[0]
    return typed


class _Parser(HfArgumentParser):
    """Usage errors are one `HfclfInputError` line naming `source`, where the values being parsed come from."""

    source = "the command line"

    def error(self, message):
        negated = [
            f"--{name} false"
            for name in re.findall(r"--no[_-]([\w-]+)", message)
            if f"--{name}" in self._option_string_actions
        ]
        fix = f"write {' and '.join(negated)}" if negated else "see --help for every flag and its type"
        raise HfclfInputError(f"{message} (in {self.source}); {fix}.")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every flag with its default (once: some help texts name it), and the examples as written."""

    def _get_help_string(self, action):
        return action.help if "default:" in (action.help or "").lower() else super()._get_help_string(action)


def _parser(types, source: str, prog: str | None = None) -> HfArgumentParser:
    """An `HfArgumentParser` whose usage errors are one `HfclfInputError` line (not a usage text and exit), and that
    takes flags only as written in full; its --help is named `prog` and ends with examples."""
    parser = _Parser(  # allow_abbrev: a prefix of a flag would slip past the checks of given flags
        types,
        allow_abbrev=False,
        prog=prog,
        epilog=TRAIN_EXAMPLES if types == RUN_ARGUMENTS else None,
        formatter_class=_HelpFormatter,
    )
    parser.source = source
    return parser


def _flags_in(argv) -> set[str]:
    """Field names of the flags written in `argv` (`--lstm-layers 2` and `--no_word_vectors` included)."""
    names = {word[2:].split("=", 1)[0].replace("-", "_") for word in argv if word.startswith("--")}
    return names | {name[3:] for name in names if name.startswith("no_")}


def default_output_dir(namespace: dict) -> str:
    """runs/<dataset or train file>-<arch>-<pooling>."""
    source = namespace["dataset"] or Path(namespace["train_file"] or "data").name.split(".")[0]
    pooling = namespace["pooling"] or get_architecture(namespace["arch"]).default_pooling
    return os.path.join("runs", "-".join(part for part in (source, namespace["arch"], pooling) if part))


def check_flags_apply(model_args: ModelArguments, given: set[str]) -> None:
    """Refuse model flags given explicitly (`given`: their field names) that the chosen model does not use."""
    model_flags = {f.name for f in fields(ModelArguments)}
    for flag in sorted(given & model_flags):
        users = architectures_with(flag)
        if model_args.arch not in users:
            raise ValueError(
                f"--{flag} applies to --arch {' or '.join(users)}, not --arch {model_args.arch}; drop it (or change "
                "--arch)."
            )
    if not model_args.lora and given & set(LORA_FLAGS) - {"merge_lora"}:
        raise ValueError(f"--{sorted(given & set(LORA_FLAGS))[0]} needs --lora; add --lora or drop it.")
    if get_architecture(model_args.arch).uses("word_vectors") and model_args.word_vectors:
        if "embedding_dim" in model_args.config_fields():  # the width of --model's word vectors wins
            raise ValueError(
                "embedding_dim (--embedding_dim, or in --config_overrides or --model_config) sizes word vectors "
                "trained from scratch, and this LSTM reads --model's word vectors (their own width); set word_vectors "
                "false (--no_word_vectors) to train vectors of that size, or drop embedding_dim."
            )
    if model_args.word_vectors_dropped and "word_vectors" in given:
        raise ValueError(
            "--word_vectors reads --model's word vectors by its tokenizer's ids, and --tokenizer train makes a "
            "vocabulary of its own; drop one of them."
        )


# The --long-text strategy that reads each of its flags.
LONG_TEXT_FLAGS = {"head_tokens": "head_tail", "stride": "windows"}


def check_long_text_flags(data_args: DataArguments, given: set[str]) -> None:
    """Refuse --head-tokens or --stride given explicitly with a --long-text strategy that does not read it."""
    for flag, strategy in LONG_TEXT_FLAGS.items():
        if flag in given and data_args.long_text != strategy:
            raise ValueError(
                f"--{flag.replace('_', '-')} applies to --long-text {strategy}, not {data_args.long_text}; drop it or "
                f"pass --long-text {strategy}."
            )


def check_learning_rate_groups(model_args: ModelArguments, training_args: ClassifierTrainingArguments) -> None:
    """Head and layer-wise learning rates split a pretrained encoder from its new head: full fine-tuning only."""
    if not splits_learning_rates(training_args):
        return
    if not get_architecture(model_args.arch).pretrained or model_args.lora:
        what = "--lora" if model_args.lora else f"--arch {model_args.arch}"
        pretrained = " or ".join(pretrained_architectures())
        raise ValueError(
            f"--head-learning-rate and --layerwise-lr-decay apply to fine-tuning all weights of a pretrained encoder "
            f"(--arch {pretrained}), not to {what}; drop them or change the model."
        )
    if training_args.deepspeed or training_args.fsdp:  # both build or flatten the optimizer's groups themselves
        raise ValueError(
            "--head-learning-rate and --layerwise-lr-decay are not supported with --deepspeed or --fsdp; drop them "
            "or train with DDP (accelerate launch --multi_gpu)."
        )


# ------------------------------------------------------------------------------- runs of a comparison or a search

# Flags of the run folder, which `compare` and `search` set for each of their runs themselves.
RUN_FOLDER_FLAGS = ("output_dir", "resume_from_checkpoint", "overwrite_output_dir")


def merge_flags(*layers: dict) -> dict:
    """Flag mappings merged in order, later ones winning; a mapping value (`model_config`) merges field by field."""
    merged = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                value = {**merged[key], **value}
            merged[key] = value
    return merged


def run_values(config: dict, own: dict, run_dir) -> dict:
    """Finetune flags of one run of a comparison or search config: the shared `data`, the `common` flags, then the
    run's `own` (command-line words, parsed after these, override them all)."""
    return merge_flags(config.get("data"), config.get("common"), own, {"output_dir": str(run_dir)})


def check_run_folder_flags(config: dict, extra: list[str], command: str) -> None:
    """`compare` and `search` own each run's folder (`<report_dir>/runs/<name>`), resuming and replacing it
    themselves: flags that would choose otherwise are refused rather than ignored."""
    keys = {key for section in ("data", "common", "grid") for key in (config.get(section) or {})}
    keys |= {key for variant in config.get("variants") or [] for key in variant}
    keys |= set((config.get("search") or {}).get("params") or {})
    keys |= _flags_in(extra)
    owned = sorted(keys & set(RUN_FOLDER_FLAGS))
    if owned:
        raise HfclfInputError(
            f"{', '.join('--' + key for key in owned)} does not apply to {command}: each run writes to "
            f"<report_dir>/runs/<name>, and a rerun resumes unfinished runs itself. Use --report_dir DIR to choose "
            "the folder."
        )


def check_flags_keep_the_axes(config: dict, extra: list[str], command: str) -> None:
    """A command-line flag applies to every run of a `compare` or `search`, so one that sets what its runs differ in
    (a grid key, a variant's setting, a searched param) would make them the same run under other names: refused."""
    axes = set(config.get("grid") or {}) | set((config.get("search") or {}).get("params") or {})
    axes |= {key for variant in config.get("variants") or [] for key in variant} - {"name"}
    for word in extra:
        axis = _flags_in([word]) & axes  # --pooling=cls and --no_word_vectors name theirs too
        if axis:
            where = "a searched param" if command == "search" else "what the comparison's variants differ in"
            raise HfclfInputError(
                f"--{axis.pop()} is {where}, and a command-line flag sets it for every run alike; drop "
                f"{word.split('=')[0]}, or change its values in the config."
            )


def run_settings(model_args, data_args, training_args) -> dict:
    """The arguments that decide what a run trains and reports (all but `FREE_ARGUMENTS`), as `name: value` in JSON
    values, taken as parsed: recorded in its checkpoints and results.json, so that a resume, or a comparison that
    skips a finished variant, can check that it asks for the same."""
    values = {**asdict(model_args), **asdict(data_args), **training_args.to_dict()}
    for flag in (*get_architecture(model_args.arch).size_flags, "config_overrides"):  # the model size, resolved:
        values.pop(flag)
    values["model_config"] = model_args.config_fields()  # --lstm_layers 2 is num_layers=2 in any spelling
    values["num_processes"] = training_args.world_size  # the batch each step sees (accelerate's flag names it)
    return json.loads(json.dumps({k: v for k, v in values.items() if k not in FREE_ARGUMENTS}, default=str))


def redact_command(words: list[str]) -> list[str]:
    """Command-line words with the values of token flags replaced, for logs and results.json."""
    redacted, hide_next = [], False
    for word in words:
        if hide_next:
            redacted.append("<redacted>")
            hide_next = False
        elif word in SECRET_FLAGS:
            redacted.append(word)
            hide_next = True
        elif word.split("=", 1)[0] in SECRET_FLAGS:
            redacted.append(word.split("=", 1)[0] + "=<redacted>")
        else:
            redacted.append(word)
    return redacted
