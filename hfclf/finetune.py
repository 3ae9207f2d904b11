"""Fine-tune one text classifier with `Trainer` and write model, metrics, predictions and plots.

Used by `recipes/finetune.py` and `hfclf train`; runs the same on one CPU, one GPU or many processes
(`accelerate launch` / `torchrun`).
"""

import csv
import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .data import DataArguments, load_raw_datasets, resolve_model_name, tokenize_datasets, train_wordpiece_tokenizer
from .errors import HfclfInputError
from .training_args import (
    DEFAULT_LEARNING_RATE,
    LEARNING_RATE_GROUP_FLAGS,
    ClassifierTrainingArguments,
    ModelArguments,
    splits_learning_rates,
)

logger = logging.getLogger("hfclf")

CONFIG_FILE_SUFFIXES = (".yaml", ".yml", ".json")


# ------------------------------------------------------------------------------------------------------ arguments


def read_mapping_file(path: str, what: str = "Config file") -> dict:
    """A YAML or JSON file holding one mapping."""
    if not os.path.isfile(path):
        raise HfclfInputError(f"{what} {path} does not exist; pass the path of a .yaml or .json file.")
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


def flags_to_argv(flags: dict) -> list[str]:
    """`{"pooling": "mean", "bf16": True}` -> `["--pooling", "mean", "--bf16", "true"]`; None values are left out."""
    argv = []
    for key, value in flags.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        if isinstance(value, list):
            argv.extend(str(v) for v in value)
        else:
            argv.append(str(value).lower() if isinstance(value, bool) else str(value))
    return argv


def config_file_to_argv(path: str) -> list[str]:
    """Turn a YAML/JSON file of `flag: value` pairs into command-line words (later flags override them)."""
    return flags_to_argv(read_mapping_file(path))


def parse_args(argv: list[str] | None = None):
    """Parse `ModelArguments`, `DataArguments` and `ClassifierTrainingArguments` from flags and/or a config file."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(CONFIG_FILE_SUFFIXES) and not argv[0].startswith("-"):
        argv = config_file_to_argv(argv[0]) + argv[1:]
    parser = HfArgumentParser((ModelArguments, DataArguments, ClassifierTrainingArguments))
    try:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
        if not any(word.split("=")[0] in ("--output_dir", "--output-dir") for word in argv):
            argv += ["--output_dir", default_output_dir(model_args, data_args)]
            model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
        check_learning_rate_groups(model_args, training_args)
    except ValueError as err:  # raised by the dataclasses' own checks (unknown pooling, ...)
        raise HfclfInputError(str(err)) from None
    return model_args, data_args, training_args


def check_learning_rate_groups(model_args: ModelArguments, training_args: ClassifierTrainingArguments) -> None:
    """Head and layer-wise learning rates split a pretrained encoder from its new head: full fine-tuning only."""
    if not splits_learning_rates(training_args):
        return
    if model_args.arch not in ("pooled", "hf") or model_args.lora:
        what = "--lora" if model_args.lora else f"--arch {model_args.arch}"
        raise ValueError(
            f"--head-learning-rate and --layerwise-lr-decay apply to fine-tuning all weights of a pretrained encoder "
            f"(--arch pooled or hf), not to {what}; drop them or change the model."
        )
    if training_args.deepspeed or training_args.fsdp:  # both build or flatten the optimizer's groups themselves
        raise ValueError(
            "--head-learning-rate and --layerwise-lr-decay are not supported with --deepspeed or --fsdp; drop them "
            "or train with DDP (accelerate launch --multi_gpu)."
        )


def check_resume_learning_rates(checkpoint: str, training_args: ClassifierTrainingArguments) -> None:
    """A checkpoint's optimizer state holds its learning-rate groups, so a resumed run needs the flags that made
    them (otherwise loading fails, or the old rates come back in silence)."""
    import torch

    saved_file = Path(checkpoint) / "training_args.bin"
    if not saved_file.is_file():
        return
    saved = torch.load(saved_file, weights_only=False)  # written by this run's own Trainer
    for flag, off in LEARNING_RATE_GROUP_FLAGS.items():
        before, now = getattr(saved, flag, off), getattr(training_args, flag)
        if before != now:
            raise HfclfInputError(
                f"{checkpoint} was trained with --{flag.replace('_', '-')} {before} but this run asks for {now}; "
                "resume with the same value, or start a new --output-dir."
            )


def default_output_dir(model_args: ModelArguments, data_args: DataArguments) -> str:
    source = data_args.dataset or Path(data_args.train_file or "data").name.split(".")[0]
    name = "-".join(part for part in (source, model_args.arch, model_args.pooling) if part)
    return os.path.join("runs", name)


def check_output_dir(training_args: ClassifierTrainingArguments) -> None:
    """Refuse to write into a non-empty output directory unless asked to overwrite or resume."""
    output_dir = Path(training_args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise HfclfInputError(f"--output-dir {output_dir} is a file; pass a directory path.")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        from transformers.trainer_utils import get_last_checkpoint

        resume = training_args.resume_from_checkpoint
        if training_args.overwrite_output_dir or (resume and (resume != "auto" or get_last_checkpoint(output_dir))):
            return
        state = "has no checkpoint to resume from" if resume else "already exists"
        raise HfclfInputError(
            f"Output directory {output_dir} {state} and is not empty. Pass --overwrite-output-dir to replace "
            "its files, --resume-from-checkpoint auto to continue a run that saved checkpoints, or choose another "
            "--output-dir."
        )


# ------------------------------------------------------------------------------------------------------- building


def load_tokenizer(model_args: ModelArguments, train_dataset):
    """The pretrained tokenizer of --tokenizer/--model, or a WordPiece vocabulary trained on the train split."""
    from transformers import AutoTokenizer

    if model_args.tokenizer == "train":
        if model_args.arch not in ("lstm", "transformer"):
            raise HfclfInputError(
                "--tokenizer train only applies to --arch lstm or transformer (trained from scratch)."
            )
        return train_wordpiece_tokenizer(train_dataset)
    name = resolve_model_name(model_args.tokenizer or model_args.model)
    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as err:
        raise HfclfInputError(
            f"Could not load a tokenizer from '{name}' ({str(err).splitlines()[0]}). Pass a local model folder or a "
            "Hub id (online), or --model minilm for the embedded default."
        ) from None


def class_weights_for(spec: str | None, train_labels: np.ndarray, num_labels: int) -> list[float] | None:
    """Per-class loss weights from 'balanced' (inverse frequency) or an explicit comma-separated list."""
    if spec is None:
        return None
    if spec == "balanced":
        counts = np.bincount(train_labels, minlength=num_labels).astype(float)
        return (len(train_labels) / (num_labels * np.maximum(counts, 1.0))).round(6).tolist()
    try:
        weights = [float(w) for w in spec.split(",")]
    except ValueError:
        raise HfclfInputError(f"--class-weights '{spec}' is not 'balanced' or a comma-separated list of numbers.")
    if len(weights) != num_labels:
        raise HfclfInputError(
            f"--class-weights has {len(weights)} values but the data has {num_labels} labels; give one per label."
        )
    return weights


def build_model(model_args: ModelArguments, tokenizer, label_names: list[str], class_weights, max_length: int):
    """The classifier that --arch asks for, labelled with `label_names`."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from .models import (
        LSTMConfig,
        LSTMForSequenceClassification,
        PooledEncoderForSequenceClassification,
        TinyTransformerConfig,
        TinyTransformerForSequenceClassification,
    )

    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }
    name = resolve_model_name(model_args.model)
    arch = model_args.arch

    if arch in ("pooled", "hf"):
        try:
            config = AutoConfig.from_pretrained(name)
        except OSError as err:
            raise HfclfInputError(
                f"Could not load model '{name}' ({str(err).splitlines()[0]}). Pass a local folder or a Hub id "
                "(online), or --model minilm for the embedded default."
            ) from None
        is_classifier = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        if arch == "hf" and is_classifier and config.num_labels != len(label_names):
            raise HfclfInputError(
                f"Model {name} has a classifier for {config.num_labels} labels but the data has {len(label_names)} "
                f"({', '.join(label_names)}). Use data with the same labels, or start from its encoder with "
                "--arch pooled."
            )
        if arch == "hf":
            return AutoModelForSequenceClassification.from_pretrained(name, **labels)
        return PooledEncoderForSequenceClassification.from_encoder_pretrained(
            name,
            pooling=model_args.pooling,
            classifier_dropout=model_args.classifier_dropout,
            attention_hidden_size=model_args.attention_hidden_size,
            class_weights=class_weights,
            pad_token_id=tokenizer.pad_token_id,
            **labels,
        )

    common = {"pad_token_id": tokenizer.pad_token_id, "pooling": model_args.pooling, "class_weights": class_weights}
    if arch == "lstm":
        lstm = {
            "hidden_size": model_args.lstm_hidden_size,
            "num_layers": model_args.lstm_layers,
            "bidirectional": model_args.bidirectional,
            "dropout": model_args.dropout,
            "attention_hidden_size": model_args.attention_hidden_size,
        }
        if model_args.word_vectors and model_args.tokenizer != "train":
            model = LSTMForSequenceClassification.from_pretrained_embeddings(
                name, freeze=model_args.freeze_embeddings, **lstm, **common, **labels
            )
            if model.config.vocab_size < len(tokenizer):
                raise HfclfInputError(
                    f"The tokenizer has {len(tokenizer)} tokens but {name} has only {model.config.vocab_size} word "
                    "vectors. Use the tokenizer of --model (drop --tokenizer) or pass --no-word-vectors."
                )
            return model
        config = LSTMConfig(
            vocab_size=len(tokenizer),
            embedding_dim=model_args.embedding_dim,
            freeze_embeddings=model_args.freeze_embeddings,
            **lstm,
            **common,
            **labels,
        )
        return LSTMForSequenceClassification(config)

    config = TinyTransformerConfig(
        vocab_size=len(tokenizer),
        d_model=model_args.d_model,
        num_attention_heads=model_args.num_heads,
        num_hidden_layers=model_args.num_layers,
        intermediate_size=model_args.ff_size,
        dropout=model_args.dropout,
        pre_layer_norm=model_args.pre_layer_norm,
        max_position_embeddings=max(512, max_length),
        **common,
        **labels,
    )
    return TinyTransformerForSequenceClassification(config)


# ---------------------------------------------------------------------------------------------------------- output


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("hfclf", "torch", "transformers", "datasets", "evaluate", "accelerate", "peft", "tokenizers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


def hardware_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def write_predictions(path: Path, texts: list[str], gold: np.ndarray, logits: np.ndarray, label_names: list[str]):
    """One row per example: text, gold and predicted label names, and the probability of every label."""
    from .predict import softmax

    probabilities = softmax(logits)
    predicted = probabilities.argmax(axis=-1)
    names = np.asarray(label_names, dtype=object)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "gold", "predicted", *(f"prob_{name}" for name in label_names)])
        for row in zip(texts, names[gold], names[predicted], *probabilities.round(6).T):
            writer.writerow(row)
    return predicted


# ------------------------------------------------------------------------------------------------------------- run


def tokenization_cache_dir() -> str:
    """Where tokenized datasets are cached: `$HF_DATASETS_CACHE/hfclf_tokenized`."""
    import datasets

    return os.path.join(datasets.config.HF_DATASETS_CACHE, "hfclf_tokenized")


def check_training_splits(raw) -> None:
    """Training needs at least two classes, and a validation split to evaluate each epoch and pick the best."""
    label_names = raw["train"].features["label"].names
    if len(label_names) < 2:
        raise HfclfInputError(
            f"The training data has only one class ({label_names[0]}); a classifier needs examples of at least "
            "two. Check the label column."
        )
    if "validation" not in raw:
        raise HfclfInputError(
            "No validation split: pass --validation-file, or a --validation-fraction above 0 to hold out part of "
            "the training data."
        )


def prepare_data(model_args, data_args, training_args, data_cache: dict | None = None):
    """Load, split and tokenize the data: `(raw, tokenizer, tokenized, tokenize_stats)`.

    With a `data_cache` dict, runs that share the data arguments, seed and tokenizer (a comparison grid) load and
    tokenize once. A tokenizer trained on the train split (`--tokenizer train`) depends only on that split, so it is
    shared too.
    """
    key = (
        json.dumps(asdict(data_args), sort_keys=True),
        training_args.seed,
        model_args.tokenizer or model_args.model,
    )
    if data_cache is not None and key in data_cache:
        logger.info("Reusing the tokenized data of an earlier run")
        return data_cache[key]
    raw = load_raw_datasets(data_args, seed=training_args.seed, need_train=True)
    check_training_splits(raw)
    tokenizer = load_tokenizer(model_args, raw["train"])
    with training_args.main_process_first(desc="tokenization"):
        tokenized, tokenize_stats = tokenize_datasets(
            raw,
            tokenizer,
            data_args.max_length,
            num_proc=data_args.preprocessing_num_workers,
            cache_dir=tokenization_cache_dir(),
        )
    prepared = (raw, tokenizer, tokenized, tokenize_stats)
    if data_cache is not None:
        data_cache[key] = prepared
    return prepared


def run_finetune(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: ClassifierTrainingArguments,
    data_cache: dict | None = None,
):
    """Train, evaluate, predict and write everything into `training_args.output_dir`; returns the results dict.

    `data_cache`: see [`prepare_data`].
    """
    import torch
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from .hub import push, redact_command, take_over_trainer_push
    from .metrics import build_compute_metrics
    from .plots import plot_confusion_matrix, plot_loss
    from .trainer import ClassifierTrainer

    start = time.perf_counter()
    output_dir = Path(training_args.output_dir)
    check_output_dir(training_args)
    hub_push = take_over_trainer_push(training_args)  # hfclf pushes the exported folder itself, after training
    if training_args.learning_rate is None:
        training_args.learning_rate = DEFAULT_LEARNING_RATE[model_args.arch]
    set_seed(training_args.seed)

    raw, tokenizer, tokenized, tokenize_stats = prepare_data(model_args, data_args, training_args, data_cache)
    label_names = raw["train"].features["label"].names
    weights = class_weights_for(model_args.class_weights, np.asarray(raw["train"]["label"]), len(label_names))
    model = build_model(model_args, tokenizer, label_names, weights, data_args.max_length)
    lora_spec = None
    if model_args.lora:  # LoRA adapters on the encoder; the pooling head and classifier stay fully trained
        from .lora import apply_lora, base_model_spec

        lora_spec = base_model_spec(model_args, model)
        model = apply_lora(model, model_args, model_args.arch)
        training_args.label_names = ["labels"]  # PeftModel hides the signature: keeps eval loss and best-model pick
    num_parameters = sum(p.numel() for p in model.parameters())
    num_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "Model %s: %s parameters (%s trainable)", type(model).__name__, f"{num_parameters:,}", f"{num_trainable:,}"
    )

    callbacks = []
    if model_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=model_args.early_stopping_patience))
    trainer = ClassifierTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None),
        compute_metrics=build_compute_metrics(),
        callbacks=callbacks,
    )

    resume = training_args.resume_from_checkpoint
    if resume == "auto":
        resume = get_last_checkpoint(output_dir) if output_dir.is_dir() else None
        logger.info("Resuming from %s", resume) if resume else logger.info(
            "No checkpoint to resume from; starting fresh."
        )
    if resume:
        check_resume_learning_rates(resume, training_args)
    train_result = trainer.train(resume_from_checkpoint=resume)
    train_metrics = train_result.metrics
    eval_metrics = best_checkpoint_eval_metrics(trainer) or trainer.evaluate(metric_key_prefix="eval")
    # Every process takes part in `predict` (it gathers across processes); only the main one writes files.
    split = "test" if "test" in tokenized else "validation"
    output = trainer.predict(tokenized[split], metric_key_prefix="test" if split == "test" else "eval")
    test_metrics = output.metrics if split == "test" else {}
    trainer.save_model()  # the best model (reloaded at the end) and the tokenizer
    if lora_spec is not None and trainer.is_world_process_zero():
        from .lora import MERGED_SUBDIR, merge_lora_run, save_lora_run

        save_lora_run(output_dir, lora_spec)
        if model_args.merge_lora:
            merge_lora_run(output_dir, output_dir / MERGED_SUBDIR)

    results = {
        "train": train_metrics,
        "eval": eval_metrics,
        "test": test_metrics,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_metric": trainer.state.best_metric,
        "best_epoch": eval_metrics.get("epoch"),
        "epochs": trainer.state.epoch,
        "run_time_seconds": time.perf_counter() - start,
        "train_samples_per_second": train_metrics.get("train_samples_per_second"),
        "tokenization": tokenize_stats,
        "num_parameters": num_parameters,
        "num_trainable_parameters": num_trainable,
        "label_names": label_names,
        "data_sizes": {split: len(ds) for split, ds in raw.items()},
        "hardware": hardware_description(),
        "num_processes": training_args.world_size,
        "command": " ".join(redact_command([Path(sys.argv[0]).name, *sys.argv[1:]])),
        "arguments": {"model": asdict(model_args), "data": asdict(data_args), "training": training_args.to_dict()},
        "versions": library_versions(),
        "log_history": trainer.state.log_history,
    }
    if trainer.is_world_process_zero():
        with open(output_dir / "results.json", "w") as f:
            json.dump(results, f, indent=2, default=str)
        title = f"{data_args.dataset or 'data'} / {model_args.arch} {model_args.pooling or ''}".strip()
        gold = np.asarray(raw[split]["label"])
        predicted = write_predictions(
            output_dir / "predictions.csv", raw[split]["text"], gold, output.predictions, label_names
        )
        plot_confusion_matrix(gold, predicted, label_names, output_dir / "confusion_matrix.png", f"{title}, {split}")
        steps_per_epoch = trainer.state.max_steps / max(training_args.num_train_epochs, 1e-9)
        plot_loss(trainer.state.log_history, output_dir / "loss.png", title, steps_per_epoch=steps_per_epoch)
        print_summary(results, output_dir)
        if hub_push:
            push(output_dir, merge=model_args.merge_lora, **hub_push)  # with --merge_lora: the merged model
    return results


def best_checkpoint_eval_metrics(trainer) -> dict | None:
    """Eval metrics already logged for the checkpoint that `load_best_model_at_end` reloaded (saves one eval pass)."""
    best = trainer.state.best_model_checkpoint
    if not (trainer.args.load_best_model_at_end and best):
        return None
    step = int(best.rstrip("/").rsplit("-", 1)[-1])
    for entry in trainer.state.log_history:
        if entry.get("step") == step and "eval_loss" in entry:
            return {key: value for key, value in entry.items() if key.startswith("eval_") or key == "epoch"}
    return None


def print_summary(results: dict, output_dir: Path) -> None:
    """The numbers a person looks for at the end of a run."""
    tokenization = results["tokenization"]
    throughput = (
        f"{tokenization['tokenize_examples_per_second']:,.0f} examples/s "
        f"({tokenization['tokenize_tokens_per_second']:,.0f} tokens/s)"
    )
    if tokenization.get("tokenize_from_cache"):
        throughput = f"loaded from the datasets cache at {throughput} (delete it to measure tokenization)"
    lines = [
        f"Tokenization: {throughput}",
        f"Training: {results['train_samples_per_second']:,.1f} samples/s, "
        f"{results['train']['train_runtime']:.1f}s, {results['num_parameters']:,} parameters",
    ]
    for split in ("eval", "test"):
        metrics = results[split]
        if metrics:
            lines.append(
                f"{split}: accuracy {metrics[f'{split}_accuracy']:.4f}, macro-F1 {metrics[f'{split}_f1_macro']:.4f} "
                f"on {metrics[f'{split}_samples']:,} examples"
            )
    lines.append(f"Wrote model, results.json, predictions.csv, confusion_matrix.png, loss.png to {output_dir}")
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; bad input prints one `error:` line and returns exit code 2."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        model_args, data_args, training_args = parse_args(argv)
        run_finetune(model_args, data_args, training_args)
    except HfclfInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0
