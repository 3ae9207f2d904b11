#!/usr/bin/env python
"""5-fold cross-validation of pooling heads on the 7,600-row AG News test file (the 120k train split is not
available offline). Each fold trains on 4/5 of the rows (10% of those held out for best-epoch selection) and tests
on the remaining 1/5; the script reports mean and standard deviation of test accuracy per pooling.

    python benchmarks/ag_news_cv.py --data_dir ../shared/data --out reports/ag_news_cv [finetune flags ...]

Extra flags go to every fine-tuning run (e.g. --model, --bf16 true, --num_train_epochs 4). Finished runs are
skipped, so an interrupted cross-validation resumes, and processes given different --poolings can share one GPU.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from hfclf.commands.finetune import main as finetune
from hfclf.run_folder import RunResults

LABELS = ["World", "Sports", "Business", "Sci/Tech"]


def write_folds(data_dir: Path, out: Path, folds: int, seed: int) -> list[dict]:
    frame = pd.read_csv(data_dir / "ag_news" / "test.csv.gz", header=None, names=["label", "title", "description"])
    frame = pd.DataFrame({"text": frame["title"] + " " + frame["description"], "label": frame["label"] - 1})
    frame["label"] = [LABELS[i] for i in frame["label"]]
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(frame, frame["label"])
    paths = []
    for k, (train_index, test_index) in enumerate(splits):
        fold_dir = out / "folds" / str(k)
        fold_dir.mkdir(parents=True, exist_ok=True)
        for split, index in (("train", train_index), ("test", test_index)):
            # write-then-rename, so that runs started in parallel (one per --poolings) never read a half-written file
            partial = fold_dir / f"{split}.csv.{os.getpid()}"
            frame.iloc[index].to_csv(partial, index=False)
            os.replace(partial, fold_dir / f"{split}.csv")
        paths.append({"train": fold_dir / "train.csv", "test": fold_dir / "test.csv"})
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--out", default="reports/ag_news_cv")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--poolings", default="cls,mean,max,attention")
    parser.add_argument("--seed", type=int, default=42)
    args, extra = parser.parse_known_args()
    out = Path(args.out)
    folds = write_folds(Path(args.data_dir), out, args.folds, args.seed)
    poolings = args.poolings.split(",")

    accuracy = {pooling: [] for pooling in poolings}
    for k, fold in enumerate(folds):
        for pooling in poolings:
            run_dir = out / "runs" / f"fold{k}-{pooling}"
            if RunResults.load(run_dir) is None:
                argv = [
                    "--train_file",
                    str(fold["train"]),
                    "--test_file",
                    str(fold["test"]),
                    "--pooling",
                    pooling,
                    "--max_length",
                    "50",
                    "--seed",
                    str(args.seed),
                    "--output_dir",
                    str(run_dir),
                    "--overwrite_output_dir",
                    "true",
                    *extra,
                ]
                if finetune(argv) != 0:
                    return 1
            accuracy[pooling].append(RunResults.load(run_dir).metric("accuracy", "test"))

    summary = {
        pooling: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)), "folds": v}
        for pooling, v in accuracy.items()
    }
    lines = [f"| pooling | mean test accuracy | std ({len(folds)} folds) | per fold |", "|---|---|---|---|"]
    for pooling, s in summary.items():
        per_fold = ", ".join(f"{100 * a:.2f}" for a in s["folds"])
        lines.append(f"| {pooling} | {100 * s['mean']:.2f} | {100 * s['std']:.2f} | {per_fold} |")
    table = "\n".join(lines)
    command = " ".join(["python", *sys.argv])
    note = "Runs this command skipped keep the command that trained them in runs/<fold>-<pooling>/results.json."
    (out / "results.md").write_text(f"Command: `{command}`\n\n{note}\n\n{table}\n")
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
