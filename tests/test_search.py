"""Hyperparameter search on Optuna: config checks, the pruning callback, and two workers sharing one study."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hfclf.commands.search import load_search_config, pruning_callback
from hfclf.errors import HfclfInputError
from hfclf.training_args import parse_values

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, search: dict, tiny_encoder_dir, toy_data, common: dict | None = None) -> Path:
    config = {
        "name": "toy_search",
        "data": {**{f"{split}_file": str(p) for split, p in toy_data.items()}, "max_length": 32},
        "common": {
            "model": str(tiny_encoder_dir),
            "arch": "lstm",
            "lstm_hidden_size": 16,
            "num_train_epochs": 1,
            "measure_inference_texts": 0,
            **(common or {}),
        },  # fmt: skip
        "search": search,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "search, message",
    [
        (None, "needs a 'search' mapping with 'params'"),
        ({"params": {}}, "needs a 'search' mapping with 'params'"),
        ({"params": {"learning_rate": [1e-3]}, "sampler": "cmaes"}, "search.sampler 'cmaes' is unknown"),
        ({"params": {"learning_rate": [1e-3]}, "n_trials": 0}, "search.n_trials must be a positive whole number"),
        ({"params": {"learning_rate": [1e-3]}, "trials": 3}, "Unknown key(s) trials in 'search'"),
        ({"params": {"learning_rate": 1e-3}}, "must be a list of choices or a range"),
        ({"params": {"learning_rate": {"low": 1e-3, "high": 1e-5}}}, "low < high"),
        ({"params": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True, "step": 1e-5}}}, "takes no step"),
        ({"params": {"learning_rate": {"low": 1e-5, "high": 1e-3}}, "sampler": "grid"}, "grid sampler takes lists"),
        ({"params": {"learning_rate": {"low": 1e-3, "high": 1e-2, "step": 0}}}, "step must be a positive number"),
        ({"params": {"learning_rate": [1e-3]}, "seed": "abc"}, "search.seed must be a whole number from 0 to"),
        ({"params": {"learning_rate": [1e-3]}, "seed": 1.5}, "search.seed must be a whole number from 0 to"),
        ({"params": {"learning_rate": [1e-3]}, "seed": -1}, "search.seed must be a whole number from 0 to"),
    ],
)
def test_bad_search_configs_are_clear(search, message, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", **({"search": search} if search is not None else {})}))
    with pytest.raises(HfclfInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_search_config(str(path))


def test_a_range_written_like_1e_5_is_a_number(tmp_path):
    """YAML reads 1e-5 (without a dot) as a string; the example of hfclf's own messages is written that way."""
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nsearch:\n  params:\n    learning_rate: {low: 1e-5, high: 1e-3, log: true}\n")
    learning_rate = load_search_config(str(path))["search"]["params"]["learning_rate"]
    assert learning_rate == {"low": 1e-5, "high": 1e-3, "log": True}


@pytest.mark.parametrize(
    "params, extra, message",
    [
        ({"learnin_rate": [1e-3]}, [], "search.params.learnin_rate: 0.001: Unknown flag 'learnin_rate'"),
        ({"pooling": ["max", "bogus"]}, [], "search.params.pooling: 'bogus': "),
        ({"learning_rate": [-1.0]}, [], "search.params.learning_rate: -1.0: "),
        ({"lora_r": [4, 8]}, [], "search.params.lora_r: 4: --lora_r"),
        ({"output_dir": ["a", "b"]}, [], "--output_dir does not apply to search"),
        ({"pooling": ["max"]}, ["--bogus_flag", "1"], "unrecognized arguments: --bogus_flag 1 (in the command line)"),
        ({"pooling": ["max"], "common": {"no_word_vectors": 1}}, [], "'no_word_vectors' in the config's data and"),
        ({"learning_rate": [1e-3, 1e-2]}, ["--learning_rate", "0.05"], "--learning_rate is a searched param"),
        (
            {"arch": ["lstm", "transformer"], "pooling": ["max", "last"], "common": {"lstm_hidden_size": None}},
            [],  # each value passes alone, but the Transformer has no `last` pooling
            "search.params: arch 'transformer', pooling 'last' fail together: Unknown pooling 'last'",
        ),
        ({"pooling": ["max"]}, ["--worker", "-1"], "--worker must be a whole number from 0 to"),
    ],
)
def test_every_value_of_a_search_is_checked_before_anything_is_written(
    params, extra, message, tmp_path, tiny_encoder_dir, toy_data, capsys
):
    from hfclf.commands.search import main

    common = params.pop("common", {})  # flags of every trial, not searched
    config = write_config(tmp_path / "s.yaml", {"params": params, "pruner": "none"}, tiny_encoder_dir, toy_data, common)
    report = tmp_path / "report"
    assert main([str(config), "--report_dir", str(report), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not report.exists()


def test_common_flags_are_checked_with_the_searched_values_they_depend_on(tmp_path):
    """`dropout` in common applies to --arch lstm and transformer: a search over those two is valid (it was refused,
    checked against the default arch), and one that also tries pooled names that value."""
    from hfclf.commands.search import check_trials, load_search_config

    path = tmp_path / "s.yaml"
    for archs, refused in ((["lstm", "transformer"], None), (["lstm", "pooled"], "search.params.arch: 'pooled': ")):
        config = {"name": "s", "data": {"dataset": "sst2"}, "common": {"dropout": 0.2}}
        path.write_text(yaml.safe_dump({**config, "search": {"params": {"arch": archs}}}))
        if refused is None:
            check_trials(load_search_config(str(path)), [])
        else:
            with pytest.raises(HfclfInputError, match=refused):
                check_trials(load_search_config(str(path)), [])


@pytest.mark.parametrize("storage", ["foo://bar", "journal:/nonexistent/dir/study.log"])
def test_a_storage_that_cannot_be_opened_is_one_clear_error(storage, tmp_path, tiny_encoder_dir, toy_data, capsys):
    from hfclf.commands.search import main

    config = write_config(tmp_path / "s.yaml", {"params": {"pooling": ["max"]}}, tiny_encoder_dir, toy_data)
    report = tmp_path / "report"
    assert main([str(config), "--report_dir", str(report), "--storage", storage]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --storage {storage} cannot be opened (")
    assert not report.exists()


def test_a_trial_left_running_by_a_killed_worker_is_run_again(tmp_path, tiny_encoder_dir, toy_data, caplog):
    """kill -9 in the middle of a trial leaves it RUNNING in SQLite (no heartbeat there): the rerun marks it failed
    and queues its parameters again, so the study still gets n_trials complete trials."""
    import optuna

    from hfclf.commands.search import WORKER_ATTR, main
    from hfclf.files import process_tag

    params = {"pooling": ["last", "max"]}
    config = write_config(tmp_path / "s.yaml", {"params": params, "n_trials": 2, "pruner": "none"}, tiny_encoder_dir,
                          toy_data)  # fmt: skip
    report = tmp_path / "report"
    report.mkdir()
    study = optuna.create_study(study_name="toy_search", storage=f"sqlite:///{report / 'search.db'}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = study.ask({"pooling": optuna.distributions.CategoricalDistribution(["last", "max"])})
    killed.set_user_attr(WORKER_ATTR, f"{dead.pid}-{process_tag().partition('-')[2]}")
    caplog.set_level("INFO", logger="hfclf")
    assert main([str(config), "--report_dir", str(report)]) == 0
    assert f"Trial {killed.number} was left running by a killed worker (process {dead.pid})" in caplog.text
    trials = study.get_trials()
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert trials[1].params == trials[0].params  # queued again
    assert [t.state for t in trials[1:]] == [optuna.trial.TrialState.COMPLETE] * 2


def test_a_killed_search_resumes_to_the_trials_of_an_uninterrupted_one(tmp_path, tiny_encoder_dir, toy_data):
    """Each trial is seeded by its place in the study: a search killed in its second trial (left RUNNING, then
    failed and queued again when started again) ends with the trials and scores of one that ran through."""
    import optuna

    from hfclf.commands.search import WORKER_ATTR, load_search_config, main, make_sampler, suggest
    from hfclf.files import process_tag

    params = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "pooling": ["last", "max", "mean"]}
    config = write_config(tmp_path / "s.yaml", {"n_trials": 3, "pruner": "none", "params": params}, tiny_encoder_dir,
                          toy_data)  # fmt: skip
    first = write_config(tmp_path / "one.yaml", {"n_trials": 1, "pruner": "none", "params": params}, tiny_encoder_dir,
                         toy_data)  # fmt: skip
    through, resumed = tmp_path / "through", tmp_path / "resumed"
    assert main([str(config), "--report_dir", str(through)]) == 0
    assert main([str(first), "--report_dir", str(resumed)]) == 0  # the first trial, then the second is killed:
    search = load_search_config(str(config))["search"]
    storage = f"sqlite:///{resumed / 'search.db'}"
    study = optuna.load_study(study_name="toy_search", storage=storage, sampler=make_sampler(search, 0))
    killed = study.ask()
    suggest(killed, search["params"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed.set_user_attr(WORKER_ATTR, f"{dead.pid}-{process_tag().partition('-')[2]}")
    (left := resumed / "runs" / f"trial-{killed.number}" / "checkpoint-2").mkdir(parents=True)  # what it had written
    assert main([str(config), "--report_dir", str(resumed)]) == 0
    assert not left.parent.exists()  # its trial was queued again under another number: nothing reads the folder

    def complete(report):
        trials = optuna.load_study(study_name="toy_search", storage=f"sqlite:///{report / 'search.db'}").trials
        return [(t.params, t.value) for t in trials if t.state == optuna.trial.TrialState.COMPLETE]

    assert len(complete(through)) == 3 and len({str(params) for params, _ in complete(through)}) == 3
    assert complete(resumed) == complete(through)


def test_a_rerun_with_other_flags_is_refused_before_any_trial(tmp_path, tiny_encoder_dir, toy_data, capsys):
    """A study ranks trials of one set-up (and its best trial's config reruns it): more trials with another seed or
    data would mix set-ups, so a rerun must give the finished trials' flags."""
    import optuna

    from hfclf.commands.search import main

    params = {"pooling": ["last", "max"]}
    config = write_config(tmp_path / "s.yaml", {"n_trials": 1, "pruner": "none", "params": params}, tiny_encoder_dir,
                          toy_data)  # fmt: skip
    report = tmp_path / "report"
    assert main([str(config), "--report_dir", str(report)]) == 0
    more = write_config(tmp_path / "more.yaml", {"n_trials": 2, "pruner": "none", "params": params}, tiny_encoder_dir,
                        toy_data)  # fmt: skip
    capsys.readouterr()
    assert main([str(more), "--report_dir", str(report), "--seed", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: Trial 0 ({report / 'runs' / 'trial-0'}) was made with other settings: --seed 42")
    assert "rerun the search with its flags, or pass another --report_dir." in err[-1]
    assert len(optuna.load_study(study_name="toy_search", storage=f"sqlite:///{report / 'search.db'}").trials) == 1


def test_a_changed_search_space_is_refused_before_any_trial(tmp_path, tiny_encoder_dir, toy_data, capsys):
    """Optuna fails a trial whose choices (or kind of range) differ from the study's; hfclf refuses the config
    first, in one line."""
    import optuna

    from hfclf.commands.search import main

    report = tmp_path / "report"
    report.mkdir()
    study = optuna.create_study(study_name="toy_search", storage=f"sqlite:///{report / 'search.db'}")
    distributions = {
        "pooling": optuna.distributions.CategoricalDistribution(["last", "max"]),
        "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
    }
    study.add_trial(optuna.trial.create_trial(params={"pooling": "last", "learning_rate": 1e-3}, value=0.5,
                                              distributions=distributions))  # fmt: skip
    rate = {"low": 1e-4, "high": 1e-2, "log": True}
    for params, changed, was in (
        ({"pooling": ["last", "mean"], "learning_rate": rate}, "pooling", "choices ['last', 'max']"),
        ({"pooling": ["last", "max"], "learning_rate": {"low": 1e-4, "high": 1e-2}}, "learning_rate", "a log range"),
    ):
        config = write_config(tmp_path / "s.yaml", {"params": params, "n_trials": 2}, tiny_encoder_dir, toy_data)
        assert main([str(config), "--report_dir", str(report)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        expected = f"error: search.params.{changed} differs from what study 'toy_search' sampled it from ({was}"
        assert len(err) == 1 and err[0].startswith(expected), err
    assert len(study.get_trials()) == 1 and not (report / "runs").exists()


def test_a_trial_scores_what_its_run_reports(tmp_path, tiny_encoder_dir):
    """With thresholds tuned on validation, the run reports its validation metrics at those thresholds; the trial's
    score is that reported number, so the search's best trial is the report's best."""
    import optuna
    from tiny_models import write_toy_shapes

    from hfclf.commands.search import main
    from hfclf.run_folder import RunResults

    (tmp_path / "data").mkdir()
    shapes = write_toy_shapes(tmp_path / "data")
    search = {"sampler": "grid", "n_trials": 2, "pruner": "none", "params": {"threshold": ["tune", "tune_per_label"]}}
    config = write_config(tmp_path / "s.yaml", search, tiny_encoder_dir, shapes["multi_label"])
    report = tmp_path / "report"
    assert main([str(config), "--report_dir", str(report)]) == 0
    study = optuna.load_study(study_name="toy_search", storage=f"sqlite:///{report / 'search.db'}")
    for trial in study.trials:
        results = RunResults.load(report / "runs" / f"trial-{trial.number}")
        assert trial.value == results.metric("f1_macro", "eval")
    assert any(trial.value != RunResults.load(report / "runs" / f"trial-{trial.number}").best_metric
               for trial in study.trials)  # fmt: skip


def test_an_interrupted_trial_is_queued_again(tmp_path, tiny_encoder_dir, toy_data, monkeypatch, capsys):
    """Ctrl-C in a trial: one line and exit code 130, without Optuna's traceback of a failed trial; Optuna fails the
    trial, and its parameters wait for the search to start again (as a killed worker's do)."""
    import logging

    import optuna

    import hfclf.commands.search
    from hfclf.commands.search import main

    def interrupted(model_args, data_args, training_args, **kwargs):
        Path(training_args.output_dir, "checkpoint-1").mkdir(parents=True)  # the run had saved a checkpoint
        raise KeyboardInterrupt

    monkeypatch.setattr(hfclf.commands.search, "run_finetune", interrupted)
    search = {"params": {"pooling": ["last", "max"]}, "n_trials": 2}
    config = write_config(tmp_path / "s.yaml", search, tiny_encoder_dir, toy_data)
    report = tmp_path / "report"
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("optuna").addHandler(handler)  # Optuna's own handler writes to the stderr of its import
    try:
        assert main([str(config), "--report_dir", str(report)]) == 130
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    assert [r.getMessage() for r in records if "failed" in r.getMessage() or r.exc_info] == []
    assert not logging.getLogger("optuna.study._optimize").filters  # the filter goes with the search
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted."
    trials = optuna.load_study(study_name="toy_search", storage=f"sqlite:///{report / 'search.db'}").trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert trials[1].system_attrs["fixed_params"] == trials[0].params  # queued
    assert not (report / "runs" / "trial-0").exists()  # the trial that takes its place gets its own folder


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_trials_draw_new_values_after_a_failure_and_on_another_worker(sampler):
    """A trial that failed (and was not queued again) keeps its place, so the next trial draws new values; a worker
    with another --worker draws other values than worker 0 at every place."""
    import optuna

    from hfclf.commands.search import make_sampler, suggest

    search = {"sampler": sampler, "seed": 0, "params": {"x": {"low": 0.0, "high": 1.0}, "y": [1, 2, 3, 4, 5, 6]}}
    study = optuna.create_study(sampler=make_sampler(search, 0))
    first, second = study.ask(), study.ask()
    drawn = [suggest(first, search["params"]), suggest(second, search["params"])]
    study.tell(first, state=optuna.trial.TrialState.FAIL)
    third = study.ask()
    assert suggest(third, search["params"]) not in drawn
    other = optuna.create_study(sampler=make_sampler(search, 1))
    others = [suggest(other.ask(), search["params"]) for _ in range(3)]
    assert not any(values in drawn for values in others)


def test_pruning_callback_stops_a_lagging_trial():
    import optuna

    class Trial:
        reported = []

        def report(self, value, step):
            self.reported.append((value, step))

        def should_prune(self):
            return len(self.reported) > 1

    class Args:
        metric_for_best_model = "f1_macro"
        greater_is_better = True

    class State:
        epoch, best_metric, global_step, max_steps = 1.5, None, 30, 60

    callback, trial = pruning_callback(Trial()), Trial
    callback.on_evaluate(Args(), State(), None, metrics={"eval_accuracy": 0.9, "eval_f1_macro": 0.5})
    assert trial.reported == [(0.5, 150)]  # the run's own metric, at hundredths of an epoch
    State.best_metric, State.epoch = 0.5, 1.75
    with pytest.raises(optuna.TrialPruned, match="best eval_f1_macro 0.5000 at epoch 1.75"):
        callback.on_evaluate(Args(), State(), None, metrics={"eval_f1_macro": 0.4})
    assert trial.reported[-1] == (0.5, 175)  # the best so far, which the trial is scored by, not this epoch's 0.4
    State.global_step, State.epoch = 60, 2.0  # the last evaluation: reported, never pruned
    callback.on_evaluate(Args(), State(), None, metrics={"eval_f1_macro": 0.45})
    Args.greater_is_better = False  # a loss: the lowest so far
    callback.on_evaluate(Args(), State(), None, metrics={"eval_f1_macro": 0.45})
    assert trial.reported[-2:] == [(0.5, 200), (0.45, 200)]


def test_two_workers_share_one_study(tmp_path, tiny_encoder_dir, toy_data):
    """Two processes on one SQLite study finish its 4 trials between them; each trial trains once, in its own
    folder; the report and the best trial's config come out."""
    import optuna

    params = {"learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}, "pooling": ["last", "max"]}
    search = {"sampler": "random", "n_trials": 4, "pruner": "none", "params": params}
    config = write_config(tmp_path / "search.yaml", search, tiny_encoder_dir, toy_data)
    report = tmp_path / "report"
    command = [sys.executable, "-m", "hfclf.commands.cli", "search", str(config), "--report_dir", str(report)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen([*command, "--worker", str(k)], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        for k in (0, 1)
    ]
    logs = [worker.communicate(timeout=600)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], logs

    study = optuna.load_study(study_name="toy_search", storage=f"sqlite:///{report / 'search.db'}")
    trials = study.get_trials()
    assert [t.state for t in trials].count(optuna.trial.TrialState.COMPLETE) >= 4 and len(trials) <= 5
    starts = [line for log in logs for line in log.splitlines() if "hfclf: Trial " in line]
    started = [line.split("hfclf: Trial ")[1].split(" starts")[0] for line in starts]
    assert sorted(map(int, started)) == sorted(t.number for t in trials)  # every trial ran once, by one worker
    assert all("hfclf: Trial " in log for log in logs)  # and both workers took trials
    for trial in trials:
        assert (report / "runs" / f"trial-{trial.number}" / "results.json").is_file()
    readme = (report / "README.md").read_text()
    assert all(f"| trial-{t.number} |" in readme for t in trials) and "## Are the differences real?" in readme
    best = yaml.safe_load((report / "best_trial.yaml").read_text())
    assert {key: best[key] for key in params} == study.best_params
    model_args, _, training_args = parse_values(best)  # a config `hfclf train` takes as it is
    assert model_args.pooling == study.best_params["pooling"]
    assert training_args.learning_rate == pytest.approx(study.best_params["learning_rate"])


def test_grid_search_runs_every_point_once(tmp_path, tiny_encoder_dir, toy_data, capsys):
    from hfclf.commands.search import main

    search = {"sampler": "grid", "n_trials": 2, "params": {"pooling": ["last", "max"]}}
    config = write_config(tmp_path / "grid.yaml", search, tiny_encoder_dir, toy_data)
    report = tmp_path / "report"
    assert main([str(config), "--report_dir", str(report), "--storage", f"journal:{tmp_path / 'study.log'}"]) == 0
    assert "Rerun it: hfclf train" in capsys.readouterr().out
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.log")))
    study = optuna.load_study(study_name="toy_search", storage=storage)
    assert sorted(t.params["pooling"] for t in study.get_trials()) == ["last", "max"]
    # a second call finds the study finished and only writes the report again
    assert main([str(config), "--report_dir", str(report), "--storage", f"journal:{tmp_path / 'study.log'}"]) == 0
    assert len(study.get_trials()) == 2
