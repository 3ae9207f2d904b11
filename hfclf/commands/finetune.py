"""Fine-tune one text classifier with `Trainer` and write model, metrics, predictions and plots.

Used by `recipes/finetune.py` and `hfclf train`; runs the same on one CPU, one GPU or many processes
(`accelerate launch` / `torchrun`).
"""

import csv
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..architectures import ARCHITECTURES, BuildInputs, get_architecture, label_fields, resolve_model_name
from ..data.loading import (
    DataArguments,
    column_array,
    dataset_pair_columns,
    label_names_of,
    load_raw_datasets,
    parse_text_columns,
    problem_type_of,
)
from ..data.scoring import (
    aggregate_windows,
    decisions,
    gold_cells,
    multi_hot_rows,
    per_label_rows,
    prediction_rows,
    tune_thresholds,
)
from ..data.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL, get_task
from ..data.tokenization import LongText, tokenize_datasets, train_wordpiece_tokenizer
from ..errors import HfclfInputError, first_line, run_command
from ..files import TEMPORARY_PREFIX, atomic_folder, atomic_output, folder_lock, give_default_permissions
from ..reporting.plots import PER_RUN_PLOT
from ..run_folder import (
    LENGTH_LIMIT_KEY,
    MERGED_SUBDIR,
    PER_LABEL_FILE,
    PREDICTIONS_FILE,
    RESULTS_FILE,
    RunResults,
    base_model_spec,
    check_output_dir,
    check_weight_files,
    clear_output_dir,
    merge_lora_run,
    metric_prefix,
    precision_of,
    resolve_resume,
    save_lora_run,
)
from ..tables import write_csv
from ..training_args import (
    THRESHOLD_CHOICES,
    ClassifierTrainingArguments,
    ModelArguments,
    learning_rate_groups,
    parse_args,
    redact_command,
    run_settings,
    warn_if_bf16_is_emulated,
)

logger = logging.getLogger("hfclf")


# ------------------------------------------------------------------------------------------------------- building


def load_tokenizer(model_args: ModelArguments, train_dataset, vocab_size: int = 30522):
    """The pretrained tokenizer of --tokenizer/--model, or a WordPiece vocabulary of up to `vocab_size` tokens trained
    on the train split."""
    from transformers import AutoTokenizer

    if model_args.tokenizer == "train":
        if get_architecture(model_args.arch).pretrained:
            scratch = " or ".join(name for name, entry in ARCHITECTURES.items() if not entry.pretrained)
            raise HfclfInputError(f"--tokenizer train only applies to --arch {scratch} (trained from scratch).")
        return train_wordpiece_tokenizer(train_dataset, vocab_size)
    name = resolve_model_name(model_args.tokenizer or model_args.model)
    flag = "--tokenizer" if model_args.tokenizer else "--model"
    if Path(name).exists() and not (Path(name).is_dir() and any(Path(name).iterdir())):
        what = "is a file" if Path(name).is_file() else "is an empty folder"
        raise HfclfInputError(
            f"{flag} {name} {what}, not a saved model or tokenizer; pass a model folder (with config.json and "
            "tokenizer files), a Hub id, or minilm for the embedded default."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise HfclfInputError(
            f"Could not load a tokenizer from {flag} {name} ({first_line(err)}). Pass a model folder "
            "with tokenizer files, a Hub id (online), or minilm for the embedded default."
        ) from None
    # A model trained by hfclf saved its training length as the limit: training again may go up to the real one.
    tokenizer.model_max_length = tokenizer.init_kwargs.get(LENGTH_LIMIT_KEY, tokenizer.model_max_length)
    return tokenizer


def class_weights_for(spec: str | None, train, num_labels: int) -> list[float] | None:
    """Per-class loss weights from 'balanced' or an explicit comma-separated list. Single-label: cross-entropy weights,
    'balanced' being inverse class frequency; multi-label: positive weights of each label's binary loss, 'balanced'
    being negatives / positives."""
    if spec is None:
        return None
    problem_type = problem_type_of(train)
    if problem_type == REGRESSION:
        raise HfclfInputError("--class-weights applies to classification; drop it for regression.")
    if spec == "balanced":
        labels = column_array(train, "label")
        if problem_type == MULTI_LABEL:
            positives = np.bincount(np.concatenate(labels).astype(int), minlength=num_labels).astype(float)
            return ((len(labels) - positives) / np.maximum(positives, 1.0)).round(6).tolist()
        counts = np.bincount(labels, minlength=num_labels).astype(float)
        return (len(labels) / (num_labels * np.maximum(counts, 1.0))).round(6).tolist()
    try:
        weights = [float(w) for w in spec.split(",")]
    except ValueError:
        raise HfclfInputError(f"--class-weights '{spec}' is not 'balanced' or a comma-separated list of numbers.")
    if len(weights) != num_labels:
        raise HfclfInputError(
            f"--class-weights has {len(weights)} values but the data has {num_labels} labels; give one per label."
        )
    if not all(math.isfinite(w) and w > 0 for w in weights):  # else the loss is nan or rewards mistakes
        raise HfclfInputError(f"--class-weights '{spec}' must be positive numbers; pass e.g. 1,2.5 or balanced.")
    return weights


def build_model(
    model_args: ModelArguments,
    tokenizer,
    label_names: list[str],
    class_weights,
    max_length: int,
    task=None,
    extras=None,
):
    """The classifier that --arch asks for, labelled with `label_names` for `task` (single-label by default), with
    `extras` for its users on its config; a model folder that does not load (missing or damaged files) or sizes the
    config refuses are one clear error."""
    name = resolve_model_name(model_args.model)
    if Path(name).is_dir():
        check_weight_files(name)
    inputs = BuildInputs(
        model=name,
        labels=label_fields(label_names, (task or get_task(None)).problem_type),
        pooling=model_args.pooling,
        overrides=model_args.config_fields(),
        class_weights=class_weights,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        max_length=max_length,
        word_vectors=model_args.word_vectors,
        freeze_embeddings=bool(model_args.freeze_embeddings),
        extras=extras or {},
    )
    try:
        return get_architecture(model_args.arch).build(inputs)
    except HfclfInputError:
        raise
    except (OSError, ValueError, RuntimeError, TypeError) as err:
        raise HfclfInputError(
            f"Could not build --arch {model_args.arch} from --model {model_args.model} ({first_line(err)}). Check the "
            "model size flags (and --config_overrides, model_config), and pass as --model a model folder with "
            "config.json and weights, a Hub id (online) or minilm."
        ) from None


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


def use_the_cores() -> None:
    """On a CPU, compute with the physical cores this process may use, shared among the local processes.
    `torchrun` and `accelerate launch` (without --cpu) set OMP_NUM_THREADS=1 for their workers unless the user set
    it, which leaves all cores but one idle. Only that 1 is replaced, and only when the launcher's own environment
    has no OMP_NUM_THREADS (the user's value is passed on to the workers, and kept)."""
    import torch

    launched = "LOCAL_RANK" in os.environ or "ACCELERATE_MIXED_PRECISION" in os.environ
    if torch.cuda.is_available() or not launched or os.environ.get("OMP_NUM_THREADS") != "1":
        return
    try:
        with open(f"/proc/{os.getppid()}/environ", "rb") as f:  # the launcher's own environment
            launcher_env = {entry.split(b"=", 1)[0] for entry in f.read().split(b"\0") if entry}
    except OSError:
        return  # not Linux: cannot tell whose value it is, so keep it
    if b"OMP_NUM_THREADS" in launcher_env:
        return
    import psutil  # a dependency of accelerate

    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = min(len(os.sched_getaffinity(0)), psutil.cpu_count(logical=False) or os.cpu_count())  # not hyperthreads
    threads = max(1, cores // local_processes)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
        logger.info(
            "The launcher set OMP_NUM_THREADS=%s; computing with %d threads (%d local process%s on %d cores). "
            "Set OMP_NUM_THREADS yourself to choose.",
            os.environ["OMP_NUM_THREADS"], threads, local_processes, "es" * (local_processes > 1), cores,
        )  # fmt: skip


def hardware_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def write_predictions(path: Path, scored, logits: np.ndarray, results: RunResults, config) -> None:
    """One row per example (per document with windows): its text (and pair), the true and the predicted label (or
    labels, or value), and the probability of every label."""
    problem_type, names = results.problem_type, results.label_names
    rows = prediction_rows(logits, problem_type, names, getattr(config, "thresholds", None))
    gold = gold_cells(column_array(scored, "label"), problem_type, names)
    pairs = scored["text_pair"] if "text_pair" in scored.column_names else None
    predicted = next(iter(rows[0]))  # label, labels or value
    probabilities = [key for key in rows[0] if key.startswith("prob_")]
    with atomic_output(path) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", *(["text_pair"] if pairs is not None else []), "gold", "predicted", *probabilities])
        for i, (text, row) in enumerate(zip(scored["text"], rows)):
            pair = [pairs[i]] if pairs is not None else []
            writer.writerow([text, *pair, gold[i], row[predicted], *(row[key] for key in probabilities)])


def save_final_model(trainer, output_dir: Path) -> None:
    """The best model, its tokenizer and code, saved aside and moved into the run folder file by file, so a crash
    never leaves a truncated model where one stood."""
    staging = output_dir / f"{TEMPORARY_PREFIX}-model"
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)  # left by a run that crashed while saving
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))  # every process takes part; the main one writes
    if trainer.is_world_process_zero():
        give_default_permissions(staging)
        for path in staging.iterdir():
            if path.name == "README.md":  # peft's stub card of an adapter ("More Information Needed"); see export
                path.unlink()
                continue
            os.replace(path, output_dir / path.name)
        staging.rmdir()


# ------------------------------------------------------------------------------------------------------------- run


def tokenization_cache_dir() -> str:
    """Where tokenized datasets are cached: `$HF_DATASETS_CACHE/hfclf_tokenized`."""
    import datasets

    return os.path.join(datasets.config.HF_DATASETS_CACHE, "hfclf_tokenized")


def check_training_splits(raw) -> None:
    """Training needs examples of at least two classes (or, for regression, values that vary), and a validation split
    to evaluate each epoch and pick the best."""
    train = raw["train"]
    problem_type = problem_type_of(train)
    if problem_type == SINGLE_LABEL and len(label_names_of(train)) < 2:
        raise HfclfInputError(
            f"The training data has only one class ({label_names_of(train)[0]}); a classifier needs examples of at "
            "least two. Check the label column."
        )
    if problem_type == REGRESSION and np.ptp(column_array(train, "label")) == 0:
        raise HfclfInputError("Every training target has the same value; regression needs targets that vary.")
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
    tokenizer = load_tokenizer(model_args, raw["train"], data_args.tokenizer_vocab_size)
    with training_args.main_process_first(desc="tokenization"):
        tokenized, tokenize_stats = tokenize_datasets(
            raw,
            tokenizer,
            data_args.max_length,
            num_proc=data_args.preprocessing_num_workers,
            cache_dir=tokenization_cache_dir(),
            long_text=LongText(data_args.long_text, data_args.head_tokens, data_args.stride),
        )
    # Saved with the model: predict, eval and downstream pipelines truncate as training did.
    tokenizer.init_kwargs[LENGTH_LIMIT_KEY] = tokenizer.model_max_length
    tokenizer.model_max_length = tokenize_stats["max_length"]
    prepared = (raw, tokenizer, tokenized, tokenize_stats)
    if data_cache is not None:
        data_cache[key] = prepared
    return prepared


def run_finetune(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: ClassifierTrainingArguments,
    data_cache: dict | None = None,
    callbacks: list | None = None,
):
    """Train, evaluate, predict and write everything into `training_args.output_dir`; returns the run's
    [`RunResults`].

    The main process holds the output folder's lock for the whole run, so a second run on the same folder is refused.
    `data_cache`: see [`prepare_data`]; `callbacks`: more `TrainerCallback`s (a search's pruning).
    """
    from accelerate.state import AcceleratorState

    # `compare` and `search` train several runs in one process, and accelerate keeps one state per process with the
    # first run's mixed precision: a later `--bf16` run would be refused. The process group (PartialState) stays.
    AcceleratorState._reset_state(reset_partial_state=False)
    with run_lock(Path(training_args.output_dir), training_args):
        return _run_finetune(model_args, data_args, training_args, data_cache, callbacks or [])


@contextmanager
def run_lock(output_dir: Path, training_args):
    """The main process holds the output folder's lock for the run; every process learns whether it got it (a
    refused run is then the same clean error everywhere, not a broken collective)."""
    with ExitStack() as held:
        refused = None
        if training_args.process_index == 0:
            try:
                held.enter_context(folder_lock(output_dir, "Output directory"))
            except HfclfInputError as err:
                refused = str(err)
        if training_args.world_size > 1:
            from accelerate.utils import broadcast_object_list

            refused = broadcast_object_list([refused], from_process=0)[0]
        if refused:
            raise HfclfInputError(refused)
        yield


def start_run(training_args, settings: dict) -> tuple[str | None, dict | None, str]:
    """Set the process up for a training run and check its folder before anything is computed: `(the checkpoint to
    resume from, made with the same `settings` (see `run_settings`), or None; the Hub push settings or None; the
    precision)`."""
    from transformers import set_seed

    from ..inference.cost import keep_freed_memory, reset_peak_memory
    from ..inference.hub import take_over_trainer_push

    reset_peak_memory()
    use_the_cores()
    if training_args.device.type == "cpu":
        keep_freed_memory()
    check_output_dir(training_args)
    precision = precision_of(vars(training_args))
    resume = resolve_resume(
        Path(training_args.output_dir),
        training_args.resume_from_checkpoint,
        learning_rate_groups(training_args),
        precision,
        settings,
    )
    hub_push = take_over_trainer_push(training_args)  # hfclf pushes the exported folder itself, after training
    set_seed(training_args.seed)
    if training_args.bf16 and training_args.bf16_guessed:
        logger.info("Training in bf16 autocast: this CPU computes bf16 natively. Pass --bf16 false to train in fp32.")
    elif training_args.bf16 and training_args.use_cpu:
        warn_if_bf16_is_emulated("pass --bf16 false")
    return resume, hub_push, precision


def _run_finetune(model_args, data_args, training_args, data_cache, callbacks: list) -> RunResults:
    from ..inference.cost import training_compute

    start = time.perf_counter()
    settings = run_settings(model_args, data_args, training_args)  # as parsed, before the run resolves any
    resume, hub_push, precision = start_run(training_args, settings)
    output_dir = Path(training_args.output_dir)
    raw, tokenizer, tokenized, tokenize_stats = prepare_data(model_args, data_args, training_args, data_cache)
    task = task_of_run(raw["train"], model_args, training_args)
    model, lora_spec = build_classifier(model_args, data_args, tokenizer, raw["train"], tokenize_stats["max_length"])
    trainer = build_trainer(model, tokenizer, tokenized, model_args, training_args, task, callbacks, settings)
    if trainer.is_world_process_zero():
        clear_output_dir(training_args)  # only now that every input is checked: a refused run removes nothing
    trainer.accelerator.wait_for_everyone()
    train_metrics = trainer.train(resume_from_checkpoint=resume).metrics
    eval_metrics, scored_metrics, split, logits = evaluate_and_predict(trainer, tokenized, model_args, task)
    save_final_model(trainer, output_dir)  # the best model (reloaded at the end), its tokenizer and thresholds
    cost = measure_cost(trainer, raw[split]) if trainer.is_world_process_zero() else {}
    compute = {}
    if trainer.is_world_process_zero():
        processes = training_args.world_size
        compute = training_compute(train_metrics, precision, training_args.device, processes, resume is not None)

    results = RunResults(
        train=train_metrics,
        eval=eval_metrics,
        test=scored_metrics if split == "test" else {},
        label_names=label_names_of(raw["train"]),
        arguments={"model": asdict(model_args), "data": asdict(data_args), "training": training_args.to_dict()},
        settings=settings,
        problem_type=task.problem_type,
        max_length=tokenize_stats["max_length"],
        model_config=built_config_fields(model_args, model),
        best_checkpoint=trainer.state.best_model_checkpoint,
        best_metric=trainer.state.best_metric,
        best_epoch=eval_metrics.get("epoch"),
        epochs=trainer.state.epoch,
        run_time_seconds=time.perf_counter() - start,
        train_samples_per_second=train_metrics.get("train_samples_per_second"),
        tokenization=tokenize_stats,
        num_parameters=sum(p.numel() for p in model.parameters()),
        num_trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        data_sizes={split: len(ds) for split, ds in raw.items()},
        hardware=hardware_description(),
        num_processes=training_args.world_size,
        command=" ".join(redact_command([Path(sys.argv[0]).name, *sys.argv[1:]])),
        versions=library_versions(),
        log_history=trainer.state.log_history,
        cost=cost,
        compute=compute,
    )
    if trainer.is_world_process_zero():
        write_run_outputs(results, raw[split], logits, split, trainer, model_args, lora_spec)
        print_summary(results, output_dir)
        if hub_push:
            from ..inference.hub import push

            push(output_dir, merge=model_args.merge_lora, **hub_push)  # with --merge_lora: the merged model
    trainer.accelerator.wait_for_everyone()  # no process returns before results.json is written
    return results


def measure_cost(trainer, scored) -> dict:
    """Inference speed of the final model on the first texts of the reported split, and the run's peak memory."""
    from ..inference.cost import measure_inference

    count = min(trainer.args.measure_inference_texts, len(scored))
    if count < 1:
        return {}
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:  # a sharded model runs only on every process at once
        logger.info("Inference cost not measured: the model is sharded (FSDP/DeepSpeed); measure its saved copy.")
        return {}
    texts = scored["text"][:count]
    pairs = scored["text_pair"][:count] if "text_pair" in scored.column_names else None
    batch_size = trainer.args.per_device_eval_batch_size
    return measure_inference(trainer.model, trainer.processing_class, texts, pairs, batch_size, trainer.args.device)


def task_of_run(train, model_args, training_args):
    """The task shape of the training data, with the arguments that only some shapes take checked, and the best
    checkpoint picked by the shape's main metric unless --metric_for_best_model says otherwise."""
    task = get_task(problem_type_of(train))
    given = model_args.given  # --threshold 0.5 or --normalize_targets false: given, though at the default
    if (model_args.threshold != "0.5" or "threshold" in given) and task.problem_type != MULTI_LABEL:
        raise HfclfInputError(f"--threshold applies to multi-label classification, not {task.description}; drop it.")
    if (model_args.normalize_targets or "normalize_targets" in given) and task.problem_type != REGRESSION:
        raise HfclfInputError(f"--normalize-targets applies to regression, not {task.description}; drop it.")
    known = [*task.metric_names, "loss"]
    if training_args.metric_for_best_model == "auto":
        training_args.metric_for_best_model = task.main_metric
        training_args.greater_is_better = task.greater_is_better
    elif training_args.metric_for_best_model not in (None, *known):  # checked before the output folder is touched
        raise HfclfInputError(
            f"--metric_for_best_model {training_args.metric_for_best_model} is not a metric of {task.description}; "
            f"choose one of: {', '.join(known)}."
        )
    return task


def built_config_fields(model_args, model) -> dict:
    """The config fields a run can set (model size, head), as the model was built: defaults included."""
    fields = get_architecture(model_args.arch).config_fields() or set(model_args.config_fields())
    return {key: getattr(model.config, key) for key in sorted(fields) if hasattr(model.config, key)}


def build_classifier(model_args, data_args, tokenizer, train, max_length: int):
    """`(model, LoRA spec or None)`: the classifier of --arch for the labels of `train`, with LoRA adapters on its
    encoder with --lora (the pooling head and classifier stay fully trained)."""
    task = get_task(problem_type_of(train))
    label_names = label_names_of(train)
    weights = class_weights_for(model_args.class_weights, train, len(label_names))
    extras = {"input_format": input_format(data_args)}
    if model_args.normalize_targets:
        targets = column_array(train, "label").astype(float)
        extras.update(target_mean=float(targets.mean()), target_std=float(targets.std()) or 1.0)
    model = build_model(model_args, tokenizer, label_names, weights, max_length, task, extras)
    lora_spec = None
    if model_args.lora:
        from ..training.lora import apply_lora

        lora_spec = base_model_spec(model_args, model)
        model = apply_lora(model, model_args, model_args.arch)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("Model %s: %s parameters (%s trainable)", type(model).__name__, f"{total:,}", f"{trainable:,}")
    return model, lora_spec


def input_format(data_args) -> dict:
    """How the model's texts were given, saved with it for `hfclf predict`: the text (and pair) columns, the string
    that joined several text columns, and how long texts were cut."""
    named_texts, named_pairs = dataset_pair_columns(data_args.dataset)
    return {
        "text_columns": parse_text_columns(data_args.text_columns) or named_texts,
        "text_separator": data_args.text_separator,
        "text_pair_column": data_args.text_pair_column or named_pairs,
        "long_text": data_args.long_text,
        "head_tokens": data_args.head_tokens,
        "stride": data_args.stride,
    }


def build_trainer(model, tokenizer, tokenized, model_args, training_args, task, callbacks: list = (), settings=None):
    """The `ClassifierTrainer` of a run: dynamic padding, the task's metrics (validation documents scored from their
    windows), early stopping when asked for, `callbacks`, and the run's `settings` for its checkpoints."""
    import torch
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback

    from ..metrics import build_compute_metrics
    from ..training.trainer import ClassifierTrainer

    callbacks = list(callbacks)
    if model_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=model_args.early_stopping_patience))
    validation = tokenized["validation"]
    return ClassifierTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=validation,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None),
        compute_metrics=build_compute_metrics(
            task.problem_type, thresholds=given_threshold(model_args, task), doc_ids=doc_ids_of(validation)
        ),
        callbacks=callbacks,
        settings=settings,
    )


def doc_ids_of(dataset):
    """The document of each row of a tokenized split cut into windows (`--long_text windows`), else None."""
    return column_array(dataset, "doc_id") if "doc_id" in dataset.column_names else None


def evaluate_and_predict(trainer, tokenized, model_args, task):
    """`(validation metrics, metrics of the scored split, that split, its logits)`: the test split when there is one,
    else validation; documents, not windows. A multi-label model's thresholds are tuned on validation here when
    asked, and saved with it."""
    from ..metrics import build_compute_metrics

    eval_metrics = best_checkpoint_eval_metrics(trainer) or trainer.evaluate(metric_key_prefix="eval")
    thresholds = None
    if task.problem_type == MULTI_LABEL:
        thresholds = chosen_thresholds(trainer, tokenized["validation"], model_args, task)
        trainer.model.config.thresholds = thresholds
        if model_args.threshold in THRESHOLD_CHOICES:  # the validation scores with the tuned thresholds
            validation = tokenized["validation"]
            trainer.compute_metrics = build_compute_metrics(task.problem_type, None, thresholds, doc_ids_of(validation))
            tuned = trainer.evaluate(metric_key_prefix="eval")
            tuned.pop("epoch")  # the trainer's last epoch: the metrics stay those of the best checkpoint's
            eval_metrics = {**eval_metrics, **tuned}
    # Every process takes part in `predict` (it gathers across processes); only the main one writes files.
    split = "test" if "test" in tokenized else "validation"
    doc_ids = doc_ids_of(tokenized[split])
    trainer.compute_metrics = build_compute_metrics(task.problem_type, None, thresholds, doc_ids)
    output = trainer.predict(tokenized[split], metric_key_prefix=metric_prefix(split))
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    if doc_ids is not None:
        logits, _ = aggregate_windows(logits, doc_ids)
    return eval_metrics, output.metrics, split, logits


def given_threshold(model_args, task) -> float | None:
    """The multi-label decision threshold given as a number (0.5 by default), which the validation scores of training
    use too; None for the other shapes and before `tune`."""
    if task.problem_type != MULTI_LABEL or model_args.threshold in THRESHOLD_CHOICES:
        return None
    return float(model_args.threshold)


def chosen_thresholds(trainer, validation, model_args, task):
    """The multi-label decision threshold(s): the one given, or tuned for macro-F1 on the validation split."""
    given = given_threshold(model_args, task)
    if given is not None:
        return given
    output = trainer.predict(validation)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    labels = output.label_ids
    doc_ids = doc_ids_of(validation)
    if doc_ids is not None:
        logits, first = aggregate_windows(logits, doc_ids)
        labels = labels[first]
    thresholds = tune_thresholds(logits, labels, per_label=model_args.threshold == "tune_per_label")
    logger.info("Decision thresholds tuned on validation for macro-F1: %s", thresholds)
    return thresholds


def write_run_outputs(results, scored, logits, split, trainer, model_args, lora_spec) -> None:
    """Predictions, plots, the LoRA files and, last, `results.json`: its presence means the run is finished."""
    from ..reporting.plots import plot_confusion_matrix, plot_label_f1, plot_loss, plot_regression

    output_dir = Path(trainer.args.output_dir)
    title = f"{results.data_arguments['dataset'] or 'data'} / {model_args.arch} {model_args.pooling or ''}".strip()
    config = trainer.model.config
    write_predictions(output_dir / PREDICTIONS_FILE, scored, logits, results, config)
    problem_type, labels = results.problem_type, results.label_names
    gold = column_array(scored, "label")
    predicted = decisions(logits, problem_type, getattr(config, "thresholds", None))
    picture, caption = output_dir / PER_RUN_PLOT[problem_type].file, f"{title}, {split}"
    if problem_type == SINGLE_LABEL:
        plot_confusion_matrix(gold, predicted, labels, picture, caption)
    elif problem_type == MULTI_LABEL:
        per_label = per_label_rows(multi_hot_rows(gold, len(labels)), predicted, labels)
        write_csv(output_dir / PER_LABEL_FILE, per_label)
        plot_label_f1(per_label, picture, caption)
    else:
        plot_regression(gold, predicted, picture, caption)
    steps_per_epoch = trainer.state.max_steps / max(trainer.args.num_train_epochs, 1e-9)
    plot_loss(trainer.state.log_history, output_dir / "loss.png", title, steps_per_epoch=steps_per_epoch)
    if lora_spec is not None:
        save_lora_run(output_dir, lora_spec, config)
        if model_args.merge_lora:
            with atomic_folder(output_dir / MERGED_SUBDIR, replace=True) as merged:
                merge_lora_run(output_dir, merged)
            logger.info("Wrote the merged model to %s", output_dir / MERGED_SUBDIR)  # renamed from its temporary name
    results.save(output_dir)


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


def print_summary(results: RunResults, output_dir: Path) -> None:
    """The numbers a person looks for at the end of a run."""
    tokenization = results.tokenization
    throughput = (
        f"{tokenization['tokenize_examples_per_second']:,.0f} examples/s "
        f"({tokenization['tokenize_tokens_per_second']:,.0f} tokens/s)"
    )
    if tokenization.get("tokenize_from_cache"):
        throughput = f"loaded from the datasets cache at {throughput} (delete it to measure tokenization)"
    lines = [
        f"Tokenization: {throughput}",
        f"Training: {results.train_samples_per_second:,.1f} samples/s, "
        f"{results.train['train_runtime']:.1f}s, {results.num_parameters:,} parameters",
    ]
    if results.cost:
        cost = results.cost
        lines.append(
            f"Inference: {cost['texts_per_second']:,.1f} texts/s in batches of {cost['batch_size']}, "
            f"{cost['latency_ms_median']:.1f} ms per single text (p95 {cost['latency_ms_p95']:.1f} ms); "
            f"{cost['peak_memory']} {cost['peak_memory_mb']:,.0f} MB"
        )
    if results.compute:
        compute = results.compute
        peaks = compute["matmul_peak_flops_per_second"]
        lines.append(
            f"Compute: {compute['model_flops_per_second'] / 1e9:,.1f} GFLOP/s of model FLOPs in training, "
            f"{compute['fraction_of_peak']:.0%} of this {compute['device']}'s measured {compute['precision']} matmul "
            f"peak ({', '.join(f'{name} {value / 1e9:,.0f}' for name, value in peaks.items())} GFLOP/s)"
        )
    task = get_task(results.problem_type)
    for split in ("eval", "test"):
        if getattr(results, split):
            shown = ", ".join(f"{name} {results.metric(name, split):.4f}" for name in task.report_metrics)
            lines.append(f"{split}: {shown} on {results.metric('samples', split):,} examples")
    picture = PER_RUN_PLOT[results.problem_type].file
    lines.append(f"Wrote model, {RESULTS_FILE}, {PREDICTIONS_FILE}, {picture}, loss.png to {output_dir}")
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Command-line entry point (`prog`: the command's name in --help); bad input prints one `error:` line and
    returns exit code 2."""
    return run_command(lambda: run_finetune(*parse_args(argv, prog)))
