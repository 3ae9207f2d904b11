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
targets: [0.85, 0.88]            # optional, with a grid over max_train_samples or train_fraction: scores to reach
```

Variants run one after another in one process. Variants that share data and tokenizer tokenize once, finished
variants (a `results.json` in their run folder) are skipped, and an interrupted variant resumes from its last
checkpoint, so rerunning the same command continues an interrupted comparison. Variants that differ only in
their seed are summarised as mean ± standard deviation in the report.
"""

import argparse
import itertools
import json
import logging
import os
import re
import sys
from contextlib import ExitStack
from pathlib import Path

from ..data.loading import task_shape_of
from ..data.tasks import get_task
from ..errors import HfclfInputError, run_command
from ..files import folder_lock, hfclf_files, remove_dead_lock
from ..reporting.report import check_report_folder, variant_folder, write_report
from ..run_folder import RESULTS_FILE, RunResults, check_same_settings, latest_complete_checkpoint
from ..training_args import (
    ClassifierTrainingArguments,
    check_flags_keep_the_axes,
    check_run_folder_flags,
    merge_flags,
    parse_values,
    read_mapping_file,
    redact_command,
    run_settings,
    run_values,
)
from .finetune import run_finetune

logger = logging.getLogger("hfclf")

# A variant's name is its run folder's name: no path separators, not hidden, not . or ..
VARIANT_NAME = re.compile(r"[\w=+-][\w.=+-]*")
# How long a report waits for another compare process that is writing the same report folder.
REPORT_LOCK_WAIT_SECONDS = 120


def load_config(path: str) -> dict:
    """Read and check a comparison config file."""
    config = read_mapping_file(path, what="Comparison config")
    if not (config.get("variants") or config.get("grid")):
        raise HfclfInputError(f"Comparison config {path} needs a 'variants' list and/or a 'grid' mapping.")
    unknown = set(config) - {"name", "data", "common", "variants", "grid", "description", "targets"}
    if unknown:
        raise HfclfInputError(
            f"Unknown key(s) {', '.join(sorted(unknown))} in {path}; use name, description, data, common, variants, "
            "grid, targets."
        )
    targets = config.get("targets", [])
    if not isinstance(targets, list) or any(type(target) not in (int, float) for target in targets):
        raise HfclfInputError(f"'targets' in {path} must be a list of main-metric scores, e.g. 'targets: [0.85, 0.9]'.")
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
    empty = [key for key, values in (config.get("grid") or {}).items() if not values]
    if empty:
        raise HfclfInputError(
            f"Grid value(s) of {', '.join(empty)} in {path} are empty lists, which would leave no variant to run; "
            "give at least one value, or drop the key."
        )
    for key, values in (config.get("grid") or {}).items():
        written = [json.dumps(value, sort_keys=True, default=str) for value in values]
        repeated = sorted({text for text in written if written.count(text) > 1})
        if repeated:
            raise HfclfInputError(
                f"Grid values of {key} in {path} repeat ({', '.join(repeated)}), which would train the same variant "
                "twice; give each value once."
            )
    config.setdefault("name", Path(path).stem)
    return config


def expand_variants(config: dict) -> list[dict]:
    """Every variant as `{"name": ..., "flags": {...}}`, the grid multiplied onto the listed variants."""
    variants = config.get("variants") or [{"name": _folder_name(config["name"])}]
    grid = config.get("grid") or {}
    keys = list(grid)
    expanded = []
    for number, variant in enumerate(variants, start=1):
        variant = dict(variant)
        # a named variant keeps its name in every grid run's: adding variants renames none
        named = "name" in variant and bool(config.get("variants"))
        if "name" not in variant:
            logger.info("Variant %d has no 'name', so it is called 'run'; give it a 'name' to choose.", number)
        base_name = str(variant.pop("name", "")) or "run"
        if not VARIANT_NAME.fullmatch(base_name):
            raise HfclfInputError(
                f"Variant name '{base_name}' is not a folder name; use letters, digits and . _ - = + only."
            )
        for values in itertools.product(*(grid[key] for key in keys)):
            flags = merge_flags(variant, dict(zip(keys, values)))
            suffix = "-".join(_name_part(key, value) for key, value in zip(keys, values))
            name = f"{base_name}-{suffix}" if suffix and (named or len(variants) > 1) else (suffix or base_name)
            expanded.append({"name": name, "flags": flags})
    names = [v["name"] for v in expanded]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HfclfInputError(f"Variant names repeat: {', '.join(duplicates)}; give every variant its own 'name'.")
    return expanded


def _name_part(key: str, value) -> str:
    """How a grid value names its variants: `learning_rate: 1e-4` -> learningrate1e-4; a mapping by its items."""
    if isinstance(value, dict):
        return "-".join(_name_part(inner, inner_value) for inner, inner_value in value.items())
    return _folder_name(f"{key.replace('_', '')}{value}")


def _folder_name(text: str) -> str:
    """`text` as a folder name: every character that is not a letter, a digit or . _ - = + becomes _."""
    return re.sub(r"[^\w.=+-]", "_", text).lstrip(".") or "_"


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


def check_one_task_shape(arguments: dict) -> None:
    """Variants that train different task shapes (their data or --problem_type differ) have metrics that do not
    compare: refused before any trains. `arguments`: each variant's parsed (model, data, training) arguments."""
    sources = {}
    for name, (_, data_args, _) in arguments.items():
        source = (data_args.dataset, data_args.dataset_name, data_args.dataset_config_name, data_args.train_file,
                  data_args.problem_type, data_args.label_column, data_args.label_columns)  # fmt: skip
        sources.setdefault(source, (data_args, []))[1].append(name)
    if len(sources) < 2:
        return
    shapes = {}
    for data_args, names in sources.values():
        shapes.setdefault(task_shape_of(data_args), []).extend(names)
    if len(shapes) > 1:
        found = "; ".join(f"{get_task(shape).description}: {', '.join(names)}" for shape, names in shapes.items())
        raise HfclfInputError(
            f"The variants train different task shapes ({found}), whose metrics do not compare; compare variants of "
            "one task (the same data and --problem_type)."
        )


def run_comparison(
    config: dict, report_dir: Path, extra: list[str], command: str, only: str | None = None
) -> list[dict]:
    """Run (or skip, or resume) every variant, then write the report; returns one summary row per variant.

    With `only` (comma-separated names), just those variants run and are reported, so separate processes can share
    one accelerator; a later call without it skips what they finished and reports the whole grid. Each process
    holds the folders of the variants it runs, so two processes never train the same variant.
    """
    variants = select_variants(expand_variants(config), only)
    check_run_folder_flags(config, extra, "compare")
    check_flags_keep_the_axes(config, extra, "compare")
    check_report_folder(report_dir)
    run_dirs = {variant["name"]: variant_folder(report_dir, variant["name"]) for variant in variants}
    # Parse every variant's flags before training any (or writing anything), so a typo in the last one does not
    # wait for the others.
    arguments = {}
    for variant in variants:
        try:
            values = run_values(config, variant["flags"], run_dirs[variant["name"]])
            arguments[variant["name"]] = parse_values(values, extra, source=f"config {config['name']}")
        except HfclfInputError as err:
            raise HfclfInputError(f"Variant {variant['name']}: {err}") from None
    check_one_task_shape(arguments)
    main_process = arguments[variants[0]["name"]][2].process_index == 0
    with ExitStack() as held:
        for name, run_dir in run_dirs.items():
            if main_process and not (run_dir / RESULTS_FILE).exists():
                held.enter_context(folder_lock(run_dir, f"Variant folder of {name}"))
            elif main_process:
                remove_dead_lock(run_dir)  # a killed comparison held it from before the variant finished
        finished = {name for name, run_dir in run_dirs.items() if (run_dir / RESULTS_FILE).exists()}  # now held
        for name in [name for name in run_dirs if name in finished]:  # skipped, it must stand for this command's
            now = run_settings(*arguments[name])
            now.pop("num_processes")  # a rerun that only reports may run on other processes than the variant did
            check_same_settings(RunResults.load(run_dirs[name]).settings, now, f"Variant {name} ({run_dirs[name]})",
                                "rerun with its flags, or pass another --report_dir")  # fmt: skip
        data_cache = {}
        for index, variant in enumerate(variants, start=1):
            if variant["name"] in finished:
                logger.info("[%d/%d] %s: finished earlier, skipped", index, len(variants), variant["name"])
                continue
            logger.info("[%d/%d] %s", index, len(variants), variant["name"])
            model_args, data_args, training_args = arguments[variant["name"]]
            prepare_resume(training_args)
            run_finetune(model_args, data_args, training_args, data_cache=data_cache)

    if not main_process:
        return []
    runs = [RunResults.load(run_dirs[variant["name"]]) for variant in variants]
    skipped = [variant["name"] for variant in variants if variant["name"] in finished]
    with folder_lock(report_dir, "Report folder", wait=REPORT_LOCK_WAIT_SECONDS):
        return write_report(config, variants, runs, report_dir, command, skipped)


# ------------------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
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
            "resumes an interrupted one; a rerun with other flags than a finished variant's is refused."
        ),
    )
    parser.add_argument("config", help="comparison config (.yaml or .json), see recipes/configs/")
    parser.add_argument("--report_dir", "--report-dir", help="report folder (default: reports/<config name>)")
    parser.add_argument("--variants", help="comma-separated variant names to run and report (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (of `hfclf compare`, or of a script such as `recipes/compare.py` when `argv` is None);
    bad input prints one `error:` line and returns exit code 2."""
    program = f"python {sys.argv[0]}" if argv is None else "hfclf compare"  # as the report quotes the command
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = build_parser().parse_known_args(argv)

    def body():
        config = load_config(args.config)
        report_dir = Path(args.report_dir or os.path.join("reports", config["name"]))
        command = " ".join([program, *redact_command(argv)])
        run_comparison(config, report_dir, extra, command, only=args.variants)

    return run_command(body)
