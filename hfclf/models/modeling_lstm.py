"""An (optionally bidirectional, stacked) LSTM text classifier over packed sequences."""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_lstm import LSTMConfig
from .modeling_heads import AttentionPooling, HfclfModelMixin, classification_loss, masked_max, masked_mean


class LSTMPreTrainedModel(HfclfModelMixin, PreTrainedModel):
    config: LSTMConfig
    config_class = LSTMConfig
    base_model_prefix = "model"
    _auto_map_classes = {
        "AutoModel": "LSTMModel",
        "AutoModelForSequenceClassification": "LSTMForSequenceClassification",
    }

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        model = super().from_pretrained(*args, **kwargs)
        # Loaded weights can sit at unaligned offsets of the checkpoint's memory map, where the CPU LSTM kernels
        # round differently; fresh copies make a reloaded model give bit-identical logits.
        with torch.no_grad():
            for param in model.parameters():
                param.data = param.data.clone()
        # Loading also replaces the parameters' flags, so re-apply the freeze that __init__ set.
        model.get_input_embeddings().weight.requires_grad_(not model.config.freeze_embeddings)
        return model

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


class LSTMModel(LSTMPreTrainedModel):
    """Embeddings and LSTM; returns the per-token outputs and the pooled vector (`pooler_output`)."""

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.embeddings.weight.requires_grad = not config.freeze_embeddings
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            input_size=config.embedding_dim,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
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

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        if inputs_embeds is None:
            inputs_embeds = self.embeddings(input_ids)
        batch_size, seq_len = inputs_embeds.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long, device=inputs_embeds.device)

        # Packing makes the LSTM stop at each sequence's last real token, so padding never enters the states.
        # Lengths assume right padding, as produced by the tokenizers and DataCollatorWithPadding.
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(
            self.embedding_dropout(inputs_embeds), lengths, batch_first=True, enforce_sorted=False
        )
        packed_outputs, (h_n, _) = self.lstm(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=seq_len)

        pooling = self.config.pooling
        if pooling == "last":
            # h_n is (layers * directions, batch, hidden); the last layer's forward and backward final states
            pooled = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.config.bidirectional else h_n[-1]
        elif pooling == "mean":
            pooled = masked_mean(outputs, attention_mask)
        elif pooling == "max":
            pooled = masked_max(outputs, attention_mask)
        else:
            pooled = self.attention_pooling(outputs, attention_mask)

        return BaseModelOutputWithPooling(
            last_hidden_state=outputs,
            pooler_output=pooled,
            hidden_states=(inputs_embeds, outputs) if output_hidden_states else None,
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
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["LSTMPreTrainedModel", "LSTMModel", "LSTMForSequenceClassification"]
