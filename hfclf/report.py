"""The report of a comparison: one row per variant (metrics, the flags that differ, speeds), the best values marked,
the spread of variants that differ only in their seed, plots, and a README with the command, seeds, hardware and
library versions. Everything comes from the variants' run results, so a report can be written again at any time.
"""

import csv
import dataclasses
import json
import shutil
import statistics
from pathlib import Path

from .data import DataArguments
from .errors import HfclfInputError
from .files import atomic_output, write_text
from .plots import PER_RUN_PLOT
from .run_folder import RunResults
from .tables import markdown_table
from .tasks import LOWER_IS_BETTER, Task, get_task
from .training_args import SECRET_ARGUMENTS, ClassifierTrainingArguments

# Report table columns after the metrics, and which way is better (None: no best to mark).
RUN_COLUMNS = {
    "parameters": None,
    "epochs": None,
    "best_epoch": None,
    "train_minutes": False,
    "train_samples_per_s": True,
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


def seed_spread(variants: list[dict], runs: list[RunResults], rows: list[dict], task: Task) -> list[dict]:
    """Mean, sample standard deviation and range of the main metric of variants that differ only in their seed."""
    groups = {}
    for variant, run, row in zip(variants, runs, rows):
        settings = {key: value for key, value in variant_flags(variant).items() if key != "seed"}
        groups.setdefault(json.dumps(settings, sort_keys=True, default=str), []).append((variant, run, row))
    spread = []
    for members in groups.values():
        if len(members) < 2:
            continue
        group = {
            "variants": [variant["name"] for variant, _, _ in members],
            "seeds": [run.seed for _, run, _ in members],
        }
        for column in (task.main_metric, f"eval_{task.main_metric}"):
            values = [row[column] for _, _, row in members]
            group[column] = (statistics.mean(values), statistics.stdev(values), min(values), max(values))
        spread.append(group)
    return spread


def spread_table(spread: list[dict], split: str, task: Task) -> str:
    """The seed groups as a markdown table: mean ± standard deviation (min to max), in % where the task's metrics
    are."""
    columns = [task.main_metric] + ([f"eval_{task.main_metric}"] if split == "test" else [])
    header = ["variants", "seeds", *(column_title(c, split) for c in columns)]
    scale, digits = (100, 2) if task.in_percent else (1, 4)
    body = []
    for group in spread:
        names = group["variants"]
        cells = [", ".join(names) if len(names) <= 2 else f"{names[0]} and {len(names) - 1} more"]
        cells.append(", ".join(str(seed) for seed in group["seeds"]))
        for column in columns:
            mean, std, low, high = (scale * value for value in group[column])
            cells.append(f"{mean:.{digits}f} ± {std:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})")
        body.append(cells)
    return markdown_table(header, body)


def column_title(column: str, split: str) -> str:
    """A metric column's title: the metric and its split."""
    return f"{column.removeprefix('eval_')} (validation)" if column.startswith("eval_") else f"{column} ({split})"


def format_value(column: str, value, task: Task) -> str:
    if value is None:
        return ""
    if column in metric_columns(task):
        return f"{100 * value:.2f}" if task.in_percent else f"{value:.4f}"
    if column == "parameters":
        return f"{value / 1e6:.1f}M"
    if column == "train_minutes":
        return f"{value:.2f}"
    if column == "train_samples_per_s":
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table_columns(rows: list[dict], task: Task) -> list[str]:
    """Identity columns, the flags that differ between variants, then the metrics."""
    main_on_validation = f"eval_{task.main_metric}"
    fixed = {*IDENTITY_COLUMNS, *metric_columns(task), *RUN_COLUMNS, "split"}
    varying = []
    for row in rows:
        for key in row:
            if key not in fixed and key not in varying and len({str(r.get(key)) for r in rows}) > 1:
                varying.append(key)
    metrics = [c for c in metric_columns(task) if c != main_on_validation or rows[0]["split"] == "test"]
    metrics += list(RUN_COLUMNS)
    return [*IDENTITY_COLUMNS, *varying, *metrics]


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
    table, spread_section = write_tables(variants, runs, rows, report_dir, task)
    images = write_plots(config, variants, runs, rows, report_dir, task)
    readme = readme_lines(config, runs, rows[0]["split"], table, spread_section, images, command, skipped, task)
    write_text(report_dir / "README.md", "\n".join(readme))
    print(table, flush=True)
    print(f"\nReport: {report_dir / 'README.md'}", flush=True)
    return rows


def write_tables(variants, runs, rows, report_dir: Path, task: Task) -> tuple[str, list[str]]:
    """results.csv and results.md; returns the markdown table and the seed-spread section."""
    columns = table_columns(rows, task)
    best = best_rows(rows, task)
    split = rows[0]["split"]
    with atomic_output(report_dir / "results.csv") as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*columns, "best_in"])
        for i, row in enumerate(rows):
            marks = ";".join(column for column, indices in best.items() if i in indices)
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
    spread = seed_spread(variants, runs, rows, task)
    spread_section = []
    if spread:
        spread_section = [
            "## Run-to-run spread",
            "",
            "Variants that differ only in their seed: mean ± sample standard deviation (lowest to highest)"
            + (", in %." if task.in_percent else "."),
            "",
            spread_table(spread, split, task),
            "",
        ]
    write_text(
        report_dir / "results.md", "\n".join([table, "", "Bold: best value in its column.", "", *spread_section])
    )
    return table, spread_section


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
        source = report_dir / "runs" / variant["name"] / per_run.file if per_run else None
        if source and source.exists():
            target = report_dir / f"{per_run.copy_prefix}_{variant['name']}.png"
            with atomic_output(target) as temporary:
                shutil.copyfile(source, temporary)
            images.append(target.name)
    return images


def readme_lines(config, runs, split, table, spread_section, images, command, skipped, task) -> list[str]:
    """The report's README: the table and plots, and how it was produced. Seed, hardware and versions come from the
    runs themselves: variants may have finished earlier, elsewhere."""
    first = runs[0]
    seeds = ", ".join(str(seed) for seed in sorted({run.seed for run in runs}))
    hardware = "; ".join(
        sorted({f"{run.hardware}, {run.num_processes} process{'es' * (run.num_processes > 1)}" for run in runs})
    )
    versions = "; ".join(
        sorted({", ".join(f"{name} {version}" for name, version in run.versions.items()) for run in runs})
    )
    data = first.data_arguments
    finished_earlier = f"- Finished by an earlier command, with its own in `results.json`: {', '.join(skipped)}."
    return [
        f"# Comparison: {config['name']}",
        "",
        config.get("description", "").strip(),
        "",
        f"Dataset: {data.get('dataset') or data.get('train_file')}"
        f" ({', '.join(f'{k} {v:,}' for k, v in first.data_sizes.items())}); metrics on the {split} split.",
        "",
        table,
        "",
        "Bold: best value in its column. "
        + (f"{', '.join(task.report_metrics)} in %" if task.in_percent else f"{task.description.capitalize()}")
        + "; train time in minutes.",
        "",
        *spread_section,
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
