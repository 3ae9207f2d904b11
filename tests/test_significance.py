"""The statistics of comparison reports against reference values: published worked examples and hand formulas."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import f1_score

from hfclf.data.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL, get_task
from hfclf.reporting.significance import (
    Arm,
    Outcomes,
    PairTest,
    arms_of,
    compare_pair,
    groups,
    holm,
    metric_values,
    paired_bootstrap,
    per_example_p_value,
)
from hfclf.run_folder import RunResults


def outcomes(gold, predicted) -> Outcomes:
    return Outcomes(list(range(len(gold))), np.asarray(gold), np.asarray(predicted))


def test_exact_mcnemar_matches_the_worked_example():
    # Fagerland, Lydersen and Laake (2013), BMC Medical Research Methodology 13:91, worked example: 1 and 7
    # discordant pairs, exact conditional McNemar p = 2 * (1 + 8) / 2**8 = 0.070 (concordant pairs do not enter).
    gold = np.ones(21, dtype=int)
    a = np.array([1] * 1 + [1] * 1 + [0] * 7 + [0] * 12)
    b = np.array([1] * 1 + [0] * 1 + [1] * 7 + [0] * 12)
    test, p = per_example_p_value(SINGLE_LABEL, "accuracy", outcomes(gold, a), outcomes(gold, b))
    assert test == "McNemar (exact)" and p == pytest.approx(18 / 256)


@pytest.mark.parametrize(
    "problem_type, name", [(REGRESSION, "pearson"), (REGRESSION, "spearman"), (MULTI_LABEL, "f1_macro")]
)
def test_paired_permutation_matches_full_enumeration(problem_type, name):
    """With 8 examples every one of the 2**8 swaps is tried: the p-value is the share of swapped assignments whose
    |difference| reaches the observed one, computed here by hand (a correlation's on each model's predictions put on
    one scale: z-scores, or ranks)."""
    import itertools

    from hfclf.reporting.significance import paired_permutation_p

    rng = np.random.default_rng(3)
    shape = (8, 4) if problem_type == MULTI_LABEL else (8,)
    if problem_type == MULTI_LABEL:
        gold, a, b = (rng.random(shape) < 0.5 for _ in range(3))
    else:
        gold = rng.normal(size=shape)
        a, b = gold + 0.3 * rng.normal(size=shape), gold + rng.normal(size=shape)
        on_one_scale = stats.rankdata if name == "spearman" else stats.zscore
        a, b = on_one_scale(a), on_one_scale(b)
    observed = metric_values(name, problem_type, gold, a) - metric_values(name, problem_type, gold, b)
    reached = 0
    for swaps in itertools.product((False, True), repeat=8):
        mask = np.array(swaps).reshape(-1, *([1] * (a.ndim - 1)))
        x, y = np.where(mask, b, a), np.where(mask, a, b)
        d = metric_values(name, problem_type, gold, x) - metric_values(name, problem_type, gold, y)
        reached += abs(d) >= abs(observed) - 1e-12
    p = paired_permutation_p(name, problem_type, outcomes(gold, a), outcomes(gold, b))
    assert p == pytest.approx(reached / 2**8)
    assert per_example_p_value(problem_type, name, outcomes(gold, a), outcomes(gold, b)) == (
        f"paired permutation of {name}",
        p,
    )


def test_a_correlations_permutation_test_ignores_each_models_scale():
    """Pearson and Spearman do not change when a model's predictions are scaled and shifted, so neither does their
    test. Two models of different spread, the first clearly better (its bootstrap interval excludes 0): swapping raw
    values of different sizes would pull every permuted score down and hide that (p 0.28 here)."""
    from hfclf.reporting.significance import paired_bootstrap, paired_permutation_p

    rng = np.random.default_rng(0)
    gold = rng.normal(size=300)
    a = gold + rng.normal(size=300)
    b = 0.2 * (gold + rng.normal(scale=1.3, size=300)) + 1
    for name in ("pearson", "spearman"):
        p = paired_permutation_p(name, REGRESSION, outcomes(gold, a), outcomes(gold, b))
        assert p == paired_permutation_p(name, REGRESSION, outcomes(gold, 7 * a - 2), outcomes(gold, b / 3))
        _, low, high = paired_bootstrap(name, REGRESSION, outcomes(gold, a), outcomes(gold, b))
        assert (p < 0.05) == (low > 0), name  # the test and the interval tell the same story
        assert p < 0.05 or name == "spearman"  # Spearman's difference is smaller: 0.058 [-0.014, 0.131], p 0.13


def test_holm_matches_the_worked_example():
    # Holm-Bonferroni with p = 0.01, 0.04, 0.03, 0.005 (four hypotheses): adjusted 0.03, 0.06, 0.06, 0.02, so only
    # the first and the last are rejected at 0.05.
    p_values = [0.01, 0.04, 0.03, 0.005]
    tests = [PairTest("a", str(i), "accuracy", 0.0, None, None, "t", p, 1) for i, p in enumerate(p_values)]
    holm(tests)
    assert [t.p_holm for t in tests] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [t.significant for t in tests] == [True, False, False, True]


@pytest.mark.parametrize(
    "problem_type, name",
    [
        (SINGLE_LABEL, "accuracy"),
        (SINGLE_LABEL, "f1_macro"),
        (MULTI_LABEL, "f1_macro"),
        (MULTI_LABEL, "f1_micro"),
        (REGRESSION, "pearson"),
        (REGRESSION, "spearman"),
        (REGRESSION, "mae"),
    ],
)
def test_batched_metrics_match_the_metric_modules(problem_type, name):
    rng = np.random.default_rng(0)
    if problem_type == REGRESSION:
        gold = rng.normal(size=(3, 50))
        predicted = np.round(gold + rng.normal(size=(3, 50)), 1)  # ties, for Spearman
        reference = {"pearson": stats.pearsonr, "spearman": stats.spearmanr}.get(name)
        expected = [reference(p, g)[0] if reference else np.abs(p - g).mean() for g, p in zip(gold, predicted)]
    else:
        shape = (3, 60, 5) if problem_type == MULTI_LABEL else (3, 60)
        draw = (lambda: rng.random(shape) < 0.3) if problem_type == MULTI_LABEL else (lambda: rng.integers(0, 4, shape))
        gold, predicted = draw(), draw()
        predicted[0, predicted[0] == 3] = 2  # a class only the gold labels have in the first resample
        average = name.removeprefix("f1_")
        expected = [
            np.mean(g == p) if name == "accuracy" else f1_score(g, p, average=average, zero_division=0)
            for g, p in zip(gold, predicted)
        ]
    assert metric_values(name, problem_type, gold, predicted) == pytest.approx(expected)


def test_paired_bootstrap_interval_agrees_with_the_normal_approximation():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, 2000)
    a = np.where(rng.random(2000) < 0.85, gold, 1 - gold)
    b = np.where(rng.random(2000) < 0.80, gold, 1 - gold)
    observed, low, high = paired_bootstrap("accuracy", SINGLE_LABEL, outcomes(gold, a), outcomes(gold, b))
    differences = (a == gold).astype(float) - (b == gold)
    half = 1.96 * differences.std(ddof=1) / math.sqrt(len(differences))
    assert observed == pytest.approx(differences.mean())
    assert low == pytest.approx(observed - half, abs=0.004) and high == pytest.approx(observed + half, abs=0.004)
    assert (observed, low, high) == paired_bootstrap("accuracy", SINGLE_LABEL, outcomes(gold, a), outcomes(gold, b))


def arm(name, scores, seeds=None) -> Arm:
    seeds = seeds or list(range(len(scores)))
    runs = [RunResults(test={"test_accuracy": s}, arguments={"training": {"seed": n}}) for s, n in zip(scores, seeds)]
    return Arm(name, [f"{name}-seed{seed}" for seed in seeds], runs, [], list(scores))


def test_a_seed_interval_stays_within_the_metrics_values(tmp_path):
    """Two seeds far apart give a t interval far past 0 and 100%: the reported one is cut there; the test of two arms
    whose scores agree to many digits raises no scipy warning."""
    runs = [
        RunResults(test={"test_accuracy": s}, arguments={"training": {"seed": n}}) for n, s in enumerate((0.2, 0.9))
    ]
    variants = [{"name": f"a-seed{n}", "flags": {"seed": n}} for n in range(2)]
    (wide,) = arms_of(variants, runs, [tmp_path, tmp_path], lambda variant: variant["flags"], get_task(None))
    assert wide.interval() == (0.0, 1.0)
    low, high = stats.ttest_1samp(wide.scores, 0.0).confidence_interval(0.95)
    assert low < 0 and high > 1  # what the t interval alone gives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare_pair(arm("same", [0.4375, 0.4375]), arm("other", [0.5, 0.53125]), get_task(None), {})


def test_an_arm_is_named_without_its_seed_wherever_the_grid_put_it(tmp_path):
    runs = [RunResults(test={"test_accuracy": 0.8}, arguments={"training": {"seed": n}}) for n in (1, 2)]
    variants = [{"name": f"max-seed{n}-maxtrainsamples1000", "flags": {"seed": n}} for n in (1, 2)]
    (grouped,) = arms_of(variants, runs, [tmp_path, tmp_path], lambda variant: variant["flags"], get_task(None))
    assert grouped.name == "max-maxtrainsamples1000"


def test_seed_runs_are_compared_with_welch():
    first, second = arm("mean", [0.91, 0.92, 0.90, 0.93, 0.92]), arm("attention", [0.90, 0.89, 0.91, 0.88, 0.90])
    test = compare_pair(first, second, get_task(None), {})
    # Welch by hand: t = (m1 - m2) / sqrt(s1²/n1 + s2²/n2), Welch-Satterthwaite degrees of freedom
    v1, v2 = np.var(first.scores, ddof=1) / 5, np.var(second.scores, ddof=1) / 5
    t = (np.mean(first.scores) - np.mean(second.scores)) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / 4 + v2**2 / 4)
    assert test.p_value == pytest.approx(2 * stats.t.sf(abs(t), df))
    half = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    assert (test.low, test.high) == pytest.approx((test.difference - half, test.difference + half))
    assert test.test == "Welch t on 5 and 5 seeds" and test.difference == pytest.approx(0.02)


def test_groups_are_the_runs_no_significant_pair_splits():
    arms = [arm(name, [score]) for name, score in (("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6))]
    task = get_task(None)

    def tests(*significant):
        found = []
        for i, x in enumerate("abcd"):
            for y in "abcd"[i + 1 :]:
                p = 0.001 if x + y in significant else 0.5
                found.append(PairTest(x, y, "accuracy", 0.0, None, None, "t", p, 1, p_holm=p))
        return found

    assert groups(arms, tests(), task) == [["a", "b", "c", "d"]]
    assert groups(arms, tests("ac", "ad", "bd"), task) == [["a", "b"], ["b", "c"], ["c", "d"]]
    assert groups(arms, tests("ab", "ac", "ad", "bc", "bd", "cd"), task) == [["a"], ["b"], ["c"], ["d"]]


def test_runs_on_different_examples_are_not_paired(tmp_path):
    task = get_task(None)
    for name, texts in (("x", ["a", "b"]), ("y", ["a", "c"])):
        (tmp_path / name).mkdir()
        rows = "".join(f"{t},pos,pos,0.9,0.1\n" for t in texts)
        (tmp_path / name / "predictions.csv").write_text("text,gold,predicted,prob_pos,prob_neg\n" + rows)
    first, second = arm("x", [1.0]), arm("y", [1.0])
    for one in (first, second):
        one.run_dirs = [tmp_path / one.name]
        one.runs[0].label_names = ["pos", "neg"]
    test = compare_pair(first, second, task, {})
    assert test.p_value is None and test.test == "not paired: the runs scored different examples"


def fake_run(folder, gold, predicted, seed, pooling, train_size=100) -> RunResults:
    """A finished run folder with just what a report reads: results.json and predictions.csv."""
    import csv

    from sklearn.metrics import accuracy_score

    names = ["neg", "pos"]
    folder.mkdir(parents=True)
    with open(folder / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "gold", "predicted"])
        writer.writerows([f"review {i}", names[g], names[p]] for i, (g, p) in enumerate(zip(gold, predicted)))
    accuracy, f1 = accuracy_score(gold, predicted), f1_score(gold, predicted, average="macro")
    run = RunResults(
        train={"train_runtime": 60.0},
        eval={"eval_accuracy": accuracy},
        test={"test_accuracy": accuracy, "test_f1_macro": f1},
        label_names=names,
        arguments={
            "model": {"arch": "pooled", "pooling": pooling},
            "data": {"dataset": "toy"},
            "training": {"seed": seed},
        },  # noqa: E501
        data_sizes={"train": train_size, "test": len(gold)},
    )
    run.save(folder)
    return run


def test_report_answers_which_differences_are_real(tmp_path):
    """Three heads on 1,000 shared examples (90%, 88% and 80% right) and a seed-repeated pair: the report's table,
    lines and groups say which differences hold."""
    from hfclf.reporting.report import write_report

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 1000)
    base = rng.random(1000)
    variants, runs = [], []
    for name, share in (("cls", 0.88), ("mean", 0.90), ("max", 0.80)):
        predicted = np.where(base < share, gold, 1 - gold)  # nested: whatever max gets right, mean does too
        variants.append({"name": name, "flags": {"pooling": name}})
        runs.append(fake_run(tmp_path / "runs" / name, gold, predicted, 1, name))
    write_report({"name": "heads"}, variants, runs, tmp_path, "hfclf compare heads.yaml", [])
    readme = (tmp_path / "README.md").read_text()
    # nested outcomes: only one side of each pair has discordant examples, so exact McNemar p = 2 * 0.5**n
    only_mean = {other: int(np.sum((base >= share) & (base < 0.90))) for other, share in (("max", 0.80), ("cls", 0.88))}
    assert f"- mean vs max: +{only_mean['max'] / 10:.2f} points [" in readme
    assert f"p = {2 * 0.5 ** only_mean['max']:.2g}" in readme
    # the largest of the three p-values: Holm leaves it as it is
    assert f"- mean vs cls: +{only_mean['cls'] / 10:.2f} points [" in readme
    p_value = 2 * 0.5 ** only_mean["cls"]
    assert f"p = {p_value:.2g} (Holm: {p_value:.2g}), significant" in readme
    assert "best first: a: mean; b: cls; c: max." in readme
    assert "## Cost" not in readme and not (tmp_path / "cost_accuracy.png").exists()  # the runs measured none
    assert readme == (tmp_path / "README.md").read_text()  # seeded: the same report when written again
    write_report({"name": "heads"}, variants, runs, tmp_path, "hfclf compare heads.yaml", [])
    assert (tmp_path / "README.md").read_text() == readme

    # seeds repeated: the seed runs decide, with Welch's test
    seeded = tmp_path / "seeded"
    variants, runs = [], []
    for name, shares in (("mean", (0.90, 0.89, 0.91)), ("cls", (0.88, 0.90, 0.89))):
        for seed, share in enumerate(shares, start=1):
            predicted = np.where(base < share, gold, 1 - gold)
            variants.append({"name": f"{name}-seed{seed}", "flags": {"pooling": name, "seed": seed}})
            runs.append(fake_run(seeded / "runs" / f"{name}-seed{seed}", gold, predicted, seed, name))
    write_report({"name": "seeds"}, variants, runs, seeded, "hfclf compare seeds.yaml", [])
    readme = (seeded / "README.md").read_text()
    scores = {"mean": [r.metric("accuracy") for r in runs[:3]], "cls": [r.metric("accuracy") for r in runs[3:]]}
    welch = stats.ttest_ind(scores["mean"], scores["cls"], equal_var=False)
    difference = 100 * (np.mean(scores["mean"]) - np.mean(scores["cls"]))
    assert f"- mean vs cls: +{difference:.2f} points [" in readme and f"p = {welch.pvalue:.2g}" in readme
    assert "Welch t on 3 and 3 seeds" in readme and "not significant" in readme
    assert "best first: a: mean, cls." in readme and "## Run-to-run spread" in readme
    assert "a bound at the edge says only that the seeds were too few to place it" in readme


def test_data_size_curves(tmp_path):
    """A grid over max_train_samples with seeds: one curve per head, mean ± std per size, the size each head needs
    to reach the targets, tests only between heads trained on as many examples."""
    from hfclf.reporting.report import write_report

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 1000)
    base = rng.random(1000)
    shares = {("mean", 500): (0.80, 0.82), ("mean", 2000): (0.86, 0.88), ("cls", 500): (0.70, 0.72),
              ("cls", 2000): (0.84, 0.86)}  # fmt: skip
    variants, runs = [], []
    for (head, size), pair in shares.items():
        for seed, share in zip((1, 2), pair):
            name = f"{head}-maxtrainsamples{size}-seed{seed}"
            variants.append({"name": name, "flags": {"pooling": head, "max_train_samples": size, "seed": seed}})
            predicted = np.where(base < share, gold, 1 - gold)
            runs.append(fake_run(tmp_path / "runs" / name, gold, predicted, seed, head, train_size=size))
    config = {"name": "curve", "targets": [0.75, 0.85]}
    write_report(config, variants, runs, tmp_path, "hfclf compare curve.yaml", [])
    readme = (tmp_path / "README.md").read_text()
    assert "## Data-size curves" in readme and (tmp_path / "learning_curves.png").is_file()
    assert "| curve | 500 | 2,000 | to reach 75.00 | to reach 85.00 |" in readme
    accuracy = {name: run.metric("accuracy") for name, run in zip((v["name"] for v in variants), runs)}
    for head in ("mean", "cls"):
        cells, needed = [], []
        for size in (500, 2000):
            scores = [accuracy[f"{head}-maxtrainsamples{size}-seed{seed}"] for seed in (1, 2)]
            cells.append(f"{100 * np.mean(scores):.2f} ± {100 * np.std(scores, ddof=1):.2f} (2)")
            needed.append([target for target in (0.75, 0.85) if np.mean(scores) >= target])
        reach = [
            "500" if target in needed[0] else "2,000" if target in needed[1] else "not reached (> 2,000)"
            for target in (0.75, 0.85)
        ]
        assert f"| pooling={head} | {' | '.join(cells)} | {' | '.join(reach)} |" in readme
    # two pairs, one per size: never 500 against 2,000
    assert readme.count("Welch t on 2 and 2 seeds") == 2 and "Holm's adjustment over the 2 pairs" in readme
    assert "- at 500 training examples: a: " in readme and "- at 2,000 training examples: a: " in readme


def test_a_curve_says_where_sizes_above_the_data_trained_alike(tmp_path):
    """max_train_samples 2,000 and 8,000 on 2,000 examples are one size: the report says so, naming both."""
    from hfclf.reporting.report import write_report

    rng = np.random.default_rng(0)
    gold, base = rng.integers(0, 2, 300), rng.random(300)
    variants, runs = [], []
    for asked, size, share in ((500, 500, 0.7), (2000, 2000, 0.8), (8000, 2000, 0.81)):
        name = f"mean-maxtrainsamples{asked}"
        variants.append({"name": name, "flags": {"pooling": "mean", "max_train_samples": asked}})
        runs.append(fake_run(tmp_path / "runs" / name, gold, np.where(base < share, gold, 1 - gold), 1, "mean", size))
    write_report({"name": "curve"}, variants, runs, tmp_path, "hfclf compare curve.yaml", [])
    readme = (tmp_path / "README.md").read_text()
    assert (
        "Some sizes asked for more examples than the data has, so these trained on the same ones and only the last is "
        "shown: mean-maxtrainsamples2000 and mean-maxtrainsamples8000 (2,000)." in readme
    )


def test_pareto_front():
    from hfclf.reporting.plots import pareto_front

    # (latency, accuracy): c is slower and worse than a; d is the slowest but the best
    costs, scores = [10, 20, 30, 40, 20], [0.80, 0.85, 0.75, 0.90, 0.85]
    assert pareto_front(costs, scores) == [0, 1, 3]  # ties: the first of equal points stays
    # throughput: more is cheaper
    assert pareto_front([100, 50, 200], [0.8, 0.9, 0.7], cheaper_is_lower=False) == [2, 0, 1]


def test_a_curve_is_named_by_the_flags_it_sets():
    """Curves of variants with different flag sets name only their own flags (no `model=None` on the LSTM's)."""
    from hfclf.reporting.curves import curves_of

    flags = {
        "lstm-seed1": {"arch": "lstm", "lstm_hidden_size": 16, "max_train_samples": 32, "seed": 1},
        "pooled-seed1": {"arch": "pooled", "model": "tiny", "max_train_samples": 32, "seed": 1},
    }
    variants = [{"name": name, "flags": value} for name, value in flags.items()]
    arms = [arm("lstm", [0.5], [1]), arm("pooled", [0.6], [1])]
    curves = curves_of(arms, variants, lambda variant: variant["flags"], "max_train_samples")
    assert [curve.name for curve in curves] == ["arch=lstm, lstm_hidden_size=16", "arch=pooled, model=tiny"]
