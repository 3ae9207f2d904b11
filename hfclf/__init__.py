"""hfclf: fine-tune and compare text classifiers on the Hugging Face stack."""

__version__ = "0.1.0"

from .models import (  # noqa: E402  (importing registers every model with the Auto classes)
    LSTM_POOLINGS,
    POOLED_ENCODER_POOLINGS,
    TINY_TRANSFORMER_POOLINGS,
    LSTMConfig,
    LSTMForSequenceClassification,
    LSTMModel,
    PooledEncoderConfig,
    PooledEncoderForSequenceClassification,
    PooledEncoderModel,
    TinyTransformerConfig,
    TinyTransformerForSequenceClassification,
    TinyTransformerModel,
)

__all__ = [
    "LSTM_POOLINGS",
    "POOLED_ENCODER_POOLINGS",
    "TINY_TRANSFORMER_POOLINGS",
    "LSTMConfig",
    "LSTMForSequenceClassification",
    "LSTMModel",
    "PooledEncoderConfig",
    "PooledEncoderForSequenceClassification",
    "PooledEncoderModel",
    "TinyTransformerConfig",
    "TinyTransformerForSequenceClassification",
    "TinyTransformerModel",
]
