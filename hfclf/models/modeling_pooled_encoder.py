"""A pretrained encoder (BERT or any `AutoModel` encoder) with CLS, mean, max, attention or CLS+mean pooling."""

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_pooled_encoder import PooledEncoderConfig
from .modeling_heads import (
    AttentionPooling,
    HfclfModelMixin,
    classification_loss,
    head_logits,
    pool,
    unscale_regression,
)


class PooledEncoderPreTrainedModel(HfclfModelMixin, PreTrainedModel):
    config: PooledEncoderConfig
    config_class = PooledEncoderConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _auto_map_classes = {
        "AutoModel": "PooledEncoderModel",
        "AutoModelForSequenceClassification": "PooledEncoderForSequenceClassification",
    }

    @classmethod
    def from_encoder_pretrained(
        cls,
        encoder_name_or_path: str,
        encoder_kwargs: dict | None = None,
        config: PooledEncoderConfig | None = None,
        **config_kwargs,
    ):
        """Pretrained encoder weights (loaded exactly) plus a freshly initialized pooling head and classifier.

        `config_kwargs` go to [`PooledEncoderConfig`] (`pooling`, `num_labels`, `id2label`, ...), or pass a whole
        `config` whose `encoder_config` is the encoder's; `encoder_kwargs` go to `AutoModel.from_pretrained`
        (`revision`, `token`, ...). The model is fp32 unless `encoder_kwargs` give a `dtype`, which it then takes whole.
        """
        encoder_kwargs = {"dtype": torch.float32, **(encoder_kwargs or {})}
        encoder = AutoModel.from_pretrained(encoder_name_or_path, **encoder_kwargs)
        model = cls(config or PooledEncoderConfig(encoder_config=encoder.config, **config_kwargs))
        base = model if isinstance(model, PooledEncoderModel) else model.model
        # Copying weights (rather than adopting the loaded module) keeps the attention set-up of a normal build.
        weights = {name: value for name, value in encoder.state_dict().items() if not name.startswith("pooler.")}
        base.encoder.load_state_dict(weights)
        return model.to(encoder.dtype)


class PooledEncoderModel(PooledEncoderPreTrainedModel):
    """The encoder and its pooling: returns token vectors and one pooled vector per sequence (`pooler_output`)."""

    # loaded from a classifier's folder (sentence-transformers, `AutoModel`), its head is left out, not reported
    _keys_to_ignore_on_load_unexpected = [r"^classifier\."]

    def __init__(self, config: PooledEncoderConfig):
        super().__init__(config)
        # In the dtype the whole model is built in (fp32 unless loaded with `dtype=`), not the one an encoder's config
        # may record (a checkpoint saved in bf16): the pooling head and classifier are built in that same dtype.
        self.encoder = AutoModel.from_config(config.encoder_config, dtype=torch.get_default_dtype())
        # The encoder's own pooler (BERT's tanh dense) is never used: dropping it leaves no unused parameters,
        # so DistributedDataParallel needs no `find_unused_parameters`.
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None
        self.attention_pooling = (
            AttentionPooling(config.hidden_size, config.attention_hidden_size)
            if config.pooling == "attention"
            else None
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.encoder.set_input_embeddings(value)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        if attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
            device = input_ids.device if input_ids is not None else inputs_embeds.device
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        # Only pass what was given: not every encoder takes token types or positions (DistilBERT takes neither).
        optional = {"token_type_ids": token_type_ids, "position_ids": position_ids}
        encoder_inputs = {name: value for name, value in optional.items() if value is not None}
        config = self.config
        outputs = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=config.output_hidden_states if output_hidden_states is None else output_hidden_states,
            output_attentions=config.output_attentions if output_attentions is None else output_attentions,
            return_dict=True,
            **encoder_inputs,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=pool(config.pooling, hidden_states, attention_mask, self.attention_pooling),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class PooledEncoderForSequenceClassification(PooledEncoderPreTrainedModel):
    """Pooled encoder with dropout and a linear classifier; the loss follows `config.problem_type`."""

    def __init__(self, config: PooledEncoderConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = PooledEncoderModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.pooled_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.model.set_input_embeddings(value)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
            **kwargs,
        )
        logits = head_logits(self.classifier, self.dropout(outputs.pooler_output))
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        logits = unscale_regression(logits, self.config)

        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


__all__ = ["PooledEncoderPreTrainedModel", "PooledEncoderModel", "PooledEncoderForSequenceClassification"]
