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
