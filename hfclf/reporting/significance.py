"""Whether the differences in a comparison are real.

A comparison's variants fall into *arms*: variants that differ only in their seed form one arm (a variant without
seed repeats is an arm of one). Every pair of arms gets one test of the task's main metric:

- both arms ran two or more seeds: Welch's t-test on the per-seed scores, with its 95% confidence interval for the
  difference of the means. The seed moves a fine-tuned model by about as much as the heads differ, so where seeds
  were repeated they, not the examples, are the unit; Welch's test does not assume the arms vary alike.
- otherwise, per example on one run of each arm (the seed they share, else their first): the exact McNemar test on
  correct/incorrect where the main metric is accuracy, else (multi-label macro-F1, regression Pearson) a seeded paired
  permutation test of the main metric itself (a correlation on each model's predictions put on one scale); the
  confidence interval is a seeded paired percentile bootstrap of the metric difference. The pair is named in the
  order these runs rank it.

Holm's correction runs over all pairs of a report; variants that no significant pair separates form groups.
The tests come from scipy and statsmodels.
"""

import csv
import itertools
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.scoring import LIST_SEPARATOR
from ..data.tasks import LOWER_IS_BETTER, MULTI_LABEL, REGRESSION, Task
from ..run_folder import PREDICTIONS_FILE, RunResults

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 1000
PERMUTATIONS = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


@dataclass
class Arm:
    """Variants that differ only in their seed, with their runs and each run's main metric."""

    name: str
    variants: list[str]
    runs: list[RunResults]
    run_dirs: list[Path]
    scores: list[float] = field(default_factory=list)
    score_range: tuple[float, float] = (-math.inf, math.inf)  # the values the metric can take

    @property
    def seeds(self) -> list:
        return [run.seed for run in self.runs]

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    def interval(self) -> tuple[float, float] | None:
        """95% t confidence interval of the mean over seeds (None with one seed), cut at the values the metric can
        take (with two or three seeds it easily reaches past 100%)."""
        if len(self.scores) < 2:
            return None
        if len(set(self.scores)) == 1:  # every seed scored the same: no spread to estimate
            return self.mean, self.mean
        from scipy import stats

        with warnings.catch_warnings():  # scores that agree to many digits: scipy warns, and computes it right
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = stats.ttest_1samp(self.scores, 0.0).confidence_interval(CONFIDENCE)
        return max(float(low), self.score_range[0]), min(float(high), self.score_range[1])


def arms_of(variants: list[dict], runs: list[RunResults], run_dirs: list[Path], flags_of, task: Task) -> list[Arm]:
    """Group the variants by every flag but the seed (`flags_of(variant)` gives a variant's own flags), in config
    order."""
    groups: dict[str, Arm] = {}
    for variant, run, run_dir in zip(variants, runs, run_dirs):
        settings = {key: value for key, value in flags_of(variant).items() if key != "seed"}
        key = json.dumps(settings, sort_keys=True, default=str)
        arm = groups.setdefault(key, Arm("", [], [], [], score_range=task.main_metric_range))
        arm.variants.append(variant["name"])
        arm.runs.append(run)
        arm.run_dirs.append(run_dir)
        arm.scores.append(run.metric(task.main_metric))
    for arm in groups.values():
        arm.name = arm_name(arm)
    return list(groups.values())


def arm_name(arm: Arm) -> str:
    """An arm's name: its variant's, or the name its seed variants share once their seed part is cut, wherever the
    grid put it (`cls-seed1`, `cls-seed2` -> `cls`; `cls-seed1-maxtrainsamples500`, ... -> `cls-maxtrainsamples500`)."""
    if len(arm.variants) == 1:
        return arm.variants[0]
    stems = {
        "-".join(part for part in name.split("-") if part != f"seed{seed}")
        for name, seed in zip(arm.variants, arm.seeds)
    }
    stem = stems.pop() if len(stems) == 1 else ""
    return stem or " + ".join(arm.variants)


# ------------------------------------------------------------------------------------------- per-example outcomes


@dataclass
class Outcomes:
    """What one run predicted on its reported split, one entry per example (per document with windows)."""

    examples: list  # the texts (and pairs), to check that two runs scored the same examples
    gold: np.ndarray  # class ids, a 0/1 matrix (multi-label) or values
    predicted: np.ndarray


def read_outcomes(run_dir: Path, results: RunResults) -> Outcomes:
    """A run's `predictions.csv` decoded back into class ids, 0/1 label rows or values."""
    with open(Path(run_dir) / PREDICTIONS_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    examples = [(row["text"], row.get("text_pair")) for row in rows]
    gold = decode_cells([row["gold"] for row in rows], results)
    predicted = decode_cells([row["predicted"] for row in rows], results)
    return Outcomes(examples, gold, predicted)


def decode_cells(cells: list[str], results: RunResults) -> np.ndarray:
    """predictions.csv cells (a class name, label names joined, or a value) as arrays."""
    if results.problem_type == REGRESSION:
        return np.asarray(cells, dtype=np.float64)
    index = {name: i for i, name in enumerate(results.label_names)}
    if results.problem_type == MULTI_LABEL:
        rows = np.zeros((len(cells), len(index)), dtype=bool)
        for i, cell in enumerate(cells):
            rows[i, [index[name] for name in cell.split(LIST_SEPARATOR) if name]] = True
        return rows
    return np.asarray([index[cell] for cell in cells], dtype=np.int64)


# --------------------------------------------------------------------------- metrics over many resamples at once


def _f1(tp, fp, fn):
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(np.shape(tp)), where=denominator > 0)


def _pearson(x, y):
    x = x - x.mean(-1, keepdims=True)
    y = y - y.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(-1) / np.sqrt((x * x).sum(-1) * (y * y).sum(-1))


def metric_values(name: str, problem_type: str, gold: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """A report metric over the last example axis (the one before the labels for multi-label), for any leading
    resample axes; the same definitions as hfclf's metric modules (scikit-learn, zero_division=0)."""
    if problem_type == REGRESSION:
        if name == "mae":
            return np.abs(predicted - gold).mean(-1)
        if name == "spearman":
            from scipy.stats import rankdata

            gold, predicted = rankdata(gold, axis=-1), rankdata(predicted, axis=-1)
        return _pearson(predicted, gold)
    if problem_type == MULTI_LABEL:
        tp = (gold & predicted).sum(-2)
        fp = (~gold & predicted).sum(-2)
        fn = (gold & ~predicted).sum(-2)
        if name == "f1_micro":
            return _f1(tp.sum(-1), fp.sum(-1), fn.sum(-1))
        return _f1(tp, fp, fn).mean(-1)  # f1_macro: every label counts
    if name == "accuracy":
        return (gold == predicted).mean(-1)
    # f1_macro over the classes present in the gold or predicted labels of each resample, as scikit-learn
    classes = np.arange(int(max(gold.max(), predicted.max())) + 1)
    is_gold = gold[..., None] == classes
    is_predicted = predicted[..., None] == classes
    tp = (is_gold & is_predicted).sum(-2)
    fp = (~is_gold & is_predicted).sum(-2)
    fn = (is_gold & ~is_predicted).sum(-2)
    present = (tp + fp + fn) > 0
    return (_f1(tp, fp, fn) * present).sum(-1) / present.sum(-1)


# ------------------------------------------------------------------------------------------------------ the tests


@dataclass
class PairTest:
    """One pair of arms: the difference first minus second in the main metric, its interval, and the test."""

    first: str
    second: str
    metric: str
    difference: float
    low: float | None
    high: float | None
    test: str
    p_value: float | None
    units: int  # examples or seeds per arm
    p_holm: float | None = None
    other_metrics: dict = field(default_factory=dict)  # {metric: (difference, low, high)}, per-example tests only

    @property
    def significant(self) -> bool:
        return self.p_holm is not None and self.p_holm < ALPHA


def _batch(outcomes: Outcomes) -> int:
    """Resamples per vectorized call, so that the largest temporary array stays near 10M elements."""
    classes = outcomes.gold.max(initial=0) + 1 if outcomes.gold.ndim == 1 and outcomes.gold.dtype.kind == "i" else 1
    return max(1, 10_000_000 // max(outcomes.gold.size * int(classes), 1))


def paired_bootstrap(name: str, problem_type: str, a: Outcomes, b: Outcomes) -> tuple[float, float, float]:
    """The difference a - b in a metric on the same examples, with a seeded paired percentile bootstrap interval."""
    from scipy.stats import bootstrap

    def difference(indices, axis=-1):
        indices = np.moveaxis(indices, axis, -1)
        return metric_values(name, problem_type, a.gold[indices], a.predicted[indices]) - metric_values(
            name, problem_type, b.gold[indices], b.predicted[indices]
        )

    observed = float(difference(np.arange(len(a.gold))))
    result = bootstrap(
        (np.arange(len(a.gold)),),
        difference,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        batch=_batch(a),
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    interval = result.confidence_interval
    return observed, float(interval.low), float(interval.high)


def paired_permutation_p(name: str, problem_type: str, a: Outcomes, b: Outcomes) -> float:
    """Two-sided p-value of the difference a - b in a metric, by a seeded paired permutation test (approximate
    randomization): each example's two predictions swap sides at random. Exact when 2**n is at most the resamples.

    A correlation ignores the scale of each model's predictions, but a swap would not: two models whose outputs
    differ in spread or offset would swap values of different sizes, and every permuted score would fall, hiding a
    real difference. So each model's predictions are put on one scale first (Spearman: ranks; Pearson: z-scores),
    which leaves its score as it is."""
    from scipy.stats import permutation_test

    n = len(a.gold)
    gold = np.concatenate([a.gold, a.gold])
    stacked = np.concatenate([_one_scale(name, problem_type, o.predicted) for o in (a, b)])  # a's n rows, then b's

    def difference(rows_a, rows_b, axis=-1):
        rows_a, rows_b = np.moveaxis(rows_a, axis, -1), np.moveaxis(rows_b, axis, -1)
        return metric_values(name, problem_type, gold[rows_a], stacked[rows_a]) - metric_values(
            name, problem_type, gold[rows_b], stacked[rows_b]
        )

    result = permutation_test(
        (np.arange(n), np.arange(n) + n),
        difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=PERMUTATIONS,
        alternative="two-sided",
        batch=_batch(a),
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.pvalue)


def _one_scale(name: str, problem_type: str, predicted: np.ndarray) -> np.ndarray:
    """A regression model's predictions transformed so that its correlation stays the same: ranks for Spearman,
    z-scores for Pearson (a constant prediction, which has no correlation, as it is); others unchanged."""
    if problem_type != REGRESSION or name not in ("pearson", "spearman"):
        return predicted
    if name == "spearman":
        from scipy.stats import rankdata

        return rankdata(predicted).astype(np.float64)
    spread = predicted.std()
    return (predicted - predicted.mean()) / spread if spread > 0 else predicted


def per_example_p_value(problem_type: str, main: str, a: Outcomes, b: Outcomes) -> tuple[str, float]:
    """Accuracy: the exact McNemar test on correct/incorrect. Any other main metric (macro-F1 of multi-label,
    Pearson of regression): a paired permutation test of that metric itself."""
    if main != "accuracy":
        return f"paired permutation of {main}", paired_permutation_p(main, problem_type, a, b)
    from statsmodels.stats.contingency_tables import mcnemar

    right_a, right_b = correct(problem_type, a), correct(problem_type, b)
    table = [
        [np.sum(right_a & right_b), np.sum(right_a & ~right_b)],
        [np.sum(~right_a & right_b), np.sum(~right_a & ~right_b)],
    ]
    return "McNemar (exact)", float(mcnemar(table, exact=True).pvalue)


def correct(problem_type: str, outcomes: Outcomes) -> np.ndarray:
    """Which examples a run got right (multi-label: every label right)."""
    if problem_type == MULTI_LABEL:
        return (outcomes.gold == outcomes.predicted).all(-1)
    return outcomes.gold == outcomes.predicted


def shared_runs(first: Arm, second: Arm) -> tuple[int, int]:
    """Which run of each arm a per-example test uses: the lowest seed both ran, else each arm's first run."""
    common = set(first.seeds) & set(second.seeds)
    if not common:
        return 0, 0
    seed = min(common, key=lambda seed: (seed is None, seed or 0))  # results without a seed last
    return first.seeds.index(seed), second.seeds.index(seed)


def compare_pair(first: Arm, second: Arm, task: Task, outcomes: dict) -> PairTest:
    """The test of one pair of arms (see the module's docstring for which); `outcomes` caches per-run outcomes."""
    main = task.main_metric
    if len(first.scores) >= 2 and len(second.scores) >= 2:
        from scipy.stats import ttest_ind

        test = f"Welch t on {len(first.scores)} and {len(second.scores)} seeds"
        units = min(len(first.scores), len(second.scores))
        difference = first.mean - second.mean
        if np.isnan(np.asarray(first.scores + second.scores, dtype=float)).any():
            return PairTest(first.name, second.name, main, difference, None, None,
                            f"{test}: undefined, a run's {main} is NaN", None, units)  # fmt: skip
        if np.var(first.scores) == 0 and np.var(second.scores) == 0:  # the t statistic is undefined
            if difference == 0:
                return PairTest(first.name, second.name, main, 0.0, 0.0, 0.0, f"{test} (all equal)", 1.0, units)
            return PairTest(first.name, second.name, main, difference, None, None,
                            f"{test}: undefined, every seed scored the same", None, units)  # fmt: skip
        with warnings.catch_warnings():  # as in `Arm.interval`
            warnings.simplefilter("ignore", RuntimeWarning)
            result = ttest_ind(first.scores, second.scores, equal_var=False)
        low, high = result.confidence_interval(CONFIDENCE)
        return PairTest(first.name, second.name, main, difference, float(low), float(high), test,
                        float(result.pvalue), units)  # fmt: skip
    i, j = shared_runs(first, second)
    for arm, k in ((first, i), (second, j)):
        if arm.run_dirs[k] not in outcomes:
            outcomes[arm.run_dirs[k]] = read_outcomes(arm.run_dirs[k], arm.runs[k])
    a, b = outcomes[first.run_dirs[i]], outcomes[second.run_dirs[j]]
    same = first.seeds[i] == second.seeds[j]  # the runs' training seeds (not the test's own)
    seeds = f"runs of seed {first.seeds[i]}" if same else f"runs of seeds {first.seeds[i]} vs {second.seeds[j]}"
    if a.examples != b.examples or len(a.gold) < 2:
        why = "the runs scored different examples" if a.examples != b.examples else "fewer than 2 examples"
        return PairTest(first.name, second.name, main, first.mean - second.mean, None, None,
                        f"not paired: {why}", None, 0)  # fmt: skip
    differences = {name: paired_bootstrap(name, task.problem_type, a, b) for name in task.report_metrics}
    test, p_value = per_example_p_value(task.problem_type, main, a, b)
    difference, low, high = differences.pop(main)
    if difference < 0 if task.greater_is_better else difference > 0:  # these runs rank the pair the other way
        first, second = second, first
        difference, low, high = -difference, -high, -low
        differences = {name: (-d, -h, -lo) for name, (d, lo, h) in differences.items()}
    return PairTest(first.name, second.name, main, difference, low, high, f"{test}, {seeds}", p_value, len(a.gold),
                    other_metrics=differences)  # fmt: skip


def holm(tests: list[PairTest]) -> None:
    """Holm's step-down adjustment over every pair with a p-value, in place."""
    from statsmodels.stats.multitest import multipletests

    tested = [test for test in tests if test.p_value is not None]
    if not tested:
        return
    adjusted = multipletests([test.p_value for test in tested], alpha=ALPHA, method="holm")[1]
    for test, p_holm in zip(tested, adjusted):
        test.p_holm = float(p_holm)


def ranked(arms: list[Arm], task: Task) -> list[Arm]:
    """Arms best first by their mean main metric."""
    sign = -1 if task.main_metric not in LOWER_IS_BETTER else 1
    return sorted(arms, key=lambda arm: (np.isnan(arm.mean), sign * arm.mean if not np.isnan(arm.mean) else 0))


def pair_tests(arms: list[Arm], task: Task, stratum=None) -> list[PairTest]:
    """Every pair of arms (the better one first), Holm-adjusted; with `stratum` (arm -> key), only pairs of arms
    with the same key, e.g. trained on as many examples."""
    outcomes = {}
    pairs = itertools.combinations(ranked(arms, task), 2)
    if stratum is not None:
        pairs = [(first, second) for first, second in pairs if stratum(first) == stratum(second)]
    tests = [compare_pair(first, second, task, outcomes) for first, second in pairs]
    holm(tests)
    return tests


def groups(arms: list[Arm], tests: list[PairTest], task: Task) -> list[list[str]]:
    """Runs of arms, best first, inside which no pair differs significantly; each group is as long as it can be and
    none lies inside another (the lines drawn under ranked means)."""
    order = [arm.name for arm in ranked(arms, task)]
    separated = {frozenset((t.first, t.second)) for t in tests if t.significant}
    found = []
    for start in range(len(order)):
        end = start + 1
        while end < len(order) and not any(frozenset((order[k], order[end])) in separated for k in range(start, end)):
            end += 1
        group = order[start:end]
        if not found or not set(group) <= set(found[-1]):
            found.append(group)
    return found
