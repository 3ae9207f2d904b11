"""A small Transformer encoder classifier trained from scratch ("Attention Is All You Need", encoder side)."""

import math

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_tiny_transformer import TinyTransformerConfig
from .modeling_heads import HfclfModelMixin, classification_loss, head_logits, pool, unscale_regression


def sinusoidal_table(num_positions: int, d_model: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    position = torch.arange(num_positions, dtype=torch.float32).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(num_positions, d_model)
    table[:, 0::2] = torch.sin(position * frequencies)
    table[:, 1::2] = torch.cos(position * frequencies[: d_model // 2])
    return table


class TinyTransformerEmbeddings(nn.Module):
    """Token embeddings scaled by sqrt(d_model) plus fixed sinusoidal positions."""

    def __init__(self, config: TinyTransformerConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.register_buffer(
            "position_table", sinusoidal_table(config.max_position_embeddings, config.d_model), persistent=False
        )
        self.scale = math.sqrt(config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        seq_len = inputs_embeds.shape[1]
        if seq_len > self.position_table.shape[0]:
            raise ValueError(
                f"Sequence length {seq_len} exceeds max_position_embeddings={self.position_table.shape[0]}; "
                "truncate inputs (max_length) or raise max_position_embeddings."
            )
        return self.dropout(inputs_embeds * self.scale + self.position_table[:seq_len])


class TinyTransformerSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention; padded keys are masked out."""

    def __init__(self, config: TinyTransformerConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.d_model // config.num_attention_heads
        self.query = nn.Linear(config.d_model, config.d_model)
        self.key = nn.Linear(config.d_model, config.d_model)
        self.value = nn.Linear(config.d_model, config.d_model)
        self.output = nn.Linear(config.d_model, config.d_model)
        self.attention_dropout = config.dropout

    def forward(
        self, hidden_states: torch.Tensor, key_padding_mask: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(attention output, attention weights (batch, heads, seq, seq) with `output_attentions`, else None)."""
        batch_size, seq_len, d_model = hidden_states.shape

        def split_heads(x: torch.Tensor) -> torch.Tensor:  # (batch, seq, d_model) -> (batch, heads, seq, head_dim)
            return x.view(batch_size, seq_len, self.num_heads, self.head_dim).transpose(1, 2)

        query = split_heads(self.query(hidden_states))
        key = split_heads(self.key(hidden_states))
        value = split_heads(self.value(hidden_states))
        attend = key_padding_mask[:, None, None, :]  # True = attend: padded keys are disallowed
        dropout = self.attention_dropout if self.training else 0.0
        weights = None
        if output_attentions:  # the same softmax(Q K^T / sqrt(head_dim)) V, spelled out to return the weights
            scores = query @ key.transpose(-1, -2) / math.sqrt(self.head_dim)
            weights = scores.masked_fill(~attend, torch.finfo(scores.dtype).min).softmax(dim=-1)
            context = nn.functional.dropout(weights, dropout, self.training) @ value
        else:
            context = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attend, dropout_p=dropout)
        context = context.transpose(1, 2).reshape(batch_size, seq_len, d_model)
        return self.output(context), weights


class TinyTransformerLayer(GradientCheckpointingLayer):
    """Self-attention and feed-forward sub-layers, each with a residual connection and LayerNorm (post- or pre-LN)."""

    def __init__(self, config: TinyTransformerConfig):
        super().__init__()
        self.pre_layer_norm = config.pre_layer_norm
        self.attention = TinyTransformerSelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.feed_forward = nn.Sequential(
            nn.Linear(config.d_model, config.intermediate_size),
            nn.GELU() if config.hidden_act == "gelu" else nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.intermediate_size, config.d_model),
        )
        self.feed_forward_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, hidden_states: torch.Tensor, key_padding_mask: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pre_layer_norm:
            attended, weights = self.attention(self.attention_norm(hidden_states), key_padding_mask, output_attentions)
            hidden_states = hidden_states + self.dropout(attended)
            return hidden_states + self.dropout(self.feed_forward(self.feed_forward_norm(hidden_states))), weights
        attended, weights = self.attention(hidden_states, key_padding_mask, output_attentions)
        hidden_states = self.attention_norm(hidden_states + self.dropout(attended))
        return self.feed_forward_norm(hidden_states + self.dropout(self.feed_forward(hidden_states))), weights


class TinyTransformerPreTrainedModel(HfclfModelMixin, PreTrainedModel):
    config: TinyTransformerConfig
    config_class = TinyTransformerConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["TinyTransformerLayer"]
    _auto_map_classes = {
        "AutoModel": "TinyTransformerModel",
        "AutoModelForSequenceClassification": "TinyTransformerForSequenceClassification",
    }

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        # The position table is a non-persistent buffer: rebuild it whenever the model is materialized.
        if isinstance(module, TinyTransformerEmbeddings):
            init.copy_(module.position_table, sinusoidal_table(*module.position_table.shape))


class TinyTransformerModel(TinyTransformerPreTrainedModel):
    """Embeddings and encoder layers; returns token vectors and the pooled vector (`pooler_output`)."""

    # loaded from a classifier's folder (sentence-transformers, `AutoModel`), its head is left out, not reported
    _keys_to_ignore_on_load_unexpected = [r"^classifier\."]

    def __init__(self, config: TinyTransformerConfig):
        super().__init__(config)
        self.embeddings = TinyTransformerEmbeddings(config)
        self.layers = nn.ModuleList([TinyTransformerLayer(config) for _ in range(config.num_hidden_layers)])
        # Pre-LN leaves the residual stream unnormalized, so it ends with one more LayerNorm.
        self.final_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.pre_layer_norm else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Module):
        self.embeddings.word_embeddings = value

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        config = self.config
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        hidden_states = self.embeddings(input_ids, inputs_embeds)
        if attention_mask is None:
            attention_mask = torch.ones(hidden_states.shape[:2], dtype=torch.long, device=hidden_states.device)
        key_padding_mask = attention_mask.bool()

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            hidden_states, weights = layer(hidden_states, key_padding_mask, output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)
        if self.final_norm is not None:
            hidden_states = self.final_norm(hidden_states)

        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=pool(config.pooling, hidden_states, attention_mask),
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


class TinyTransformerForSequenceClassification(TinyTransformerPreTrainedModel):
    """Tiny Transformer with dropout and a linear classifier on the pooled vector."""

    def __init__(self, config: TinyTransformerConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = TinyTransformerModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, config.num_labels)
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
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = head_logits(self.classifier, self.dropout(outputs.pooler_output))
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        logits = unscale_regression(logits, self.config)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


__all__ = ["TinyTransformerPreTrainedModel", "TinyTransformerModel", "TinyTransformerForSequenceClassification"]
