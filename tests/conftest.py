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


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Tests never reach the Hub, on any machine."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


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
