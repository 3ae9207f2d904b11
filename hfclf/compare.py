"""Run a grid of fine-tuning variants on one dataset and write a comparison report.

A comparison config is a YAML (or JSON) file:

```yaml
name: sst2_pooling               # report folder: reports/<name> (or --report_dir)
data:                            # data flags shared by every variant (`DataArguments`)
  dataset: sst2
  max_length: 64
common:                          # model/training flags every variant gets
  num_train_epochs: 3
variants:                        # one run each; `name` names it, the other keys are finetune flags
  - {name: cls, pooling: cls}
  - {name: attention, pooling: attention}
grid:                            # optional: the cartesian product of these values, on top of every variant
  learning_rate: [1e-4, 5e-5]
```

Variants run one after another in one process. Variants that share data and tokenizer tokenize once, finished
variants (a `results.json` in their run folder) are skipped, and an interrupted variant resumes from its last
checkpoint, so rerunning the same command continues an interrupted comparison. Variants that differ only in
their seed are summarised as mean ± standard deviation in the report.
"""

import argparse
import csv
import dataclasses
import itertools
import json
import logging
import os
import shutil
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

from .data import DataArguments
from .errors import HfclfInputError
from .files import atomic_output, check_writable, folder_lock, hfclf_files, write_text
from .finetune import run_finetune
from .hub import redact_command
from .run_folder import RESULTS_FILE, latest_complete_checkpoint
from .training_args import ClassifierTrainingArguments, parse_values, read_mapping_file

logger = logging.getLogger("hfclf")

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
# Flags of the run folder, which compare sets for each variant itself.
RUN_FOLDER_FLAGS = ("output_dir", "resume_from_checkpoint", "overwrite_output_dir")
SECRET_KEYS = ("hub_token",)  # never shown in a report
# How long a report waits for another compare process that is writing the same report folder.
REPORT_LOCK_WAIT_SECONDS = 120
# Defaults of the data and training flags, which every run has (model flags show only where a variant sets them).
ARGUMENT_DEFAULTS = {
    field.name: field.default
    for arguments in (DataArguments, ClassifierTrainingArguments)
    for field in dataclasses.fields(arguments)
    if field.default is not dataclasses.MISSING
}


def load_config(path: str) -> dict:
    """Read and check a comparison config file."""
    config = read_mapping_file(path, what="Comparison config")
    if not (config.get("variants") or config.get("grid")):
        raise HfclfInputError(f"Comparison config {path} needs a 'variants' list and/or a 'grid' mapping.")
    unknown = set(config) - {"name", "data", "common", "variants", "grid", "description"}
    if unknown:
        raise HfclfInputError(
            f"Unknown key(s) {', '.join(sorted(unknown))} in {path}; use name, description, data, common, variants, "
            "grid."
        )
    for key in ("data", "common", "grid"):
        if not isinstance(config.get(key) or {}, dict):
            raise HfclfInputError(f"'{key}' in {path} must be a mapping of flag: value pairs.")
    if not isinstance(config.get("variants") or [], list) or not all(
        isinstance(variant, dict) for variant in config.get("variants") or []
    ):
        raise HfclfInputError(f"'variants' in {path} must be a list of mappings, e.g. '- {{name: cls, pooling: cls}}'.")
    scalars = [key for key, values in (config.get("grid") or {}).items() if not isinstance(values, list)]
    if scalars:
        raise HfclfInputError(
            f"Grid value(s) of {', '.join(scalars)} in {path} must be lists, e.g. 'learning_rate: [1e-4, 5e-5]'."
        )
    config.setdefault("name", Path(path).stem)
    return config


def expand_variants(config: dict) -> list[dict]:
    """Every variant as `{"name": ..., "flags": {...}}`, the grid multiplied onto the listed variants."""
    variants = config.get("variants") or [{"name": config["name"]}]
    grid = config.get("grid") or {}
    keys = list(grid)
    expanded = []
    for variant in variants:
        variant = dict(variant)
        base_name = str(variant.pop("name", "")) or "run"
        for values in itertools.product(*(grid[key] for key in keys)):
            flags = {**variant, **dict(zip(keys, values))}
            suffix = "-".join(f"{key.replace('_', '')}{value}" for key, value in zip(keys, values))
            name = f"{base_name}-{suffix}" if suffix and len(variants) > 1 else (suffix or base_name)
            expanded.append({"name": name, "flags": flags})
    names = [v["name"] for v in expanded]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HfclfInputError(f"Variant names repeat: {', '.join(duplicates)}; give every variant its own 'name'.")
    return expanded


def variant_values(config: dict, variant: dict, run_dir: Path) -> dict:
    """Finetune flags of one variant: shared data, common flags, then the variant's own (command-line words, parsed
    after these, override them all)."""
    return {
        **(config.get("data") or {}),
        **(config.get("common") or {}),
        **variant["flags"],
        "output_dir": str(run_dir),
    }


def check_run_folder_flags(config: dict, extra: list[str]) -> None:
    """compare owns each variant's folder (`<report_dir>/runs/<variant>`), resuming and replacing it itself: flags
    that would choose otherwise are refused rather than ignored."""
    keys = {key for section in ("data", "common", "grid") for key in (config.get(section) or {})}
    keys |= {key for variant in config.get("variants") or [] for key in variant}
    keys |= {word[2:].split("=", 1)[0].replace("-", "_") for word in extra if word.startswith("--")}
    owned = sorted(keys & set(RUN_FOLDER_FLAGS))
    if owned:
        raise HfclfInputError(
            f"{', '.join('--' + key for key in owned)} does not apply to compare: each variant writes to "
            "<report_dir>/runs/<variant>, and a rerun resumes unfinished variants itself. Use --report_dir DIR to "
            "choose the folder."
        )


def prepare_resume(training_args: ClassifierTrainingArguments) -> None:
    """Continue an unfinished variant: from its newest complete checkpoint, or afresh over a run that died before its
    first one."""
    run_dir = Path(training_args.output_dir)
    if latest_complete_checkpoint(run_dir, warn=False) is not None:
        training_args.resume_from_checkpoint = "auto"
    elif run_dir.is_dir() and {p.name for p in run_dir.iterdir()} - hfclf_files(run_dir):
        training_args.overwrite_output_dir = True


def select_variants(variants: list[dict], names: str | None) -> list[dict]:
    """The variants named in a comma-separated list (all of them when `names` is None), in config order."""
    if names is None:
        return variants
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    known = [variant["name"] for variant in variants]
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        raise HfclfInputError(
            f"Unknown variant(s) {', '.join(unknown) or '(none given)'}; --variants takes names from: "
            f"{', '.join(known)}."
        )
    return [variant for variant in variants if variant["name"] in wanted]


def run_comparison(
    config: dict, report_dir: Path, extra: list[str], command: str, only: str | None = None
) -> list[dict]:
    """Run (or skip, or resume) every variant, then write the report; returns one summary row per variant.

    With `only` (comma-separated names), just those variants run and are reported, so separate processes can share
    one accelerator; a later call without it skips what they finished and reports the whole grid. Each process
    holds the folders of the variants it runs, so two processes never train the same variant.
    """
    variants = select_variants(expand_variants(config), only)
    check_run_folder_flags(config, extra)
    if report_dir.exists() and not report_dir.is_dir():
        raise HfclfInputError(f"--report_dir {report_dir} is a file; pass a folder path.")
    check_writable(report_dir, "Report folder")
    run_dirs = {variant["name"]: report_dir / "runs" / variant["name"] for variant in variants}
    # Parse every variant's flags before training any (or writing anything), so a typo in the last one does not
    # wait for the others.
    arguments = {}
    for variant in variants:
        try:
            values = variant_values(config, variant, run_dirs[variant["name"]])
            arguments[variant["name"]] = parse_values(values, extra, source=f"{config['name']} or the command line")
        except HfclfInputError as err:
            raise HfclfInputError(f"Variant {variant['name']}: {err}") from None
    finished = {name for name, run_dir in run_dirs.items() if (run_dir / RESULTS_FILE).exists()}
    with ExitStack() as held:
        for name in [name for name in run_dirs if name not in finished]:
            held.enter_context(folder_lock(run_dirs[name], f"Variant folder of {name}"))
        data_cache = {}
        for index, variant in enumerate(variants, start=1):
            if variant["name"] in finished:
                logger.info("[%d/%d] %s: finished earlier, skipped", index, len(variants), variant["name"])
                continue
            logger.info("[%d/%d] %s", index, len(variants), variant["name"])
            model_args, data_args, training_args = arguments[variant["name"]]
            prepare_resume(training_args)
            run_finetune(model_args, data_args, training_args, data_cache=data_cache)

    flag_keys = [key for key in dict.fromkeys(key for v in variants for key in v["flags"]) if key not in SECRET_KEYS]
    runs = [json.loads((run_dirs[v["name"]] / RESULTS_FILE).read_text()) for v in variants]
    rows = [summary_row(variant, results, flag_keys) for variant, results in zip(variants, runs)]
    with folder_lock(report_dir, "Report folder", wait=REPORT_LOCK_WAIT_SECONDS):
        skipped = [variant["name"] for variant in variants if variant["name"] in finished]
        write_report(config, variants, runs, rows, report_dir, command, skipped)
    return rows


# ---------------------------------------------------------------------------------------------------------- report


def summary_row(variant: dict, results: dict, flag_keys: list[str]) -> dict:
    """One row of the comparison table from a finished run's results.json; `flag_keys` are the flags any variant
    sets."""
    split = "test" if results["test"] else "eval"
    model_args = results["arguments"]["model"]
    row = {
        "variant": variant["name"],
        "arch": model_args["arch"],
        "pooling": model_args.get("pooling") or "",
        "split": split,
        "accuracy": results[split][f"{split}_accuracy"],
        "macro_f1": results[split][f"{split}_f1_macro"],
        "eval_accuracy": results["eval"]["eval_accuracy"],
        "parameters": results["num_parameters"],
        "epochs": results["epochs"],
        "best_epoch": results.get("best_epoch"),
        "train_minutes": results["train"]["train_runtime"] / 60,
        "train_samples_per_s": results["train_samples_per_second"],
        # shown only where runs differ: train times from different machines or precisions are not comparable
        "hardware": results["hardware"],
        "precision": next((p for p in ("bf16", "fp16") if results["arguments"]["training"].get(p)), "fp32"),
    }
    # Data and training arguments apply to every architecture, so show what each run used; model arguments only
    # where the variant sets them (an LSTM width means nothing on a pooled encoder's row).
    used = {**results["arguments"]["data"], **results["arguments"]["training"]}
    # A data or training flag newer than the run (written by an earlier hfclf) had its default there.
    for key in flag_keys:
        row.setdefault(key, used.get(key, variant["flags"].get(key, ARGUMENT_DEFAULTS.get(key))))
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


def seed_spread(variants: list[dict], runs: list[dict], rows: list[dict]) -> list[dict]:
    """Mean, sample standard deviation and range of the accuracies of variants that differ only in their seed."""
    groups = {}
    for variant, run, row in zip(variants, runs, rows):
        settings = {key: value for key, value in variant["flags"].items() if key != "seed"}
        groups.setdefault(json.dumps(settings, sort_keys=True, default=str), []).append((variant, run, row))
    spread = []
    for members in groups.values():
        if len(members) < 2:
            continue
        group = {
            "variants": [variant["name"] for variant, _, _ in members],
            "seeds": [run["arguments"]["training"]["seed"] for _, run, _ in members],
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


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    """A markdown table from its header cells and rows of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(cells) + " |" for cells in body)])


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
    runs: list[dict],
    rows: list[dict],
    report_dir: Path,
    command: str,
    skipped: list[str],
) -> None:
    """results.csv, results.md, accuracy.png, loss_curves.png, confusion matrices and README.md; `runs` holds each
    variant's results.json."""
    from .plots import plot_accuracy_bars, plot_loss_overlay

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
    spread_section = (
        [
            "## Run-to-run spread",
            "",
            "Variants that differ only in their seed: mean ± sample standard deviation (lowest to highest), in %.",
            "",
            spread_table(spread, split),
            "",
        ]
        if spread
        else []
    )
    write_text(
        report_dir / "results.md",
        "\n".join([table, "", "Bold: best value in its column.", "", *spread_section]),
    )

    run_dirs = [report_dir / "runs" / variant["name"] for variant in variants]
    plot_accuracy_bars(rows, report_dir / "accuracy.png", title=f"{config['name']}: accuracy ({split})")
    histories = {variant["name"]: run["log_history"] for variant, run in zip(variants, runs)}
    plot_loss_overlay(histories, report_dir / "loss_curves.png", title=f"{config['name']}: loss")
    confusion_images = []
    for variant, run_dir in zip(variants, run_dirs):
        if (run_dir / "confusion_matrix.png").exists():
            target = report_dir / f"confusion_{variant['name']}.png"
            with atomic_output(target) as temporary:
                shutil.copyfile(run_dir / "confusion_matrix.png", temporary)
            confusion_images.append(target.name)

    # Seed, hardware and versions come from the runs themselves: variants may have finished earlier, elsewhere.
    results = runs[0]
    seeds = ", ".join(str(seed) for seed in sorted({run["arguments"]["training"]["seed"] for run in runs}))
    hardware = "; ".join(
        sorted(
            {f"{run['hardware']}, {run['num_processes']} process{'es' * (run['num_processes'] > 1)}" for run in runs}
        )
    )
    versions = "; ".join(
        sorted({", ".join(f"{name} {version}" for name, version in run["versions"].items()) for run in runs})
    )
    readme = [
        f"# Comparison: {config['name']}",
        "",
        config.get("description", "").strip(),
        "",
        f"Dataset: {results['arguments']['data'].get('dataset') or results['arguments']['data'].get('train_file')}"
        f" ({', '.join(f'{k} {v:,}' for k, v in results['data_sizes'].items())}); metrics on the {split} split.",
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
        *(f"![{name}]({name})" for name in confusion_images),
        "",
        "## How this was produced",
        "",
        f"- Command: `{command}`",
        f"- Seed: {seeds}",
        f"- Hardware: {hardware}",
        f"- Versions: {versions}",
        "- Each variant's full output (model, results.json, predictions.csv, plots) is in `runs/<variant>/`.",
        *(
            [f"- Finished by an earlier command, with its own in `results.json`: {', '.join(skipped)}."]
            if skipped
            else []
        ),
        "",
    ]
    write_text(report_dir / "README.md", "\n".join(readme))
    print(table, flush=True)
    print(f"\nReport: {report_dir / 'README.md'}", flush=True)


# ------------------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hfclf compare",
        description="Run a grid of fine-tuning variants from a YAML config and write a comparison report.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  hfclf compare recipes/configs/sst2_pooling.yaml\n"
            "  hfclf compare recipes/configs/sst2_pooling.yaml --max_train_samples 500 --num_train_epochs 1\n"
            "  python recipes/compare.py recipes/configs/imdb_lstm_vs_bert.yaml --report_dir reports/imdb\n\n"
            "Any other flag (every finetune flag: --max_train_samples, --learning_rate, --bf16, ...) is passed to\n"
            "every variant and overrides the config. Rerunning the same command skips finished variants and\n"
            "resumes an interrupted one."
        ),
    )
    parser.add_argument("config", help="comparison config (.yaml or .json), see recipes/configs/")
    parser.add_argument("--report_dir", "--report-dir", help="report folder (default: reports/<config name>)")
    parser.add_argument("--variants", help="comma-separated variant names to run and report (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; bad input prints one `error:` line and returns exit code 2."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = build_parser().parse_known_args(argv)
    try:
        config = load_config(args.config)
        report_dir = Path(args.report_dir or os.path.join("reports", config["name"]))
        command = " ".join(["hfclf compare", *redact_command(argv)])
        run_comparison(config, report_dir, extra, command, only=args.variants)
    except HfclfInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0
