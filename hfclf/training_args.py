"""Command-line arguments of the finetune recipe, as dataclasses for `HfArgumentParser`."""

import math
import os
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .models import LSTM_POOLINGS, POOLED_ENCODER_POOLINGS, TINY_TRANSFORMER_POOLINGS

ARCHITECTURES = ("pooled", "lstm", "transformer", "hf")
DEFAULT_POOLING = {"pooled": "cls", "lstm": "last", "transformer": "mean"}
POOLINGS = {"pooled": POOLED_ENCODER_POOLINGS, "lstm": LSTM_POOLINGS, "transformer": TINY_TRANSFORMER_POOLINGS}
# Pretrained encoders fine-tune at small rates (1e-4 suits the small default MiniLM; BERT-base prefers 2e-5 to
# 5e-5); models trained from scratch need much larger ones.
DEFAULT_LEARNING_RATE = {"pooled": 1e-4, "hf": 1e-4, "lstm": 2e-3, "transformer": 5e-4}
# Flags that split the optimizer into learning-rate groups, each with the value that leaves `Trainer`'s own groups.
LEARNING_RATE_GROUP_FLAGS = {"head_learning_rate": None, "layerwise_lr_decay": 1.0}


# Model flags that only some architectures use; given to another, they are refused rather than ignored.
ARCH_FLAGS = {
    "classifier_dropout": ("pooled",),
    "attention_hidden_size": ("pooled", "lstm"),
    "embedding_dim": ("lstm",),
    "lstm_hidden_size": ("lstm",),
    "lstm_layers": ("lstm",),
    "bidirectional": ("lstm",),
    "word_vectors": ("lstm",),
    "freeze_embeddings": ("lstm",),
    "d_model": ("transformer",),
    "num_heads": ("transformer",),
    "num_layers": ("transformer",),
    "ff_size": ("transformer",),
    "pre_layer_norm": ("transformer",),
    "dropout": ("lstm", "transformer"),
}
LORA_FLAGS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")


def check_flags_apply(model_args: "ModelArguments", given: set[str]) -> None:
    """Refuse model flags given explicitly (`given`: their field names) that the chosen model does not use."""
    unused = [flag for flag in given if model_args.arch not in ARCH_FLAGS.get(flag, (model_args.arch,))]
    if unused:
        flag = sorted(unused)[0]
        raise ValueError(
            f"--{flag} applies to --arch {' or '.join(ARCH_FLAGS[flag])}, not --arch {model_args.arch}; drop it "
            "(or change --arch)."
        )
    if not model_args.lora and given & set(LORA_FLAGS):
        raise ValueError(f"--{sorted(given & set(LORA_FLAGS))[0]} needs --lora; add --lora or drop it.")


def splits_learning_rates(args) -> bool:
    """Whether training arguments (any `TrainingArguments`) ask for a head rate or layer-wise decay."""
    return any(getattr(args, flag, off) != off for flag, off in LEARNING_RATE_GROUP_FLAGS.items())


@dataclass
class ModelArguments:
    """Which model to build: architecture, checkpoint, pooling head and model size."""

    arch: str = field(
        default="pooled",
        metadata={
            "help": "pooled: a pretrained encoder with an hfclf pooling head; lstm / transformer: trained from "
            "scratch; hf: the stock AutoModelForSequenceClassification head.",
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
            "help": "pooled: cls|mean|max|attention|cls_mean (default cls); lstm: last|mean|max|attention "
            "(default last); transformer: mean|max|cls (default mean)."
        },
    )
    tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer: a Hub id or folder, or 'train' to train a WordPiece vocabulary on the train split "
            "(lstm, transformer). Default: the tokenizer of --model."
        },
    )
    classifier_dropout: float = field(default=0.1, metadata={"help": "Dropout before the classifier (pooled)."})
    attention_hidden_size: int = field(default=128, metadata={"help": "Scoring MLP width of attention pooling."})
    class_weights: str | None = field(
        default=None,
        metadata={"help": "'balanced' (inverse class frequency in train) or comma-separated weights, one per label."},
    )
    # LSTM
    embedding_dim: int = field(default=300, metadata={"help": "LSTM word vector size (without --word-vectors)."})
    lstm_hidden_size: int = field(default=256, metadata={"help": "LSTM hidden size per direction."})
    lstm_layers: int = field(default=2, metadata={"help": "Stacked LSTM layers."})
    bidirectional: bool = field(default=True, metadata={"help": "Bidirectional LSTM."})
    word_vectors: bool = field(
        default=True,
        metadata={"help": "Initialize the LSTM's word vectors from --model's input embeddings (needs its tokenizer)."},
    )
    freeze_embeddings: bool = field(default=False, metadata={"help": "Keep the LSTM's word vectors fixed."})
    # tiny Transformer
    d_model: int = field(default=256, metadata={"help": "Tiny Transformer width."})
    num_heads: int = field(default=4, metadata={"help": "Tiny Transformer attention heads."})
    num_layers: int = field(default=4, metadata={"help": "Tiny Transformer layers."})
    ff_size: int = field(default=1024, metadata={"help": "Tiny Transformer feed-forward width."})
    pre_layer_norm: bool = field(default=False, metadata={"help": "Pre-LN instead of post-LN layers."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout of the LSTM / tiny Transformer."})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without improvement of the main metric."}
    )
    # LoRA (peft), see hfclf.lora
    lora: bool = field(
        default=False, metadata={"help": "Train LoRA adapters (peft) instead of all weights (--arch pooled or hf)."}
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
        if self.lora and self.arch not in ("pooled", "hf"):
            raise ValueError(f"--lora applies to pretrained encoders (--arch pooled or hf), not --arch {self.arch}.")
        if self.merge_lora and not self.lora:
            raise ValueError("--merge-lora needs --lora; add --lora or drop --merge-lora.")
        if self.lora and self.lora_r < 1:
            raise ValueError(f"--lora-r must be a positive rank, got {self.lora_r}; pass e.g. --lora-r 8.")
        if self.class_weights and self.arch == "hf":
            raise ValueError("--class-weights needs an hfclf head; use --arch pooled.")
        if self.pooling is None:
            self.pooling = DEFAULT_POOLING.get(self.arch)
        elif self.arch == "hf":
            raise ValueError("--pooling does not apply to --arch hf (its head is fixed); use --arch pooled.")
        elif self.pooling not in POOLINGS[self.arch]:
            raise ValueError(
                f"Unknown pooling '{self.pooling}' for --arch {self.arch}; choose one of: "
                f"{', '.join(POOLINGS[self.arch])}."
            )


@dataclass
class ClassifierTrainingArguments(TrainingArguments):
    """`TrainingArguments` with defaults that suit classifier fine-tuning, plus output-directory safety."""

    output_dir: str | None = field(
        default=None, metadata={"help": "Where the model, metrics and plots go (default: runs/<dataset>-<arch>)."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Allow writing into a non-empty output directory (its files are replaced)."}
    )
    learning_rate: float | None = field(
        default=None, metadata={"help": "Peak learning rate (default: 1e-4 pooled/hf, 2e-3 lstm, 5e-4 transformer)."}
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
            "then applies to the pretrained encoder (--arch pooled or hf). Default: --learning-rate."
        },
    )
    layerwise_lr_decay: float = field(
        default=1.0,
        metadata={
            "help": "Layer-wise learning-rate decay of the encoder, e.g. 0.9: its top layer trains at --learning-rate, "
            "each layer below at 0.9 x the one above, the embeddings at 0.9^layers (--arch pooled or hf)."
        },
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save a checkpoint: no, steps, epoch, best."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best one always is)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint at the end."})
    metric_for_best_model: str | None = field(default="accuracy", metadata={"help": "Metric that picks the best."})
    logging_steps: float = field(default=0.02, metadata={"help": "Log every N steps, or a ratio of total if < 1."})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "Sampler: group_by_length (default: batches of similar length, less padding), random, ...",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    report_to: None | str | list[str] = field(
        default="none", metadata={"help": "Experiment trackers to report to (none, all, tensorboard, wandb, ...)."}
    )

    def __post_init__(self):
        _check_numbers(self)
        if self.head_learning_rate is not None and not self.head_learning_rate > 0:  # also refuses nan
            raise ValueError(f"--head-learning-rate must be positive, got {self.head_learning_rate}.")
        if not 0 < self.layerwise_lr_decay <= 1:
            raise ValueError(
                f"--layerwise-lr-decay must be in (0, 1], got {self.layerwise_lr_decay}; 1 turns it off, 0.9 is common."
            )
        if not _accelerator_available():
            # Several processes (torchrun, `accelerate launch --multi_gpu`) on a machine without an accelerator:
            # train one model with DDP over gloo instead of N independent copies.
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
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
    )
    for flag, ok, expected in rules:
        if not ok:
            raise ValueError(f"--{flag.replace('_', '-')} must be {expected}, got {getattr(args, flag)}.")


def _accelerator_available() -> bool:
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
