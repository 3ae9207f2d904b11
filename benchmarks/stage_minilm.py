#!/usr/bin/env python
"""Rebuild a MiniLM folder from the fp16 copy that travels to a GPU machine (its transfer limit is 64 MiB; the
fp32 weights are 91 MB). The copy may be xz-compressed (`model_fp16.safetensors.xz`, 41 MB instead of 45). Floating
tensors go back to fp32; the fp16 rounding is the only difference from the embedded all-MiniLM-L6-v2.

    python benchmarks/stage_minilm.py .bench/model /tmp/minilm
"""

import argparse
import lzma
import shutil
from pathlib import Path

from safetensors.torch import load, save_file

FP16_FILE = "model_fp16.safetensors"


def main(source: str, target: str) -> None:
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if not path.name.startswith(FP16_FILE):
            shutil.copy(path, target / path.name)
    packed = source / f"{FP16_FILE}.xz"
    data = lzma.decompress(packed.read_bytes()) if packed.exists() else (source / FP16_FILE).read_bytes()
    weights = {k: v.float() for k, v in load(data).items() if k != "embeddings.position_ids"}
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the folder with the fp16 copy (e.g. .bench/model)")
    parser.add_argument("target", help="the MiniLM folder to write")
    args = parser.parse_args()
    main(args.source, args.target)
