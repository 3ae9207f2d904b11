"""Configuration of the small Transformer encoder classifier trained from scratch."""

from transformers import PreTrainedConfig

TINY_TRANSFORMER_POOLINGS = ("mean", "max", "cls")


class TinyTransformerConfig(PreTrainedConfig):
    r"""
    Configuration for [`TinyTransformerModel`] and [`TinyTransformerForSequenceClassification`].

    Args:
        vocab_size (`int`, *optional*, defaults to 30522):
            Size of the vocabulary (the default matches bert-base-uncased and the embedded MiniLM tokenizer).
        d_model (`int`, *optional*, defaults to 256):
            Width of the token vectors.
        num_attention_heads (`int`, *optional*, defaults to 4):
            Attention heads per layer; must divide `d_model`.
        num_hidden_layers (`int`, *optional*, defaults to 4):
            Number of encoder layers.
        intermediate_size (`int`, *optional*, defaults to 1024):
            Width of the feed-forward block.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Feed-forward activation, `"relu"` or `"gelu"`.
        dropout (`float`, *optional*, defaults to 0.1):
            Dropout on embeddings, attention weights, sub-layer outputs and the pooled vector.
        max_position_embeddings (`int`, *optional*, defaults to 512):
            Longest sequence the sinusoidal position table covers.
        pre_layer_norm (`bool`, *optional*, defaults to `False`):
            Pre-LN layers (normalize before each sub-layer, plus a final norm) instead of the original post-LN.
        pooling (`str`, *optional*, defaults to `"mean"`):
            `"mean"` or `"max"` over real tokens, or `"cls"` (first token).
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token.
        class_weights (`list[float]`, *optional*):
            Per-class loss weights for imbalanced data.
    """

    model_type = "hfclf_tiny_transformer"
    attribute_map = {"hidden_size": "d_model", "num_heads": "num_attention_heads"}

    vocab_size: int = 30522
    d_model: int = 256
    num_attention_heads: int = 4
    num_hidden_layers: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    dropout: float | int = 0.1
    max_position_embeddings: int = 512
    pre_layer_norm: bool = False
    pooling: str = "mean"
    pad_token_id: int | None = 0
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    class_weights: list[float | int] | None = None

    def __post_init__(self, **kwargs):
        if self.pooling not in TINY_TRANSFORMER_POOLINGS:
            raise ValueError(
                f"Unknown pooling '{self.pooling}'; choose one of: {', '.join(TINY_TRANSFORMER_POOLINGS)}."
            )
        if self.d_model % self.num_attention_heads != 0:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by num_attention_heads ({self.num_attention_heads})."
            )
        if self.num_hidden_layers < 1:
            raise ValueError(f"num_hidden_layers must be at least 1, got {self.num_hidden_layers}.")
        if self.hidden_act not in ("relu", "gelu"):
            raise ValueError(f"Unknown hidden_act '{self.hidden_act}'; choose relu or gelu.")
        super().__post_init__(**kwargs)


__all__ = ["TinyTransformerConfig", "TINY_TRANSFORMER_POOLINGS"]
