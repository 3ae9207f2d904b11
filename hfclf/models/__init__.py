"""hfclf's model families, each a config + base model + sequence classifier, registered with the Auto classes."""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .configuration_lstm import LSTM_POOLINGS, LSTMConfig
from .configuration_pooled_encoder import POOLED_ENCODER_POOLINGS, PooledEncoderConfig
from .configuration_tiny_transformer import TINY_TRANSFORMER_POOLINGS, TinyTransformerConfig
from .modeling_lstm import LSTMForSequenceClassification, LSTMModel
from .modeling_pooled_encoder import PooledEncoderForSequenceClassification, PooledEncoderModel
from .modeling_tiny_transformer import TinyTransformerForSequenceClassification, TinyTransformerModel

MODEL_FAMILIES = (
    (PooledEncoderConfig, PooledEncoderModel, PooledEncoderForSequenceClassification),
    (LSTMConfig, LSTMModel, LSTMForSequenceClassification),
    (TinyTransformerConfig, TinyTransformerModel, TinyTransformerForSequenceClassification),
)


def register_auto_classes():
    """Make the Auto classes know every hfclf model, and make saved folders carry their code (`auto_map`)."""
    for config_class, model_class, classifier_class in MODEL_FAMILIES:
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        AutoModelForSequenceClassification.register(config_class, classifier_class, exist_ok=True)
        config_class.register_for_auto_class()
        model_class.register_for_auto_class("AutoModel")
        classifier_class.register_for_auto_class("AutoModelForSequenceClassification")


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
    "MODEL_FAMILIES",
    "register_auto_classes",
]

register_auto_classes()
