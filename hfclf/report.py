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
from .files import atomic_output, write_text
from .run_folder import RunResults
from .tables import markdown_table
from .training_args import SECRET_ARGUMENTS, ClassifierTrainingArguments

# Report table metrics and which way is better (None: no best to mark).
METRIC_COLUMNS = {
    "accuracy": True,
    "macro_f1": True,
    "eval_accuracy": True,  # shown when the main split is test
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


def summary_row(variant: dict, results: RunResults, flag_keys: list[str]) -> dict:
    """One row of the comparison table from a finished run's results; `flag_keys` are the flags any variant sets."""
    row = {
        "variant": variant["name"],
        "arch": results.model_arguments["arch"],
        "pooling": results.model_arguments.get("pooling") or "",
        "split": results.split,
        "accuracy": results.metric("accuracy"),
        "macro_f1": results.metric("f1_macro"),
        "eval_accuracy": results.metric("accuracy", "eval"),
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


def best_rows(rows: list[dict]) -> dict[str, set[int]]:
    """For every column with a direction, the indices of the rows that hold its best value."""
    best = {}
    for column, higher in METRIC_COLUMNS.items():
        values = [row[column] for row in rows if row.get(column) is not None]
        if higher is None or not values:
            continue
        target = max(values) if higher else min(values)
        best[column] = {i for i, row in enumerate(rows) if row.get(column) == target}
    return best


def seed_spread(variants: list[dict], runs: list[RunResults], rows: list[dict]) -> list[dict]:
    """Mean, sample standard deviation and range of the accuracies of variants that differ only in their seed."""
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
        for column in ("accuracy", "eval_accuracy"):
            values = [row[column] for _, _, row in members]
            group[column] = (statistics.mean(values), statistics.stdev(values), min(values), max(values))
        spread.append(group)
    return spread


def spread_table(spread: list[dict], split: str) -> str:
    """The seed groups as a markdown table: mean ± standard deviation (min to max) in %."""
    columns = ["accuracy"] + (["eval_accuracy"] if split == "test" else [])
    header = ["variants", "seeds", *(f"accuracy ({split if c == 'accuracy' else 'validation'})" for c in columns)]
    body = []
    for group in spread:
        names = group["variants"]
        cells = [", ".join(names) if len(names) <= 2 else f"{names[0]} and {len(names) - 1} more"]
        cells.append(", ".join(str(seed) for seed in group["seeds"]))
        for column in columns:
            mean, std, low, high = (100 * value for value in group[column])
            cells.append(f"{mean:.2f} ± {std:.2f} ({low:.2f} to {high:.2f})")
        body.append(cells)
    return markdown_table(header, body)


def format_value(column: str, value) -> str:
    if value is None:
        return ""
    if column in ("accuracy", "macro_f1", "eval_accuracy"):
        return f"{100 * value:.2f}"
    if column == "parameters":
        return f"{value / 1e6:.1f}M"
    if column == "train_minutes":
        return f"{value:.2f}"
    if column == "train_samples_per_s":
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table_columns(rows: list[dict]) -> list[str]:
    """Identity columns, the flags that differ between variants, then the metrics."""
    fixed = {*IDENTITY_COLUMNS, *METRIC_COLUMNS, "split"}
    varying = []
    for row in rows:
        for key in row:
            if key not in fixed and key not in varying and len({str(r.get(key)) for r in rows}) > 1:
                varying.append(key)
    metrics = [c for c in METRIC_COLUMNS if c != "eval_accuracy" or rows[0]["split"] == "test"]
    return [*IDENTITY_COLUMNS, *varying, *metrics]


def write_report(
    config: dict,
    variants: list[dict],
    runs: list[RunResults],
    report_dir: Path,
    command: str,
    skipped: list[str],
) -> list[dict]:
    """results.csv, results.md, accuracy.png, loss_curves.png, confusion matrices and README.md of the variants
    (each with its run's results); returns the table's rows."""
    flag_keys = list(dict.fromkeys(key for variant in variants for key in variant_flags(variant)))
    rows = [summary_row(variant, results, flag_keys) for variant, results in zip(variants, runs)]
    table, spread_section = write_tables(variants, runs, rows, report_dir)
    images = write_plots(config, variants, runs, rows, report_dir)
    readme = readme_lines(config, runs, rows[0]["split"], table, spread_section, images, command, skipped)
    write_text(report_dir / "README.md", "\n".join(readme))
    print(table, flush=True)
    print(f"\nReport: {report_dir / 'README.md'}", flush=True)
    return rows


def write_tables(variants, runs, rows, report_dir: Path) -> tuple[str, list[str]]:
    """results.csv and results.md; returns the markdown table and the seed-spread section."""
    columns = table_columns(rows)
    best = best_rows(rows)
    split = rows[0]["split"]
    with atomic_output(report_dir / "results.csv") as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*columns, "best_in"])
        for i, row in enumerate(rows):
            marks = ";".join(column for column, indices in best.items() if i in indices)
            writer.writerow([row.get(column, "") for column in columns] + [marks])

    names = {
        "accuracy": f"accuracy ({split})",
        "macro_f1": f"macro_f1 ({split})",
        "eval_accuracy": "accuracy (validation)",
    }
    body = []
    for i, row in enumerate(rows):
        cells = []
        for column in columns:
            text = format_value(column, row.get(column))
            cells.append(f"**{text}**" if i in best.get(column, ()) and len(rows) > 1 else text)
        body.append(cells)
    table = markdown_table([names.get(c, c) for c in columns], body)
    spread = seed_spread(variants, runs, rows)
    spread_section = []
    if spread:
        spread_section = [
            "## Run-to-run spread",
            "",
            "Variants that differ only in their seed: mean ± sample standard deviation (lowest to highest), in %.",
            "",
            spread_table(spread, split),
            "",
        ]
    write_text(
        report_dir / "results.md", "\n".join([table, "", "Bold: best value in its column.", "", *spread_section])
    )
    return table, spread_section


def write_plots(config, variants, runs, rows, report_dir: Path) -> list[str]:
    """accuracy.png, loss_curves.png and a copy of every variant's confusion matrix; returns the matrices' names."""
    from .plots import plot_accuracy_bars, plot_loss_overlay

    plot_accuracy_bars(rows, report_dir / "accuracy.png", title=f"{config['name']}: accuracy ({rows[0]['split']})")
    histories = {variant["name"]: run.log_history for variant, run in zip(variants, runs)}
    plot_loss_overlay(histories, report_dir / "loss_curves.png", title=f"{config['name']}: loss")
    images = []
    for variant in variants:
        source = report_dir / "runs" / variant["name"] / "confusion_matrix.png"
        if source.exists():
            target = report_dir / f"confusion_{variant['name']}.png"
            with atomic_output(target) as temporary:
                shutil.copyfile(source, temporary)
            images.append(target.name)
    return images


def readme_lines(config, runs, split, table, spread_section, images, command, skipped) -> list[str]:
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
        "Bold: best value in its column. Accuracy and macro-F1 in %; train time in minutes.",
        "",
        *spread_section,
        "![accuracy](accuracy.png)",
        "",
        "![loss curves](loss_curves.png)",
        "",
        "## Confusion matrices",
        "",
        *(f"![{name}]({name})" for name in images),
        "",
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
