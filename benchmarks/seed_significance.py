"""Which of the measured differences between variants hold? The seed (and fold) runs already in docs/reports, tested
with the statistics of hfclf's comparison reports (hfclf/reporting/significance.py): Welch's t-test per pair over the
seeds, Holm's correction over the pairs of each question, and the groups that cannot be told apart.

    python benchmarks/seed_significance.py            # prints the sections of docs/RESULTS.md "Which differences hold"

Those runs predate per-example outputs in the report folders, so no per-example (McNemar) test is possible on them.
"""

import argparse
import csv
import json
from pathlib import Path

from scipy.stats import ttest_rel

from hfclf.data.tasks import get_task
from hfclf.reporting.report import significance_section
from hfclf.reporting.significance import Arm, PairTest, groups, holm, pair_tests
from hfclf.run_folder import RunResults

REPORTS = Path(__file__).resolve().parents[1] / "docs" / "reports"


def arm(name: str, scores: list[float], seeds: list) -> Arm:
    runs = [RunResults(arguments={"training": {"seed": seed}}) for seed in seeds]
    return Arm(name, [f"{name}-{seed}" for seed in seeds], runs, [], scores)


def arms_from_csv(report: str, variants: dict[str, str], column: str) -> list[Arm]:
    """One arm per name, from the rows of `report`'s results.csv whose variant starts with its prefix (seed runs
    are named `<prefix>` and `<prefix>-seed<N>`)."""
    with open(REPORTS / report / "results.csv") as f:
        rows = list(csv.DictReader(f))
    found = []
    for name, prefix in variants.items():
        members = [row for row in rows if row["variant"] == prefix or row["variant"].startswith(prefix + "-seed")]
        found.append(arm(name, [float(row[column]) for row in members], [int(row["seed"]) for row in members]))
    return found


def show(title: str, arms: list[Arm]) -> None:
    task = get_task(None)
    print(f"### {title}\n")
    for one in arms:
        low, high = one.interval()
        interval = f"{100 * low:.2f} to {100 * high:.2f}"
        print(f"- {one.name}: {100 * one.mean:.2f}% over {len(one.scores)} ({interval}, 95% CI)")
    print()
    tests = pair_tests(arms, task)
    section = significance_section(tests, [("", groups(arms, tests, task))], task)
    print("\n".join(section[2:-2]))  # heading and notes left out
    print()


def paired_over_folds(arms: list[Arm]) -> None:
    """The same pairs with the folds paired (each fold's test rows are the same for every head): paired t-test,
    Holm over the pairs. Fold scores share training rows, so these p-values are optimistic (Nadeau and Bengio)."""
    task = get_task(None)
    ordered = sorted(arms, key=lambda one: one.mean, reverse=True)
    tests = []
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 :]:
            result = ttest_rel(first.scores, second.scores)
            low, high = result.confidence_interval(0.95)
            tests.append(PairTest(first.name, second.name, "accuracy", first.mean - second.mean, low, high,
                                  "paired t over folds", float(result.pvalue), len(first.scores)))  # fmt: skip
    holm(tests)
    print("Folds paired instead (paired t-test):\n")
    print("\n".join(significance_section(tests, [("", groups(arms, tests, task))], task)[4 : 4 + len(tests)]))
    print()


def main() -> None:
    heads = {head: f"{head}-learningrate1e-4-decay0.8" for head in ("cls", "mean", "max", "attention")}
    for column, split in (("accuracy", "test, 1,821 sentences"), ("eval_accuracy", "dev, 872 sentences")):
        show(f"SST-2 {split}: the four heads, seeds 42 to 46", arms_from_csv("sst2_pooling_lr", heads, column))

    folds = json.loads((REPORTS / "ag_news_cv" / "results.json").read_text())
    arms = [arm(head, folds[head]["folds"], list(range(len(folds[head]["folds"])))) for head in folds]
    show("AG News: the four heads, 5 folds of the 7,600-row file", arms)
    paired_over_folds(arms)

    imdb = [
        *arms_from_csv("imdb_lstm", {"bi-LSTM (max)": "bilstm-max"}, "accuracy"),
        *arms_from_csv("imdb_tiny_transformer", {"tiny Transformer (pre-LN, small)": "pre-ln-small"}, "accuracy"),
    ]
    show("IMDB test (25,000 reviews): LSTM vs tiny Transformer, seeds 42 to 44", imdb)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
