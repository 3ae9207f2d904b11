"""Hyperparameter search with Optuna: each trial is a fine-tuning run, scored on the validation split.

A search config is a comparison config (see `hfclf.commands.compare`) with a `search:` block instead of variants:

```yaml
name: sst2_lr
data: {dataset: sst2, max_train_samples: 2000}
common: {pooling: mean, num_train_epochs: 2}
search:
  sampler: tpe                    # tpe (default), random or grid
  n_trials: 20                    # trials of the study, over every worker
  pruner: median                  # median (default): stop a trial whose validation score lags; none
  seed: 0                         # each trial's sampler seed is drawn from it and the trial's place
  params:
    learning_rate: {low: 1e-5, high: 1e-3, log: true}   # a float range
    lstm_layers: {low: 1, high: 3}                       # an int range
    pooling: [mean, max]                                 # a choice (grid: every param must be a list)
```

The study lives in a storage (`--storage`): a SQLite file in the report folder by default, or any Optuna URL
(`postgresql://...`, `mysql://...`), or `journal:PATH` for Optuna's journal file on a shared disk. Start the same
command on several machines against one storage and they work on one study; Optuna hands out the trials, hfclf adds
no scheduler. Each trial trains into `<report_dir>/runs/trial-<number>`. When a worker finishes, it writes the report
of every complete trial it can see (the same format as `hfclf compare`) and `best_trial.yaml`, a config that reruns
the best trial with `hfclf train best_trial.yaml`.
"""

import argparse
import itertools
import logging
import math
import os
import shutil
import sys
from pathlib import Path

import optuna
import yaml

from ..errors import HfclfInputError, first_line, run_command
from ..files import atomic_output, died_here, folder_lock, process_id, process_tag
from ..reporting.report import check_report_folder, variant_folder, write_report
from ..run_folder import RESULTS_FILE, RunResults, check_same_settings
from ..training_args import (
    check_flags_keep_the_axes,
    check_run_folder_flags,
    check_values,
    parse_values,
    read_mapping_file,
    redact_command,
    run_settings,
    run_values,
)
from .finetune import run_finetune

logger = logging.getLogger("hfclf")

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
SEARCH_KEYS = {"sampler", "n_trials", "pruner", "seed", "params", "direction"}
BEST_TRIAL_FILE = "best_trial.yaml"
STUDY_FILE = "search.db"  # the study's SQLite storage in the report folder, unless --storage names another
STUDY_LOCK_WAIT_SECONDS = 120
WORKER_ATTR = "hfclf_worker"  # the trial's user attribute naming the process that runs it
RERUN_ATTR = "hfclf_rerun_of"  # on a queued trial: the number of the stopped trial whose parameters it runs again


def load_search_config(path: str) -> dict:
    """Read and check a search config: name, data, common and a `search` block with `params`."""
    config = read_mapping_file(path, what="Search config")
    unknown = set(config) - {"name", "description", "data", "common", "search"}
    if unknown:
        raise HfclfInputError(
            f"Unknown key(s) {', '.join(sorted(unknown))} in {path}; use name, description, data, common, search."
        )
    search = config.get("search")
    if not isinstance(search, dict) or not isinstance(search.get("params"), dict) or not search["params"]:
        raise HfclfInputError(
            f"Search config {path} needs a 'search' mapping with 'params', e.g. "
            "'search: {params: {learning_rate: {low: 1e-5, high: 1e-3, log: true}}}'."
        )
    unknown = set(search) - SEARCH_KEYS
    if unknown:
        known = ", ".join(sorted(SEARCH_KEYS))
        raise HfclfInputError(f"Unknown key(s) {', '.join(sorted(unknown))} in 'search'; use {known}.")
    search.setdefault("sampler", "tpe")
    search.setdefault("pruner", "median")
    search.setdefault("n_trials", 20)
    search.setdefault("seed", 0)
    search.setdefault("direction", "maximize")
    for key, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("direction", ("maximize", "minimize"))):
        if search[key] not in choices:
            raise HfclfInputError(f"search.{key} '{search[key]}' is unknown; choose one of: {', '.join(choices)}.")
    if type(search["n_trials"]) is not int or search["n_trials"] < 1:
        raise HfclfInputError(f"search.n_trials must be a positive whole number, got {search['n_trials']!r}.")
    check_seed(search["seed"], "search.seed")
    for name, spec in search["params"].items():
        check_param(name, spec, search["sampler"])
    for key in ("data", "common"):
        if not isinstance(config.get(key) or {}, dict):
            raise HfclfInputError(f"'{key}' in {path} must be a mapping of flag: value pairs.")
    config.setdefault("name", Path(path).stem)
    return config


def check_seed(value, name: str) -> None:
    """A sampler seed (the config's, or a worker's number mixed into it) is a whole number from 0 to 2**31 - 1, as
    numpy takes it."""
    if type(value) is not int or not 0 <= value < 2**31:
        raise HfclfInputError(f"{name} must be a whole number from 0 to {2**31 - 1}, got {value!r}.")


def check_param(name: str, spec, sampler: str) -> None:
    """A searched flag is a list of choices or a `{low, high[, log, step]}` range (grid: lists only)."""
    if isinstance(spec, list) and spec:
        return
    if sampler == "grid":
        raise HfclfInputError(f"search.params.{name}: the grid sampler takes lists of values, e.g. '{name}: [1, 2]'.")
    if not (isinstance(spec, dict) and {"low", "high"} <= set(spec) <= {"low", "high", "log", "step"}):
        raise HfclfInputError(
            f"search.params.{name} must be a list of choices or a range '{{low: ..., high: ...}}' (with optional "
            "log: true or step), e.g. '{low: 1e-5, high: 1e-3, log: true}'."
        )
    for key in ("low", "high", "step"):  # YAML reads 1e-5 (without a dot) as a string
        if isinstance(spec.get(key), str):
            try:
                spec[key] = float(spec[key])
            except ValueError:
                pass
    if not all(type(spec[key]) in (int, float) for key in ("low", "high")) or not spec["low"] < spec["high"]:
        raise HfclfInputError(f"search.params.{name}: low and high must be numbers with low < high, got {spec}.")
    if spec.get("log") and spec.get("step") is not None:
        raise HfclfInputError(f"search.params.{name}: a log range takes no step; drop one of them.")
    if spec.get("log") and not spec["low"] > 0:
        raise HfclfInputError(f"search.params.{name}: a log range starts above 0, got low {spec['low']}.")
    if spec.get("step") is not None and not (type(spec["step"]) in (int, float) and spec["step"] > 0):
        raise HfclfInputError(f"search.params.{name}: step must be a positive number, got {spec['step']!r}.")


def check_trials(config: dict, extra: list[str]) -> None:
    """Parse every value that a trial can take (each choice; each range's ends) as the trials' flags would be parsed,
    and the direction against the metric, before a study or a run is written."""
    params = config["search"]["params"]
    # the flags of every trial, by name and type (checks across flags wait for the params' values, below)
    check_values(run_values(config, {}, "runs/check"), source="the config's data and common")
    first = {name: spec[0] if isinstance(spec, list) else spec["low"] for name, spec in params.items()}
    for name, spec in params.items():
        for value in spec if isinstance(spec, list) else (spec["low"], spec["high"]):
            values = run_values(config, {**first, name: value}, "runs/check")
            try:
                training_args = parse_values(values, extra, source=f"search.params.{name}")[2]
            except HfclfInputError as err:
                raise HfclfInputError(f"search.params.{name}: {value!r}: {err}") from None
            check_direction(config, training_args)
    _check_combinations(config, extra, first)


# The most combinations of choices that are parsed before a study (each takes milliseconds).
CHECKED_COMBINATIONS = 256


def _check_combinations(config: dict, extra: list[str], first: dict) -> None:
    """Choices that pass one by one can fail together (`arch: [lstm, transformer]` with `pooling: [max, last]`: the
    Transformer has no `last`): every combination of the listed choices (up to `CHECKED_COMBINATIONS`) is parsed."""
    choices = {name: spec for name, spec in config["search"]["params"].items() if isinstance(spec, list)}
    if len(choices) < 2:
        return
    for combination in itertools.islice(itertools.product(*choices.values()), CHECKED_COMBINATIONS):
        picked = dict(zip(choices, combination))
        try:
            parse_values(run_values(config, {**first, **picked}, "runs/check"), extra, source="search.params")
        except HfclfInputError as err:
            shown = ", ".join(f"{name} {value!r}" for name, value in picked.items())
            raise HfclfInputError(f"search.params: {shown} fail together: {err}") from None


def check_direction(config: dict, training_args) -> None:
    """search.direction must agree with whether the trials' `metric_for_best_model` is higher when better."""
    higher = training_args.greater_is_better  # None until the run resolves "auto" (every main metric: higher)
    if higher is not None and (config["search"]["direction"] == "maximize") != higher:
        raise HfclfInputError(
            f"search.direction is {config['search']['direction']} but --metric_for_best_model "
            f"{training_args.metric_for_best_model} is {'higher' if higher else 'lower'} when better; make them agree."
        )


def distribution(spec):
    """The Optuna distribution of a searched flag: its choices, or its int or float range."""
    if isinstance(spec, list):
        return optuna.distributions.CategoricalDistribution(spec)
    log = spec.get("log", False)
    if all(type(spec[key]) is int for key in ("low", "high")) and type(spec.get("step", 1)) is int:
        return optuna.distributions.IntDistribution(spec["low"], spec["high"], step=spec.get("step", 1), log=log)
    low, high = float(spec["low"]), float(spec["high"])
    return optuna.distributions.FloatDistribution(low, high, step=spec.get("step"), log=log)


def suggest(trial, params: dict) -> dict:
    """The flag values of one trial."""
    values = {}
    for name, spec in params.items():
        found = distribution(spec)
        if isinstance(found, optuna.distributions.CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, found.choices)
        elif isinstance(found, optuna.distributions.IntDistribution):
            values[name] = trial.suggest_int(name, found.low, found.high, step=found.step, log=found.log)
        else:
            values[name] = trial.suggest_float(name, found.low, found.high, step=found.step, log=found.log)
    return values


def check_search_space(study, params: dict) -> None:
    """A study's trials keep the choices (and the kind of range) they were sampled from: a config that changed them
    is refused before any trial runs, where Optuna would fail the next trial."""
    for trial in study.get_trials(deepcopy=False):
        for name, recorded in trial.distributions.items():
            if name not in params:
                continue
            wanted = distribution(params[name])
            try:
                optuna.distributions.check_distribution_compatibility(recorded, wanted)
            except ValueError:
                raise HfclfInputError(
                    f"search.params.{name} differs from what study '{study.study_name}' sampled it from "
                    f"({_described(recorded)}), and a study keeps its search space: restore it, or start a new study "
                    "with another config name or --report_dir."
                ) from None


def _described(found) -> str:
    if isinstance(found, optuna.distributions.CategoricalDistribution):
        return f"choices {list(found.choices)}"
    return f"{'a log' if found.log else 'a'} range {found.low:g} to {found.high:g}"


def make_sampler(search: dict, worker: int = 0):
    """The study's sampler. A grid's points are shuffled by the config's seed (plus `worker`); a random or TPE
    sampler is seeded afresh for each trial by that seed, `worker` and the trial's place in the study (failed trials
    whose parameters were queued again not counted). A search that was killed and started again samples the trials
    an uninterrupted one would, and workers that share a study sample different trials."""
    if search["sampler"] == "grid":
        return optuna.samplers.GridSampler(search["params"], seed=search["seed"] + worker)
    sampler = optuna.samplers.RandomSampler if search["sampler"] == "random" else optuna.samplers.TPESampler
    return TrialSeededSampler(lambda seed: sampler(seed=seed), (search["seed"], worker))


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """Delegates each trial to a sampler built for it by `build(seed)`, the seed drawn from `entropy` and the trial's
    place: its number less the earlier trials that failed and were queued again (their reruns take their places).
    One sampler seeded once draws from one sequence, which a restart would begin again."""

    def __init__(self, build, entropy: tuple):
        self._build, self._entropy = build, entropy
        self._sampler = build(self._seed(0))

    def _seed(self, place: int) -> int:
        import numpy as np

        return int(np.random.SeedSequence([*self._entropy, place]).generate_state(1)[0])

    def before_trial(self, study, trial) -> None:
        trials = study.get_trials(deepcopy=False)
        rerun = {other.user_attrs.get(RERUN_ATTR) for other in trials}
        failed = optuna.trial.TrialState.FAIL
        stopped = sum(
            other.number < trial.number and other.state == failed and other.number in rerun for other in trials
        )
        self._sampler = self._build(self._seed(trial.number - stopped))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._sampler.after_trial(study, trial, state, values)


def make_storage(url: str):
    """An Optuna storage from a URL (one clear error when it cannot be opened)."""
    try:
        return _storage(url)
    except Exception as err:  # a URL's scheme, driver or path: sqlalchemy's, Optuna's or the OS's own errors
        raise HfclfInputError(
            f"--storage {url} cannot be opened ({first_line(err)}); pass sqlite:///FILE, journal:PATH or a database "
            "URL that this machine can reach."
        ) from None


def _storage(url: str):
    """`journal:PATH` is a journal file (shared disks); the rest are databases, SQLite waiting for its lock instead
    of failing when workers write at once."""
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    if url.startswith("sqlite"):  # one machine; its own writers wait for the file lock instead of failing
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    # Workers on several machines: one that dies leaves its trial RUNNING, which a heartbeat marks failed so that it
    # stops counting towards n_trials. (Not on SQLite, where the heartbeat's extra writer can fail a busy worker.)
    return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=300)


def retry_killed_trials(study, report_dir: Path) -> None:
    """A trial left RUNNING by a worker of this host that was killed is marked failed, and its parameters are queued
    again, so that it neither counts towards n_trials nor is lost; its unfinished run folder goes (the trial that
    takes its place has a number, and a folder, of its own). Other hosts' trials: the storage's heartbeat."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker and died_here(worker):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            queue_again(study, trial)
            remove_trial_folder(report_dir, trial.number)
            logger.warning(
                "Trial %d was left running by a killed worker (process %s); it is marked failed, its parameters are "
                "queued again and its unfinished run folder is removed.",
                trial.number,
                process_id(worker),
            )


def check_trials_settings(config: dict, study, report_dir: Path, extra: list[str]) -> None:
    """The study's finished trials (those whose run folders are here) must have been made with the flags this command
    gives their parameters: a study ranks trials of one set-up, and its best trial's config reruns it."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        run_dir = variant_folder(report_dir, f"trial-{trial.number}")
        results = RunResults.load(run_dir)
        if results is None:  # another machine's trial
            continue
        parsed = parse_values(run_values(config, trial.params, run_dir), extra, source=f"trial {trial.number}")
        check_same_settings(results.settings, run_settings(*parsed), f"Trial {trial.number} ({run_dir})",
                            "rerun the search with its flags, or pass another --report_dir")  # fmt: skip


def remove_trial_folder(report_dir: Path, number: int) -> None:
    """The run folder of a trial that was stopped and queued again: no report reads it, no trial resumes it."""
    shutil.rmtree(variant_folder(report_dir, f"trial-{number}"), ignore_errors=True)


def queue_again(study, trial) -> None:
    """Queue the parameters of a stopped `trial` (killed or interrupted) for a trial that takes its place."""
    study.enqueue_trial(trial.params, user_attrs={RERUN_ATTR: trial.number}, skip_if_exists=False)


def pruning_callback(trial):
    """A `TrainerCallback` that reports to the trial, at each evaluation, the best score so far (of the run's
    `metric_for_best_model`: the trial's objective is its best checkpoint's), and stops the run when the pruner gives
    the trial up; never at the last evaluation, where stopping would save nothing and lose a finished trial. Steps
    count hundredths of an epoch, so trials with other batch or data sizes are compared at the same point of
    training."""
    from transformers import TrainerCallback

    class OptunaPruning(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            value = (metrics or {}).get(f"eval_{args.metric_for_best_model}")
            if value is None or state.epoch is None:
                return
            if state.best_metric is not None:  # the best before this evaluation (the trainer adds it after)
                value = (max if args.greater_is_better else min)(value, state.best_metric)
            trial.report(value, step=round(100 * state.epoch))
            if state.global_step < state.max_steps and trial.should_prune():
                metric = f"eval_{args.metric_for_best_model}"
                raise optuna.TrialPruned(f"best {metric} {value:.4f} at epoch {state.epoch:.2f}")

    return OptunaPruning()


class InterruptedTrials(logging.Filter):
    """Drops Optuna's "Trial N failed" records (a traceback) for the trials that Ctrl-C stopped: hfclf says in one
    line that they were interrupted and queued again."""

    def __init__(self):
        super().__init__()
        self.numbers: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.getMessage().startswith(f"Trial {number} failed") for number in self.numbers)


def objective(config: dict, report_dir: Path, extra: list[str], interrupted: set[int]):
    """The study's objective: train one trial and return the validation score of its best checkpoint (by
    `metric_for_best_model`: the task's main metric unless set), as the run reports it. The numbers of trials that
    Ctrl-C stopped go into `interrupted`."""

    def run_trial(trial) -> float:
        trial.set_user_attr(WORKER_ATTR, process_tag())  # a later worker can tell that this one was killed
        values = suggest(trial, config["search"]["params"])
        run_dir = variant_folder(report_dir, f"trial-{trial.number}")
        model_args, data_args, training_args = parse_values(run_values(config, values, run_dir), extra,
                                                            source=f"trial {trial.number}")  # fmt: skip
        check_direction(config, training_args)
        logger.info("Trial %d starts: %s", trial.number, values)
        try:
            results = run_finetune(model_args, data_args, training_args, callbacks=[pruning_callback(trial)])
        except KeyboardInterrupt:  # Optuna fails the trial; its parameters wait for the search to start again
            interrupted.add(trial.number)
            queue_again(trial.study, trial)
            remove_trial_folder(report_dir, trial.number)
            logger.warning("Trial %d was interrupted; its parameters are queued again.", trial.number)
            raise
        # the validation score the run reports (and the report ranks): its best checkpoint's, with tuned thresholds
        score = results.metric(results.training_arguments["metric_for_best_model"], "eval")
        if score is None or math.isnan(score):
            raise optuna.TrialPruned("no validation score")
        return score

    return run_trial


def run_search(config: dict, report_dir: Path, storage_url: str | None, worker: int, extra: list[str],
               command: str) -> dict:  # fmt: skip
    """Join (or create) the study and run trials until it has `n_trials`; then report every complete trial and
    write the best one's config. Returns the best trial's flags."""
    search = config["search"]
    check_run_folder_flags(config, extra, "search")
    check_flags_keep_the_axes(config, extra, "search")
    check_report_folder(report_dir, own=(STUDY_FILE,))
    check_trials(config, extra)
    storage_url = storage_url or f"sqlite:///{(report_dir / STUDY_FILE).resolve()}"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2) if search["pruner"] == "median" else None
    with folder_lock(report_dir, "Search study", wait=STUDY_LOCK_WAIT_SECONDS):  # one worker creates the tables
        storage = make_storage(storage_url)
        study = optuna.create_study(
            study_name=config["name"],
            storage=storage,
            sampler=make_sampler(search, worker),
            pruner=pruner or optuna.pruners.NopPruner(),
            direction=search["direction"],
            load_if_exists=True,
        )
        check_search_space(study, search["params"])
        retry_killed_trials(study, report_dir)
    check_trials_settings(config, study, report_dir, extra)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)
    stop = optuna.study.MaxTrialsCallback(search["n_trials"], states=states)
    if len(study.get_trials(deepcopy=False, states=states)) < search["n_trials"]:
        quiet, optuna_logger = InterruptedTrials(), logging.getLogger("optuna.study._optimize")
        optuna_logger.addFilter(quiet)
        try:
            study.optimize(objective(config, report_dir, extra, quiet.numbers), callbacks=[stop], catch=())
        finally:
            optuna_logger.removeFilter(quiet)
    return write_search_report(config, study, report_dir, command, extra)


def write_search_report(config: dict, study, report_dir: Path, command: str, extra: list[str]) -> dict:
    """The comparison report of the complete trials, and `best_trial.yaml`; returns the best trial's flags."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    complete = [t for t in complete if (variant_folder(report_dir, f"trial-{t.number}") / RESULTS_FILE).exists()]
    if not complete:
        raise HfclfInputError(f"No trial of study '{config['name']}' completed; see the log above for why.")
    variants = [{"name": f"trial-{t.number}", "flags": dict(t.params)} for t in complete]
    runs = [RunResults.load(variant_folder(report_dir, variant["name"])) for variant in variants]
    with folder_lock(report_dir, "Report folder", wait=STUDY_LOCK_WAIT_SECONDS):
        write_report(config, variants, runs, report_dir, command, [])
    best = study.best_trial
    flags = run_values(config, dict(best.params), Path("runs") / f"{config['name']}-best")
    rerun = " ".join([str(report_dir / BEST_TRIAL_FILE), *redact_command(extra)])  # the trials' command-line flags
    with atomic_output(report_dir / BEST_TRIAL_FILE) as temporary:
        Path(temporary).write_text(
            f"# Best trial of study '{config['name']}': trial {best.number}, validation score {best.value:.6g}.\n"
            f"# Rerun: hfclf train {rerun}\n" + yaml.safe_dump(flags, sort_keys=False)
        )
    print(f"Best trial {best.number}: {best.value:.4f} on validation with {best.params}", flush=True)
    print(f"Rerun it: hfclf train {rerun}", flush=True)
    return flags


# ------------------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="hfclf search",
        description="Search hyperparameters with Optuna; every trial is a fine-tuning run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  hfclf search recipes/configs/sst2_search.yaml\n"
            "  hfclf search recipes/configs/sst2_search.yaml --storage postgresql://user@db/hfclf  # on each machine\n"
            "  hfclf search recipes/configs/sst2_search.yaml --storage journal:/shared/study.log\n\n"
            "Any other flag (every finetune flag) is passed to every trial."
        ),
    )
    parser.add_argument("config", help="search config (.yaml or .json) with a 'search' block")
    parser.add_argument("--report_dir", "--report-dir", help="report folder (default: reports/<config name>)")
    parser.add_argument("--storage", help=f"Optuna storage URL (default: sqlite:///<report_dir>/{STUDY_FILE})")
    parser.add_argument(
        "--worker",
        type=int,
        default=0,
        help="mixed into the sampler seeds of the trials this worker samples (default 0); workers that share a study "
        "sample different trials without it",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; bad input prints one `error:` line and returns exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = build_parser().parse_known_args(argv)

    def body():
        check_seed(args.worker, "--worker")
        config = load_search_config(args.config)
        report_dir = Path(args.report_dir or os.path.join("reports", config["name"]))
        command = " ".join(["hfclf search", *redact_command(argv)])
        run_search(config, report_dir, args.storage, args.worker, extra, command)

    return run_command(body)
