"""The report of a comparison: one row per variant (metrics, the flags that differ, speeds), the best values marked,
the spread of variants that differ only in their seed, plots, and a README with the command, seeds, hardware and
library versions. Everything comes from the variants' run results, so a report can be written again at any time.
"""

import csv
import dataclasses
import shutil
import statistics
from pathlib import Path

from ..data.loading import DataArguments
from ..data.tasks import LOWER_IS_BETTER, Task, get_task
from ..errors import HfclfInputError
from ..files import atomic_output, check_writable, hfclf_files, read_json, write_json, write_text
from ..run_folder import RunResults, split_of
from ..tables import markdown_table, write_csv
from ..training_args import SECRET_ARGUMENTS, THRESHOLD_CHOICES, ClassifierTrainingArguments
from .curves import Curve, curves_of, default_targets, size_flag
from .plots import (
    COST_PLOT,
    LEARNING_CURVE_PLOT,
    PER_RUN_PLOT,
    pareto_front,
    plot_cost_accuracy,
    plot_learning_curves,
)
from .significance import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    PERMUTATIONS,
    Arm,
    PairTest,
    arms_of,
    groups,
    pair_tests,
)

# Report table columns after the metrics, and which way is better (None: no best to mark).
RUN_COLUMNS = {
    "parameters": None,
    "epochs": None,
    "best_epoch": None,
    "train_minutes": False,
    "train_samples_per_s": True,
    "texts_per_s": True,  # inference, batched (hfclf.inference.cost)
    "latency_ms": False,  # inference, one text: median
    "latency_p95_ms": False,
    "peak_memory_mb": False,
}
IDENTITY_COLUMNS = ("variant", "arch", "pooling")
# Defaults of the data and training flags, which every run has (model flags show only where a variant sets them).
ARGUMENT_DEFAULTS = {
    field.name: field.default
    for arguments in (DataArguments, ClassifierTrainingArguments)
    for field in dataclasses.fields(arguments)
    if field.default is not dataclasses.MISSING
}


def variant_flags(variant: dict) -> dict:
    """A variant's own flags, a mapping (`model_config`) spread into `model_config.field` entries, secrets left out."""
    flags = {}
    for key, value in variant["flags"].items():
        if key in SECRET_ARGUMENTS:
            continue
        if isinstance(value, dict):
            flags.update({f"{key}.{field}": inner for field, inner in value.items()})
        else:
            flags[key] = value
    return flags


def metric_columns(task: Task) -> dict:
    """The task's report metrics on the reported split, then its main metric on validation (`eval_...`, shown when
    the reported split is test), each with whether higher is better."""
    columns = {name: name not in LOWER_IS_BETTER for name in task.report_metrics}
    columns[f"eval_{task.main_metric}"] = task.greater_is_better
    return columns


def task_of_runs(runs: list[RunResults]) -> Task:
    """The one task shape of a comparison's runs."""
    shapes = sorted({run.problem_type for run in runs})
    if len(shapes) > 1:
        raise HfclfInputError(
            f"The variants trained different task shapes ({', '.join(shapes)}); their metrics do not compare. "
            "Give every variant the same --problem_type."
        )
    return get_task(shapes[0])


def summary_row(variant: dict, results: RunResults, flag_keys: list[str]) -> dict:
    """One row of the comparison table from a finished run's results; `flag_keys` are the flags any variant sets."""
    task = get_task(results.problem_type)
    row = {
        "variant": variant["name"],
        "arch": results.model_arguments["arch"],
        "pooling": results.model_arguments.get("pooling") or "",
        "split": results.split,
        **{name: results.metric(name) for name in task.report_metrics},
        f"eval_{task.main_metric}": results.metric(task.main_metric, "eval"),
        "parameters": results.num_parameters,
        "epochs": results.epochs,
        "best_epoch": results.best_epoch,
        "train_minutes": results.train["train_runtime"] / 60,
        "train_samples_per_s": results.train_samples_per_second,
        "texts_per_s": results.cost.get("texts_per_second"),
        "latency_ms": results.cost.get("latency_ms_median"),
        "latency_p95_ms": results.cost.get("latency_ms_p95"),
        "peak_memory_mb": results.cost.get("peak_memory_mb"),
        # shown only where runs differ: train times from different machines or precisions are not comparable
        "hardware": results.hardware,
        "precision": results.precision,
    }
    # Data and training arguments apply to every architecture, so show what each run used; model arguments only
    # where the variant sets them (an LSTM width means nothing on a pooled encoder's row).
    used = {**results.data_arguments, **results.training_arguments}
    own = variant_flags(variant)
    # A data or training flag newer than the run (written by an earlier hfclf) had its default there.
    for key in flag_keys:
        row.setdefault(key, used.get(key, own.get(key, ARGUMENT_DEFAULTS.get(key))))
    return row


def best_rows(rows: list[dict], task: Task) -> dict[str, set[int]]:
    """For every column with a direction, the indices of the rows that hold its best value."""
    best = {}
    for column, higher in {**metric_columns(task), **RUN_COLUMNS}.items():
        values = [row[column] for row in rows if row.get(column) is not None]
        if higher is None or not values:
            continue
        target = max(values) if higher else min(values)
        best[column] = {i for i, row in enumerate(rows) if row.get(column) == target}
    return best


def seed_spread(arms: list[Arm], task: Task) -> list[dict]:
    """Mean, sample standard deviation and range of the main metric of the arms that ran several seeds, and the 95%
    confidence interval of the mean."""
    spread = []
    for arm in arms:
        if len(arm.runs) < 2:
            continue
        group = {"variants": arm.variants, "seeds": arm.seeds, "interval": arm.interval()}
        for split in (None, "eval"):
            values = [run.metric(task.main_metric, split) for run in arm.runs]
            column = f"eval_{task.main_metric}" if split else task.main_metric
            group[column] = (statistics.mean(values), statistics.stdev(values), min(values), max(values))
        spread.append(group)
    return spread


def spread_table(spread: list[dict], split: str, task: Task) -> str:
    """The seed groups as a markdown table: mean ± standard deviation (min to max) and the 95% confidence interval of
    the mean, in % where the task's metrics are."""
    columns = [task.main_metric] + ([f"eval_{task.main_metric}"] if split == "test" else [])
    header = ["variants", "seeds", *(column_title(c, split) for c in columns), "95% CI of the mean"]
    body = []
    for group in spread:
        names = group["variants"]
        cells = [", ".join(names) if len(names) <= 2 else f"{names[0]} and {len(names) - 1} more"]
        cells.append(", ".join(str(seed) for seed in group["seeds"]))
        for column in columns:
            mean, std, low, high = (metric_text(value, task) for value in group[column])
            cells.append(f"{mean} ± {std} ({low} to {high})")
        cells.append("[{}, {}]".format(*(metric_text(value, task) for value in group["interval"])))
        body.append(cells)
    return markdown_table(header, body)


def metric_text(value: float, task: Task, sign: str = "") -> str:
    """A metric value as reports show it: in % with two decimals, or with four."""
    return f"{100 * value:{sign}.2f}" if task.in_percent else f"{value:{sign}.4f}"


def significance_section(tests: list[PairTest], found: list[tuple[str, list]], task: Task) -> list[str]:
    """The report's answer to "is the difference real?": one line and one table row per pair, and the groups."""
    if not tests:
        return []
    unit = " points" if task.in_percent else ""
    lines, body = [], []
    for test in tests:
        difference = metric_text(test.difference, task, "+") + unit
        interval = ""
        if test.low is not None:
            interval = f"[{metric_text(test.low, task, '+')}, {metric_text(test.high, task, '+')}]"
        verdict = "significant" if test.significant else "not significant"
        if test.p_value is None:
            lines.append(f"- {test.first} vs {test.second}: {difference}, {test.test}")
            body.append([f"{test.first} vs {test.second}", difference, "", test.test, "", "", ""])
            continue
        lines.append(f"- {test.first} vs {test.second}: {difference} {interval}, p = {test.p_value:.2g}"
                     f" (Holm: {test.p_holm:.2g}), {verdict}")  # fmt: skip
        body.append([f"{test.first} vs {test.second}", difference, interval, test.test, f"{test.p_value:.3g}",
                     f"{test.p_holm:.3g}", verdict])  # fmt: skip
    letters = "abcdefghijklmnopqrstuvwxyz"
    group_lines = [
        f"{where + ': ' if where else ''}"
        + "; ".join(f"{letters[i % 26]}: {', '.join(group)}" for i, group in enumerate(found_here))
        for where, found_here in found
    ]
    per_example_test = (
        "the exact McNemar test on correct/incorrect"
        if task.main_metric == "accuracy"
        else f"a paired permutation test of {task.main_metric} ({PERMUTATIONS:,} random swaps, seed {BOOTSTRAP_SEED})"
    )
    header = ["pair", f"difference in {task.main_metric}", "95% CI", "test", "p", "p (Holm)", f"at α = {ALPHA}"]
    return [
        "## Are the differences real?",
        "",
        f"Each pair, the better variant first: the difference in {task.main_metric} "
        f"({'in points of %, ' * task.in_percent}first minus second) with its 95% confidence interval, "
        f"the test's p-value and Holm's adjustment over the {len(tests)} pair{'s' * (len(tests) > 1)} of this report.",
        "",
        *lines,
        "",
        markdown_table(header, body),
        "",
        "Groups that cannot be told apart (no pair inside differs significantly), best first: "
        + (f"{group_lines[0]}." if len(group_lines) == 1 else "\n\n" + "\n".join(f"- {g}" for g in group_lines)),
        "",
        "Tests: where both variants ran two or more seeds, Welch's t-test on their per-seed scores (seeds, not "
        "examples, are then the unit, since the seed alone moves a fine-tuned model); otherwise, on the examples "
        "both runs scored, "
        + per_example_test
        + f", with a paired percentile bootstrap interval ({BOOTSTRAP_RESAMPLES:,} resamples, seed {BOOTSTRAP_SEED}). "
        "Differences for every metric are in `significance.csv`.",
        "",
    ]


def cost_section(rows: list[dict], runs: list[RunResults], task: Task) -> list[str]:
    """How the inference costs were measured, the variants on the Pareto front of latency against the main metric,
    and the plot (none when no run measured them)."""
    measured = [run.cost for run in runs if run.cost]
    if not measured or len(measured) < len(runs):
        return []
    first = measured[0]
    devices = ", ".join(sorted({cost["device"] for cost in measured}))
    front = pareto_front([row["latency_ms"] for row in rows], [row[task.main_metric] for row in rows])
    precisions = {run.precision for run in runs} - {"fp32"}
    autocast = f" ({' and '.join(f'a {p} run under {p} autocast' for p in sorted(precisions))})" if precisions else ""
    return [
        "## Cost",
        "",
        f"Measured after training on {devices}, as training left the model{autocast}: "
        f"throughput on the first {first['throughput_texts']:,} texts of the {split_of(rows[0]['split'])} split in "
        f"length-sorted batches of {first['batch_size']} (`texts_per_s`), latency of one text at a time over the first "
        f"{first['latency_texts']} (`latency_ms` median, `latency_p95_ms`), and the run's peak memory "
        f"(`peak_memory_mb`: {first['peak_memory']}). Parameters and train time are in the table.",
        "",
        f"Pareto front of latency against {task.main_metric} (no other variant is both faster and better), fastest "
        f"first: {', '.join(rows[i]['variant'] for i in front)}.",
        "",
        f"![cost against {task.main_metric}]({COST_PLOT})",
        "",
    ]


def groups_by_size(arms: list[Arm], tests: list[PairTest], task: Task, size_of: dict) -> list[tuple[str, list]]:
    """The groups that cannot be told apart: `[("", groups)]`, or with data-size curves one entry per training-set
    size (`"at 2,000 training examples"`)."""
    if not size_of:
        return [("", groups(arms, tests, task))]
    sizes = sorted(set(size_of.values()))
    return [
        (f"at {size:,} training examples", groups([a for a in arms if size_of[a.name] == size], tests, task))
        for size in sizes
    ]


def curve_section(curves: list[Curve], targets, chosen: bool, task: Task, flag: str | None) -> list[str]:
    """The data-size curves as a table (mean ± standard deviation per size) with the smallest size that reaches each
    of the `targets` (`chosen` in the config, else the defaults), and the plot."""
    if not curves:
        return []
    greater = task.greater_is_better
    note = "" if chosen else " (95% and 99% of the best mean; set `targets:` in the config to choose)"
    sizes = sorted({size for curve in curves for size, _ in curve.points})
    header = ["curve", *(f"{size:,}" for size in sizes), *(f"to reach {metric_text(t, task)}" for t in targets)]
    body = []
    for curve in curves:
        cells = {size: arm for size, arm in curve.points}
        row = [curve.name]
        for size in sizes:
            arm = cells.get(size)
            if arm is None:
                row.append("")
                continue
            spread = f" ± {metric_text(statistics.stdev(arm.scores), task)}" if len(arm.scores) > 1 else ""
            row.append(f"{metric_text(arm.mean, task)}{spread} ({len(arm.scores)})")
        for target in targets:
            needed = curve.size_needed(target, greater)
            row.append(f"{needed:,}" if needed is not None else f"not reached (> {curve.points[-1][0]:,})")
        body.append(row)
    same = []  # arms asked for more examples than the data has: one size, several arms
    for curve in curves:
        by_size = {}
        for size, arm in curve.points:
            by_size.setdefault(size, []).append(arm.name)
        same += [f"{' and '.join(names)} ({size:,})" for size, names in by_size.items() if len(names) > 1]
    repeated = (
        f" Some sizes asked for more examples than the data has, so these trained on the same ones and only the last "
        f"is shown: {'; '.join(same)}."
        if same
        else ""
    )
    return [
        "## Data-size curves",
        "",
        f"The main metric ({task.main_metric}{', in %' * task.in_percent}) by the number of training examples "
        f"(`{flag}`): mean ± sample standard deviation (seeds), then the smallest measured size whose mean reaches "
        f"each target{note}. The plot's bands are the 95% confidence intervals of the means.{repeated}",
        "",
        markdown_table(header, body),
        "",
        f"![learning curves]({LEARNING_CURVE_PLOT})",
        "",
    ]


def write_significance_csv(tests: list[PairTest], path: Path) -> None:
    """Every pair's test, and its per-example differences in the other report metrics, one row per pair."""
    rows = []
    for test in tests:
        row = {"first": test.first, "second": test.second, "metric": test.metric, "difference": test.difference,
               "ci_low": test.low, "ci_high": test.high, "test": test.test, "p": test.p_value, "p_holm": test.p_holm,
               "significant": test.significant, "units": test.units}  # fmt: skip
        for name, (difference, low, high) in test.other_metrics.items():
            row.update({f"{name}_difference": difference, f"{name}_ci_low": low, f"{name}_ci_high": high})
        rows.append(row)
    write_csv(path, rows)


def column_title(column: str, split: str) -> str:
    """A metric column's title: the metric and its split."""
    return (
        f"{column.removeprefix('eval_')} (validation)"
        if column.startswith("eval_")
        else f"{column} ({split_of(split)})"
    )


def format_value(column: str, value, task: Task) -> str:
    if value is None:
        return ""
    if column in metric_columns(task):
        return metric_text(value, task)
    if column == "parameters":
        return f"{value / 1e6:.1f}M"
    if column == "train_minutes":
        return f"{value:.2f}"
    if column in ("train_samples_per_s", "texts_per_s", "latency_ms", "latency_p95_ms"):
        return f"{value:.1f}"
    if column == "peak_memory_mb":
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table_columns(rows: list[dict], task: Task) -> list[str]:
    """Identity columns, the flags that differ between variants, then the metrics and the run columns that some run
    has a value for (no cost columns where inference was not measured)."""
    main_on_validation = f"eval_{task.main_metric}"
    fixed = {*IDENTITY_COLUMNS, *metric_columns(task), *RUN_COLUMNS, "split"}
    varying = []
    for row in rows:
        for key in row:
            if key not in fixed and key not in varying and len({str(r.get(key)) for r in rows}) > 1:
                varying.append(key)
    metrics = [c for c in metric_columns(task) if c != main_on_validation or rows[0]["split"] == "test"]
    metrics += [column for column in RUN_COLUMNS if any(row.get(column) is not None for row in rows)]
    return [*IDENTITY_COLUMNS, *varying, *metrics]


RUNS_FOLDER = "runs"  # a report's run folders: <report_dir>/runs/<variant or trial>
REPORT_FILES = "report_files.json"  # the files the report wrote, so that the next one removes those it does not


def variant_folder(report_dir: Path, name: str) -> Path:
    """The run folder of a report's variant (or search trial)."""
    return Path(report_dir) / RUNS_FOLDER / name


def check_report_folder(report_dir: Path, own: tuple[str, ...] = ()) -> None:
    """Refuse a `--report_dir` that is a file, cannot be written, or holds other files than an hfclf report: a report
    goes into a new or empty folder, or over an earlier report (which has a runs/ folder, or one of the `own` files)."""
    if report_dir.exists() and not report_dir.is_dir():
        raise HfclfInputError(f"--report_dir {report_dir} is a file; pass a folder path.")
    if report_dir.is_dir() and not any((report_dir / name).exists() for name in (RUNS_FOLDER, *own)):
        others = sorted({p.name for p in report_dir.iterdir()} - hfclf_files(report_dir))
        if others:
            raise HfclfInputError(
                f"--report_dir {report_dir} holds files that are not an hfclf report ({', '.join(others[:3])}"
                f"{', ...' if len(others) > 3 else ''}), which the report would overwrite; choose a new or empty "
                "folder."
            )
    check_writable(report_dir, "Report folder")


def write_report(
    config: dict,
    variants: list[dict],
    runs: list[RunResults],
    report_dir: Path,
    command: str,
    skipped: list[str],
) -> list[dict]:
    """results.csv, results.md, a bar plot of the main metric (accuracy.png for classification), loss_curves.png,
    confusion matrices and README.md of the variants (each with its run's results); returns the table's rows."""
    task = task_of_runs(runs)
    flag_keys = list(dict.fromkeys(key for variant in variants for key in variant_flags(variant)))
    rows = [summary_row(variant, results, flag_keys) for variant, results in zip(variants, runs)]
    run_dirs = [variant_folder(report_dir, variant["name"]) for variant in variants]
    arms = arms_of(variants, runs, run_dirs, variant_flags, task)
    flag = size_flag(variants, variant_flags)
    curves = curves_of(arms, variants, variant_flags, flag) if flag else []
    targets = (config.get("targets") or default_targets(curves, task.greater_is_better)) if curves else []
    size_of = {arm.name: size for curve in curves for size, arm in curve.points}
    tests = pair_tests(arms, task, stratum=(lambda arm: size_of[arm.name]) if curves else None)
    if tests:
        write_significance_csv(tests, report_dir / "significance.csv")
    found = groups_by_size(arms, tests, task, size_of)
    statistics_sections = [
        *spread_section(arms, rows[0]["split"], task),
        *curve_section(curves, targets, bool(config.get("targets")), task, flag),
        *cost_section(rows, runs, task),
        *significance_section(tests, found, task),
    ]
    table = write_tables(rows, report_dir, task, statistics_sections)
    images = write_plots(config, variants, runs, rows, report_dir, task)
    written = ["results.csv", "results.md", "README.md", "loss_curves.png", *images]
    if tests:
        written.append("significance.csv")
    if any(run.cost for run in runs):
        plot_cost_accuracy(rows, task.main_metric, report_dir / COST_PLOT, task.in_percent, title=config["name"])
        written.append(COST_PLOT)
    if curves:
        title = f"{config['name']}: {task.main_metric} by training-set size"
        plot_learning_curves(
            curves, report_dir / LEARNING_CURVE_PLOT, task.main_metric, task.in_percent, title, targets
        )
        written.append(LEARNING_CURVE_PLOT)
    names = [variant["name"] for variant in variants]
    readme = readme_lines(config, names, runs, rows[0]["split"], table, statistics_sections, images, command, skipped,
                          task)  # fmt: skip
    write_text(report_dir / "README.md", "\n".join(readme))
    remove_earlier_report_files(report_dir, written)
    print(table, flush=True)
    print(f"\nReport: {report_dir / 'README.md'}", flush=True)
    return rows


def remove_earlier_report_files(report_dir: Path, written: list[str]) -> None:
    """Remove what the earlier report in `report_dir` wrote and this one did not (a variant's plot, a significance
    table), so that no file contradicts the new report; then record this report's files."""
    earlier = read_json(report_dir / REPORT_FILES) or []
    for name in sorted(set(earlier) - set(written)):
        if Path(name).name == name:  # a plain file name, as written
            (report_dir / name).unlink(missing_ok=True)
    write_json(report_dir / REPORT_FILES, sorted(written))


def write_tables(rows, report_dir: Path, task: Task, statistics_sections: list[str]) -> str:
    """results.csv and results.md (the table, then the seed spread and significance sections); returns the table."""
    columns = table_columns(rows, task)
    best = best_rows(rows, task)
    split = rows[0]["split"]
    with atomic_output(report_dir / "results.csv") as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*columns, "best_in"])
        for i, row in enumerate(rows):
            marks = ";".join(column for column, indices in best.items() if i in indices and column in columns)
            writer.writerow([row.get(column, "") for column in columns] + [marks])

    body = []
    for i, row in enumerate(rows):
        cells = []
        for column in columns:
            text = format_value(column, row.get(column), task)
            cells.append(f"**{text}**" if i in best.get(column, ()) and len(rows) > 1 else text)
        body.append(cells)
    metrics = metric_columns(task)
    table = markdown_table([column_title(c, split) if c in metrics else c for c in columns], body)
    write_text(
        report_dir / "results.md", "\n".join([table, "", "Bold: best value in its column.", "", *statistics_sections])
    )
    return table


def spread_section(arms: list[Arm], split: str, task: Task) -> list[str]:
    """The run-to-run spread of variants that differ only in their seed, as report lines (none without such)."""
    spread = seed_spread(arms, task)
    if not spread:
        return []
    return [
        "## Run-to-run spread",
        "",
        "Variants that differ only in their seed: mean ± sample standard deviation (lowest to highest), and the "
        "95% t confidence interval of the mean" + (", in %" if task.in_percent else "") + ", cut at the values the "
        "metric can take: with two or three seeds a t interval easily reaches past them, and a bound at the edge "
        "says only that the seeds were too few to place it.",
        "",
        spread_table(spread, split, task),
        "",
    ]


def write_plots(config, variants, runs, rows, report_dir: Path, task: Task) -> list[str]:
    """<main metric>.png, loss_curves.png and a copy of every variant's confusion matrix (or, for regression,
    predicted-against-true plot); returns the names of the copies, the bar plot first."""
    from .plots import plot_loss_overlay, plot_metric_bars

    main = task.main_metric
    bars = f"{main}.png"
    title = f"{config['name']}: {main} ({rows[0]['split']})"
    plot_metric_bars(rows, main, report_dir / bars, title=title, percent=task.in_percent)
    histories = {variant["name"]: run.log_history for variant, run in zip(variants, runs)}
    plot_loss_overlay(histories, report_dir / "loss_curves.png", title=f"{config['name']}: loss")
    images = [bars]
    per_run = PER_RUN_PLOT.get(task.problem_type)
    for variant in variants:
        source = variant_folder(report_dir, variant["name"]) / per_run.file if per_run else None
        if source and source.exists():
            target = report_dir / f"{per_run.copy_prefix}_{variant['name']}.png"
            with atomic_output(target) as temporary:
                shutil.copyfile(source, temporary)
            images.append(target.name)
    return images


def data_sizes_text(runs: list[RunResults]) -> str:
    """The split sizes of the runs, `train 500 to 8,000` where they differ (a data-size curve)."""
    parts = []
    for split in runs[0].data_sizes:
        sizes = sorted({run.data_sizes.get(split) for run in runs if run.data_sizes.get(split) is not None})
        parts.append(f"{split} {sizes[0]:,}" + (f" to {sizes[-1]:,}" if len(sizes) > 1 else ""))
    return ", ".join(parts)


def data_lines(runs: list[RunResults], split: str) -> list[str]:
    """The data the variants trained on (several when they differ), its sizes and the reported split."""
    data = [run.data_arguments for run in runs]
    datasets = sorted({str(args.get("dataset") or args.get("dataset_name") or args.get("train_file")) for args in data})
    what = f"Dataset: {datasets[0]}" if len(datasets) == 1 else f"Datasets: {', '.join(datasets)} (by variant)"
    return [f"{what} ({data_sizes_text(runs)}); metrics on the {split_of(split)} split.", ""]


def tuned_thresholds_lines(names: list[str], runs: list[RunResults], split: str) -> list[str]:
    """A warning when validation is the reported split and some variants tuned their thresholds on it."""
    tuned = [name for name, run in zip(names, runs) if run.model_arguments.get("threshold") in THRESHOLD_CHOICES]
    if not tuned or split != "eval":
        return []
    against = "" if len(tuned) == len(runs) else " against the other variants'"
    return [
        f"Decision thresholds of {', '.join(tuned)} were tuned on this validation split, so their scores here are "
        f"optimistic{against}.",
        "",
    ]


def readme_lines(config, names, runs, split, table, statistics_sections, images, command, skipped, task) -> list[str]:
    """The report's README: the table and plots, and how it was produced. Seed, hardware and versions come from the
    runs themselves: variants may have finished earlier, elsewhere."""
    seeds = ", ".join(str(seed) for seed in sorted({run.seed for run in runs}))
    hardware = "; ".join(
        sorted({f"{run.hardware}, {run.num_processes} process{'es' * (run.num_processes > 1)}" for run in runs})
    )
    versions = "; ".join(
        sorted({", ".join(f"{name} {version}" for name, version in run.versions.items()) for run in runs})
    )
    finished_earlier = f"- Finished by an earlier command, with its own in `results.json`: {', '.join(skipped)}."
    return [
        f"# Comparison: {config['name']}",
        "",
        config.get("description", "").strip(),
        "",
        *data_lines(runs, split),
        table,
        "",
        *tuned_thresholds_lines(names, runs, split),
        f"Bold: best value in its column. {', '.join(task.report_metrics)} "
        + ("in %" if task.in_percent else "as plain values")
        + "; train time in minutes.",
        "",
        *statistics_sections,
        f"![{task.main_metric}]({images[0]})",
        "",
        "![loss curves](loss_curves.png)",
        "",
        *([f"## {PER_RUN_PLOT[task.problem_type].title}", ""] if images[1:] else []),
        *(f"![{Path(name).stem}]({name})" for name in images[1:]),
        *([""] if images[1:] else []),
        "## How this was produced",
        "",
        f"- Command: `{command}`",
        f"- Seed: {seeds}",
        f"- Hardware: {hardware}",
        f"- Versions: {versions}",
        "- Each variant's full output (model, results.json, predictions.csv, plots) is in `runs/<variant>/`.",
        *([finished_earlier] if skipped else []),
        "",
    ]
