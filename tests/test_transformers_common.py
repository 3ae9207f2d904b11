"""hfclf's models under transformers' own common model and config tests (`ModelTesterMixin`, `ConfigTester`), the
tests every built-in transformers model passes: one test class per family and pooling head.

The test files come from the installed transformers release's source distribution (see `transformers_common.py`).
Tests that do not apply to an architecture are skipped below, each with its reason.
"""

import os
import unittest

import pytest
from tiny_models import tiny_encoder_config
from transformers import BertConfig, DistilBertConfig, PreTrainedConfig

from hfclf import (
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

try:
    import transformers_common

    common = transformers_common.load("test_modeling_common")
    config_common = transformers_common.load("test_configuration_common")
except (RuntimeError, ImportError) as err:
    if os.environ.get("CI") == "true":  # CI must run them
        raise
    pytest.skip(f"transformers' common tests are not available: {err}", allow_module_level=True)

ModelTesterMixin, ConfigTester = common.ModelTesterMixin, config_common.ConfigTester
ids_tensor, random_attention_mask = common.ids_tensor, common.random_attention_mask

VOCAB_SIZE, HIDDEN_SIZE, NUM_LAYERS, NUM_HEADS = 99, 32, 2, 4


class HfclfModelTester:
    """Tiny configs and inputs for one family and pooling, in the shape transformers' mixins expect."""

    def __init__(self, parent, config_class, config_kwargs, batch_size=13, seq_length=7, num_labels=3):
        self.parent, self.config_class, self.config_kwargs = parent, config_class, config_kwargs
        self.batch_size, self.seq_length, self.num_labels = batch_size, seq_length, num_labels
        self.vocab_size, self.hidden_size = VOCAB_SIZE, HIDDEN_SIZE
        self.num_hidden_layers, self.num_attention_heads = NUM_LAYERS, NUM_HEADS
        self.is_training = True

    def get_config(self):
        return self.config_class(**self.config_kwargs, num_labels=self.num_labels)

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        attention_mask = random_attention_mask([self.batch_size, self.seq_length])
        return self.get_config(), {"input_ids": input_ids, "attention_mask": attention_mask}


def pooled_kwargs(pooling, encoder="bert"):
    encoder_config = tiny_encoder_config(encoder, vocab_size=VOCAB_SIZE)
    if isinstance(encoder_config, BertConfig):
        encoder_config.num_attention_heads = NUM_HEADS
    elif isinstance(encoder_config, DistilBertConfig):
        encoder_config.n_heads = NUM_HEADS
    return {"encoder_config": encoder_config, "pooling": pooling, "attention_hidden_size": 16}


def lstm_kwargs(pooling):
    return {
        "vocab_size": VOCAB_SIZE,
        "embedding_dim": HIDDEN_SIZE,
        "hidden_size": HIDDEN_SIZE // 2,
        "num_layers": NUM_LAYERS,
        "attention_hidden_size": 16,
        "pooling": pooling,
    }


def transformer_kwargs(pooling):
    return {
        "vocab_size": VOCAB_SIZE,
        "d_model": HIDDEN_SIZE,
        "num_attention_heads": NUM_HEADS,
        "num_hidden_layers": NUM_LAYERS,
        "intermediate_size": 37,
        "max_position_embeddings": 64,
        "pooling": pooling,
    }


FAMILIES = {
    "pooled": (PooledEncoderConfig, (PooledEncoderModel, PooledEncoderForSequenceClassification), pooled_kwargs),
    "lstm": (LSTMConfig, (LSTMModel, LSTMForSequenceClassification), lstm_kwargs),
    "transformer": (
        TinyTransformerConfig,
        (TinyTransformerModel, TinyTransformerForSequenceClassification),
        transformer_kwargs,
    ),
}
POOLINGS = {"pooled": POOLED_ENCODER_POOLINGS, "lstm": LSTM_POOLINGS, "transformer": TINY_TRANSFORMER_POOLINGS}


@pytest.fixture(scope="module", autouse=True)
def _known_to_the_auto_name_tables():
    """The mixins find base models and classifiers by class name in transformers' static Auto tables (built-in
    models are listed there; hfclf's are registered at run time), e.g. to give classifiers labels in training
    tests: list hfclf's families there while these tests run."""
    from transformers.models.auto import modeling_auto

    tables = {"MODEL_MAPPING_NAMES": 0, "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": 1}
    for config_class, model_classes, _ in FAMILIES.values():
        for table, index in tables.items():
            getattr(modeling_auto, table)[config_class.model_type] = model_classes[index].__name__
    yield
    for config_class, _, _ in FAMILIES.values():
        for table in tables:
            getattr(modeling_auto, table).pop(config_class.model_type)


class HfclfCommonTests(ModelTesterMixin):
    """The mixin's tests plus the config tests, for the family and pooling a subclass names."""

    family: str
    pooling: str
    config_tester_kwargs: dict = {}

    def setUp(self):
        config_class, _, kwargs = FAMILIES[self.family]
        self.model_tester = HfclfModelTester(self, config_class, kwargs(self.pooling))
        # Sub-configs (the pooled encoder's) stay at their default here, as in transformers' composite-model tests.
        scalars = {key: value for key, value in kwargs(self.pooling).items() if not isinstance(value, PreTrainedConfig)}
        self.config_tester = ConfigTester(self, config_class=config_class, **scalars, **self.config_tester_kwargs)

    def test_config(self):
        self.config_tester.run_common_tests()


def make_test_class(family: str, pooling: str):
    _, model_classes, _ = FAMILIES[family]
    attributes = {
        "family": family,
        "pooling": pooling,
        "all_model_classes": model_classes,
        "__module__": __name__,
        "__qualname__": f"Test{family.title()}{pooling.title().replace('_', '')}",
    }
    attributes.update(SETTINGS.get(family, {}))
    return type(attributes["__qualname__"], (HfclfCommonTests, unittest.TestCase), attributes)


# What does not apply, per family (a reason with every switch).
SETTINGS = {
    # The config nests the encoder's config: hidden size, layers, heads and vocabulary are the encoder's.
    "pooled": {"config_tester_kwargs": {"common_properties": [], "has_text_modality": False}},
    # An LSTM has no attention weights to return, no attention heads and no position embeddings.
    "lstm": {"has_attentions": False, "config_tester_kwargs": {"common_properties": ["hidden_size", "num_layers"]}},
    "transformer": {"config_tester_kwargs": {"common_properties": ["d_model", "num_attention_heads"]}},
}

for family, poolings in POOLINGS.items():
    for pooling in poolings:
        test_class = make_test_class(family, pooling)
        globals()[test_class.__name__] = test_class
del test_class
