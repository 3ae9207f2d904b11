"""`Trainer` specialized for hfclf's tokenized datasets and run folders: length-grouped batches that a resumed run
replays exactly, checkpoints marked complete, whole-run metrics after a resume, head and layer-wise learning rates."""

import logging
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Sampler, SequentialSampler
from transformers import EvalPrediction, Trainer
from transformers.trainer_pt_utils import get_length_grouped_indices, nested_gather
from transformers.trainer_utils import TrainOutput, rotate_checkpoints

from ..attention import varying_length_attention
from ..errors import HfclfInputError
from ..files import give_default_permissions
from ..run_folder import (
    CHECKPOINT_PREFIX,
    CHECKPOINT_RECORD,
    precision_of,
    read_checkpoint_record,
    write_checkpoint_record,
)
from ..training_args import learning_rate_groups, splits_learning_rates

logger = logging.getLogger(__name__)

# Index of a transformer block in a parameter name: BERT/RoBERTa/DeBERTa `layer.3.`, DistilBERT `transformer.layer.3.`,
# ModernBERT `layers.3.`, GPT-style `h.3.`, T5 `block.3.`.
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|block)\.(\d+)\.")
# Embedding modules whose names do not say "embed" (GPT-2 token and position tables).
_EMBEDDING_MODULES = ("wte", "wpe")


def pretrained_encoder(model: nn.Module) -> nn.Module:
    """The part of a classifier whose weights come pretrained; the rest (pooling, classifier) is the new head."""
    from ..models import PooledEncoderModel

    base = getattr(model, "base_model", model)
    return base.encoder if isinstance(base, PooledEncoderModel) else base


def parameter_learning_rates(
    model: nn.Module, learning_rate: float, head_learning_rate: float | None = None, layer_decay: float = 1.0
) -> dict[str, float]:
    """Peak learning rate of each trainable parameter, by name.

    The head gets `head_learning_rate` (default `learning_rate`). Encoder layer i of L (0 = lowest) gets
    `learning_rate * layer_decay ** (L - 1 - i)`, the embeddings `learning_rate * layer_decay ** L`, and encoder
    parameters outside the layers (a pooler, a final norm) `learning_rate`, as the top layer does.
    """
    encoder = pretrained_encoder(model)
    config = getattr(encoder, "config", None)
    if layer_decay != 1.0 and getattr(config, "is_encoder_decoder", False):
        raise HfclfInputError(
            f"--layerwise-lr-decay needs an encoder-only model; {config.model_type} is an encoder-decoder, whose "
            "decoder layers have no single depth. Drop --layerwise-lr-decay."
        )
    prefix = next(name for name, module in model.named_modules() if module is encoder)
    prefix = f"{prefix}." if prefix else ""
    num_layers = getattr(config, "num_hidden_layers", None)
    if num_layers is None:
        indices = [int(m.group(1)) for name, _ in encoder.named_parameters() if (m := _LAYER_INDEX.search(name))]
        num_layers = max(indices, default=-1) + 1
    rates = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if not name.startswith(prefix) or encoder is model:
            rates[name] = head_learning_rate or learning_rate
            continue
        local = name[len(prefix) :]
        if match := _LAYER_INDEX.search(local):  # before the embedding test: a layer may hold its own `seg_embed`
            depth = min(int(match.group(1)) + 1, num_layers)
        elif "embed" in local or local.split(".")[0] in _EMBEDDING_MODULES:
            depth = 0
        else:
            depth = num_layers
        rates[name] = learning_rate * layer_decay ** (num_layers - depth)
    return rates


class EpochLengthGroupedSampler(Sampler):
    """`transformers`' length-grouped order (shuffled mega-batches, each sorted by length), drawn from a generator
    seeded with `seed + epoch` rather than the global random state: a run resumed in the middle of any epoch replays
    exactly the order the uninterrupted run used."""

    def __init__(self, lengths, batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = list(lengths), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


def token_lengths(dataset) -> np.ndarray | None:
    """Tokens per row of a tokenized split, read from its `input_ids` column in one Arrow call (None: not one)."""
    if "input_ids" not in getattr(dataset, "column_names", ()):
        return None
    import pyarrow.compute as pc

    column = dataset.select_columns(["input_ids"]).with_format("arrow")[:]["input_ids"]
    return pc.list_value_length(column).to_numpy(zero_copy_only=False)


def in_order(values, inverse: np.ndarray):
    """Outputs computed in sorted order, back in dataset order (arrays and tuples of them; None stays None)."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return type(values)(in_order(value, inverse) for value in values)
    return values[inverse]


class LengthSortedSampler(Sampler):
    """Evaluation in a fixed order: the longest rows first."""

    def __init__(self, order: np.ndarray):
        self.order = order

    def __len__(self):
        return len(self.order)

    def __iter__(self):
        return iter(self.order.tolist())


class StepArgumentsChecked(logging.Filter):
    """Drops transformers' warning, on resuming, that step arguments differ from the checkpoint's trainer state: it
    compares a ratio of the steps (`--logging_steps 0.02`) with the step count it became, so it warns on every
    resume, and hfclf has already checked all of the run's settings against the checkpoint's (`run_settings`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Warning: The following arguments do not match")


class ClassifierTrainer(Trainer):
    """A `Trainer` for hfclf runs: batches grouped by the precomputed `length` column in an order a resume replays,
    evaluation sorted by length with its outputs in dataset order, complete-checkpoint records, whole-run train
    metrics after a resume, and `head_learning_rate` / `layerwise_lr_decay` of [`ClassifierTrainingArguments`].
    `settings`: the run's `hfclf.training_args.run_settings`, recorded in every checkpoint for a resume to check."""

    def __init__(self, *args, settings: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = settings or {}

    def _get_train_sampler(self, train_dataset=None):
        # `Trainer` drops the columns `forward` does not take (`length` among them) before building the sampler;
        # the full dataset has the same indices and still has them.
        dataset = self.train_dataset
        grouped = self.args.train_sampling_strategy == "group_by_length"
        if not grouped or "length" not in getattr(dataset, "column_names", ()):
            self._train_sampler = super()._get_train_sampler(dataset)
        else:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            lengths = dataset.select_columns(["length"]).with_format("arrow")[:]["length"].to_pylist()
            batch_size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            self._train_sampler = EpochLengthGroupedSampler(lengths, batch_size, seed)
        return self._train_sampler

    def _get_eval_sampler(self, eval_dataset):
        # One process: batches of similar length, longest first, so little of each batch is padding; the outputs go
        # back to dataset order in `evaluation_loop`. Several processes: dataset order (accelerate shards in order and
        # `gather_for_metrics` restores it).
        self._eval_order = None
        if self.args.world_size > 1:
            return None
        # Trainer reuses a persistent-worker dataloader without asking for a sampler again, and streams metrics or
        # keeps batches apart with these flags: outputs could not be put back in order, so keep dataset order.
        args = self.args
        if args.dataloader_persistent_workers or args.batch_eval_metrics or not args.eval_do_concat_batches:
            return SequentialSampler(eval_dataset)
        lengths = token_lengths(eval_dataset)
        if lengths is None:
            return SequentialSampler(eval_dataset)
        self._eval_order = np.argsort(-lengths, kind="stable")
        return LengthSortedSampler(self._eval_order)

    def evaluation_loop(self, dataloader, *args, **kwargs):
        """`Trainer`'s loop over batches sorted by length; metrics and outputs see the examples in dataset order."""
        order, self._eval_order = getattr(self, "_eval_order", None), None
        if order is None:
            with varying_length_attention():
                return super().evaluation_loop(dataloader, *args, **kwargs)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        compute_metrics = self.compute_metrics
        if compute_metrics is not None:
            self.compute_metrics = lambda p: compute_metrics(
                EvalPrediction(
                    predictions=in_order(p.predictions, inverse),
                    label_ids=in_order(p.label_ids, inverse),
                    inputs=in_order(p.inputs, inverse),
                    losses=in_order(p.losses, inverse),
                )
            )
        try:
            with varying_length_attention():
                output = super().evaluation_loop(dataloader, *args, **kwargs)
        finally:
            self.compute_metrics = compute_metrics
        return output._replace(predictions=in_order(output.predictions, inverse),
                               label_ids=in_order(output.label_ids, inverse))  # fmt: skip

    def get_optimizer_cls_and_kwargs(self, args, model=None):
        """`Trainer`'s optimizer choice; with a head rate or layer-wise decay, its parameter groups as well.

        `Trainer.create_optimizer` takes a `params` entry in place of its own two groups, so the rest of its set-up
        (fused kernels, 8-bit embedding overrides, ...) still applies.
        """
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
        if model is None or not splits_learning_rates(args):
            return optimizer_cls, optimizer_kwargs
        is_optimizer_class = isinstance(optimizer_cls, type) and issubclass(optimizer_cls, torch.optim.Optimizer)
        if not is_optimizer_class or {"params", "model", "optimizer_dict"} & optimizer_kwargs.keys():
            raise HfclfInputError(
                f"--optim {args.optim} builds its own parameter groups, so it cannot take --head-learning-rate or "
                "--layerwise-lr-decay; use an AdamW-type --optim or drop those flags."
            )
        rates = parameter_learning_rates(model, args.learning_rate, args.head_learning_rate, args.layerwise_lr_decay)
        decay = set(self.get_decay_parameter_names(model))
        groups = {}  # one optimizer group per (learning rate, weight decay)
        for name, parameter in model.named_parameters():
            if name in rates:
                groups.setdefault((rates[name], args.weight_decay if name in decay else 0.0), []).append(parameter)
        # `Trainer` logs the first group's rate: put one at --learning-rate (the encoder's top layer) first.
        order = sorted(groups, key=lambda key: (key[0] != args.learning_rate, key))
        optimizer_kwargs["params"] = [{"params": groups[lr, wd], "lr": lr, "weight_decay": wd} for lr, wd in order]
        logger.info("Peak learning rates: %s", ", ".join(f"{lr:.3g}" for lr in sorted({lr for lr, _ in groups})))
        return optimizer_cls, optimizer_kwargs

    # ----------------------------------------------------------------------------------- checkpoints and resuming

    def train(self, resume_from_checkpoint=None, **kwargs):
        """`Trainer.train`; a resumed run continues exactly where its checkpoint stood (batch order, pending loss,
        early stopping), and its `train_loss`, `train_runtime` and speeds describe the whole run."""
        self._resumed_record = read_checkpoint_record(resume_from_checkpoint) if resume_from_checkpoint else None
        self._resume_pending = self._resumed_record is not None
        quiet, transformers_check = StepArgumentsChecked(), logging.getLogger("transformers.trainer_utils")
        if (self._resumed_record or {}).get("settings") is not None:  # checked by hfclf (older checkpoints: not)
            transformers_check.addFilter(quiet)
        try:
            with varying_length_attention():
                output = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        finally:
            transformers_check.removeFilter(quiet)
        return self._whole_run(output) if self._resumed_record else output

    def set_initial_training_values(self, args, dataloader):
        values = super().set_initial_training_values(args, dataloader)
        self._num_train_samples = values[3]
        self._clock_start = time.time()
        return values

    def _run_epoch(self, **kwargs):
        # The epoch of the length-grouped order, set here: after a resume in the middle of an epoch, `Trainer` wraps
        # the sampler deeper than its own `set_epoch` calls reach (with several processes).
        if isinstance(getattr(self, "_train_sampler", None), EpochLengthGroupedSampler):
            self._train_sampler.set_epoch(kwargs["epoch"])
        if self._resume_pending:  # `Trainer` has just reset its loss bookkeeping: restore the checkpoint's
            self._resume_pending = False
            record = self._resumed_record
            self._tr_loss += record.get("pending_loss", 0.0)
            self._globalstep_last_logged = record.get("last_logged_step", self.state.global_step)
            if record.get("training_stopped"):  # early stopping had ended the run
                self.control.should_training_stop = True
                return None
        return super()._run_epoch(**kwargs)

    def _save_checkpoint(self, model, trial):
        """`Trainer`'s checkpoint, then the record that marks it complete, then the rotation of older ones (which must
        not delete a complete checkpoint before the new one is complete)."""
        run_dir = Path(self._get_output_dir(trial=trial))
        checkpoint = run_dir / f"{CHECKPOINT_PREFIX}{self.state.global_step}"
        if self.args.should_save:  # saved again over an older save: unmarked until it is complete again
            (checkpoint / CHECKPOINT_RECORD).unlink(missing_ok=True)
        limit, self.args.save_total_limit = self.args.save_total_limit, None
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        pending = nested_gather(self._tr_loss, self.args.parallel_mode).mean().item()  # all processes take part
        self.accelerator.wait_for_everyone()  # every process has written its RNG state
        if not self.args.should_save:
            return
        give_default_permissions(checkpoint)
        prior = self._resumed_record or {}
        write_checkpoint_record(
            checkpoint,
            {
                "global_step": self.state.global_step,
                "train_loss_sum": prior.get("train_loss_sum", 0.0) + self._total_loss_scalar,  # logged steps
                "pending_loss": pending,  # the loss of the steps since the last log
                "last_logged_step": self._globalstep_last_logged,
                "train_runtime": prior.get("train_runtime", 0.0) + time.time() - self._clock_start,
                "training_stopped": bool(self.control.should_training_stop),
                "save_only_model": self.args.save_only_model,
                "learning_rate_groups": learning_rate_groups(self.args),
                "precision": precision_of(vars(self.args)),
                "settings": self.settings,
            },
        )
        rotate_checkpoints(
            output_dir=str(run_dir),
            save_total_limit=limit,
            best_model_checkpoint=self.state.best_model_checkpoint,
            use_mtime=True,
        )

    def _whole_run(self, output: TrainOutput) -> TrainOutput:
        prior = self._resumed_record
        steps = self.state.global_step
        runtime = prior["train_runtime"] + output.metrics["train_runtime"]
        samples = self._num_train_samples * steps / max(self.state.max_steps, 1)
        whole = {
            "train_runtime": round(runtime, 4),
            "train_samples_per_second": round(samples / runtime, 3),
            "train_steps_per_second": round(steps / runtime, 3),
            # this call's losses include the checkpoint's pending ones, restored into them
            "train_loss": (prior["train_loss_sum"] + self._total_loss_scalar) / max(steps, 1),
        }
        metrics = {**output.metrics, **whole}
        for entry in reversed(self.state.log_history):  # the summary entry `Trainer` logged at the end
            if "train_runtime" in entry:
                entry.update(whole)
                break
        logger.info(
            "Resumed run: %d of %d steps before the checkpoint; train metrics cover all of them",
            prior["global_step"],
            steps,
        )
        return TrainOutput(steps, whole["train_loss"], metrics)
