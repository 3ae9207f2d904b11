import os
from pathlib import Path

import pytest


@pytest.fixture
def data_dir() -> Path:
    """The benchmark data folder from $HFCLF_DATA_DIR: skipped locally when absent, a failure in CI."""
    value = os.environ.get("HFCLF_DATA_DIR")
    if value and Path(value).is_dir():
        return Path(value)
    message = f"no benchmark data: set HFCLF_DATA_DIR=.../shared/data (got {value!r})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def _datasets_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf_datasets_cache")


@pytest.fixture(autouse=True)
def _offline(monkeypatch, _datasets_cache):
    """Tests never reach the Hub, on any machine, and cache tokenized data in a temporary folder."""
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(_datasets_cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", _datasets_cache)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT with the embedded MiniLM's tokenizer: a stand-in for a pretrained encoder."""
    from tiny_models import save_tiny_encoder

    return save_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"))


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> dict[str, Path]:
    """Small csv splits of an easy two-class sentiment task (train 64, validation 25, test 20)."""
    from tiny_models import write_toy_sentiment

    return write_toy_sentiment(tmp_path_factory.mktemp("toy_data"))


@pytest.fixture(scope="session")
def minilm_tokenizer():
    """The embedded MiniLM's (bert-base-uncased) fast tokenizer."""
    from transformers import AutoTokenizer

    from hfclf.architectures import embedded_model_path

    return AutoTokenizer.from_pretrained(embedded_model_path())
