"""Pieces shared by every hfclf model: pooling, the classification loss and `auto_map` saving.

This file travels to the Hub with each model's code, so it imports only torch and transformers.
"""

import torch
from torch import nn


def masked_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden_states` (batch, seq, dim) over the positions where `attention_mask` is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
    summed = (hidden_states * mask).sum(dim=1)
    return summed / mask.sum(dim=1).clamp(min=1.0)


def masked_max(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Max of `hidden_states` over the real (unmasked) positions; padding can never win."""
    mask = attention_mask.unsqueeze(-1).bool()
    filled = hidden_states.masked_fill(~mask, torch.finfo(hidden_states.dtype).min)
    return filled.max(dim=1).values


class AttentionPooling(nn.Module):
    """Additive attention pooling: a Linear-Tanh-Linear MLP scores tokens; softmax over real tokens; weighted sum."""

    def __init__(self, hidden_size: int, attention_hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, attention_hidden_size)
        self.activation = nn.Tanh()
        self.score = nn.Linear(attention_hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(self.activation(self.dense(hidden_states))).squeeze(-1)
        scores = scores.masked_fill(~attention_mask.bool(), torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights.unsqueeze(1), hidden_states).squeeze(1)


def pool(
    pooling: str,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor,
    attention_pooling: AttentionPooling | None = None,
) -> torch.Tensor:
    """One vector per sequence from its token vectors (batch, seq, dim), never from padded positions: `"cls"` (the
    first token), `"mean"`, `"max"`, `"attention"` (with `attention_pooling`) or `"cls_mean"` (both, concatenated)."""
    if pooling == "cls":
        return hidden_states[:, 0]
    if pooling == "mean":
        return masked_mean(hidden_states, attention_mask)
    if pooling == "max":
        return masked_max(hidden_states, attention_mask)
    if pooling == "attention":
        return attention_pooling(hidden_states, attention_mask)
    if pooling == "cls_mean":
        return torch.cat([hidden_states[:, 0], masked_mean(hidden_states, attention_mask)], dim=-1)
    raise ValueError(f"Unknown pooling '{pooling}'.")


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, config) -> torch.Tensor:
    """Loss chosen by `config.problem_type` (inferred as in transformers when unset), with optional class weights."""
    num_labels = config.num_labels
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"

    weight = None
    if getattr(config, "class_weights", None) is not None:
        if len(config.class_weights) != num_labels:
            raise ValueError(
                f"config.class_weights has {len(config.class_weights)} values but num_labels is {num_labels}; "
                "give one weight per label."
            )
        weight = torch.tensor(config.class_weights, dtype=logits.dtype, device=logits.device)

    if config.problem_type == "regression":
        labels = labels.to(logits.dtype)
        scale = target_scale(config)
        if scale is not None:  # the model learns standardized targets (see `unscale_regression`)
            labels = (labels - scale[0]) / scale[1]
        if num_labels == 1:
            return nn.functional.mse_loss(logits.view(-1), labels.view(-1))
        return nn.functional.mse_loss(logits, labels)
    if config.problem_type == "single_label_classification":
        return nn.functional.cross_entropy(logits.view(-1, num_labels), labels.view(-1), weight=weight)
    # multi-label: class weights up-weight the positives of rare classes
    return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weight)


def head_logits(classifier: nn.Linear, pooled: torch.Tensor) -> torch.Tensor:
    """`classifier(pooled)`, in the weights' precision even under autocast: bf16 would round a regression output to
    steps of 1/64 between 2 and 4 (and probabilities near a threshold), for the saving of one small matmul."""
    if not torch.is_autocast_enabled(pooled.device.type):
        return classifier(pooled)
    with torch.autocast(pooled.device.type, enabled=False):
        return classifier(pooled.to(classifier.weight.dtype))


def target_scale(config) -> tuple[float, float] | None:
    """`(mean, std)` of the training targets of a regression model trained on standardized targets, else None."""
    mean, std = getattr(config, "target_mean", None), getattr(config, "target_std", None)
    return (mean, std) if config.problem_type == "regression" and mean is not None and std else None


def unscale_regression(logits: torch.Tensor, config) -> torch.Tensor:
    """A regression model's outputs on the targets' own scale: it was trained on standardized targets when its config
    has `target_mean` and `target_std`, so that its outputs (and `pipeline`'s) need no conversion downstream."""
    scale = target_scale(config)
    return logits if scale is None else logits * scale[1] + scale[0]


class HfclfModelMixin:
    """What every hfclf model class shares on top of `PreTrainedModel`.

    - `save_pretrained` writes every Auto class of the model family into `auto_map`, whichever class of it is
      saved: `register_for_auto_class` alone records only the saved class, so a folder saved from the classifier
      could not be opened with `AutoModel` by users without hfclf.
    - `accepts_loss_kwargs = False`: `forward` takes `**kwargs` but computes a plain mean loss, so `Trainer` must
      not pass `num_items_in_batch` nor rescale the loss by the number of processes.
    """

    accepts_loss_kwargs = False
    _auto_map_classes: dict = {}

    def save_pretrained(self, save_directory, *args, **kwargs):
        module = type(self).__module__.rsplit(".", 1)[-1]
        config_module = type(self.config).__module__.rsplit(".", 1)[-1]
        auto_map = {"AutoConfig": f"{config_module}.{type(self.config).__name__}"}
        auto_map.update({auto: f"{module}.{name}" for auto, name in self._auto_map_classes.items()})
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **auto_map}
        return super().save_pretrained(save_directory, *args, **kwargs)
