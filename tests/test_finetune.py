"""The finetune recipe end to end on tiny models: outputs, architectures, seeds, resume, config files, bad input."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfclf.commands.finetune import main

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "finetune.py"
QUICK = ["--num_train_epochs", "2", "--per_device_train_batch_size", "8", "--max_length", "32", "--seed", "7"]


def data_flags(toy_data, **overrides):
    files = {**{f"--{split}_file": str(path) for split, path in toy_data.items()}, **overrides}
    return [word for flag, value in files.items() for word in (flag, value)]


def run(argv, capsys):
    """Run the recipe in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_results(output_dir) -> dict:
    return json.loads((Path(output_dir) / "results.json").read_text())


def test_pooled_run_writes_everything(tmp_path, tiny_encoder_dir, toy_data, capsys):
    out = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, "--pooling", "attention", "--output_dir", out, *data_flags(toy_data), *QUICK]
    # fp32: the saved model's plain forward must reproduce predictions.csv exactly (below)
    code, stdout, _ = run(argv + ["--learning_rate", "3e-3", "--num_train_epochs", "4", "--bf16", "false"], capsys)
    assert code == 0

    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "results.json",
        "predictions.csv",
        "confusion_matrix.png",
        "loss.png",
        "modeling_pooled_encoder.py",
    ):
        assert (out / name).is_file(), name
    # readable as any new file is (transformers writes model.safetensors readable by its owner only)
    umask = os.umask(0)
    os.umask(umask)
    weights = [out / "model.safetensors", *out.glob("checkpoint-*/model.safetensors")]
    assert len(weights) > 1 and {oct(path.stat().st_mode & 0o777) for path in weights} == {oct(0o666 & ~umask)}
    results = read_results(out)
    assert results["data_sizes"] == {"train": 64, "validation": 25, "test": 20}
    assert results["eval"]["eval_samples"] == 25 and results["test"]["test_samples"] == 20
    assert results["label_names"] == ["neg", "pos"]
    assert results["num_parameters"] > 0 and results["train_samples_per_second"] > 0
    assert results["arguments"]["model"]["pooling"] == "attention"
    assert results["arguments"]["training"]["learning_rate"] == 3e-3
    assert results["versions"]["transformers"] and results["hardware"]
    assert results["epochs"] == 4
    # the toy task is easy: a tiny random encoder learns it in four epochs
    assert results["test"]["test_accuracy"] >= 0.8
    assert "Tokenization:" in stdout and "samples/s" in stdout and "test: accuracy" in stdout
    # how close training came to the machine's limit: transformers' FLOP count over the training time
    compute = results["compute"]
    assert compute["model_flops_per_second"] == pytest.approx(
        results["train"]["total_flos"] / results["train"]["train_runtime"]
    )
    precision = "bf16" if results["arguments"]["training"]["bf16"] else "fp32"  # bf16: this CPU's default
    assert compute["fraction_of_peak"] == pytest.approx(
        compute["model_flops_per_second"] / compute["matmul_peak_flops_per_second"][precision]
    )
    assert compute["precision"] == precision and compute["device"] == "cpu" and 0 < compute["fraction_of_peak"] < 1
    assert set(compute["matmul_peak_flops_per_second"]) == {"fp32", precision}
    assert "Compute: " in stdout and "GFLOP/s" in stdout

    # predictions.csv: one row per test example, probabilities sum to one
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20
    assert set(rows[0]) == {"text", "gold", "predicted", "prob_neg", "prob_pos"}
    assert all(abs(float(r["prob_neg"]) + float(r["prob_pos"]) - 1) < 1e-5 for r in rows)
    accuracy = np.mean([r["gold"] == r["predicted"] for r in rows])
    assert accuracy == pytest.approx(results["test"]["test_accuracy"])

    # the saved model reproduces those predictions
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer([r["text"] for r in rows], padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    assert [model.config.id2label[i] for i in predicted] == [r["predicted"] for r in rows]


@pytest.mark.parametrize(
    "arch_flags",
    [
        ["--arch", "lstm", "--lstm_hidden_size", "16", "--lstm_layers", "1"],
        [
            "--arch",
            "lstm",
            "--pooling",
            "attention",
            "--no_word_vectors",
            "--embedding_dim",
            "16",
            "--lstm_hidden_size",
            "16",
        ],
        [
            "--arch",
            "transformer",
            "--tokenizer",
            "train",
            "--d_model",
            "32",
            "--num_heads",
            "2",
            "--num_layers",
            "1",
            "--ff_size",
            "64",
            "--pooling",
            "cls",
            "--tokenizer_vocab_size",
            "100",
        ],
        ["--arch", "hf"],
        ["--arch", "pooled", "--pooling", "cls_mean", "--class_weights", "balanced"],
    ],
    ids=["lstm-word-vectors", "lstm-attention", "transformer-trained-tokenizer", "hf", "pooled-cls_mean"],
)
def test_every_architecture_trains(tmp_path, tiny_encoder_dir, toy_data, capsys, arch_flags):
    out = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, "--output_dir", out, *data_flags(toy_data), *QUICK, *arch_flags]
    code, _, stderr = run(argv, capsys)
    assert code == 0, stderr[-2000:]
    results = read_results(out)
    assert results["eval"]["eval_samples"] == 25
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    if "transformer" in arch_flags:
        # the trained WordPiece vocabulary has --tokenizer_vocab_size tokens (the toy data has words for 133) and is
        # saved with the model
        tokenizer = AutoTokenizer.from_pretrained(out)
        assert len(tokenizer) == 100 and model.config.vocab_size == len(tokenizer)


def test_freeze_embeddings_keeps_a_pretrained_encoders_word_vectors(tmp_path, tiny_encoder_dir, toy_data, capsys):
    from transformers import AutoModel

    out = tmp_path / "frozen"
    argv = ["--model", tiny_encoder_dir, "--freeze_embeddings", "--output_dir", out, *data_flags(toy_data), *QUICK]
    assert run(argv + ["--learning_rate", "3e-3"], capsys)[0] == 0
    trained = AutoModelForSequenceClassification.from_pretrained(out)
    encoder = AutoModel.from_pretrained(tiny_encoder_dir)
    assert torch.equal(trained.get_input_embeddings().weight, encoder.get_input_embeddings().weight)
    first_layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(trained.model.encoder.get_parameter(first_layer), encoder.get_parameter(first_layer))
    results = read_results(out)
    frozen = encoder.get_input_embeddings().weight.numel()
    assert results["num_trainable_parameters"] == results["num_parameters"] - frozen

    argv = ["--arch", "transformer", "--freeze_embeddings", "--output_dir", tmp_path / "t", *data_flags(toy_data)]
    code, _, err = run(argv, capsys)
    assert code == 2 and "--freeze_embeddings applies to --arch pooled or hf or lstm" in err


def test_same_seed_same_metrics(tmp_path, tiny_encoder_dir, toy_data, capsys):
    metrics = []
    for name in ("a", "b"):
        argv = [
            "--arch",
            "lstm",
            "--model",
            tiny_encoder_dir,
            "--lstm_hidden_size",
            "16",
            "--output_dir",
            tmp_path / name,
            *data_flags(toy_data),
            *QUICK,
        ]
        assert run(argv, capsys)[0] == 0
        results = read_results(tmp_path / name)
        metrics.append({k: v for k, v in results["eval"].items() if "runtime" not in k and "per_second" not in k})
        metrics[-1]["train_loss"] = results["train"]["train_loss"]
    assert metrics[0] == metrics[1]


def test_yaml_config_file_with_override(tmp_path, tiny_encoder_dir, toy_data, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(
        "\n".join(
            [
                "arch: lstm",
                f"model: {tiny_encoder_dir}",
                "lstm_hidden_size: 16",
                "pooling: max",
                "bidirectional: false",
                f"output_dir: {tmp_path / 'from_yaml'}",
                "num_train_epochs: 1",
                "max_length: 32",
            ]
            + [f"{split}_file: {path}" for split, path in toy_data.items()]
        )
    )
    code, _, stderr = run([config, "--pooling", "mean", "--learning_rate", "0.01"], capsys)
    assert code == 0, stderr[-2000:]
    results = read_results(tmp_path / "from_yaml")
    args = results["arguments"]
    assert args["model"]["pooling"] == "mean"  # the command line overrides the file
    # the model size as built, the config class's defaults included
    assert results["model_config"]["bidirectional"] is False and results["model_config"]["num_layers"] == 1
    assert results["model_config"]["hidden_size"] == 16 and results["model_config"]["dropout"] == 0.3
    assert args["model"]["bidirectional"] is False
    assert args["training"]["learning_rate"] == 0.01 and args["training"]["num_train_epochs"] == 1


# ------------------------------------------------------------------------------------------------------ bad input


def write_csv(path, rows, header=("review", "sentiment")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def bad_input_cases(tmp_path, toy_data, tiny_encoder_dir):
    no_text = write_csv(tmp_path / "no_text.csv", [["x", "pos"]], header=("body", "sentiment"))
    unseen = write_csv(tmp_path / "unseen.csv", [["good film", "pos"], ["meh", "neutral"]])
    empty = write_csv(tmp_path / "empty.csv", [["good film", "pos"], ["   ", "neg"], ["bad", "neg"]])
    xlsx = tmp_path / "train.xlsx"
    xlsx.write_bytes(b"PK\x03\x04 not really a spreadsheet")
    one_class = write_csv(tmp_path / "one_class.csv", [["good film", "pos"], ["great", "pos"], ["fine", "pos"]])
    case_variants = write_csv(
        tmp_path / "case.csv", [["good film", "pos"], ["great", "Pos"], ["bad", "neg"], ["fine", " pos"]] * 4
    )
    scores = write_csv(tmp_path / "scores.csv", [[f"film {i}", i / 7] for i in range(40)])
    folder = tmp_path / "train.csv.d"
    folder.mkdir()
    empty_model = tmp_path / "empty_model"
    empty_model.mkdir()
    weights_only = tmp_path / "weights_only"
    weights_only.mkdir()
    shutil.copy(Path(tiny_encoder_dir) / "tokenizer.json", weights_only)
    shutil.copy(Path(tiny_encoder_dir) / "tokenizer_config.json", weights_only)
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_encoder_dir, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    three_labels = tmp_path / "three_label_model"
    AutoModelForSequenceClassification.from_pretrained(tiny_encoder_dir, num_labels=3).save_pretrained(three_labels)
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(three_labels)
    return {
        "missing text column": (data_flags(toy_data, **{"--train_file": str(no_text)}), "body"),
        "unknown label": (data_flags(toy_data, **{"--validation_file": str(unseen)}), "neutral"),
        "empty text": (data_flags(toy_data, **{"--train_file": str(empty)}), "empty"),
        "wrong file type": (data_flags(toy_data, **{"--train_file": str(xlsx)}), ".xlsx"),
        "missing file": (data_flags(toy_data, **{"--train_file": str(tmp_path / "nope.csv")}), "nope.csv"),
        "mismatched num_labels": (
            data_flags(toy_data) + ["--arch", "hf", "--model", str(three_labels)],
            "3 labels but the data has 2",
        ),
        "unknown pooling": (data_flags(toy_data) + ["--pooling", "sum"], "Unknown pooling 'sum'"),
        "pooling with hf head": (data_flags(toy_data) + ["--arch", "hf", "--pooling", "mean"], "--arch pooled"),
        "bad class weights": (data_flags(toy_data) + ["--class_weights", "1,2,3"], "3 values"),
        "nan class weight": (data_flags(toy_data) + ["--class_weights", "1,nan"], "must be positive numbers"),
        "negative class weight": (data_flags(toy_data) + ["--class_weights", "1,-2"], "must be positive numbers"),
        "zero class weights": (data_flags(toy_data) + ["--class_weights", "0,0"], "must be positive numbers"),
        "no lstm layers": (
            data_flags(toy_data) + ["--arch", "lstm", "--lstm_layers", "0"],
            "num_layers must be at least 1, got 0",
        ),
        "no transformer layers": (
            data_flags(toy_data) + ["--arch", "transformer", "--num_layers", "0"],
            "num_hidden_layers must be at least 1, got 0",
        ),
        "negative seed": (data_flags(toy_data) + ["--seed", "-1"], "--seed must be between 0 and 2**32 - 1, got -1"),
        "metric the task has not": (
            data_flags(toy_data) + ["--metric_for_best_model", "pearson"],
            "--metric_for_best_model pearson is not a metric of single-label classification; choose one of: accuracy",
        ),
        "class weights with hf head": (
            data_flags(toy_data) + ["--arch", "hf", "--class_weights", "balanced"],
            "--class-weights needs an hfclf head",
        ),
        "head learning rate on lstm": (
            data_flags(toy_data) + ["--arch", "lstm", "--head_learning_rate", "1e-3"],
            "not to --arch lstm",
        ),
        "bad layer-wise decay": (data_flags(toy_data) + ["--layerwise_lr_decay", "1.5"], "must be in (0, 1]"),
        "layer-wise decay with fsdp": (
            data_flags(toy_data) + ["--layerwise_lr_decay", "0.8", "--fsdp", "full_shard"],
            "not supported with --deepspeed or --fsdp",
        ),
        "one class": (["--train_file", str(one_class), "--validation_fraction", "0.34"], "only one class (pos)"),
        "no validation split": (
            ["--train_file", str(toy_data["train"]), "--validation_fraction", "0"],
            "No validation split",
        ),
        "nan learning rate": (data_flags(toy_data) + ["--learning_rate", "nan"], "--learning-rate must be positive"),
        "negative learning rate": (data_flags(toy_data) + ["--learning_rate=-1e-3"], "got -0.001"),
        "zero batch size": (data_flags(toy_data) + ["--per_device_train_batch_size", "0"], "must be at least 1"),
        "zero epochs": (data_flags(toy_data) + ["--num_train_epochs", "0"], "--num-train-epochs must be above 0"),
        "negative max length": (data_flags(toy_data) + ["--max_length", "-3"], "max_length must be a positive"),
        "missing checkpoint": (
            data_flags(toy_data) + ["--resume_from_checkpoint", str(tmp_path / "checkpoint-9")],
            "checkpoint-9 does not exist",
        ),
        "empty model folder": (data_flags(toy_data) + ["--model", str(empty_model)], "is an empty folder"),
        "model folder without weights": (
            data_flags(toy_data) + ["--model", str(weights_only)],
            "Could not build --arch pooled",
        ),
        "truncated model file": (data_flags(toy_data) + ["--model", str(truncated)], "is damaged"),
        "bad model sizes": (
            data_flags(toy_data) + ["--arch", "transformer", "--d_model", "30", "--num_heads", "4"],
            "d_model (30) must be divisible",
        ),
        "wrong flag type": (data_flags(toy_data) + ["--learning_rate", "fast"], "invalid float value: 'fast'"),
        "labels differing in case": (
            data_flags(toy_data, **{"--train_file": str(case_variants)}),
            "differ only in case or surrounding spaces (' pos', 'Pos', 'pos')",
        ),
        "score labels": (
            data_flags(toy_data, **{"--train_file": str(scores)}),
            "non-integer numbers (40 distinct values",
        ),
        "folder as train file": (data_flags(toy_data, **{"--train_file": str(folder)}), "is a folder, not a file"),
        "text columns of a named dataset": (["--dataset", "sst2", "--label_column", "x"], "has its own columns"),
        "lstm flag on a pooled encoder": (data_flags(toy_data) + ["--lstm_layers", "3"], "applies to --arch lstm"),
        "lora flag without lora": (data_flags(toy_data) + ["--lora_alpha", "32"], "--lora_alpha needs --lora"),
        "zero save steps": (
            data_flags(toy_data) + ["--save_strategy", "steps", "--save_steps", "0"],
            "--save-steps must be above 0",
        ),
        "unknown field of a stock config": (
            data_flags(toy_data) + ["--arch", "hf", "--config_overrides", "hiden_dropout_prob=0.2"],
            "hiden_dropout_prob is not a field of the config of",
        ),
        "unknown config field": (
            data_flags(toy_data) + ["--arch", "lstm", "--config_overrides", "num_layerz=2"],
            "num_layerz is not a field of LSTMConfig",
        ),
        "positions shorter than max length": (
            data_flags(toy_data)
            + ["--arch", "transformer", "--config_overrides", "max_position_embeddings=16", "--max_length", "32"],
            "max_position_embeddings=16 is below --max_length 32: pass --max_length 16",
        ),
    }


CASES = [
    "missing text column",
    "unknown label",
    "empty text",
    "wrong file type",
    "missing file",
    "mismatched num_labels",
    "unknown pooling",
    "pooling with hf head",
    "bad class weights",
    "class weights with hf head",
    "head learning rate on lstm",
    "bad layer-wise decay",
    "layer-wise decay with fsdp",
    "one class",
    "no validation split",
    "nan learning rate",
    "negative learning rate",
    "zero batch size",
    "zero epochs",
    "negative max length",
    "missing checkpoint",
    "empty model folder",
    "model folder without weights",
    "truncated model file",
    "bad model sizes",
    "wrong flag type",
    "labels differing in case",
    "score labels",
    "folder as train file",
    "text columns of a named dataset",
    "lstm flag on a pooled encoder",
    "lora flag without lora",
    "zero save steps",
    "unknown config field",
    "unknown field of a stock config",
    "positions shorter than max length",
    "nan class weight",
    "negative class weight",
    "zero class weights",
    "no lstm layers",
    "no transformer layers",
    "negative seed",
    "metric the task has not",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, tiny_encoder_dir, toy_data, capsys, case):
    flags, expected = bad_input_cases(tmp_path, toy_data, tiny_encoder_dir)[case]
    out = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, "--output_dir", out, *QUICK, *flags]  # the case's flags win
    code, _, stderr = run(argv, capsys)
    assert code == 2
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and expected in error_lines[0], stderr[-2000:]
    assert "Traceback" not in stderr
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_existing_output_dir_is_left_untouched(tmp_path, tiny_encoder_dir, toy_data, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    code, _, stderr = run(["--model", tiny_encoder_dir, "--output_dir", out, *data_flags(toy_data), *QUICK], capsys)
    assert code == 2
    assert "already exists and is not empty" in stderr and "--overwrite-output-dir" in stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "precious"
    # resuming needs a checkpoint: without one, `auto` would start fresh over the folder's files
    argv = ["--model", tiny_encoder_dir, "--output_dir", out, "--resume_from_checkpoint", "auto"]
    code, _, stderr = run([*argv, *data_flags(toy_data), *QUICK], capsys)
    assert code == 2 and "has no complete checkpoint to resume from" in stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_trained_folder_can_be_fine_tuned_at_a_longer_length(tmp_path, tiny_encoder_dir, toy_data, capsys, caplog):
    """The training length saved with a model is the default for using it, not a limit for training it further."""
    first, second = tmp_path / "first", tmp_path / "second"
    base = ["--arch", "hf", *data_flags(toy_data), "--num_train_epochs", "1"]
    assert run(["--model", tiny_encoder_dir, "--output_dir", first, "--max_length", "16", *base], capsys)[0] == 0
    assert AutoTokenizer.from_pretrained(first).model_max_length == 16
    caplog.set_level("WARNING")
    assert run(["--model", first, "--output_dir", second, "--max_length", "24", *base], capsys)[0] == 0
    assert "above the tokenizer limit" not in caplog.text
    assert read_results(second)["max_length"] == 24 and AutoTokenizer.from_pretrained(second).model_max_length == 24


def test_output_dir_that_is_a_file_is_refused(tmp_path, tiny_encoder_dir, toy_data, capsys):
    out = tmp_path / "run"
    out.write_text("precious")
    code, _, stderr = run(["--model", tiny_encoder_dir, "--output_dir", out, *data_flags(toy_data), *QUICK], capsys)
    assert code == 2 and f"error: Output directory {out} is a file; pass a folder path." in stderr
    assert out.read_text() == "precious"


def test_yaml_value_of_the_wrong_type_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: fast\nnum_train_epochs: 1\n")
    code, _, stderr = run([config, "--output_dir", tmp_path / "x"], capsys)
    assert code == 2
    assert stderr.strip().splitlines() == [
        "error: argument --learning_rate: invalid float value: 'fast' "
        f"(in {config}); see --help for every flag and its type."
    ]
    assert not (tmp_path / "x").exists()


def test_a_full_disk_is_one_clear_error_and_the_run_goes_on(tmp_path, toy_data, capsys, monkeypatch):
    """No space left while saving a checkpoint (safetensors reports it in its own error type): one line, exit code 2,
    and once there is space again, `--resume_from_checkpoint auto` trains the run to the end."""
    import transformers.modeling_utils
    from safetensors import SafetensorError

    out = tmp_path / "run"
    argv = [*data_flags(toy_data), *QUICK, "--arch", "lstm", "--no_word_vectors", "--embedding_dim", "16"]
    argv += ["--lstm_hidden_size", "16", "--output_dir", out]
    real = transformers.modeling_utils.safe_save_file

    def full_disk(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full_disk)
    code, _, err = run(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if "error" in line.lower()] == [
        "error: The disk is full (Error while serializing: I/O error: No space left on device (os error 28)). Free "
        "some space or write to another disk, then run again (a training run goes on from its last complete "
        "checkpoint with --resume_from_checkpoint auto)."
    ]
    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", real)
    code, _, err = run([*argv, "--resume_from_checkpoint", "auto"], capsys)
    assert code == 0, err
    assert read_results(out)["epochs"] == 2


@pytest.mark.parametrize("where", ["under a file", "read-only system folder"])
def test_unwritable_output_dir_is_one_clear_error(tmp_path, tiny_encoder_dir, toy_data, capsys, where):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("precious")
    if where == "read-only system folder" and not Path("/sys/kernel").is_dir():
        pytest.skip("needs Linux's /sys, where no one (root included) can create a folder")
    out = blocker / "run" if where == "under a file" else Path("/sys/hfclf-test/run")
    code, _, stderr = run(["--model", tiny_encoder_dir, "--output_dir", out, *data_flags(toy_data), *QUICK], capsys)
    assert code == 2 and "Traceback" not in stderr
    error = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"Output directory {out} cannot be written" in error[0], stderr
    assert blocker.read_text() == "precious" and not out.exists()


def test_script_exit_code_and_single_stderr_line(tmp_path):
    """The real process: argument errors print exactly one line and exit with 2."""
    completed = subprocess.run(
        [sys.executable, str(RECIPE), "--pooling", "sum", "--output_dir", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "error: Unknown pooling 'sum' for --arch pooled; choose one of: cls, mean, max, attention, cls_mean."
    ]


# ------------------------------------------------------------------------------------------------- distributed


def two_cpu_processes(port: int) -> list[str]:
    """`accelerate launch` of 2 CPU processes (DDP over gloo)."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
    ]


def test_bad_input_under_two_processes_is_one_error_line(tmp_path, tiny_encoder_dir, toy_data):
    """Every process finds the problem; the main one prints it, the other logs that it stops, and nothing hangs."""
    argv = ["--model", str(tiny_encoder_dir), "--output_dir", str(tmp_path / "ddp"), *data_flags(toy_data), *QUICK]
    completed = subprocess.run(
        two_cpu_processes(port=29537) + [str(RECIPE), *argv, "--label_column", "nosuch"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode != 0
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nosuch" in errors[0], completed.stderr[-3000:]
    assert "hfclf: Process 1 stops: " in completed.stderr and not (tmp_path / "ddp").exists()


@pytest.mark.parametrize(
    "with_test_split, model_flags",
    [
        (True, ["--arch", "lstm", "--lstm_hidden_size", "16"]),
        (False, ["--pooling", "cls", "--layerwise_lr_decay", "0.8", "--head_learning_rate", "1e-3"]),
    ],
    ids=["lstm", "pooled-layerwise-lr-no-test-split"],
)
def test_two_cpu_processes_with_accelerate(tmp_path, tiny_encoder_dir, toy_data, with_test_split, model_flags):
    """DDP over gloo with 2 processes: every eval example scored exactly once, loss not scaled by the world size.

    Without a test split the predictions are of the validation split, which every process must help compute. The
    pooled encoder runs with per-layer learning rates, whose optimizer groups DDP must accept."""
    out = tmp_path / "ddp"
    launcher = two_cpu_processes(port=29533 + with_test_split)
    files = data_flags(toy_data) if with_test_split else data_flags({k: v for k, v in toy_data.items() if k != "test"})
    argv = ["--model", str(tiny_encoder_dir), *model_flags, "--output_dir", str(out), *files, *QUICK]
    completed = subprocess.run(
        launcher + [str(RECIPE)] + argv,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = read_results(out)
    assert results["num_processes"] == 2
    # 25 validation examples do not split evenly over 2 processes: no duplicated tail samples may be scored
    assert results["eval"]["eval_samples"] == 25
    assert results["test"].get("test_samples") == (20 if with_test_split else None)
    with open(out / "predictions.csv") as f:
        assert sum(1 for _ in csv.reader(f)) == 1 + (20 if with_test_split else 25)
    # 64 examples / (8 per device x 2 devices) = 4 steps per epoch
    state = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    assert results["train"]["train_loss"] < 1.0  # two classes: starts near ln 2, not 2 x ln 2
    assert completed.stdout.count("Training:") == 1  # only the main process reports
    assert results["compute"]["processes"] == 2  # the peak of both processes' devices together
    if "--layerwise_lr_decay" in model_flags:  # both processes built the per-layer groups
        assert completed.stderr.count("Peak learning rates: ") == 2, completed.stderr[-3000:]


def test_early_stopping(tmp_path, tiny_encoder_dir, toy_data, capsys):
    """With a learning rate too small to change accuracy, patience 1 stops after the second evaluation."""
    out = tmp_path / "run"
    argv = [
        "--arch",
        "lstm",
        "--model",
        tiny_encoder_dir,
        "--lstm_hidden_size",
        "16",
        "--output_dir",
        out,
        *data_flags(toy_data),
        *QUICK,
        "--num_train_epochs",
        "10",
        "--learning_rate",
        "1e-9",
        "--early_stopping_patience",
        "1",
    ]
    assert run(argv, capsys)[0] == 0
    assert read_results(out)["epochs"] == 2


@pytest.mark.parametrize(
    "config, kind",
    [
        ("accelerate_config.yaml", "multi_gpu"),
        ("recipes/accelerate/two_machines.yaml", "multi_gpu"),
        ("recipes/accelerate/fsdp.yaml", "use_fsdp"),
        ("recipes/accelerate/deepspeed_zero2.yaml", "use_deepspeed"),
    ],
)
def test_shipped_accelerate_configs_are_what_accelerate_launch_reads(config, kind):
    """The configs that cannot run here (no GPU, no second machine, no deepspeed) at least go through the argument
    checks of `accelerate launch` itself and select the documented mode."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(["--config_file", str(REPO / config), str(RECIPE)])
    args, _, _ = _validate_launch_command(args)
    assert getattr(args, kind) and args.mixed_precision == "bf16"
    if "two_machines" in config:
        assert (args.num_machines, args.num_processes, args.main_process_port) == (2, 16, 29500)


CHILD_THREADS = "import torch, hfclf.commands.finetune as f; f.use_the_cores(); print(torch.get_num_threads())"


@pytest.mark.parametrize(
    "user_set, launched, expected",
    [(False, True, "cores"), (True, True, 1), (False, False, 1)],
    ids=["launcher-default", "user-choice", "not-launched"],
)
def test_launched_workers_use_the_cores(user_set, launched, expected):
    """A launcher's OMP_NUM_THREADS=1 is replaced by the cores (one local process here); the user's own value, or a
    process no launcher started, keeps it."""
    import psutil

    cores = min(len(os.sched_getaffinity(0)), psutil.cpu_count(logical=False) or os.cpu_count())
    if cores < 2:
        pytest.skip("one core: every case computes with 1 thread, nothing to tell apart")
    worker_env = {"OMP_NUM_THREADS": "1", "LOCAL_WORLD_SIZE": "1", **({"LOCAL_RANK": "0"} if launched else {})}
    launcher = (
        "import os, subprocess, sys\n"
        f"env = dict(os.environ, **{worker_env!r})\n"
        f"print(subprocess.run([sys.executable, '-c', {CHILD_THREADS!r}], env=env, capture_output=True, text=True,"
        " check=True).stdout)"
    )
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    if user_set:
        env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", launcher], env=env, capture_output=True, text=True, check=True).stdout
    assert int(out) == (cores if expected == "cores" else expected)


def test_bf16_on_a_cpu_only_machine_needs_no_other_flag(tmp_path):
    from hfclf.training_args import ClassifierTrainingArguments

    if torch.cuda.is_available():
        pytest.skip("an accelerator is present: bf16 runs there")
    args = ClassifierTrainingArguments(output_dir=str(tmp_path), bf16=True)
    assert args.use_cpu and args.bf16


def test_an_lstm_run_trains_further_as_a_whole_classifier(tmp_path, toy_data, capsys):
    """An LSTM's states are not an encoder's hidden states: `--model runs/lstm` under the default --arch pooled is one
    line naming --arch hf, which loads the whole trained classifier, as the finished run's own error says."""
    from safetensors.torch import load_file

    first = tmp_path / "first"
    argv = [*data_flags(toy_data), *QUICK, "--bf16", "false"]
    lstm = ["--arch", "lstm", "--no_word_vectors", "--embedding_dim", "16", "--lstm_hidden_size", "16"]
    assert run([*lstm, "--output_dir", first, *argv], capsys)[0] == 0
    code, _, err = run([*lstm, "--output_dir", first, *argv], capsys)
    assert code == 2 and err.strip().endswith(
        f"train further from its model with --arch hf --model {first} --output-dir NEW_FOLDER."
    )

    code, _, err = run(["--model", first, "--output_dir", tmp_path / "pooled", *argv], capsys)
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"error: {first} is an hfclf --arch lstm classifier, not an encoder for a pooling head. Pass --arch hf to "
        "train it further as it is, or --arch lstm to train a new one."
    )
    further = tmp_path / "further"
    code, _, err = run(
        ["--arch", "hf", "--model", first, "--output_dir", further, *argv, "--learning_rate", "1e-12"], capsys
    )
    assert code == 0, err
    before, after = load_file(first / "model.safetensors"), load_file(further / "model.safetensors")
    assert before.keys() == after.keys()
    for name in before:
        torch.testing.assert_close(after[name], before[name], atol=1e-6, rtol=0, msg=name)


def test_training_further_starts_from_the_trained_classifier(tmp_path, tiny_encoder_dir, toy_data, capsys, caplog):
    """`--model runs/x` (the fix that a finished run's error names) continues from the trained classifier: its
    encoder (not the whole model nested as an encoder), its pooling unless --pooling says otherwise, and its
    pooling head and classifier, which a run at a negligible learning rate leaves as they were."""
    from safetensors.torch import load_file

    first = tmp_path / "first"
    argv = [*data_flags(toy_data), *QUICK, "--bf16", "false"]
    assert run(["--model", tiny_encoder_dir, "--pooling", "attention", "--output_dir", first, *argv], capsys)[0] == 0
    further = tmp_path / "further"
    caplog.set_level("INFO", logger="hfclf")
    code, _, err = run(["--model", first, "--output_dir", further, *argv, "--learning_rate", "1e-12"], capsys)
    assert code == 0, err
    assert f"Training further from the hfclf classifier in {first}" in caplog.text
    config = json.loads((further / "config.json").read_text())
    assert config["pooling"] == "attention" and config["encoder_config"]["model_type"] == "bert"
    before, after = load_file(first / "model.safetensors"), load_file(further / "model.safetensors")
    assert before.keys() == after.keys()
    for name in before:
        torch.testing.assert_close(after[name], before[name], atol=1e-6, rtol=0, msg=name)  # a rate of 1e-12
