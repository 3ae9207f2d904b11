"""An (optionally bidirectional, stacked) LSTM text classifier whose states never see padding."""

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_lstm import LSTMConfig
from .modeling_heads import (
    AttentionPooling,
    HfclfModelMixin,
    classification_loss,
    head_logits,
    pool,
    unscale_regression,
)


class LSTMPreTrainedModel(HfclfModelMixin, PreTrainedModel):
    config: LSTMConfig
    config_class = LSTMConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _auto_map_classes = {
        "AutoModel": "LSTMModel",
        "AutoModelForSequenceClassification": "LSTMForSequenceClassification",
    }

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading info) with output_loading_info
        # Loaded weights can sit at unaligned offsets of the checkpoint's memory map, where CPU LSTM kernels
        # round differently; fresh copies make a reloaded model give bit-identical logits.
        with torch.no_grad():
            for param in model.parameters():
                param.data = param.data.clone()
        # Loading also replaces the parameters' flags, so re-apply the freeze that __init__ set.
        model.get_input_embeddings().weight.requires_grad_(not model.config.freeze_embeddings)
        return loaded

    @classmethod
    def from_pretrained_embeddings(cls, model_name_or_path: str, freeze: bool = False, **config_kwargs):
        """A fresh LSTM whose word vectors are copied from a pretrained model's input embeddings.

        `vocab_size` and `embedding_dim` come from that model (384-d for the embedded MiniLM); use its tokenizer.
        """
        embeddings = AutoModel.from_pretrained(model_name_or_path).get_input_embeddings().weight.detach()
        config = LSTMConfig(
            vocab_size=embeddings.shape[0], embedding_dim=embeddings.shape[1], freeze_embeddings=freeze, **config_kwargs
        )
        model = cls(config)
        with torch.no_grad():
            model.get_input_embeddings().weight.copy_(embeddings)
        return model


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first `lengths[i]` positions of row i of (batch, seq, dim) `x`; padding stays where it is."""
    positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # -1: no fixed length in ONNX export


class LSTMLayer(GradientCheckpointingLayer):
    """One LSTM layer, bidirectional without packing: the backward direction reads each sequence reversed within
    its own length, so with right padding neither direction's states at real tokens ever see a padded position.

    Same results as `pack_padded_sequence` + `nn.LSTM`, but full-batch kernels: on CPU, packed LSTM backward
    passes run about 25 times slower (34 s vs 1.4 s for 32 x 400 tokens, 2 layers, measured on 2 cores).
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool):
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True) if bidirectional else None

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs = run_lstm(self.forward_lstm, hidden_states)
        if self.backward_lstm is None:
            return outputs
        backward = run_lstm(self.backward_lstm, reverse_within_length(hidden_states, lengths))
        return torch.cat([outputs, reverse_within_length(backward, lengths)], dim=-1)


def cpu_lacks_half_lstm(dtype: torch.dtype) -> bool:
    """Whether this CPU has no oneDNN LSTM kernel in `dtype` (bf16 needs AVX512-BF16 or AMX, fp16 AVX512-FP16)."""
    if not torch.backends.mkldnn.is_available():  # a torch without oneDNN runs its own LSTM kernels
        return False
    supported = {
        torch.bfloat16: torch.ops.mkldnn._is_mkldnn_bf16_supported,
        torch.float16: torch.ops.mkldnn._is_mkldnn_fp16_supported,
    }
    return dtype in supported and not supported[dtype]()


def run_lstm(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """The outputs of `lstm` on `x`. Under CPU autocast torch sends an LSTM to oneDNN's kernel in the autocast dtype
    even where the CPU has none ("could not create a primitive descriptor"); there the LSTM runs in fp32."""
    if (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and cpu_lacks_half_lstm(torch.get_autocast_dtype("cpu"))
    ):
        with torch.autocast("cpu", enabled=False):
            return lstm(x.float())[0]
    return lstm(x)[0]


class LSTMModel(LSTMPreTrainedModel):
    """Embeddings and LSTM; returns the per-token outputs and the pooled vector (`pooler_output`)."""

    # loaded from a classifier's folder (sentence-transformers, `AutoModel`), its head is left out, not reported
    _keys_to_ignore_on_load_unexpected = [r"^classifier\."]

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.embeddings.weight.requires_grad = not config.freeze_embeddings
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            [
                LSTMLayer(
                    config.embedding_dim if i == 0 else config.output_size, config.hidden_size, config.bidirectional
                )
                for i in range(config.num_layers)
            ]
        )
        self.layer_dropout = nn.Dropout(config.dropout)
        self.attention_pooling = (
            AttentionPooling(config.output_size, config.attention_hidden_size)
            if config.pooling == "attention"
            else None
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Module):
        self.embeddings = value

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if inputs_embeds is None:
            inputs_embeds = self.embeddings(input_ids)
        batch_size, seq_len = inputs_embeds.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long, device=inputs_embeds.device)

        # Right padding (tokenizers, DataCollatorWithPadding): the real tokens of row i are its first lengths[i].
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        outputs = self.embedding_dropout(inputs_embeds)
        all_hidden_states = (inputs_embeds,) if output_hidden_states else None
        for i, layer in enumerate(self.layers):
            if i > 0:
                outputs = self.layer_dropout(outputs)  # between layers, as nn.LSTM(dropout=...) does
            outputs = layer(outputs, lengths)
            if output_hidden_states:
                all_hidden_states += (outputs,)

        if self.config.pooling == "last":
            # forward direction: its state at the last real token; backward direction: at the first token
            hidden = self.config.hidden_size
            last = outputs.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])).squeeze(1)
            pooled = torch.cat([last[:, :hidden], outputs[:, 0, hidden:]], dim=-1)
        else:
            pooled = pool(self.config.pooling, outputs, attention_mask, self.attention_pooling)

        return BaseModelOutputWithPooling(
            last_hidden_state=outputs,
            pooler_output=pooled,
            hidden_states=all_hidden_states,
        )


class LSTMForSequenceClassification(LSTMPreTrainedModel):
    """LSTM with dropout and a linear classifier on the pooled vector; the loss follows `config.problem_type`."""

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = LSTMModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.output_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embeddings

    def set_input_embeddings(self, value: nn.Module):
        self.model.embeddings = value

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = head_logits(self.classifier, self.dropout(outputs.pooler_output))
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        logits = unscale_regression(logits, self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["LSTMPreTrainedModel", "LSTMModel", "LSTMForSequenceClassification"]
