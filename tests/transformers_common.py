"""transformers' own common model and config tests (`ModelTesterMixin`, `ConfigTester`), taken from the source
distribution of the installed transformers release: downloaded once with pip, unpacked into a cache folder, never
copied into this repository.

The source distribution ships `tests/*.py` but not three helper packages those files import (exporters, generation
and test-configuration utilities): small stand-ins for them are written next to the unpacked files. The stand-ins
only switch off what does not apply to hfclf's encoders (`torch.export` and `generate` tests) and give the config
tests a set of non-default common arguments.
"""

import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers

PACKAGE = "transformers_common_tests"

STAND_INS = {
    "exporters/test_export.py": '''
class ExportTesterMixin:
    """Stand-in: the `torch.export` tests of transformers are not part of its source distribution."""
''',
    "generation/test_utils.py": '''
class GenerationTesterMixin:
    """Stand-in: hfclf's encoders do not generate."""
''',
    "utils/test_configuration_utils.py": """
# Common `PreTrainedConfig` arguments, each set to a value other than its default.
config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "tie_word_embeddings": False,
    "chunk_size_feed_forward": 5,
    "architectures": ["BertModel"],
    "finetuning_task": "translation",
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
}
""",
}


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "hfclf" / f"transformers-{transformers.__version__}-tests"


def _download_tests(target: Path) -> None:
    """Unpack `tests/*.py` of the installed release's source distribution into `target/PACKAGE`, with stand-ins."""
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                "--quiet",
                f"transformers=={transformers.__version__}",
                "-d",
                download,
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        archive = next(Path(download).glob("transformers-*.tar.gz"))
        package = Path(tempfile.mkdtemp(dir=target.parent)) / PACKAGE
        package.mkdir()
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if len(parts) == 3 and parts[1] == "tests" and parts[2].endswith(".py") and member.isfile():
                    (package / parts[2]).write_bytes(tar.extractfile(member).read())
        for name, text in STAND_INS.items():
            path = package / name
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "__init__.py").touch()
            path.write_text(text.lstrip())
        (package / "__init__.py").touch()
        package.parent.rename(target)


def load(module: str):
    """Import `module` (e.g. "test_modeling_common") of transformers' tests, downloading them on first use.

    Raises `RuntimeError` with the reason when the source distribution cannot be had (no network, no pip).
    """
    target = cache_dir()
    if not (target / PACKAGE / "test_modeling_common.py").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            _download_tests(target)
        except (subprocess.SubprocessError, OSError, StopIteration) as err:
            detail = getattr(err, "stderr", b"") or b""
            raise RuntimeError(
                f"could not download the transformers {transformers.__version__} source distribution for its common "
                f"model tests ({type(err).__name__}: {detail.decode(errors='replace')[-300:] or err})"
            ) from err
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    return importlib.import_module(f"{PACKAGE}.{module}")
