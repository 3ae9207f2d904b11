"""Time `--tokenizer train`'s vocabulary: a 30,522-token WordPiece vocabulary learnt on the 25,000 IMDB training
reviews, printed with its size and time (docs/PERFORMANCE.md). Run: python benchmarks/wordpiece_vocabulary.py
--data_dir ../shared/data"""

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from hfclf.data.tokenization import train_wordpiece_tokenizer

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--data_dir", default="../shared/data")
args = parser.parse_args()
texts = pd.read_csv(Path(args.data_dir) / "imdb" / "train.csv.gz")["text"].astype(str).tolist()
start = time.perf_counter()
tokenizer = train_wordpiece_tokenizer(texts)
print(f"{len(tokenizer)} tokens from {len(texts):,} reviews in {time.perf_counter() - start:.1f} s", file=sys.stderr)
