#!/usr/bin/env python
"""Rebuild a MiniLM folder from the fp16 copy that travels to a GPU machine (its transfer limit is 64 MiB; the
fp32 weights are 91 MB). Floating tensors go back to fp32; the fp16 rounding is the only difference from the
embedded all-MiniLM-L6-v2.

    python benchmarks/stage_minilm.py .bench/model /tmp/minilm
"""

import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file


def main(source: str, target: str) -> None:
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.name != "model_fp16.safetensors":
            shutil.copy(path, target / path.name)
    weights = load_file(source / "model_fp16.safetensors")
    weights = {k: v.float() for k, v in weights.items() if k != "embeddings.position_ids"}
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})


if __name__ == "__main__":
    main(*sys.argv[1:3])
