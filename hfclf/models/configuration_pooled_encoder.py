"""Configuration of a pretrained encoder (BERT or any `AutoModel` encoder) with a pooling classification head."""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

POOLED_ENCODER_POOLINGS = ("cls", "mean", "max", "attention", "cls_mean")


class PooledEncoderConfig(PreTrainedConfig):
    r"""
    Configuration for [`PooledEncoderModel`] and [`PooledEncoderForSequenceClassification`].

    Args:
        encoder_config (`PreTrainedConfig` or `dict`, *optional*):
            Config of the encoder, any model type `AutoModel` knows (BERT by default).
        pooling (`str`, *optional*, defaults to `"cls"`):
            How token vectors become one sentence vector: `"cls"` (first token), `"mean"` and `"max"` (over real
            tokens), `"attention"` (learned additive attention) or `"cls_mean"` (first token and mean, concatenated).
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout applied to the pooled vector before the classifier.
        attention_hidden_size (`int`, *optional*, defaults to 128):
            Hidden size of the Linear-Tanh-Linear scoring MLP of attention pooling.
        class_weights (`list[float]`, *optional*):
            Per-class loss weights for imbalanced data (cross-entropy weights, or BCE positive weights).

    Example:

    ```python
    >>> from transformers import BertConfig
    >>> from hfclf import PooledEncoderConfig, PooledEncoderForSequenceClassification

    >>> config = PooledEncoderConfig(encoder_config=BertConfig(), pooling="attention", num_labels=4)
    >>> model = PooledEncoderForSequenceClassification(config)
    ```"""

    model_type = "hfclf_pooled_encoder"
    sub_configs_defaults = {"encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder_config: PreTrainedConfig | dict | None = None
    pooling: str = "cls"
    classifier_dropout: float | int = 0.1
    attention_hidden_size: int = 128
    class_weights: list[float | int] | None = None

    def __post_init__(self, **kwargs):
        if self.pooling not in POOLED_ENCODER_POOLINGS:
            raise ValueError(f"Unknown pooling '{self.pooling}'; choose one of: {', '.join(POOLED_ENCODER_POOLINGS)}.")
        super().__post_init__(**kwargs)

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        """The encoder's config: it holds the vocabulary (so `resize_token_embeddings` updates the right
        `vocab_size`) and the initializer range."""
        return self.encoder_config

    @property
    def hidden_size(self) -> int:
        """Width of the encoder's token vectors."""
        return self.encoder_config.hidden_size

    @property
    def pooled_size(self) -> int:
        """Width of the pooled sentence vector."""
        return 2 * self.hidden_size if self.pooling == "cls_mean" else self.hidden_size


__all__ = ["PooledEncoderConfig", "POOLED_ENCODER_POOLINGS"]
