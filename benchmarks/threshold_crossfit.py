"""An unbiased estimate of a multi-label run's macro-F1 with tuned thresholds, when the thresholds were tuned on the
same split that is reported (GoEmotions: its test split is held back, so dev serves both).

The run's predictions.csv holds every label's probability on that split. This script splits it in two halves, tunes
the thresholds on one half with hfclf's own tuner, scores the other half, and the reverse, over 5 seeded random
splits; it prints the mean and standard deviation next to the fixed-0.5 and the tuned-on-everything scores.

Usage: python benchmarks/threshold_crossfit.py RUN_DIR
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from hfclf.data.scoring import LIST_SEPARATOR, tune_thresholds


def main(run_dir: Path) -> None:
    predictions = pd.read_csv(run_dir / "predictions.csv", keep_default_na=False)
    names = [column.removeprefix("prob_") for column in predictions.columns if column.startswith("prob_")]
    probabilities = predictions[[f"prob_{name}" for name in names]].to_numpy()
    gold = np.zeros(probabilities.shape, dtype=int)
    for i, cell in enumerate(predictions["gold"]):
        for name in filter(None, cell.split(LIST_SEPARATOR)):
            gold[i, names.index(name)] = 1
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    logits = np.log(clipped / (1 - clipped))
    saved = json.loads((run_dir / "config.json").read_text()).get("thresholds")

    def macro_f1(rows, thresholds) -> float:
        return f1_score(gold[rows], probabilities[rows] >= np.asarray(thresholds), average="macro", zero_division=0)

    every = np.arange(len(gold))
    print(f"{run_dir}: {len(gold):,} examples, {len(names)} labels")
    print(f"macro-F1 at 0.5: {macro_f1(every, 0.5):.4f}")
    if saved is not None:
        print(f"macro-F1 at the run's thresholds (tuned on these same examples): {macro_f1(every, saved):.4f}")
    rng = np.random.default_rng(0)
    for per_label in (False, True):
        scores = []
        for _ in range(5):
            order = rng.permutation(len(gold))
            halves = (order[: len(order) // 2], order[len(order) // 2 :])
            for tune, score in (halves, halves[::-1]):
                scores.append(macro_f1(score, tune_thresholds(logits[tune], gold[tune], per_label=per_label)))
        kind = "per-label thresholds" if per_label else "one threshold"
        print(f"macro-F1, {kind} tuned on the other half: {np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a multi-label run folder (its predictions.csv)")
    main(parser.parse_args().run_dir)
