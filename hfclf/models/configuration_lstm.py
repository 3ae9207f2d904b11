"""Configuration of the LSTM text classifier."""

from transformers import PreTrainedConfig

LSTM_POOLINGS = ("last", "mean", "max", "attention")


class LSTMConfig(PreTrainedConfig):
    r"""
    Configuration for [`LSTMModel`] and [`LSTMForSequenceClassification`].

    Args:
        vocab_size (`int`, *optional*, defaults to 30522):
            Size of the vocabulary (the default matches bert-base-uncased and the embedded MiniLM tokenizer).
        embedding_dim (`int`, *optional*, defaults to 300):
            Width of the word vectors.
        hidden_size (`int`, *optional*, defaults to 256):
            Hidden size of each LSTM direction.
        num_layers (`int`, *optional*, defaults to 1):
            Number of stacked LSTM layers.
        bidirectional (`bool`, *optional*, defaults to `True`):
            Run a second LSTM right to left and concatenate both directions.
        dropout (`float`, *optional*, defaults to 0.3):
            Dropout on the word vectors, between LSTM layers and on the pooled vector.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token. Its embedding gets no gradient: zero when trained from scratch, the source's
            padding vector with pretrained word vectors. Padded positions never reach the pooled vector.
        pooling (`str`, *optional*, defaults to `"last"`):
            `"last"` (final state of each direction at the last real token), `"mean"`, `"max"` or `"attention"`
            over the LSTM outputs of real tokens.
        attention_hidden_size (`int`, *optional*, defaults to 128):
            Hidden size of the attention pooling's scoring MLP.
        freeze_embeddings (`bool`, *optional*, defaults to `False`):
            Keep the word vectors fixed during training (useful with pretrained vectors).
        class_weights (`list[float]`, *optional*):
            Per-class loss weights for imbalanced data.
    """

    model_type = "hfclf_lstm"

    vocab_size: int = 30522
    embedding_dim: int = 300
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float | int = 0.3
    pad_token_id: int | None = 0
    pooling: str = "last"
    attention_hidden_size: int = 128
    freeze_embeddings: bool = False
    initializer_range: float = 0.02
    class_weights: list[float | int] | None = None

    def __post_init__(self, **kwargs):
        if self.pooling not in LSTM_POOLINGS:
            raise ValueError(f"Unknown pooling '{self.pooling}'; choose one of: {', '.join(LSTM_POOLINGS)}.")
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {self.num_layers}.")
        super().__post_init__(**kwargs)

    @property
    def output_size(self) -> int:
        """Width of the LSTM outputs and of the pooled vector."""
        return self.hidden_size * (2 if self.bidirectional else 1)


__all__ = ["LSTMConfig", "LSTM_POOLINGS"]
