"""`Trainer` specialized for hfclf's tokenized datasets, with head and layer-wise learning rates."""

import logging
import re

import torch
from torch import nn
from torch.utils.data import SequentialSampler
from transformers import Trainer

from .errors import HfclfInputError
from .training_args import splits_learning_rates

logger = logging.getLogger(__name__)

# Index of a transformer block in a parameter name: BERT/RoBERTa/DeBERTa `layer.3.`, DistilBERT `transformer.layer.3.`,
# ModernBERT `layers.3.`, GPT-style `h.3.`, T5 `block.3.`.
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|block)\.(\d+)\.")
# Embedding modules whose names do not say "embed" (GPT-2 token and position tables).
_EMBEDDING_MODULES = ("wte", "wpe")


def pretrained_encoder(model: nn.Module) -> nn.Module:
    """The part of a classifier whose weights come pretrained; the rest (pooling, classifier) is the new head."""
    from .models import PooledEncoderModel

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


class ClassifierTrainer(Trainer):
    """A `Trainer` that groups training batches by the precomputed `length` column, predicts in dataset order, and
    honours `head_learning_rate` / `layerwise_lr_decay` of [`ClassifierTrainingArguments`]."""

    def _get_train_sampler(self, train_dataset=None):
        # `Trainer` drops the columns `forward` does not take (`length` among them) before building the sampler,
        # which then tokenizes its way through every example to measure it; the full dataset has the same indices.
        return super()._get_train_sampler(self.train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        # With `group_by_length`, `Trainer` also shuffles evaluation into length groups; predictions must come back
        # in dataset order so that predictions.csv lines up with the texts. (Several processes: accelerate shards
        # in order and `gather_for_metrics` restores it.)
        if self.args.world_size <= 1:
            return SequentialSampler(eval_dataset)
        return None

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
