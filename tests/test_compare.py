"""Comparison grids: expansion, the report folder end to end, and resuming an interrupted grid."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from hfclf.commands.compare import expand_variants, load_config, main
from hfclf.data.tasks import get_task
from hfclf.errors import HfclfInputError
from hfclf.reporting.report import seed_spread, spread_table, summary_row, table_columns, variant_flags
from hfclf.reporting.significance import arms_of
from hfclf.run_folder import RunResults
from hfclf.training_args import parse_values, run_values

ROOT = Path(__file__).resolve().parents[1]


def test_grid_multiplies_onto_variants():
    config = {
        "name": "x",
        "variants": [{"name": "lstm", "arch": "lstm"}, {"name": "bert", "arch": "pooled"}],
        "grid": {"learning_rate": [1e-3, 2e-3], "lstm_layers": [1, 2]},
    }
    variants = expand_variants(config)
    assert len(variants) == 8
    assert variants[0] == {
        "name": "lstm-learningrate0.001-lstmlayers1",
        "flags": {"arch": "lstm", "learning_rate": 1e-3, "lstm_layers": 1},
    }
    only_grid = expand_variants({"name": "tune", "grid": {"lstm_layers": [1, 3]}})
    assert [v["name"] for v in only_grid] == ["lstmlayers1", "lstmlayers3"]
    # a named variant's runs keep their names when a variant is added: the finished ones are skipped, not retrained
    one = expand_variants({**config, "variants": config["variants"][:1]})
    assert [v["name"] for v in one] == [v["name"] for v in variants[:4]]


def test_bad_configs_are_clear(tmp_path):
    with pytest.raises(HfclfInputError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(HfclfInputError, match="folder.yaml is a folder"):
        load_config(str(tmp_path / "folder.yaml"))
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nvariant: []\n")
    with pytest.raises(HfclfInputError, match="needs a 'variants' list"):
        load_config(str(path))
    path.write_text("name: x\nvariants: [{name: a}]\nmodels: []\n")
    with pytest.raises(HfclfInputError, match="Unknown key"):
        load_config(str(path))
    with pytest.raises(HfclfInputError, match="Variant names repeat: a"):
        expand_variants({"name": "x", "variants": [{"name": "a"}, {"name": "a", "pooling": "max"}]})
    for text, message in (
        ("variants: [cls, mean]\n", "must be a list of mappings"),
        ("variants: [{name: a}]\ngrid: {learning_rate: 1e-4}\n", "must be lists"),
        ("variants: [{name: a}]\ngrid: {seed: [1, 1]}\n", r"Grid values of seed in .* repeat \(1\), which would"),
        ("variants: [{name: a}]\ncommon: [1]\n", "'common' in"),
        ("variants: [{name: a, pooling: cls}\n", "is not valid YAML"),
        ("variants: [{name: a}]\ntargets: 0.9\n", "'targets' in .* must be a list of main-metric scores"),
        ("variants: [{name: a}]\ntargets: [high]\n", "'targets' in .* must be a list of main-metric scores"),
    ):
        path.write_text(text)
        with pytest.raises(HfclfInputError, match=message):
            load_config(str(path))


def test_bad_variant_flag_fails_before_any_variant_trains(tmp_path, tiny_grid, capsys):
    config = yaml.safe_load(tiny_grid.read_text())
    config["variants"][-1]["lstm_layerz"] = 3
    tiny_grid.write_text(yaml.safe_dump(config))
    report = tmp_path / "r"
    assert main([str(tiny_grid), "--report_dir", str(report), "--hub_token", "hf_secret"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Variant pooled-mean:") and "lstm_layerz" in err
    assert not report.exists()  # nothing trained, nothing written


def test_variants_of_different_task_shapes_are_refused_before_any_trains(tmp_path, tiny_grid, capsys):
    """A variant on other data (a regression file) or another --problem_type: one line, nothing trained."""
    from tiny_models import write_toy_shapes

    (tmp_path / "shapes").mkdir()
    regression = write_toy_shapes(tmp_path / "shapes")["regression"]
    config = yaml.safe_load(tiny_grid.read_text())
    config["variants"][1].update({f"{split}_file": str(path) for split, path in regression.items()})
    config["variants"][1]["label_column"] = "score"
    tiny_grid.write_text(yaml.safe_dump(config))
    report = tmp_path / "r"
    assert main([str(tiny_grid), "--report_dir", str(report)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: The variants train different task shapes (single-label classification: lstm, pooled-mean; "
        "regression: lstm-max), whose metrics do not compare; compare variants of one task (the same data and "
        "--problem_type)."
    )
    assert not report.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--output_dir", "elsewhere"], "--output_dir does not apply to compare"),
        (["--overwrite-output-dir"], "--overwrite_output_dir does not apply to compare"),
        (["--resume_from_checkpoint=auto"], "--resume_from_checkpoint does not apply to compare"),
    ],
)
def test_flags_that_compare_sets_itself_are_refused(tmp_path, tiny_grid, capsys, flags, message):
    report = tmp_path / "r"
    assert main([str(tiny_grid), "--report_dir", str(report), *flags]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and message in err and "--report_dir" in err
    assert not report.exists() and not (tmp_path / "elsewhere").exists()


def test_report_dir_that_is_a_file_is_refused(tmp_path, tiny_grid, capsys):
    report = tmp_path / "report.md"
    report.write_text("my notes")
    assert main([str(tiny_grid), "--report_dir", str(report)]) == 2
    assert "is a file; pass a folder path" in capsys.readouterr().err
    assert report.read_text() == "my notes"


def test_a_folder_of_other_files_is_not_a_report_dir(tmp_path, tiny_grid, capsys):
    """A report writes README.md, results.csv, ...: over an earlier report, never over someone else's files."""
    report = tmp_path / "myproject"
    report.mkdir()
    (report / "README.md").write_text("my project")
    assert main([str(tiny_grid), "--report_dir", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: --report_dir {report} holds files that are not an hfclf report (README.md), which the report would "
        "overwrite; choose a new or empty folder."
    )
    assert [p.name for p in report.iterdir()] == ["README.md"] and (report / "README.md").read_text() == "my project"


@pytest.mark.parametrize("name", ["../../victim", "a/b", ".hidden", "..", "my variant"])
def test_a_variant_name_must_be_a_folder_name(name):
    """A variant's name is its run folder under <report_dir>/runs: it must not lead anywhere else."""
    with pytest.raises(HfclfInputError, match=f"Variant name '{re.escape(name)}' is not a folder name"):
        expand_variants({"name": "x", "variants": [{"name": name}, {"name": "ok"}]})


def test_grid_values_and_config_names_become_folder_names(caplog):
    caplog.set_level("INFO", logger="hfclf")
    grid = {"model": ["../models/mini", "user/bert"]}
    names = [v["name"] for v in expand_variants({"name": "../my grid", "grid": grid})]
    assert names == ["model.._models_mini", "modeluser_bert"]
    assert [v["name"] for v in expand_variants({"name": "../my grid", "variants": [{"seed": 1}]})] == ["run"]
    assert "Variant 1 has no 'name', so it is called 'run'; give it a 'name' to choose." in caplog.text
    assert [v["name"] for v in expand_variants({"name": "../my grid"})] == ["_my_grid"]


def test_report_command_hides_the_token(tmp_path, tiny_grid, capsys):
    report = tmp_path / "r"
    argv = [str(tiny_grid), "--report_dir", str(report), "--variants", "lstm", "--num_train_epochs", "1"]
    assert main([*argv, "--hub_token", "hf_secret"]) == 0
    readme = (report / "README.md").read_text()
    assert "--hub_token <redacted>" in readme and "hf_secret" not in readme


@pytest.fixture
def tiny_grid(tmp_path, tiny_encoder_dir, toy_data):
    config = {
        "name": "tiny",
        "description": "A tiny grid on toy data.",
        "data": {**{f"{split}_file": str(path) for split, path in toy_data.items()}, "max_length": 32},
        "common": {"model": str(tiny_encoder_dir), "num_train_epochs": 2, "per_device_train_batch_size": 16, "seed": 5},
        "variants": [
            {"name": "lstm", "arch": "lstm", "lstm_hidden_size": 16, "lstm_layers": 1},
            {"name": "lstm-max", "arch": "lstm", "lstm_hidden_size": 16, "pooling": "max"},
            {"name": "pooled-mean", "arch": "pooled", "pooling": "mean", "learning_rate": 3e-3},
        ],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tiny_grid_report_and_resume(tmp_path, tiny_grid, caplog, capsys):
    report = tmp_path / "report"
    assert main([str(tiny_grid), "--report_dir", str(report), "--logging_steps", "1"]) == 0
    capsys.readouterr()

    for name in (
        "results.md",
        "results.csv",
        "accuracy.png",
        "loss_curves.png",
        "README.md",
        "confusion_lstm.png",
        "confusion_lstm-max.png",
        "confusion_pooled-mean.png",
    ):
        assert (report / name).is_file(), name
    with open(report / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["lstm", "lstm-max", "pooled-mean"]
    for row in rows:
        run = json.loads((report / "runs" / row["variant"] / "results.json").read_text())
        assert float(row["accuracy"]) == run["test"]["test_accuracy"]
        assert float(row["eval_accuracy"]) == run["eval"]["eval_accuracy"]
        assert int(row["parameters"]) == run["num_parameters"]
        assert float(row["best_epoch"]) in (1.0, 2.0)
    # the columns that differ between variants show up; the best accuracy is marked
    assert {"lstm_hidden_size", "learning_rate", "lstm_layers"} <= set(rows[0])
    # training flags show the value each run used (the LSTM default 2e-3 where the variant sets none)
    assert [r["learning_rate"] for r in rows] == ["0.002", "0.002", "0.003"]
    assert [r["lstm_layers"] for r in rows] == ["1", "", ""]
    best = max(float(r["accuracy"]) for r in rows)
    assert all(("accuracy" in r["best_in"].split(";")) == (float(r["accuracy"]) == best) for r in rows)
    markdown = (report / "results.md").read_text()
    assert f"**{100 * best:.2f}**" in markdown
    assert "| accuracy (test) | f1_macro (test) | accuracy (validation) |" in markdown
    readme = (report / "README.md").read_text()
    assert "![accuracy](accuracy.png)" in readme and "Seed: 5" in readme and "hfclf compare" in readme
    assert "CPU" in readme and "transformers" in readme
    check_significance(report, readme)
    # what each variant costs, measured after training on the test split (20 rows)
    for row in rows:
        cost = json.loads((report / "runs" / row["variant"] / "results.json").read_text())["cost"]
        assert cost["throughput_texts"] == 20 and cost["latency_texts"] == 20 and cost["device"] == "cpu"
        assert 0 < cost["latency_ms_median"] <= cost["latency_ms_p95"] and cost["texts_per_second"] > 0
        assert float(row["texts_per_s"]) == pytest.approx(cost["texts_per_second"])
        assert float(row["latency_ms"]) == pytest.approx(cost["latency_ms_median"])
        assert float(row["peak_memory_mb"]) == pytest.approx(cost["peak_memory_mb"]) and cost["peak_memory_mb"] > 50
    assert "## Cost" in readme and "Pareto front of latency against accuracy" in readme
    assert (report / "cost_accuracy.png").is_file()

    # Interrupt the last variant after its first epoch: drop everything but its epoch-1 checkpoint.
    finished = {name: (report / "runs" / name / "results.json").read_text() for name in ("lstm", "lstm-max")}
    last = report / "runs" / "pooled-mean"
    for path in last.iterdir():
        if path.name != "checkpoint-4":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    caplog.set_level("INFO", logger="hfclf")
    assert main([str(tiny_grid), "--report_dir", str(report), "--logging_steps", "1"]) == 0
    assert "[1/3] lstm: finished earlier, skipped" in caplog.text
    assert "[2/3] lstm-max: finished earlier, skipped" in caplog.text
    assert f"Resuming from {last / 'checkpoint-4'}" in caplog.text
    assert caplog.text.count("Tokenized") == 1  # the skipped variants did not even load data
    for name, text in finished.items():
        assert (report / "runs" / name / "results.json").read_text() == text
    resumed = json.loads((last / "results.json").read_text())
    assert resumed["epochs"] == 2
    assert (
        "Finished by an earlier command, with its own in `results.json`: lstm, lstm-max."
        in (report / "README.md").read_text()
    )
    with open(report / "results.csv") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == ["lstm", "lstm-max", "pooled-mean"]

    # The same report with other flags: its finished variants were not made with them, so none stands for them.
    report_files = {str(path): path.stat().st_mtime_ns for path in report.rglob("*")}
    capsys.readouterr()
    assert main([str(tiny_grid), "--report_dir", str(report), "--logging_steps", "1", "--weight_decay", "0.05"]) == 2
    err = capsys.readouterr().err
    assert f"error: Variant lstm ({report / 'runs' / 'lstm'}) was made with other settings: --weight_decay" in err
    assert "rerun with its flags, or pass another --report_dir" in err
    assert {str(path): path.stat().st_mtime_ns for path in report.rglob("*")} == report_files

    # A report of fewer variants over it: the earlier report's files that it does not write again are gone.
    assert main([str(tiny_grid), "--report_dir", str(report), "--logging_steps", "1", "--variants", "lstm"]) == 0
    assert not any((report / name).exists() for name in ("significance.csv", "confusion_pooled-mean.png"))
    assert (report / "confusion_lstm.png").is_file() and (report / "runs" / "pooled-mean").is_dir()
    with open(report / "results.csv") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == ["lstm"]


def check_significance(report: Path, readme: str) -> None:
    """Every pair of variants, tested on the examples both scored: McNemar's p against scipy's exact binomial test
    on the pairs' own predictions.csv, the difference against their accuracies, Holm's step-down by hand."""
    from scipy.stats import binomtest

    assert "## Are the differences real?" in readme and "Groups that cannot be told apart" in readme
    with open(report / "significance.csv") as f:
        tests = list(csv.DictReader(f))
    assert len(tests) == 3
    for test in tests:
        right = {}
        for name in (test["first"], test["second"]):
            with open(report / "runs" / name / "predictions.csv") as f:
                right[name] = [row["gold"] == row["predicted"] for row in csv.DictReader(f)]
        a, b = right[test["first"]], right[test["second"]]
        only_a, only_b = sum(x and not y for x, y in zip(a, b)), sum(y and not x for x, y in zip(a, b))
        expected = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
        assert float(test["p"]) == pytest.approx(expected)
        assert float(test["difference"]) == pytest.approx((sum(a) - sum(b)) / len(a))
        assert float(test["ci_low"]) <= float(test["difference"]) <= float(test["ci_high"])
        assert sum(a) >= sum(b)  # the better variant first
        assert f"- {test['first']} vs {test['second']}: " in readme
    p_values = sorted(float(test["p"]) for test in tests)
    holm = [min(1.0, max((3 - k) * p for k, p in enumerate(p_values[: i + 1]))) for i in range(3)]
    assert sorted(float(test["p_holm"]) for test in tests) == pytest.approx(holm)


def test_the_report_quotes_the_recipe_command_it_was_run_with(tmp_path, tiny_grid, monkeypatch, capsys):
    report = tmp_path / "report"
    argv = [str(tiny_grid), "--report_dir", str(report), "--variants", "lstm", "--num_train_epochs", "1"]
    monkeypatch.setattr("sys.argv", ["recipes/compare.py", *argv])
    assert main() == 0
    readme = (report / "README.md").read_text()
    assert f"python recipes/compare.py {' '.join(argv)}" in readme and "hfclf compare" not in readme


def test_variants_share_tokenized_data(tmp_path, tiny_grid, caplog):
    caplog.set_level("INFO", logger="hfclf")
    assert main([str(tiny_grid), "--report_dir", str(tmp_path / "r"), "--num_train_epochs", "1"]) == 0
    # three variants, one tokenizer: tokenized once, reused twice
    assert caplog.text.count("Tokenized") == 1
    assert caplog.text.count("Reusing the tokenized data") == 2


def test_seed_spread_groups_variants_that_differ_only_in_seed():
    variants = [
        {"name": "cls", "flags": {"pooling": "cls"}},
        {"name": "mean", "flags": {"pooling": "mean"}},
        {"name": "cls-seed43", "flags": {"pooling": "cls", "seed": 43}},
        {"name": "cls-seed44", "flags": {"seed": 44, "pooling": "cls"}},
    ]
    scores = [(0.90, 0.88), (0.50, 0.50), (0.92, 0.90), (0.91, 0.86)]
    runs = [
        RunResults(
            eval={"eval_accuracy": on_eval}, test={"test_accuracy": on_test}, arguments={"training": {"seed": seed}}
        )
        for seed, (on_test, on_eval) in zip((42, 42, 43, 44), scores)
    ]
    task = get_task(None)
    arms = arms_of(variants, runs, [Path(v["name"]) for v in variants], variant_flags, task)
    assert [(a.name, a.variants) for a in arms] == [("cls", ["cls", "cls-seed43", "cls-seed44"]), ("mean", ["mean"])]
    (group,) = seed_spread(arms, task)
    assert group["variants"] == ["cls", "cls-seed43", "cls-seed44"] and group["seeds"] == [42, 43, 44]
    assert group["accuracy"] == pytest.approx((0.91, 0.01, 0.90, 0.92))
    assert group["eval_accuracy"] == pytest.approx((0.88, 0.02, 0.86, 0.90))
    # t interval of the mean: 0.91 ± t(0.975, 2) * 0.01 / sqrt(3), t(0.975, 2) = 4.302653
    half = 4.302653 * 0.01 / 3**0.5
    assert group["interval"] == pytest.approx((0.91 - half, 0.91 + half), abs=1e-6)
    assert spread_table([group], "test", task).splitlines()[2] == (
        "| cls and 2 more | 42, 43, 44 | 91.00 ± 1.00 (90.00 to 92.00) | 88.00 ± 2.00 (86.00 to 90.00) "
        "| [88.52, 93.48] |"
    )
    # reported on validation: one column of it, named so (not "eval")
    assert spread_table([group], "eval", task).splitlines()[0] == (
        "| variants | seeds | accuracy (validation) | 95% CI of the mean |"
    )


def test_report_shows_seed_spread(tmp_path, tiny_encoder_dir, toy_data):
    config = {
        "name": "seeds",
        "data": {**{f"{split}_file": str(path) for split, path in toy_data.items()}, "max_length": 32},
        "common": {"model": str(tiny_encoder_dir), "arch": "lstm", "lstm_hidden_size": 16, "num_train_epochs": 1},
        "grid": {"seed": [1, 2]},
    }
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(config))
    report = tmp_path / "r"
    assert main([str(path), "--report_dir", str(report)]) == 0
    accuracies = [
        json.loads((report / "runs" / name / "results.json").read_text())["test"]["test_accuracy"]
        for name in ("seed1", "seed2")
    ]
    readme = (report / "README.md").read_text()
    assert "## Run-to-run spread" in readme and "## Run-to-run spread" in (report / "results.md").read_text()
    mean = 100 * sum(accuracies) / 2
    assert f"| seed1, seed2 | 1, 2 | {mean:.2f} ± " in readme
    assert "hardware" not in readme and "precision" not in readme  # the same for both runs

    # runs from different machines or precisions say so in the table
    variants = expand_variants(config)
    runs = [RunResults.load(report / "runs" / v["name"]) for v in variants]
    runs[0].arguments["training"]["bf16"] = False
    runs[1].hardware = "1 x NVIDIA H100 80GB HBM3"
    runs[1].arguments["training"]["bf16"] = True
    rows = [summary_row(variant, run, ["seed"]) for variant, run in zip(variants, runs)]
    assert [(row["hardware"], row["precision"]) for row in rows] == [
        (runs[0].hardware, "fp32"),
        ("1 x NVIDIA H100 80GB HBM3", "bf16"),
    ]
    assert {"hardware", "precision"} <= set(table_columns(rows, get_task(None)))

    # a column that no run has a value for (inference not measured, --measure_inference_texts 0) is left out
    cost_columns = {"texts_per_s", "latency_ms", "latency_p95_ms", "peak_memory_mb"}
    for row in rows:
        row.update(dict.fromkeys(cost_columns))
    assert not cost_columns & set(table_columns(rows, get_task(None)))
    rows[1]["texts_per_s"] = 100.0
    assert cost_columns & set(table_columns(rows, get_task(None))) == {"texts_per_s"}

    # a run written before a flag existed shows that flag's default, not a blank
    del runs[0].arguments["training"]["layerwise_lr_decay"]
    rows = [summary_row(variant, run, ["layerwise_lr_decay"]) for variant, run in zip(variants, runs)]
    assert [row["layerwise_lr_decay"] for row in rows] == [1.0, 1.0]


def test_data_size_curve_grid(tmp_path, tiny_encoder_dir, toy_data, capsys):
    """A grid over max_train_samples and seeds, trained for real: the report has the curve, its plot, and tests
    only between variants trained on as many examples."""
    config = {
        "name": "curve",
        "data": {**{f"{split}_file": str(path) for split, path in toy_data.items()}, "max_length": 32},
        "common": {"model": str(tiny_encoder_dir), "arch": "lstm", "lstm_hidden_size": 16, "num_train_epochs": 1},
        "variants": [{"name": "last", "pooling": "last"}, {"name": "max", "pooling": "max"}],
        "grid": {"max_train_samples": [16, 48], "seed": [1, 2]},
        "targets": [0.5],
    }
    path = tmp_path / "curve.yaml"
    path.write_text(yaml.safe_dump(config))
    report = tmp_path / "r"
    assert main([str(path), "--report_dir", str(report), "--measure_inference_texts", "0"]) == 0
    capsys.readouterr()
    readme = (report / "README.md").read_text()
    assert "| curve | 16 | 48 | to reach 50.00 |" in readme and (report / "learning_curves.png").is_file()
    assert "(train 16 to 48, validation 25, test 20)" in readme
    assert "| pooling=last | " in readme and "| pooling=max | " in readme
    with open(report / "significance.csv") as f:
        pairs = [(row["first"], row["second"]) for row in csv.DictReader(f)]
    assert len(pairs) == 2 and all(a.split("-")[1] == b.split("-")[1] for a, b in pairs)  # same size
    assert "Welch t on 2 and 2 seeds" in readme
    assert "## Cost" not in readme  # --measure_inference_texts 0


def test_a_flag_over_the_variants_axes_or_an_empty_grid_is_refused_before_anything_runs(tmp_path, tiny_grid, capsys):
    """`--pooling max` would train lstm and lstm-max alike (reported as a difference); `seed: []` left no variant and
    crashed."""
    report = tmp_path / "r"
    assert main([str(tiny_grid), "--report_dir", str(report), "--pooling", "max"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --pooling is what the comparison's variants differ in")
    config = yaml.safe_load(tiny_grid.read_text())
    tiny_grid.write_text(yaml.safe_dump({**config, "grid": {"seed": []}}))
    assert main([str(tiny_grid), "--report_dir", str(report)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: Grid value(s) of seed in") and "are empty lists" in line
    assert not report.exists()


def test_compare_bad_config_exit_code(tmp_path, capsys):
    assert main([str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: Comparison config")


def test_variants_flag_runs_and_reports_a_subset(tmp_path, tiny_grid, capsys):
    report = tmp_path / "r"
    argv = [str(tiny_grid), "--report_dir", str(report), "--num_train_epochs", "1"]
    assert main([*argv, "--variants", "lstm-max,lstm"]) == 0
    capsys.readouterr()
    with open(report / "results.csv") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == ["lstm", "lstm-max"]  # config order
    assert not (report / "runs" / "pooled-mean").exists()

    assert main([*argv, "--variants", "lstm,gru"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown variant(s) gru; --variants takes names from: lstm, lstm-max, pooled-mean")


def test_variants_may_differ_in_precision(tmp_path, tiny_grid, capsys):
    """One process trains every variant: a bf16 variant after an fp32 one gets its own mixed precision."""
    config = yaml.safe_load(tiny_grid.read_text())
    config["variants"] = [{"name": "lstm", "arch": "lstm", "lstm_hidden_size": 16}]
    config["grid"] = {"bf16": [False, True]}
    tiny_grid.write_text(yaml.safe_dump(config))
    report = tmp_path / "r"
    assert main([str(tiny_grid), "--report_dir", str(report), "--num_train_epochs", "1"]) == 0, capsys.readouterr().err
    precisions = {folder.name: RunResults.load(folder).precision for folder in sorted((report / "runs").iterdir())}
    assert precisions == {"lstm-bf16False": "fp32", "lstm-bf16True": "bf16"}


@pytest.mark.parametrize(
    "path",
    sorted(str(p) for folder in ("recipes/configs", "benchmarks/configs") for p in (ROOT / folder).glob("*.yaml")),
)
def test_shipped_configs_parse(path, tmp_path):
    if "search" in yaml.safe_load(Path(path).read_text()):  # a search config: its trials' flags at the edges
        from hfclf.commands.search import load_search_config

        config = load_search_config(path)
        params = config["search"]["params"]
        for pick in (0, -1):
            values = {name: spec[pick] if isinstance(spec, list) else spec[("low", "high")[pick]]
                      for name, spec in params.items()}  # fmt: skip
            parse_values(run_values(config, values, tmp_path / "trial"))
        return
    config = load_config(path)
    for variant in expand_variants(config):
        parse_values(run_values(config, variant["flags"], tmp_path / variant["name"]))


def test_the_report_names_each_dataset_and_warns_of_thresholds_tuned_on_its_split():
    from hfclf.reporting.report import data_lines, tuned_thresholds_lines

    def run(dataset, threshold="0.5"):
        arguments = {"data": {"dataset": dataset}, "model": {"threshold": threshold}}
        return RunResults(arguments=arguments, data_sizes={"train": 16})

    same, mixed = [run("sst2"), run("sst2")], [run("sst2"), run("rt_polarity")]
    assert data_lines(same, "test")[0] == "Dataset: sst2 (train 16); metrics on the test split."
    assert (
        data_lines(mixed, "test")[0]
        == "Datasets: rt_polarity, sst2 (by variant) (train 16); metrics on the test split."
    )
    runs = [run("go_emotions"), run("go_emotions", "tune"), run("go_emotions", "tune_per_label")]
    assert tuned_thresholds_lines(["a", "b", "c"], runs, "eval")[0].startswith(
        "Decision thresholds of b, c were tuned on this validation split"
    )
    assert (
        tuned_thresholds_lines(["a", "b", "c"], runs, "test") == [] == tuned_thresholds_lines(["a"], runs[:1], "eval")
    )
    assert tuned_thresholds_lines(["b", "c"], runs[1:], "eval")[0].endswith("so their scores here are optimistic.")


@pytest.mark.parametrize("precisions, said", [(["fp32"], ""), (["fp32", "bf16"], " (a bf16 run under bf16 autocast)")])
def test_the_cost_section_names_autocast_only_where_a_run_used_it(precisions, said):
    from hfclf.reporting.report import cost_section

    cost = {"device": "cpu", "throughput_texts": 256, "batch_size": 64, "latency_texts": 50, "peak_memory": "RSS"}
    runs = [RunResults(arguments={"training": {"bf16": p == "bf16"}}, cost=cost) for p in precisions]
    rows = [{"variant": p, "split": "test", "latency_ms": 1.0, "accuracy": 0.8} for p in precisions]
    text = "\n".join(cost_section(rows, runs, get_task("single_label_classification")))
    assert f"as training left the model{said}: throughput" in text


def test_best_marks_name_only_columns_of_the_table(tmp_path):
    """Reported on validation (no test split), the table has no separate `eval_` column: no mark may name it."""
    from hfclf.reporting.report import write_tables

    task = get_task("regression")
    rows = [
        {"variant": name, "arch": "lstm", "pooling": name, "split": "eval", "pearson": r, "spearman": r, "mae": 1 - r}
        | {"eval_pearson": r}
        for name, r in (("max", 0.2), ("mean", 0.4))
    ]
    write_tables(rows, tmp_path, task, [])
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [row["best_in"] for row in table] == ["", "pearson;spearman;mae"]
