"""The `hfclf` command: subcommand dispatch and help, predict, eval and embed on a tiny trained model, bad input."""

import io
import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfclf.commands.cli import COMMANDS, main
from hfclf.inference.predict import split_sentences

# fp32: predict and eval are checked against the model's plain fp32 forward and the run's own metrics
QUICK = ["--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--max_length", "32", "--seed", "3"]
QUICK += ["--bf16", "false"]
TEXTS = ["a great and moving film", "dull , boring plot", "the acting was really wonderful and fun"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_encoder_dir, toy_data):
    """A pooled (mean) classifier trained for one epoch on the toy data."""
    from hfclf.commands.finetune import main as train

    out = tmp_path_factory.mktemp("cli") / "run"
    files = [w for split, path in toy_data.items() for w in (f"--{split}_file", str(path))]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        assert (
            train(["--model", str(tiny_encoder_dir), "--pooling", "mean", "--output_dir", str(out), *files, *QUICK])
            == 0
        )
    return out


def cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def reference_probabilities(run_dir, texts):
    model = AutoModelForSequenceClassification.from_pretrained(run_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    return logits.softmax(-1).numpy(), [model.config.id2label[i] for i in range(model.config.num_labels)]


# ------------------------------------------------------------------------------------------------------- dispatch


def test_help_lists_every_subcommand(capsys):
    code, out, _ = cli(["--help"], capsys)
    assert code == 0
    for command in ("train", "compare", "predict", "eval", "embed", "export", "push"):
        assert command in COMMANDS and f"    {command}" in out
    assert "examples:" in out


@pytest.mark.parametrize("command", ["train", "compare", "search", "predict", "eval", "embed", "export", "push"])
def test_subcommand_help_has_examples(command, capsys):
    try:
        code, out, _ = cli([command, "--help"], capsys)
    except SystemExit as done:  # the commands that run training parse their flags with argparse's own exit
        code, out = done.code, capsys.readouterr().out
    assert code == 0
    assert "examples:" in out and f"hfclf {command} " in out
    assert out.startswith(f"usage: hfclf {command} ")  # named as it is typed, not `hfclf` alone
    if command == "train":  # a help text that names its default is not followed by argparse's "(default: None)"
        assert "(default: runs/<dataset>-<arch>-<pooling>). --per" in " ".join(out.split())


def test_unknown_subcommand_and_missing_flags_exit_2(capsys):
    assert cli(["frobnicate"], capsys)[0] == 2
    assert cli([], capsys)[0] == 2
    code, _, err = cli(["predict", "--input", "x.txt"], capsys)  # no --model
    assert code == 2 and "--model" in err


def test_train_and_compare_dispatch(monkeypatch):
    import hfclf.commands.compare
    import hfclf.commands.finetune

    seen = {}
    monkeypatch.setattr(hfclf.commands.finetune, "main", lambda argv, prog: seen.setdefault("train", argv) and 0)
    monkeypatch.setattr(hfclf.commands.compare, "main", lambda argv: seen.setdefault("compare", argv) and 0)
    assert main(["train", "--dataset", "sst2"]) == 0
    assert main(["compare", "--x", "1"]) == 0
    assert seen == {"train": ["--dataset", "sst2"], "compare": ["--x", "1"]}


# -------------------------------------------------------------------------------------------------------- predict


def test_predict_csv_to_csv_in_input_order_with_top_k(run_dir, tmp_path, capsys):
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2, 3], "review": TEXTS}).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    code, _, err = cli(["predict", "--model", run_dir, "--input", source, "--output", out, "--top-k", "2"], capsys)
    assert code == 0, err
    rows = pd.read_csv(out)
    probabilities, names = reference_probabilities(run_dir, TEXTS)
    assert rows["text"].tolist() == TEXTS
    assert list(rows.columns[:3]) == ["text", "label", "score"]
    assert {f"prob_{n}" for n in names} | {"top1_label", "top2_score"} <= set(rows.columns)
    np.testing.assert_allclose(rows[[f"prob_{n}" for n in names]].to_numpy(), probabilities, atol=1e-5)
    assert rows["label"].tolist() == [names[i] for i in probabilities.argmax(-1)]
    assert (rows["top1_label"] == rows["label"]).all()
    assert (rows["top1_score"] >= rows["top2_score"]).all()


def test_predict_and_eval_in_bf16_autocast(run_dir, toy_data, tmp_path, capsys, monkeypatch):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS))
    out = tmp_path / "out.csv"
    autocasts, autocast = [], torch.autocast

    def recording_autocast(device_type, *args, **kwargs):
        autocasts.append((device_type, kwargs.get("dtype"), kwargs.get("enabled", True)))
        return autocast(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", recording_autocast)
    code, _, err = cli(["predict", "--model", run_dir, "--input", source, "--output", out, "--bf16"], capsys)
    assert code == 0, err
    assert autocasts[0] == ("cpu", torch.bfloat16, True)  # it did compute in bf16 (the head in fp32)
    probabilities, names = reference_probabilities(run_dir, TEXTS)
    bf16 = pd.read_csv(out)[[f"prob_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(bf16, probabilities, atol=2e-2)

    metrics = tmp_path / "metrics.json"
    argv = ["eval", "--model", run_dir, "--test-file", toy_data["test"], "--output", metrics, "--bf16"]
    assert cli(argv, capsys)[0] == 0
    expected = json.loads((run_dir / "results.json").read_text())["test"]
    assert json.loads(metrics.read_text())["test_loss"] == pytest.approx(expected["test_loss"], abs=2e-2)

    code, _, err = cli(["predict", "--model", run_dir, "--input", source, "--bf16", "--backend", "onnx"], capsys)
    assert "--bf16 applies to --backend torch" in one_error_line(code, err)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_that_emulates_it_is_warned_of(
    run_dir, tiny_encoder_dir, toy_data, tmp_path, capsys, caplog, monkeypatch, native
):
    """Without AVX512-BF16 or AMX the CPU emulates bf16, several times slower than fp32: asked for anyway (train,
    predict), it is done, with a warning that says how to compute in fp32."""
    import hfclf.training_args as training_args
    from hfclf.commands.finetune import main as train

    if torch.cuda.is_available():
        pytest.skip("predict and train would use the GPU")
    monkeypatch.setattr(training_args, "cpu_computes_bf16", lambda: native)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS))
    files = [w for split, path in toy_data.items() for w in (f"--{split}_file", str(path))]
    train_argv = ["--model", tiny_encoder_dir, "--output_dir", tmp_path / "run", *files, *QUICK, "--max_steps", "1"]
    for command, run, fix in (
        (["predict", "--model", run_dir, "--input", source, "--bf16"], main, "drop --bf16"),
        ([*train_argv, "--bf16", "true"], train, "pass --bf16 false"),
    ):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hfclf"):
            assert run([str(word) for word in command]) == 0, capsys.readouterr().err
        warned = [r.getMessage() for r in caplog.records if "emulates bf16" in r.getMessage()]
        assert warned == ([] if native else [f"This CPU has no native bf16 (AVX512-BF16 or AMX), so it emulates bf16, "
                                             f"several times slower than fp32; {fix} to compute in fp32."])  # fmt: skip


def test_predict_txt_and_stdin_to_jsonl(run_dir, tmp_path, capsys, monkeypatch):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "out.jsonl"
    assert cli(["predict", "--model", run_dir, "--input", source, "--output", out], capsys)[0] == 0
    from_file = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in from_file] == TEXTS

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(TEXTS) + "\n\n\n"))  # blank lines at the end: no texts
    code, stdout, _ = cli(["predict", "--model", run_dir, "--input", "-", "--batch-size", "2"], capsys)
    assert code == 0
    from_stdin = [json.loads(line) for line in stdout.splitlines()]
    assert [r["label"] for r in from_stdin] == [r["label"] for r in from_file]
    assert [r["score"] for r in from_stdin] == pytest.approx([r["score"] for r in from_file], abs=1e-5)


def test_a_byte_order_mark_is_no_part_of_the_first_text(run_dir, tmp_path, capsys, monkeypatch):
    source = tmp_path / "bom.txt"
    source.write_bytes("\ufeffgreat film\nawful\n".encode())
    code, stdout, err = cli(["predict", "--model", run_dir, "--input", source], capsys)
    assert code == 0, err
    assert [json.loads(line)["text"] for line in stdout.splitlines()] == ["great film", "awful"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\ufeffgreat film\nawful\n"))
    code, stdout, err = cli(["predict", "--model", run_dir, "--input", "-"], capsys)
    assert code == 0, err
    assert [json.loads(line)["text"] for line in stdout.splitlines()] == ["great film", "awful"]


def one_error_line(code, err):
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_tsv_output_reads_back_as_written(run_dir, tmp_path, capsys):
    """hfclf reads .tsv without quoting, so it writes it without quoting: its own output round-trips."""
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": ['quote "inside", comma', "plain"]}).to_csv(source, index=False)
    first, second = tmp_path / "first.tsv", tmp_path / "second.tsv"
    assert cli(["predict", "--model", run_dir, "--input", source, "--output", first], capsys)[0] == 0
    assert cli(["predict", "--model", run_dir, "--input", first, "--output", second], capsys)[0] == 0
    assert first.read_text().splitlines()[1].startswith('quote "inside", comma\t')
    assert first.read_text() == second.read_text()
    pd.DataFrame({"text": ["a\ttab"]}).to_csv(source, index=False)
    again = ["predict", "--model", run_dir, "--input", source, "--output", first, "--overwrite"]
    assert one_error_line(*cli(again, capsys)[::2]).startswith(
        "error: Text 1 holds a tab or a line break, which a .tsv file cannot hold"
    )
    assert first.read_text() == second.read_text()  # kept


def test_an_existing_output_file_is_replaced_only_with_overwrite(run_dir, tmp_path, capsys):
    """predict, eval and embed refuse to write over a file (another run's results.json, a checkpoint's record, your
    own file) unless told to."""
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a fine film", "a dull one"], "label": ["pos", "neg"]}).to_csv(source, index=False)
    commands = {
        "predict": ["predict", "--model", run_dir, "--input", source],
        "eval": ["eval", "--model", run_dir, "--test-file", source],
        "embed": ["embed", "--model", run_dir, "--input", source],
    }
    for name, command in commands.items():
        output = tmp_path / {"predict": "p.csv", "eval": "results.json", "embed": "v.npy"}[name]
        output.write_text("mine")
        message = one_error_line(*cli([*command, "--output", output], capsys)[::2])
        assert (
            message == f"error: --output {output} already exists; pass --overwrite to replace it, or choose "
            "another file."
        ), name
        assert output.read_text() == "mine"
        assert cli([*command, "--output", output, "--overwrite"], capsys)[0] == 0, name
        assert output.read_bytes() != b"mine"


def test_predict_bad_input(run_dir, tiny_encoder_dir, tmp_path, capsys):
    base = ["predict", "--overwrite", "--model", run_dir, "--output", tmp_path / "o.csv", "--input"]
    assert "does not exist" in one_error_line(*cli([*base, tmp_path / "missing.csv"], capsys)[::2])
    assert "is a folder" in one_error_line(*cli([*base, tmp_path], capsys)[::2])
    garbled = tmp_path / "garbled.parquet"
    garbled.write_bytes(b"\x00\x01not parquet")
    assert "Could not read" in one_error_line(*cli([*base, garbled], capsys)[::2])
    other = tmp_path / "texts.yaml"
    other.write_text("a text\n")
    message = one_error_line(*cli([*base, other], capsys)[::2])  # every kind of input predict reads, named
    assert "Unsupported input file 'texts.yaml'" in message and ".parquet" in message and ".txt" in message, message
    assert "- for stdin" in message

    no_text = tmp_path / "no_text.csv"
    pd.DataFrame({"body": TEXTS}).to_csv(no_text, index=False)
    message = one_error_line(*cli([*base, no_text], capsys)[::2])
    assert "No text column" in message and "body" in message and "--text-column" in message
    assert cli([*base, no_text, "--text-column", "body"], capsys)[0] == 0
    message = one_error_line(*cli([*base, no_text, "--text-column", "nope"], capsys)[::2])
    assert "'nope' not found" in message
    assert "looks like data" not in message
    headerless = tmp_path / "ag.csv"
    headerless.write_text('"3","Fears for pension","Unions say they are disappointed"\n"4","Race is on","A team"\n')
    assert "its first row looks like data" in one_error_line(*cli([*base, headerless], capsys)[::2]).lower()

    blank = tmp_path / "blank.txt"
    blank.write_text("good\n\nbad\n  \nfine\n")
    message = one_error_line(*cli([*base, blank], capsys)[::2])
    assert "2 empty" in message and "line 2, 4" in message

    good = tmp_path / "good.txt"
    good.write_text("\n".join(TEXTS))
    message = one_error_line(*cli(["predict", "--model", tiny_encoder_dir, "--input", good], capsys)[::2])
    assert "without a classifier head" in message and "BertModel" in message
    message = one_error_line(*cli(["predict", "--model", tmp_path, "--input", good], capsys)[::2])
    assert "no config.json" in message
    assert "--top-k" in one_error_line(*cli([*base, no_text, "--text-column", "body", "--top-k", "5"], capsys)[::2])
    assert ".jsonl" in one_error_line(*cli([*base[:-3], "--output", tmp_path / "o.xlsx", "--input", good], capsys)[::2])


def test_predict_and_embed_log_the_text_column_they_guess(run_dir, tmp_path, capsys, caplog):
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2, 3], "review": TEXTS}).to_csv(source, index=False)
    guess = "Using column 'review' as the text; pass --text-column to choose another."
    for command, output in (("predict", "p.csv"), ("embed", "e.npy")):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hfclf"):
            code, _, err = cli([command, "--model", run_dir, "--input", source, "--output", tmp_path / output], capsys)
        assert code == 0, err
        assert guess in caplog.messages
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hfclf"):
            argv = [command, "--model", run_dir, "--input", source, "--output", tmp_path / output, "--overwrite"]
            assert cli([*argv, "--text-column", "review"], capsys)[0] == 0
        assert not any(message.startswith("Using column") for message in caplog.messages)  # chosen, not guessed


def trained_on(run_dir, folder, **input_format):
    """A copy of the trained run whose config says it was trained on other columns (`input_format`)."""
    shutil.copytree(run_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["input_format"] = {**config["input_format"], **input_format}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_predict_reads_the_text_columns_the_model_was_trained_on_joined_as_in_training(run_dir, tmp_path, capsys):
    joined = trained_on(run_dir, tmp_path / "joined", text_columns=["title", "description"], text_separator=" | ")
    titles, descriptions = ["a great film", "dull", "the acting"], ["and moving", "boring plot", "was wonderful"]
    expected = [f"{title} | {description}" for title, description in zip(titles, descriptions)]
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2, 3], "title": titles, "description": descriptions}).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    base = ["predict", "--model", joined, "--input", source, "--output", out, "--overwrite"]
    probabilities, names = reference_probabilities(run_dir, expected)
    for flags in ([], ["--text-column", "title,description"]):
        code, _, err = cli([*base, *flags], capsys)
        assert code == 0, err
        rows = pd.read_csv(out)
        assert rows["text"].tolist() == expected
        np.testing.assert_allclose(rows[[f"prob_{n}" for n in names]].to_numpy(), probabilities, atol=1e-5)
    assert cli([*base, "--text-column", "description"], capsys)[0] == 0
    assert pd.read_csv(out)["text"].tolist() == descriptions

    lines = tmp_path / "joined.txt"  # embed reads the same text
    lines.write_text("\n".join(expected))
    for name, input_file in (("table.npy", source), ("lines.npy", lines)):
        assert cli(["embed", "--model", joined, "--input", input_file, "--output", tmp_path / name], capsys)[0] == 0
    np.testing.assert_allclose(np.load(tmp_path / "table.npy"), np.load(tmp_path / "lines.npy"), atol=1e-5)

    texts = tmp_path / "texts.jsonl"  # a file without the model's columns: the error says whose columns they are
    pd.DataFrame({"text": TEXTS}).to_json(texts, orient="records", lines=True)
    review = trained_on(run_dir, tmp_path / "review", text_columns=["review"])
    message = one_error_line(*cli(["predict", "--model", review, "--input", texts], capsys)[::2])
    assert message.startswith(f"error: Column 'review' not found in {texts} (columns: text): the model was trained on")
    assert "the text of column 'review'. Pass --text-column with one of the file's columns" in message
    assert cli(["predict", "--model", review, "--input", texts, "--text-column", "text"], capsys)[0] == 0
    message = one_error_line(*cli(["predict", "--model", joined, "--input", texts], capsys)[::2])
    assert "trained on the text of columns 'title', 'description' (joined)" in message

    pairs = tmp_path / "pairs.csv"  # a pair model still reads both of its columns
    pd.DataFrame({"premise": titles, "hypothesis": descriptions}).to_csv(pairs, index=False)
    pair_model = trained_on(run_dir, tmp_path / "pair", text_columns=["premise"], text_pair_column="hypothesis")
    code, stdout, err = cli(["predict", "--model", pair_model, "--input", pairs], capsys)
    assert code == 0, err
    assert [(row["text"], row["text_pair"]) for row in map(json.loads, stdout.splitlines())] == [
        *zip(titles, descriptions)
    ]

    # eval reads the trained columns too (by default, or as --text-columns), joined as training did
    labels = ["pos", "neg", "pos"]
    pd.DataFrame({"title": titles, "description": descriptions, "sentiment": labels}).to_csv(source, index=False)
    pd.DataFrame({"text": expected, "sentiment": labels}).to_csv(tmp_path / "prejoined.csv", index=False)
    losses = []
    for test_file, flags in (
        (source, []),
        (source, ["--text-columns", "title,description"]),
        (tmp_path / "prejoined.csv", ["--text-columns", "text"]),
    ):
        argv = ["eval", "--model", joined, "--test-file", test_file, "--output", tmp_path / "metrics.json", *flags]
        assert cli([*argv, "--overwrite"], capsys)[0] == 0
        losses.append(json.loads((tmp_path / "metrics.json").read_text())["test_loss"])
    assert losses[0] == pytest.approx(losses[1], abs=1e-6) and losses[0] == pytest.approx(losses[2], abs=1e-6)


# ----------------------------------------------------------------------------------------------------------- eval


def test_eval_reproduces_training_metrics(run_dir, toy_data, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code, stdout, err = cli(["eval", "--model", run_dir, "--test-file", toy_data["test"], "--output", out], capsys)
    assert code == 0, err
    metrics = json.loads(out.read_text())
    expected = json.loads((run_dir / "results.json").read_text())["test"]
    for key in ("test_accuracy", "test_f1_macro", "test_mcc", "test_samples", "test_precision_macro"):
        assert metrics[key] == pytest.approx(expected[key]), key
    assert metrics["test_loss"] == pytest.approx(expected["test_loss"], abs=1e-4)
    assert "test_accuracy" in stdout and "test_f1_weighted" in stdout


def test_eval_maps_labels_by_name_and_rejects_unknown(run_dir, toy_data, tmp_path, capsys):
    # the same test data with labels given as the model's class ids, and in another column
    df = pd.read_csv(toy_data["test"])
    df["tag"] = df.pop("sentiment").map({"neg": 0, "pos": 1})
    ids = tmp_path / "ids.csv"
    df.to_csv(ids, index=False)
    code, _, err = cli(["eval", "--model", run_dir, "--test-file", ids, "--label-column", "tag"], capsys)
    assert code == 0, err

    df["tag"] = df["tag"].map({0: "neg", 1: "neutral"})
    unknown = tmp_path / "unknown.csv"
    df.to_csv(unknown, index=False)
    message = one_error_line(
        *cli(["eval", "--model", run_dir, "--test-file", unknown, "--label-column", "tag"], capsys)[::2]
    )
    assert "neutral" in message and "model" in message
    df["tag"] = df["tag"].map({"neg": 0, "neutral": 5})  # class ids, one the model does not have
    df.to_csv(unknown, index=False)
    message = one_error_line(
        *cli(["eval", "--model", run_dir, "--test-file", unknown, "--label-column", "tag"], capsys)[::2]
    )
    assert (
        message == "error: The data's labels are class ids, and 5 is not among the model's ids 0 to 1 (neg, pos). "
        "Evaluate on data with the model's labels."
    )
    assert "--dataset" in one_error_line(*cli(["eval", "--model", run_dir], capsys)[::2])
    message = one_error_line(*cli(["eval", "--model", run_dir, "--test-file", tmp_path / "nope.csv"], capsys)[::2])
    assert "does not exist" in message
    (header := tmp_path / "header.csv").write_text("text,sentiment\n")
    message = one_error_line(*cli(["eval", "--model", run_dir, "--test-file", header], capsys)[::2])
    assert message.startswith(f"error: The test file {header} has no rows (a header only?)")


def test_eval_named_dataset(run_dir, data_dir, capsys, monkeypatch):
    # the toy model's labels (neg, pos) are not SST-2's (negative, positive): a clear error, by name
    message = one_error_line(
        *cli(["eval", "--model", run_dir, "--dataset", "sst2", "--data-dir", data_dir], capsys)[::2]
    )
    assert "negative" in message and "neg" in message

    import hfclf.data.loading

    read, real = [], hfclf.data.loading._read_table
    monkeypatch.setattr(
        hfclf.data.loading, "_read_table", lambda path, *a, **kw: read.append(path.name) or real(path, *a, **kw)
    )
    argv = ["eval", "--model", run_dir, "--dataset", "sst2", "--data-dir", data_dir, "--split", "validation"]
    assert "negative" in one_error_line(*cli(argv, capsys)[::2])
    assert read == ["dev.tsv.gz"]  # the split it scores, not the other two
    argv = ["eval", "--model", run_dir, "--dataset", "ag_news", "--data-dir", data_dir, "--split", "validation"]
    message = one_error_line(*cli(argv, capsys)[::2])  # no validation split, and no train split to carve one from
    assert message == "error: The data has no validation split; pass --split test."


def test_eval_validation_carved_with_the_runs_seed(run_dir, data_dir, tmp_path, capsys, monkeypatch):
    """IMDB has no validation split: `eval --split validation` carves it as the run did (its seed and fraction)."""
    import hfclf.data.loading

    calls = []
    real = hfclf.data.loading.load_raw_datasets
    monkeypatch.setattr(
        hfclf.data.loading, "load_raw_datasets", lambda args, **kw: calls.append((args, kw)) or real(args, **kw)
    )
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    results = json.loads((run / "results.json").read_text())
    results["arguments"]["data"]["validation_fraction"] = 0.02
    results["arguments"]["training"]["seed"] = 7
    (run / "results.json").write_text(json.dumps(results))
    argv = ["eval", "--model", run, "--dataset", "imdb", "--data-dir", data_dir, "--split", "validation"]
    code, stdout, err = cli([*argv, "--max-length", "16", "--output", tmp_path / "m.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["eval_samples"] == 500  # 2% of 25,000
    assert calls[-1][0].validation_fraction == 0.02 and calls[-1][1]["seed"] == 7
    (run / "results.json").unlink()  # an exported folder: the carve is unknown, so refuse
    assert "--split test" in one_error_line(*cli(argv, capsys)[::2])


# ---------------------------------------------------------------------------------------------------------- embed


def test_embed_loads_the_classifiers_encoder_without_a_loading_report(run_dir, tmp_path):
    """The encoder is the classifier's own base model: transformers has no unused head weights to report (in a
    process of its own, where transformers' log reaches stderr)."""
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS))
    argv = ["embed", "--model", str(run_dir), "--input", str(source), "--output", str(tmp_path / "v.npy")]
    done = subprocess.run(
        [sys.executable, "-m", "hfclf.commands.cli", *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOAD REPORT" not in done.stderr and "UNEXPECTED" not in done.stderr, done.stderr[-2000:]


def test_embed_npy_uses_the_models_pooling_head(run_dir, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS))
    out = tmp_path / "vectors.npy"
    assert cli(["embed", "--model", run_dir, "--input", source, "--output", out], capsys)[0] == 0
    vectors = np.load(out)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 32)

    model = AutoModelForSequenceClassification.from_pretrained(run_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    with torch.no_grad():
        expected = model.model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).pooler_output
    np.testing.assert_allclose(vectors, expected.numpy(), atol=1e-5)

    assert cli(["embed", "--model", run_dir, "--input", source, "--output", out, "--normalize", "--overwrite"],
               capsys)[0] == 0  # fmt: skip
    np.testing.assert_allclose(np.linalg.norm(np.load(out), axis=-1), 1.0, atol=1e-5)


def test_split_sentences():
    assert split_sentences('It was good. "Really!" Then?  Yes\nnew line') == [
        "It was good.",
        '"Really!"',
        "Then?",
        "Yes",
        "new line",
    ]


def test_embed_split_sentences_parquet(run_dir, tmp_path, capsys):
    documents = ["Great film. Boring plot!", "Wonderful.", "dull and weak. fun? the end"]
    source = tmp_path / "docs.jsonl"
    pd.DataFrame({"text": documents}).to_json(source, orient="records", lines=True)
    out = tmp_path / "sentences.parquet"
    code, _, err = cli(["embed", "--model", run_dir, "--input", source, "--output", out, "--split-sentences"], capsys)
    assert code == 0, err
    df = pd.read_parquet(out)
    assert list(df.columns) == ["doc_id", "sentence_id", "text", "embedding"]
    assert df[["doc_id", "sentence_id"]].values.tolist() == [[0, 0], [0, 1], [1, 0], [2, 0], [2, 1], [2, 2]]
    assert df["text"].tolist() == ["Great film.", "Boring plot!", "Wonderful.", "dull and weak.", "fun?", "the end"]

    # each sentence's vector is that sentence embedded alone
    alone = tmp_path / "alone.txt"
    alone.write_text("\n".join(df["text"]))
    assert cli(["embed", "--model", run_dir, "--input", alone, "--output", tmp_path / "alone.npy"], capsys)[0] == 0
    np.testing.assert_allclose(np.stack(df["embedding"]), np.load(tmp_path / "alone.npy"), atol=1e-5)

    npy = tmp_path / "sentences.npy"
    assert cli(["embed", "--model", run_dir, "--input", source, "--output", npy, "--split-sentences"], capsys)[0] == 0
    index = pd.read_csv(tmp_path / "sentences.index.csv")
    assert len(index) == len(np.load(npy)) == 6 and list(index.columns) == ["doc_id", "sentence_id", "text"]


def test_embed_plain_encoder_falls_back_to_mean_pooling(tiny_encoder_dir, tmp_path, capsys, caplog):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS))
    with caplog.at_level(logging.INFO, logger="hfclf"):
        code, _, err = cli(
            ["embed", "--model", tiny_encoder_dir, "--input", source, "--output", tmp_path / "v.npy"], capsys
        )
    assert code == 0, err
    assert "mean pooling" in caplog.text
    assert np.load(tmp_path / "v.npy").shape == (3, 32)
    assert ".npy or .parquet" in one_error_line(
        *cli(["embed", "--model", tiny_encoder_dir, "--input", source, "--output", tmp_path / "v.csv"], capsys)[::2]
    )


# -------------------------------------------------------------------------------- nothing lost, nothing ignored


@pytest.fixture
def damaged_runs(run_dir, tmp_path):
    """Copies of the trained run with a truncated model file (safetensors, and PyTorch's format), and with a truncated
    config.json."""
    damaged = {}
    for name in ("model.safetensors", "pytorch_model.bin", "config.json"):
        folder = tmp_path / f"damaged-{name}"
        shutil.copytree(run_dir, folder)
        if name == "pytorch_model.bin":  # the weights in PyTorch's (zip) format instead of safetensors
            (folder / "model.safetensors").unlink()
            torch.save(AutoModelForSequenceClassification.from_pretrained(run_dir).state_dict(), folder / name)
        path = folder / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        damaged[name] = folder
    return damaged


COMMAND_OUTPUTS = ("p.csv", "e.npy", "exported")  # what `model_folder_commands` would write


def model_folder_commands(folder, texts, toy_data, tmp_path) -> list[list]:
    """Every command that reads a model folder: predict, embed, eval and export (outputs in `tmp_path`)."""
    return [
        ["predict", "--model", folder, "--input", texts, "--output", tmp_path / "p.csv"],
        ["embed", "--model", folder, "--input", texts, "--output", tmp_path / "e.npy"],
        ["eval", "--model", folder, "--test-file", toy_data["test"]],
        ["export", folder, tmp_path / "exported"],
    ]


def test_damaged_model_files_are_one_clear_error(damaged_runs, toy_data, tmp_path, capsys):
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(TEXTS))
    for name, folder in damaged_runs.items():
        expected = "is not readable JSON" if name == "config.json" else "is damaged"
        for command in model_folder_commands(folder, texts, toy_data, tmp_path):
            message = one_error_line(*cli(command, capsys)[::2])
            assert expected in message and name in message, (command, message)
        assert not [p for p in tmp_path.iterdir() if p.name in COMMAND_OUTPUTS]


def without_vocabulary(folder):
    """No tokenizer.json (nor vocab.txt), tokenizer_config.json kept: transformers would load special tokens only, so
    every word would be unknown."""
    for name in ("tokenizer.json", "vocab.txt"):
        (folder / name).unlink(missing_ok=True)


def with_more_tokens(folder):
    """Another model's tokenizer: ids past the model's word vectors (an IndexError in the embeddings)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([f"newword{i}" for i in range(10)])
    tokenizer.save_pretrained(folder)


@pytest.mark.parametrize(
    "damage, expected",
    [(without_vocabulary, "has no vocabulary file"), (with_more_tokens, "has 30532 tokens but the model")],
)
def test_a_tokenizer_that_does_not_fit_the_model_is_one_clear_error(
    run_dir, toy_data, tmp_path, capsys, damage, expected
):
    folder = tmp_path / "tokenizer"
    shutil.copytree(run_dir, folder)
    damage(folder)
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(TEXTS))
    for command in model_folder_commands(folder, texts, toy_data, tmp_path):
        message = one_error_line(*cli(command, capsys)[::2])
        assert message.startswith(f"error: The tokenizer in {folder} {expected}"), command
    assert not [p for p in tmp_path.iterdir() if p.name in COMMAND_OUTPUTS]


def test_a_tokenizer_without_a_vocabulary_file_loads_when_it_needs_none(run_dir, tmp_path):
    """Byte- and character-level tokenizers (ByT5, CANINE) save no vocabulary file; only a tokenizer that then fails
    to load, or loads without words, is refused for a missing one."""
    from transformers import ByT5Tokenizer

    from hfclf.run_folder import load_run

    folder = tmp_path / "bytes"
    shutil.copytree(run_dir, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    ByT5Tokenizer().save_pretrained(folder)
    tokenizer = load_run(folder).tokenizer()
    assert type(tokenizer).__name__ == "ByT5Tokenizer" and tokenizer("ok")["input_ids"]


def test_a_config_that_does_not_fit_the_weights_is_one_clear_error(run_dir, toy_data, tmp_path, capsys):
    folder = tmp_path / "mixed"
    shutil.copytree(run_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "neg", "1": "neutral", "2": "pos"}
    config["label2id"] = {"neg": 0, "neutral": 1, "pos": 2}
    (folder / "config.json").write_text(json.dumps(config))
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(TEXTS))
    expected = f"error: {folder / 'config.json'} has 3 labels but the classifier in model.safetensors has 2 outputs"
    for command in (
        ["predict", "--model", folder, "--input", texts, "--output", tmp_path / "p.csv"],
        ["eval", "--model", folder, "--test-file", toy_data["test"]],
        ["export", folder, tmp_path / "exported"],
    ):
        code, _, err = cli(command, capsys)
        assert one_error_line(code, err).startswith(expected), command
        assert "LOAD REPORT" not in err
    assert not [p for p in tmp_path.iterdir() if p.name in ("p.csv", "exported")]
    typeless = tmp_path / "typeless"
    shutil.copytree(run_dir, typeless)
    (typeless / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "model_type"}))
    message = one_error_line(*cli(["predict", "--model", typeless, "--input", texts], capsys)[::2])
    assert message.startswith(f"error: {typeless / 'config.json'} has no model_type, so no model class can read it")
    # another size than the weights' (transformers raised a pointer to a report it did not show)
    resized = tmp_path / "resized"
    shutil.copytree(run_dir, resized)
    config = json.loads((run_dir / "config.json").read_text())
    config["encoder_config"]["intermediate_size"] += 1
    (resized / "config.json").write_text(json.dumps(config))
    message = one_error_line(*cli(["predict", "--model", resized, "--input", texts], capsys)[::2])
    expected = f"error: The weights in {resized} do not fit the model its config.json describes (mismatched: model."
    assert message.startswith(expected) and "intermediate.dense" in message, message


def test_unfit_pickled_or_tokenizerless_model_folders_are_refused(run_dir, toy_data, tmp_path, capsys, monkeypatch):
    """Weights missing from model.safetensors would be random, and a pickled .bin could run code: both are one error
    line in every command, before anything is written, and nothing is unpickled."""
    from safetensors.torch import load_file, save_file

    weights = load_file(run_dir / "model.safetensors")
    headless, pickled = tmp_path / "headless", tmp_path / "pickled"
    for folder in (headless, pickled):
        shutil.copytree(run_dir, folder)
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")}, headless / "model.safetensors")
    tokenless = tmp_path / "tokenless"
    shutil.copytree(run_dir, tokenless)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (tokenless / name).unlink(missing_ok=True)
    (pickled / "model.safetensors").unlink()
    torch.save(weights, pickled / "pytorch_model.bin")
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: pytest.fail("a weight file was unpickled"))
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(TEXTS))
    expected = {
        headless: f"error: The weights in {headless} do not fit the model its config.json describes (missing: "
        "classifier.bias, classifier.weight); restore",
        pickled: f"error: {pickled} has no model.safetensors (only pytorch_model.bin, which hfclf does not read "
        "(pickle)); convert",
        tokenless: f"error: The tokenizer in {tokenless} has no vocabulary file (e.g. tokenizer.json or vocab.txt); "
        "restore",
    }
    for folder, start in expected.items():
        for command in model_folder_commands(folder, texts, toy_data, tmp_path):
            code, _, err = cli(command, capsys)
            assert one_error_line(code, err).startswith(start), command
            assert "LOAD REPORT" not in err and "MISSING" not in err
            assert folder != tokenless or "Loading weights" not in err  # refused before the model loads
    assert not [p for p in tmp_path.iterdir() if p.name in COMMAND_OUTPUTS]


def test_an_output_that_is_an_input_is_refused(run_dir, toy_data, tmp_path, capsys):
    table = tmp_path / "reviews.csv"
    pd.DataFrame({"review": TEXTS, "note": ["keep", "these", "columns"]}).to_csv(table, index=False)
    before = table.read_bytes()
    labelled = tmp_path / "test.json"
    pd.read_csv(toy_data["test"]).to_json(labelled, orient="records")
    labelled_before = labelled.read_bytes()
    for command in (
        ["predict", "--model", run_dir, "--input", table, "--output", table],
        ["embed", "--model", run_dir, "--input", table, "--output", tmp_path / "reviews.npy", "--split-sentences"],
        ["eval", "--model", run_dir, "--test-file", labelled, "--output", labelled],
        ["eval", "--model", run_dir, "--test-file", labelled, "--output", run_dir / "config.json"],
    ):
        if command[0] == "embed":  # its sentence index goes next to the .npy: here onto the input
            table.rename(tmp_path / "reviews.index.csv")
            table = tmp_path / "reviews.index.csv"
            command[4] = table
        message = one_error_line(*cli(command, capsys)[::2])
        assert "is an input of this command" in message, message
    assert table.read_bytes() == before and labelled.read_bytes() == labelled_before
    assert json.loads((run_dir / "config.json").read_text())["architectures"]


def test_unusable_values_and_unused_flags_are_refused(run_dir, toy_data, tmp_path, capsys):
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(TEXTS))
    predict = ["predict", "--model", run_dir, "--input", texts]
    assert "--max_length: must be a whole number of at least 1, got '0'" in one_error_line(
        *cli([*predict, "--max-length", "0"], capsys)[::2]
    )
    assert "--batch-size" in one_error_line(*cli([*predict, "--batch-size", "0"], capsys)[::2])
    assert "--text-column needs a table" in one_error_line(*cli([*predict, "--text-column", "x"], capsys)[::2])
    evaluate = ["eval", "--model", run_dir, "--test-file", toy_data["test"]]
    assert "got '-5'" in one_error_line(*cli([*evaluate, "--max-length=-5"], capsys)[::2])
    assert ".json file" in one_error_line(*cli([*evaluate, "--output", tmp_path / "m.csv"], capsys)[::2])
    message = one_error_line(
        *cli(["eval", "--model", run_dir, "--dataset", "sst2", "--label-column", "x"], capsys)[::2]
    )
    assert "apply to --test-file" in message
    assert "needs --dataset" in one_error_line(*cli([*evaluate, "--data-dir", tmp_path], capsys)[::2])
    # a folder that does not exist yet is created for the metrics (they are not computed, then lost)
    out = tmp_path / "new" / "deeper" / "metrics.json"
    assert cli([*evaluate, "--output", out], capsys)[0] == 0
    assert json.loads(out.read_text())["test_samples"] == 20


def test_unwritable_outputs_fail_before_any_work(run_dir, tmp_path, capsys):
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(TEXTS))
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for command in (
        ["predict", "--model", run_dir, "--input", texts, "--output", blocker / "p.csv"],
        ["embed", "--model", run_dir, "--input", texts, "--output", blocker / "e.npy"],
        ["eval", "--model", run_dir, "--test-file", texts, "--output", blocker / "m.json"],
        ["export", run_dir, blocker / "exported"],
    ):
        message = one_error_line(*cli(command, capsys)[::2])
        assert "cannot be written" in message and "is a file, not a folder" in message, message
    (tmp_path / "out.csv").mkdir()
    assert "is a folder" in one_error_line(
        *cli(["predict", "--model", run_dir, "--input", texts, "--output", tmp_path / "out.csv"], capsys)[::2]
    )
    assert "is a file, not a folder" in one_error_line(*cli(["export", blocker, tmp_path / "x"], capsys)[::2])
    assert blocker.read_text() == "x"


def test_blank_rows_of_a_one_column_file_are_an_error_not_a_shift(run_dir, tmp_path, capsys):
    table = tmp_path / "texts.csv"
    table.write_text("text\n" + "\n".join(f"review number {i}" if i != 7 else "" for i in range(20)) + "\n")
    for command in ("predict", "embed"):
        output = tmp_path / ("p.csv" if command == "predict" else "e.npy")
        message = one_error_line(*cli([command, "--model", run_dir, "--input", table, "--output", output], capsys)[::2])
        assert "1 empty text(s)" in message and "data row 8" in message


def test_every_empty_text_of_a_pair_file_is_named_at_once(tmp_path):
    """An empty first text and an empty second text are both named, so one fix-and-rerun is enough."""
    from hfclf.errors import HfclfInputError
    from hfclf.inference.predict import read_texts

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence1,sentence2\nA man.,\n,B\nC,D\n,\n")
    with pytest.raises(HfclfInputError, match=r"4 empty text\(s\) in .*pairs.csv at data row 1, 2, 4; remove or fill"):
        read_texts(str(pairs), "sentence1", pair_column="sentence2")


def test_an_empty_last_text_is_an_error_and_only_blank_lines_after_the_texts_are_ignored(run_dir, tmp_path, capsys):
    """A last row of empty cells ("", ",", null) is an empty text, as in any other row; blank lines are no rows."""
    import gzip

    empty_last = {
        "quoted.csv": 'text\ngood\n""\n',
        "cells.csv": "text,id\ngood,1\n,\n",
        "null.jsonl": '{"text": "good"}\n{"text": null}\n',
        "then_blank_lines.csv": 'text\ngood\n""\n\n\n',
        "spaces.txt": "good\n  \n",
    }
    for name, content in empty_last.items():
        (tmp_path / name).write_text(content)
        where = "line 2" if name.endswith(".txt") else "data row 2"
        for command, output in (("predict", "p.csv"), ("embed", "e.npy")):
            argv = [command, "--model", run_dir, "--input", tmp_path / name, "--output", tmp_path / output]
            message = one_error_line(*cli(argv, capsys)[::2])
            assert f"1 empty text(s) in {tmp_path / name} at {where};" in message
            assert not (tmp_path / output).exists()

    blank_lines_last = {"texts.csv": "text,id\ngood,1\nfine,2\n\n\r\n", "texts.txt": "good\nfine\n\n\n"}
    with gzip.open(tmp_path / "texts.tsv.gz", "wt") as f:
        f.write("text\tid\ngood\t1\nfine\t2\n\n")
    for name in [*blank_lines_last, "texts.tsv.gz"]:
        if name in blank_lines_last:
            (tmp_path / name).write_text(blank_lines_last[name])
        code, stdout, err = cli(["predict", "--model", run_dir, "--input", tmp_path / name], capsys)
        assert code == 0, err
        assert [json.loads(line)["text"] for line in stdout.splitlines()] == ["good", "fine"]


def test_the_training_length_is_saved_with_the_model_and_predict_uses_it(run_dir, tmp_path, capsys):
    from hfclf.run_folder import RunResults

    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    assert tokenizer.model_max_length == 32 and RunResults.load(run_dir).max_length == 32  # trained at 32 tokens
    long_text = " ".join(["a great and moving film"] * 20)  # about 100 tokens
    source = tmp_path / "long.txt"
    source.write_text(long_text)
    code, stdout, _ = cli(["predict", "--model", run_dir, "--input", source], capsys)
    assert code == 0
    model = AutoModelForSequenceClassification.from_pretrained(run_dir).eval()
    with torch.no_grad():
        for length, expect_same in ((32, True), (100, False)):
            batch = tokenizer([long_text], truncation=True, max_length=length, return_tensors="pt")
            probability = model(**batch).logits.softmax(-1)[0, 1].item()
            assert (abs(probability - json.loads(stdout)["prob_pos"]) < 1e-5) == expect_same


def test_ctrl_c_is_one_line_from_the_main_process_only(monkeypatch, capsys):
    """Ctrl-C reaches every process of a launcher: the main one prints one line, the others log that they stop;
    the exit code is 130 (a shell's for SIGINT)."""
    from hfclf.errors import run_command

    def interrupted():
        raise KeyboardInterrupt

    assert run_command(interrupted) == 130
    assert capsys.readouterr().err == "error: interrupted.\n"
    monkeypatch.setenv("RANK", "1")
    assert run_command(interrupted) == 130
    assert capsys.readouterr().err == ""
