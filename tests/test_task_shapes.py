"""Every task shape end to end with tiny models: multi-label, regression, sentence pairs and long documents train,
evaluate, predict, compare, export and load downstream without hfclf; their bad input is one clear error."""

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_models import run_downstream, write_toy_shapes

from hfclf.commands.cli import main as hfclf
from hfclf.commands.finetune import main as train
from hfclf.data.loading import DataArguments, load_raw_datasets
from hfclf.data.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL, get_task
from hfclf.data.tokenization import LongText, encode_texts
from hfclf.reporting.plots import PER_RUN_PLOT

QUICK = ["--num_train_epochs", "2", "--per_device_train_batch_size", "16", "--seed", "3", "--learning_rate", "1e-3"]
QUICK += ["--bf16", "false"]  # fp32: predict and eval, which compute in fp32, must reproduce the runs' numbers
# The flags of each shape's run, its problem type, and the columns `hfclf eval --test-file` is told (or guesses).
SHAPES = {
    "multi_label": (["--threshold", "tune_per_label", "--max_length", "32"], MULTI_LABEL, []),
    "regression": (["--normalize_targets", "--max_length", "32"], REGRESSION, ["--label-column", "score"]),
    "pairs": (["--text_columns", "first", "--text_pair_column", "second", "--max_length", "32"], SINGLE_LABEL, []),
    "long": (["--long_text", "windows", "--max_length", "24", "--stride", "6"], SINGLE_LABEL, []),
}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_toy_shapes(tmp_path_factory.mktemp("shapes"))


def files(paths: dict) -> list[str]:
    return [word for split, path in paths.items() for word in (f"--{split}_file", str(path))]


def cli(argv, capsys):
    code = hfclf([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(code, err) -> str:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module", params=list(SHAPES))
def shape_run(request, tmp_path_factory, tiny_encoder_dir, shapes):
    """(shape, run folder, data paths): a pooled (mean) tiny encoder trained on the shape's toy data."""
    shape = request.param
    out = tmp_path_factory.mktemp(shape) / "run"
    flags = SHAPES[shape][0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        argv = ["--model", str(tiny_encoder_dir), "--pooling", "mean", "--output_dir", str(out), *flags, *QUICK]
        assert train([*argv, *files(shapes[shape])]) == 0
    return shape, out, shapes[shape]


def predicted_cells(run_dir) -> list[str]:
    with open(run_dir / "predictions.csv", newline="") as f:
        return [row["predicted"] for row in csv.DictReader(f)]


def test_each_shape_trains_and_writes_its_outputs(shape_run):
    shape, run_dir, paths = shape_run
    results = json.loads((run_dir / "results.json").read_text())
    task = get_task(SHAPES[shape][1])
    assert results["problem_type"] == task.problem_type
    config = json.loads((run_dir / "config.json").read_text())
    assert config["problem_type"] == task.problem_type
    # every metric of the task, on validation and test
    for split in ("eval", "test"):
        assert {f"{split}_{name}" for name in task.metric_names} <= set(results[split]), results[split]
    assert results["arguments"]["training"]["metric_for_best_model"] == task.main_metric
    assert (run_dir / PER_RUN_PLOT[task.problem_type].file).is_file()
    predictions = pd.read_csv(run_dir / "predictions.csv", keep_default_na=False)
    test = pd.read_csv(paths["test"], keep_default_na=False)
    assert len(predictions) == len(test)  # one row per document, also when documents were cut into windows
    if shape == "multi_label":
        assert len(config["thresholds"]) == len(config["id2label"]) == 3
        as_sets = [set(cell.split(";")) for cell in predictions["gold"]]
        assert as_sets == [set(cell.split(";")) for cell in test["labels"]]
        assert set(predictions.columns) >= {"prob_negative", "prob_neutral", "prob_positive"}
        per_label = pd.read_csv(run_dir / "per_label.csv")
        assert per_label["label"].tolist() == ["negative", "neutral", "positive"]
        assert per_label["f1"].mean() == pytest.approx(results["test"]["test_f1_macro"], abs=1e-6)
        assert per_label["support"].sum() == sum(len(cell.split(";")) for cell in test["labels"])
    if shape == "regression":
        assert len(config["id2label"]) == 1 and config["target_std"] > 0
        train_scores = pd.read_csv(paths["train"])["score"]
        assert config["target_mean"] == pytest.approx(train_scores.mean(), abs=1e-4)
        assert predictions["gold"].tolist() == pytest.approx(test["score"].tolist(), abs=1e-6)
    if shape == "pairs":
        assert predictions["text_pair"].tolist() == test["second"].tolist()
        assert config["input_format"]["text_pair_column"] == "second"
    if shape == "long":
        assert predictions["text"].tolist() == test["review"].tolist()
        assert config["input_format"]["long_text"] == "windows"


def test_eval_reproduces_the_runs_test_metrics(shape_run, capsys):
    shape, run_dir, paths = shape_run
    results = json.loads((run_dir / "results.json").read_text())["test"]
    code, out, err = cli(["eval", "--model", run_dir, "--test-file", paths["test"], *SHAPES[shape][2]], capsys)
    assert code == 0, err
    for name in get_task(SHAPES[shape][1]).metric_names:
        key = f"test_{name}"
        shown = next(line for line in out.splitlines() if line.split() and line.split()[0] == key)
        assert float(shown.split()[1]) == pytest.approx(results[key], abs=1e-4), key
    if shape == "multi_label":  # each label's precision, recall, F1 and support, as in the run's per_label.csv
        per_label = pd.read_csv(run_dir / "per_label.csv")
        table = out.split("test_per_label\n", 1)[1].splitlines()[1:]
        assert [line.split()[0] for line in table] == per_label["label"].tolist()
        assert [float(line.split()[3]) for line in table] == pytest.approx(per_label["f1"].tolist(), abs=1e-4)


@pytest.mark.parametrize("shape_run", ["regression", "long", "pairs"], indirect=True)
def test_eval_on_data_of_another_shape_names_the_models_shape(shape_run, shapes, tmp_path, capsys):
    """eval takes the task shape from the model: data of another shape is refused with that, not with a flag that
    eval does not have."""
    shape, run_dir, paths = shape_run
    model = f"the model in {run_dir}"
    cases = {
        "regression": (["--test-file", shapes["long"]["test"]], f"use data of that shape: {model} does regression."),
        "long": (
            ["--test-file", shapes["regression"]["test"], "--label-column", "score"],
            f"use data of that shape: {model} does single-label classification.",
        ),
        "pairs": (
            ["--test-file", shapes["multi_label"]["test"], "--label-columns", "negative,neutral"],
            f"--label-columns means multi-label classification; {model} does not; drop them.",
        ),
    }
    flags, ending = cases[shape]
    message = one_error_line(*cli(["eval", "--model", run_dir, *flags], capsys)[::2])
    assert message.endswith(ending) and "--problem" not in message


@pytest.mark.parametrize("shape_run", ["multi_label"], indirect=True)
def test_label_columns_must_cover_a_multi_label_models_labels(shape_run, tmp_path, capsys):
    """A label without its 0/1 column would count as absent from every example (its predictions as errors)."""
    _, run_dir, _ = shape_run
    table = tmp_path / "columns.csv"
    table.write_text("text,positive,negative,neutral\na good film,1,0,0\na bad film,0,1,0\na film,0,0,1\n")
    flags = ["eval", "--model", run_dir, "--test-file", table, "--label-columns"]
    message = one_error_line(*cli([*flags, "negative,positive"], capsys)[::2])
    assert (
        message.startswith("error: --label-columns names 2 of the model's 3 labels") and "missing: neutral" in message
    )
    code, out, err = cli([*flags, "neutral,negative,positive"], capsys)
    assert code == 0 and "test_f1_micro" in out, err


@pytest.mark.parametrize("shape_run", ["long"], indirect=True)
def test_a_single_label_model_on_multi_label_data_is_told_so(shape_run, tmp_path, capsys):
    """Lists of classes, or a multi-label named dataset, are refused as multi-label data for a single-label model
    (not as labels the model happens not to know)."""
    _, run_dir, _ = shape_run
    lists = tmp_path / "lists.csv"
    lists.write_text('text,label\nfirst text,"[""pos"", ""neg""]"\nsecond text,pos\n')
    ending = f"use data of that shape: the model in {run_dir} does single-label classification."
    for flags, start in (
        (["--test-file", lists], "error: The labels of test file"),
        (["--dataset", "go_emotions", "--split", "validation"], "error: go_emotions is multi-label classification"),
    ):
        message = one_error_line(*cli(["eval", "--model", run_dir, *flags], capsys)[::2])
        assert message.startswith(start) and "multi-label classification" in message and message.endswith(ending)


def test_predict_agrees_with_the_runs_predictions(shape_run, tmp_path, capsys):
    shape, run_dir, paths = shape_run
    output = tmp_path / "predicted.jsonl"
    code, _, err = cli(["predict", "--model", run_dir, "--input", paths["test"], "--output", output], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    expected = predicted_cells(run_dir)
    assert len(rows) == len(expected)
    if shape == "multi_label":
        assert [row["labels"] for row in rows] == expected
        assert all({"prob_negative", "prob_neutral", "prob_positive"} <= set(row) for row in rows)
    elif shape == "regression":
        assert [row["value"] for row in rows] == pytest.approx([float(v) for v in expected], abs=1e-4)
        assert all("prob_score" not in row for row in rows)
        argv = ["predict", "--model", run_dir, "--input", paths["test"], "--output", tmp_path / "top.jsonl"]
        code, _, err = cli([*argv, "--top-k", "1"], capsys)
        assert code == 2 and err.strip().splitlines()[-1] == (
            "error: --top-k ranks labels, and this model predicts a number (regression); drop --top-k."
        )
    else:
        assert [row["label"] for row in rows] == expected
    if shape == "pairs":  # both texts are read from the columns the model was trained on
        assert [row["text_pair"] for row in rows] == pd.read_csv(paths["test"])["second"].tolist()


def test_downloaded_model_gives_the_shapes_output_in_pipeline(shape_run, tmp_path, capsys):
    """The exported folder, loaded with transformers alone: the pipeline output matches `hfclf predict`."""
    shape, run_dir, paths = shape_run
    exported = tmp_path / "exported"
    assert cli(["export", run_dir, exported], capsys)[0] == 0
    card = (exported / "README.md").read_text()
    expected_in_card = {
        "multi_label": [
            "top_k=None, truncation=True",
            "| id | label | threshold |",
            "Macro F1",
            "- multi-label-classification",
        ],
        "regression": [
            'function_to_apply="none", truncation=True',
            "standardized targets",
            "Pearson",
            "- pearsonr",
            "## Output",
        ],
        "pairs": ['"text_pair": ', "of sentence pairs", "Accuracy"],
        "long": ["Accuracy", "## Labels"],
    }[shape]
    assert all(text in card for text in expected_in_card), card
    test = pd.read_csv(paths["test"]).head(4)
    columns = {"pairs": ["first", "second"], "long": ["review"]}.get(shape, ["text"])
    inputs = test[columns].to_dict("records")
    script = DOWNSTREAM_SCRIPT.replace("SHAPE", repr(shape))
    [result] = run_downstream(script, [exported, json.dumps(inputs)], tmp_path).values()
    output = tmp_path / "predicted.jsonl"
    assert cli(["predict", "--model", run_dir, "--input", paths["test"], "--output", output], capsys)[0] == 0
    expected = [json.loads(line) for line in output.read_text().splitlines()][:4]
    if shape == "multi_label":
        for scores, row in zip(result, expected):  # every label's sigmoid probability
            assert {s["label"]: s["score"] for s in scores} == pytest.approx(
                {name: row[f"prob_{name}"] for name in ("negative", "neutral", "positive")}, abs=1e-5
            )
    elif shape == "regression":  # the value on the original scale (the model undoes its target normalization)
        assert [r["score"] for r in result] == pytest.approx([row["value"] for row in expected], abs=1e-4)
    elif shape == "long":  # a pipeline reads the start of a document; hfclf predict averages all its windows
        assert all(r["label"] in ("neg", "pos") for r in result) and len(result) == 4
    else:
        assert [r["label"] for r in result] == [row["label"] for row in expected]
        assert [r["score"] for r in result] == pytest.approx([row["score"] for row in expected], abs=1e-5)


DOWNSTREAM_SCRIPT = """
import json, sys
sys.modules["hfclf"] = None
from transformers import pipeline

folder, inputs = sys.argv[1], json.loads(sys.argv[2])
classify = pipeline("text-classification", model=folder, trust_remote_code=True)
shape = SHAPE
if shape == "pairs":  # the calls of the model card's snippet
    out = [classify({"text": row["first"], "text_pair": row["second"]}, truncation=True) for row in inputs]
elif shape == "multi_label":
    out = [classify(row["text"], top_k=None, truncation=True) for row in inputs]
elif shape == "regression":
    out = [classify(row["text"], function_to_apply="none", truncation=True)[0] for row in inputs]
else:
    out = [classify(row["review"], truncation=True)[0] for row in inputs]
print("RESULTS" + json.dumps({folder: out}))
"""


# ----------------------------------------------------------------------------------------------- other commands


# Per shape: the data block's extra flags, and the report's metric columns, main-metric plot and per-variant plots.
COMPARED = {
    "regression": ({}, ["pearson", "spearman", "mae"], "pearson", "predicted_vs_true"),
    "multi_label": ({"threshold": "tune"}, ["f1_macro", "f1_micro"], "f1_macro", "label_f1"),
    "pairs": (
        {"text_columns": "first", "text_pair_column": "second"},
        ["accuracy", "f1_macro"],
        "accuracy",
        "confusion",
    ),
}


@pytest.mark.parametrize("shape", list(COMPARED))
def test_comparison_reports_the_shapes_metrics(shape, tmp_path, tiny_encoder_dir, shapes, capsys):
    from hfclf.commands.compare import main as compare
    from hfclf.data.tasks import LOWER_IS_BETTER

    extra, metrics, main, per_variant = COMPARED[shape]
    data = {f"{split}_file": str(path) for split, path in shapes[shape].items()}
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        json.dumps(
            {
                "name": f"toy_{shape}",
                "data": {**data, "max_length": 32, **{k: v for k, v in extra.items() if k != "threshold"}},
                "common": {
                    "model": str(tiny_encoder_dir),
                    "num_train_epochs": 1,
                    "per_device_train_batch_size": 16,
                    **{k: v for k, v in extra.items() if k == "threshold"},
                },
                "variants": [{"name": "mean", "pooling": "mean"}, {"name": "max", "pooling": "max"}],
            }
        )
    )
    report = tmp_path / "report"
    assert compare([str(grid), "--report_dir", str(report)]) == 0
    capsys.readouterr()
    with open(report / "results.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        run = json.loads((report / "runs" / row["variant"] / "results.json").read_text())
        for name in metrics:
            assert float(row[name]) == pytest.approx(run["test"][f"test_{name}"])
        assert float(row[f"eval_{main}"]) == pytest.approx(run["eval"][f"eval_{main}"])
    for name in metrics:  # the best value is marked in each metric's own direction
        values = [float(row[name]) for row in rows]
        best = min(values) if name in LOWER_IS_BETTER else max(values)
        assert all((name in row["best_in"].split(";")) == (float(row[name]) == best) for row in rows)
    readme = (report / "README.md").read_text()
    assert f"![{main}]({main}.png)" in readme and (report / f"{main}.png").is_file()
    unit = "in %" if get_task(SHAPES[shape][1]).in_percent else "as plain values"
    assert f"Bold: best value in its column. {', '.join(metrics)} {unit}; train time in minutes." in readme
    assert (report / f"{per_variant}_mean.png").is_file() and (report / f"{per_variant}_max.png").is_file()
    header = " | ".join([*(f"{name} (test)" for name in metrics), f"{main} (validation)"])
    assert f"| {header} |" in readme
    # the pair is tested on the examples both runs scored, with the shape's own per-example test
    with open(report / "significance.csv") as f:
        (test,) = csv.DictReader(f)
    expected = "McNemar (exact)" if main == "accuracy" else f"paired permutation of {main}"
    assert test["metric"] == main and test["test"].startswith(expected) and f"difference in {main}" in readme
    assert test["test"] == f"{expected}, runs of seed 42"  # the training seed both runs share (not the test's own)
    first, second = (json.loads((report / "runs" / test[k] / "results.json").read_text()) for k in ("first", "second"))
    difference = first["test"][f"test_{main}"] - second["test"][f"test_{main}"]
    assert float(test["difference"]) == pytest.approx(difference, abs=1e-5)  # predictions.csv keeps 6 decimals
    for name in metrics[1:]:  # every report metric gets its paired interval
        assert float(test[f"{name}_ci_low"]) <= float(test[f"{name}_ci_high"])


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_lstm_and_tiny_transformer_read_pairs_as_one_sequence(arch, tmp_path, shapes, capsys):
    """Models without segment embeddings read `[CLS] a [SEP] b [SEP]`: the [SEP] marks where the second text starts."""
    out = tmp_path / "run"
    sizes = {
        "lstm": ["--lstm_hidden_size", "16", "--no_word_vectors", "--embedding_dim", "16"],
        "transformer": ["--d_model", "32"],
    }[arch]
    flags = ["--text_columns", "first", "--text_pair_column", "second", "--max_length", "32", *sizes]
    assert train(["--arch", arch, "--output_dir", str(out), *flags, *QUICK, *files(shapes["pairs"])]) == 0
    assert len(predicted_cells(out)) == 16
    output = tmp_path / "p.csv"
    assert cli(["predict", "--model", out, "--input", shapes["pairs"]["test"], "--output", output], capsys)[0] == 0
    assert pd.read_csv(output)["label"].tolist() == predicted_cells(out)


def test_a_fixed_threshold_scores_validation_during_training(tmp_path, tiny_encoder_dir, shapes, capsys):
    """`--threshold 0.9` decides the validation metrics that training records (and picks the best checkpoint by), as
    it decides `hfclf eval`'s: the same numbers for the same data."""
    out = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, "--output_dir", out, "--threshold", "0.9", "--max_length", "32", *QUICK]
    assert train([str(a) for a in [*argv, *files(shapes["multi_label"])]]) == 0
    recorded = json.loads((out / "results.json").read_text())["eval"]
    code, shown, err = cli(["eval", "--model", out, "--test-file", shapes["multi_label"]["validation"]], capsys)
    assert code == 0, err
    for name in get_task(MULTI_LABEL).metric_names:
        value = next(line.split()[1] for line in shown.splitlines() if line.startswith(f"test_{name} "))
        assert float(value) == pytest.approx(recorded[f"eval_{name}"], abs=1e-4), name


def test_tuned_thresholds_keep_the_best_checkpoints_epoch(tmp_path, shapes):
    """Rescoring validation with tuned thresholds changes its metrics, not the epoch they belong to: the best
    checkpoint's (here the first, the highest loss being 'best'), not the last one trained."""
    out = tmp_path / "run"
    argv = ["--arch", "lstm", "--no_word_vectors", "--embedding_dim", "16", "--lstm_hidden_size", "16"]
    argv += ["--threshold", "tune", "--num_train_epochs", "3", "--metric_for_best_model", "loss"]
    argv += ["--greater_is_better", "true", "--output_dir", out]
    assert train([str(a) for a in [*argv, *files(shapes["multi_label"])]]) == 0
    results = json.loads((out / "results.json").read_text())
    best = json.loads((Path(results["best_checkpoint"]) / "trainer_state.json").read_text())
    assert results["best_epoch"] == results["eval"]["epoch"] == best["epoch"] == 1.0
    assert results["eval"]["eval_loss"] == pytest.approx(best["best_metric"], abs=1e-4)


def test_lora_keeps_thresholds_target_scale_and_pairs(tmp_path, tiny_encoder_dir, shapes, capsys):
    for shape in ("multi_label", "regression", "pairs"):
        out = tmp_path / shape
        flags = [*SHAPES[shape][0], "--lora", "--lora_r", "4"]
        argv = ["--model", str(tiny_encoder_dir), "--pooling", "mean", "--output_dir", str(out), *flags, *QUICK]
        assert train([*argv, *files(shapes[shape])]) == 0
        output = tmp_path / f"{shape}.jsonl"
        code, _, err = cli(["predict", "--model", out, "--input", shapes[shape]["test"], "--output", output], capsys)
        assert code == 0, err
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        if shape == "multi_label":
            assert [row["labels"] for row in rows] == predicted_cells(out)
        elif shape == "regression":
            assert [row["value"] for row in rows] == pytest.approx([float(v) for v in predicted_cells(out)], abs=1e-4)
        else:
            assert [row["label"] for row in rows] == predicted_cells(out)


@pytest.mark.parametrize("shape_run", ["long"], indirect=True)
def test_a_max_length_too_short_for_the_models_windows_is_refused(shape_run, tmp_path, capsys):
    """Windows of --max-length 24 advancing by --stride 6: predict and eval need 9 tokens per window at least."""
    _, run_dir, paths = shape_run
    output = tmp_path / "predictions.csv"
    commands = {
        "predict": ["predict", "--model", run_dir, "--input", paths["test"], "--output", output],
        "eval": ["eval", "--model", run_dir, "--test-file", paths["test"]],
    }
    for name, argv in commands.items():
        code, _, err = cli([*argv, "--max-length", "8"], capsys)
        assert one_error_line(code, err) == (
            "error: --max-length 8 is too short for this model's --long-text windows (trained with --stride 6); pass "
            "--max-length 9 or more, or drop it to use the length it was trained with."
        ), name
        assert not output.exists()
        code, _, err = cli([*argv, "--max-length", "9"], capsys)
        assert code == 0, err
        output.unlink(missing_ok=True)


def test_embed_refuses_a_pair_model(shape_run, tmp_path, capsys):
    shape, run_dir, paths = shape_run
    code, _, err = cli(["embed", "--model", run_dir, "--input", paths["test"], "--output", tmp_path / "v.npy"], capsys)
    if shape == "pairs":
        assert "trained on sentence pairs" in one_error_line(code, err)
        assert not (tmp_path / "v.npy").exists()
    else:
        assert code == 0, err
        assert np.load(tmp_path / "v.npy").shape == (16, 32)


@pytest.mark.parametrize("shape_run", ["long"], indirect=True)
def test_embed_gives_a_windows_model_the_mean_of_its_windows(shape_run, tmp_path, capsys):
    """A document is embedded as the classifier reads it: cut into windows (max_length 24, stride 6), its vector is
    the mean of its windows' pooled vectors, not the vector of its first window."""
    import torch

    from hfclf.run_folder import load_run

    _, run_dir, paths = shape_run
    texts = pd.read_csv(paths["test"])["review"].tolist()[:3]
    source = tmp_path / "docs.txt"
    source.write_text("\n".join(texts))
    code, _, err = cli(["embed", "--model", run_dir, "--input", source, "--output", tmp_path / "v.npy"], capsys)
    assert code == 0, err
    run = load_run(run_dir)
    encoder, tokenizer = run.encoder(), run.tokenizer()
    expected = []
    with torch.no_grad():
        for text in texts:
            windows = tokenizer(text, truncation=True, max_length=24, stride=6, return_overflowing_tokens=True,
                                padding=True, return_tensors="pt")  # fmt: skip
            assert len(windows["input_ids"]) > 1
            inputs = {key: windows[key] for key in ("input_ids", "attention_mask", "token_type_ids") if key in windows}
            expected.append(encoder(**inputs).pooler_output.mean(0).numpy())
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), np.stack(expected), atol=1e-5)


def test_texts_are_given_as_the_model_was_trained(shape_run, tmp_path, capsys):
    """A pair model needs both texts of each pair; a model of single texts refuses pairs."""
    shape, run_dir, paths = shape_run
    if shape != "pairs":
        argv = ["predict", "--model", run_dir, "--input", paths["test"], "--text-pair-column", "text"]
        assert "trained on single texts" in one_error_line(*cli(argv, capsys)[::2])
        return
    lines = tmp_path / "one_per_line.txt"
    lines.write_text("a text\nanother\n")
    code, _, err = cli(["predict", "--model", run_dir, "--input", lines], capsys)
    assert "needs a table" in one_error_line(code, err)
    no_pair = tmp_path / "no_pair.csv"
    pd.read_csv(paths["test"])[["first", "label"]].to_csv(no_pair, index=False)
    code, _, err = cli(["predict", "--model", run_dir, "--input", no_pair], capsys)
    assert "Column 'second' not found" in one_error_line(code, err)
    code, _, err = cli(["eval", "--model", run_dir, "--test-file", no_pair], capsys)
    assert "Column 'second' not found" in one_error_line(code, err)


# ------------------------------------------------------------------------------------------------------ bad input


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


BAD_INPUT = {
    # name: (train rows, validation rows, header, extra flags, expected error text)
    "mixed list and single labels": (
        [["good film", '["pos", "neg"]'], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "labels"],
        [],
        "mix lists and single values",
    ),
    "multi-label name unseen in train": (
        [["good film", "pos;neg"], ["bad film", "neg"]] * 4,
        [["ok film", "pos;funny"]],
        ["text", "labels"],
        [],
        "has the label 'funny', which is not in the training data",
    ),
    "missing second text": (
        [["a film", "the film", "same"], ["a film", "", "different"]] * 4,
        [["a film", "a film", "same"]],
        ["first", "second", "label"],
        ["--text_columns", "first", "--text_pair_column", "second"],
        "have an empty second text (second)",
    ),
    "pair column not in the file": (
        [["a film", "same"]] * 4,
        [["a film", "same"]],
        ["first", "label"],
        ["--text_columns", "first", "--text_pair_column", "second"],
        "Column 'second' not found",
    ),
    "non-numeric regression target": (
        [["good film", "4.5"], ["bad film", "n/a"]] * 4,
        [["ok film", "3"]],
        ["text", "score"],
        ["--problem_type", "regression"],
        "are not numbers (e.g. 'n/a'",
    ),
    "threshold on a single-label task": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--threshold", "tune"],
        "--threshold applies to multi-label classification",
    ),
    "threshold at its default value on a single-label task": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--threshold", "0.5"],
        "--threshold applies to multi-label classification",
    ),
    "normalized targets turned off on a classification task": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--normalize_targets", "false"],
        "--normalize-targets applies to regression",
    ),
    "normalized targets on a classification task": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--normalize_targets"],
        "--normalize-targets applies to regression",
    ),
    "class weights on regression": (
        [["good film", "4.5"], ["bad film", "1.25"]] * 4,
        [["ok film", "3.5"]],
        ["text", "score"],
        ["--class_weights", "balanced"],
        "--class-weights applies to classification",
    ),
    "window stride not smaller than the window": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--long_text", "windows", "--max_length", "16", "--stride", "14"],
        "--stride 14 must be smaller than the window (--max-length 16 minus the 2 special tokens), or windows would "
        "never advance; pass --stride 3 (a quarter of the window) or a --max-length of 17 or more.",
    ),
    "negative window stride": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--long_text", "windows", "--max_length", "16", "--stride", "-1"],
        "--stride must be 0 or more, got -1.",
    ),
    "head longer than the budget": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--long_text", "head_tail", "--max_length", "64", "--head_tokens", "128"],
        "--head-tokens 128 must leave room for a tail in --max-length 64; pass --head-tokens 31 (half "
        "the budget) or a --max-length of 131 or more.",
    ),
    "label lists as regression targets": (
        [["good film", "joy,love"], ["bad film", "anger"]] * 4,
        [["ok film", "joy"]],
        ["text", "label"],
        ["--problem_type", "regression"],
        "are not numbers (e.g. 'joy,love' at row index 0); a regression target must be a number. Fix them, or pass "
        "--problem_type multi_label_classification to treat them as lists of classes.",
    ),
    "scores as multi-label classes": (
        [["good film", "4.5"], ["bad film", "1.25"]] * 4,
        [["ok film", "3.5"]],
        ["text", "score"],
        ["--problem_type", "multi_label_classification", "--label_column", "score"],
        "are non-integer numbers (2 distinct values, e.g. 4.5, 1.25), which cannot be classes; pass --problem_type "
        "regression to predict them as numbers.",
    ),
    "stride without windows": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--long_text", "head_tail", "--max_length", "64", "--head_tokens", "16", "--stride", "16"],
        "--stride applies to --long-text windows, not head_tail; drop it or pass --long-text windows.",
    ),
    "head tokens when texts are truncated": (
        [["good film", "pos"], ["bad film", "neg"]] * 4,
        [["ok film", "pos"]],
        ["text", "label"],
        ["--head_tokens", "16"],
        "--head-tokens applies to --long-text head_tail, not truncate; drop it or pass --long-text head_tail.",
    ),
    "long-text strategy on pairs": (
        [["a film", "the film", "same"]] * 4,
        [["a film", "a film", "same"]],
        ["first", "second", "label"],
        ["--text_columns", "first", "--text_pair_column", "second", "--long_text", "head_tail"],
        "--long-text head_tail takes single texts",
    ),
}


@pytest.mark.parametrize("strategy", ["windows", "head_tail"])
def test_a_named_pair_dataset_refuses_a_long_text_strategy(strategy, tmp_path, capsys):
    """Windows and head and tail cut one text: on a pair dataset they read the first texts only, in silence."""
    out = tmp_path / "out"
    code = train(["--dataset", "rte", "--long_text", strategy, "--output_dir", str(out)])
    line = one_error_line(code, capsys.readouterr().err)
    assert f"--long-text {strategy} takes single texts; --dataset rte holds sentence pairs" in line
    assert not out.exists()


def test_pairs_are_never_cut_as_one_text():
    """The tokenization itself refuses (a model trained with both before this was refused read the first texts)."""
    from hfclf.data.tokenization import LongText, encode_texts
    from hfclf.errors import HfclfInputError

    with pytest.raises(HfclfInputError, match="cuts one text, not sentence pairs"):
        encode_texts(None, ["a film"], ["the film"], 16, LongText("windows", 8, 2))


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_shape_input_is_one_clear_line_and_nothing_written(case, tmp_path, tiny_encoder_dir, capsys):
    train_rows, validation_rows, header, flags, expected = BAD_INPUT[case]
    data = [
        "--train_file",
        str(write(tmp_path / "train.csv", header, train_rows)),
        "--validation_file",
        str(write(tmp_path / "validation.csv", header, validation_rows)),
    ]
    out = tmp_path / "out"
    code = train(["--model", str(tiny_encoder_dir), "--output_dir", str(out), *data, *flags, *QUICK])
    assert expected in one_error_line(code, capsys.readouterr().err)
    assert not out.exists()


def test_hub_dataset_offline_is_one_clear_line(tmp_path, tiny_encoder_dir, capsys):
    out = tmp_path / "out"
    code = train(["--model", str(tiny_encoder_dir), "--dataset_name", "someone/reviews", "--output_dir", str(out)])
    line = one_error_line(code, capsys.readouterr().err)
    assert "someone/reviews" in line and "offline" in line.lower()
    assert not out.exists()


def test_any_hub_dataset_with_its_config_split_names_and_columns(monkeypatch):
    """`--dataset_name` loads through `datasets.load_dataset` (faked here: tests never reach the Hub)."""
    import datasets

    names = datasets.Sequence(datasets.ClassLabel(names=["anger", "joy", "love"]))
    features = datasets.Features({"body": datasets.Value("string"), "emotions": names})

    def fake_load_dataset(path, name=None):
        assert (path, name) == ("someone/emotions", "simplified")
        split = {"body": ["so happy", "furious", "love it, thrilled"], "emotions": [[1], [0], [1, 2]]}
        return datasets.DatasetDict(
            training=datasets.Dataset.from_dict(split, features=features),
            dev=datasets.Dataset.from_dict(split, features=features),
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    args = DataArguments(
        dataset_name="someone/emotions",
        dataset_config_name="simplified",
        train_split="training",
        validation_split="dev",
        text_columns="body",
        label_column="emotions",
    )
    raw = load_raw_datasets(args)
    assert list(raw) == ["train", "validation"]
    assert raw["train"]["text"][:] == ["so happy", "furious", "love it, thrilled"]
    assert raw["validation"].features["label"].feature.names == ["anger", "joy", "love"]
    assert raw["train"]["label"][:] == [[1], [0], [1, 2]]

    # guessed columns (`labels` as the label): every split's class ids are read by the guessed column's names
    features = datasets.Features(
        {"text": datasets.Value("string"), "labels": datasets.ClassLabel(names=["neg", "pos"])}
    )

    def fake_guessed(path, name=None):
        split = {"text": ["good", "bad", "fine"], "labels": [1, 0, 1]}
        return datasets.DatasetDict(train=datasets.Dataset.from_dict(split, features=features),
                                    validation=datasets.Dataset.from_dict(split, features=features))  # fmt: skip

    monkeypatch.setattr(datasets, "load_dataset", fake_guessed)
    raw = load_raw_datasets(DataArguments(dataset_name="someone/sentiment"))
    assert raw["train"]["label"][:] == raw["validation"]["label"][:] == [1, 0, 1]
    assert raw["train"].features["label"].names == ["neg", "pos"]


def test_detected_shape_and_guessed_columns_are_logged(tmp_path, shapes, caplog):
    caplog.set_level(logging.INFO, logger="hfclf")
    load_raw_datasets(DataArguments(**{f"{split}_file": str(path) for split, path in shapes["regression"].items()}))
    messages = caplog.text
    others = "single_label_classification or multi_label_classification"
    assert "Detected regression: labels are numbers with fractions" in messages
    assert f"Pass --problem_type {others} to choose otherwise." in messages
    assert "Using column 'score' as the label; pass --label-column" in messages
    assert "Using column 'text' as the texts" not in messages and "Using column 'text' as the text" in messages


# ---------------------------------------------------------------------------------------------------- long texts


def test_head_tail_keeps_the_start_and_the_end(minilm_tokenizer):
    words = [f"w{i}" for i in range(40)]
    encoded, origin = encode_texts(minilm_tokenizer, [" ".join(words)], None, 12, LongText("head_tail", 4, 0))
    assert origin is None
    ids = encoded["input_ids"][0]
    assert len(ids) == 12 and ids[0] == minilm_tokenizer.cls_token_id and ids[-1] == minilm_tokenizer.sep_token_id
    full = minilm_tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
    assert ids[1:-1] == full[:4] + full[-6:]


def test_windows_overlap_by_the_stride_and_cover_every_token(minilm_tokenizer):
    texts = [" ".join(f"w{i}" for i in range(30)), "short text"]
    encoded, origin = encode_texts(minilm_tokenizer, texts, None, 12, LongText("windows", 128, 4))
    full = minilm_tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    windows = [ids[1:-1] for ids, doc in zip(encoded["input_ids"], origin) if doc == 0]
    assert origin.count(1) == 1 and len(windows) > 1
    assert all(a[-4:] == b[:4] for a, b in zip(windows, windows[1:]))  # consecutive windows share 4 tokens
    covered = windows[0] + [token for window in windows[1:] for token in window[4:]]
    assert covered == full


# ------------------------------------------------------------------------------------------------ named datasets


@pytest.mark.parametrize(
    "name, problem_type, splits, labels, pairs",
    [
        ("go_emotions", MULTI_LABEL, {"train": 43_410, "validation": 5_426}, 28, False),
        ("stsb", REGRESSION, {"train": 5_749, "validation": 1_500}, 1, True),
        ("rte", SINGLE_LABEL, {"train": 2_490, "validation": 277}, 2, True),
        ("imdb_ratings", REGRESSION, {"train": 25_000, "test": 25_000}, 1, False),
    ],
)
def test_named_datasets_of_every_shape(data_dir, name, problem_type, splits, labels, pairs, caplog):
    from hfclf.data.loading import label_names_of, problem_type_of

    caplog.set_level(logging.INFO, logger="hfclf")
    raw = load_raw_datasets(DataArguments(dataset=name, data_dir=str(data_dir), validation_fraction=0.0))
    # the task shape is logged with its override, whether the dataset sets it or the labels show it
    description = get_task(problem_type).description
    assert f"{name} is {description} (the dataset's task shape)" in caplog.text or f"Detected {description}" in (
        caplog.text
    )
    assert "to choose otherwise." in caplog.text
    assert {split: len(raw[split]) for split in splits} == splits
    train = raw["train"]
    assert problem_type_of(train) == problem_type
    assert len(label_names_of(train)) == labels
    assert ("text_pair" in train.column_names) == pairs
    if name == "go_emotions":
        assert label_names_of(train)[0] == "admiration" and label_names_of(train)[-1] == "neutral"
        assert all(isinstance(ids, list) and ids for ids in train["label"][:100])
    if name in ("stsb", "imdb_ratings"):
        values = np.asarray(train["label"][:])
        assert values.min() >= (0 if name == "stsb" else 1) and values.max() <= (5 if name == "stsb" else 10)


@pytest.mark.parametrize("name", ["stsb", "rte"])
def test_a_named_pair_datasets_columns_are_saved_with_the_model(name):
    """predict and eval read both columns of a file with the named dataset's own column names, unasked."""
    from hfclf.commands.finetune import input_format

    fmt = input_format(DataArguments(dataset=name))
    assert fmt["text_columns"] == ["sentence1"] and fmt["text_pair_column"] == "sentence2"
    assert input_format(DataArguments(dataset="sst2"))["text_columns"] is None


def test_the_text_columns_and_their_separator_are_saved_with_the_model():
    """predict reads a model's --text_columns and joins them with its --text_separator, as training did."""
    from hfclf.commands.finetune import input_format

    fmt = input_format(DataArguments(train_file="t.csv", text_columns="title, description", text_separator=" | "))
    assert fmt["text_columns"] == ["title", "description"] and fmt["text_separator"] == " | "


def test_regression_gold_is_written_as_the_file_gave_it():
    """The targets reach predictions.csv through the model's float32: 177.05 stays 177.05, not 177.050003."""
    from hfclf.data.scoring import gold_cells

    gold = np.array([177.05, 3.1, 0.2, -12.345678], dtype=np.float32)
    assert gold_cells(gold, REGRESSION, ["score"]) == [177.05, 3.1, 0.2, -12.345678]
    assert gold_cells([2.5, 1.0], REGRESSION, ["score"]) == [2.5, 1.0]  # float64 values stay as they are
