"""Sharing: `hfclf export`, the model card, `hfclf push` and `--push_to_hub` in training, without network.

The Hub client is replaced at its boundary (`hfclf.inference.hub.HfApi`) by a fake that records what would be uploaded.
"""

import json
import os
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard
from tiny_models import run_downstream

import hfclf.inference.hub
from hfclf.commands.cli import main

TOKEN = "hf_fake_secret_token_123"
QUICK = ["--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--max_length", "32", "--seed", "5"]


def folder_files(folder) -> dict[str, bytes]:
    """Every file under `folder` by relative path, with its bytes (to compare exports and uploads)."""
    folder = Path(folder)
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
    }


def card_metadata(card_text: str) -> dict:
    """The YAML front matter of a model card, parsed."""
    _, front, _ = card_text.split("---\n", 2)
    return yaml.safe_load(front)


class FakeHfApi:
    """Records create_repo / create_branch / upload_folder calls, and the uploaded folder's files."""

    calls: list = []
    uploads: list = []

    def __init__(self, token=None, **kwargs):
        FakeHfApi.calls.append(("init", token))

    def create_repo(self, repo_id, private=None, exist_ok=False, **kwargs):
        FakeHfApi.calls.append(("create_repo", repo_id, private, exist_ok))

    def create_branch(self, repo_id, branch, exist_ok=False, **kwargs):
        FakeHfApi.calls.append(("create_branch", repo_id, branch))

    def upload_folder(self, *, repo_id, folder_path, revision=None, commit_message=None, **kwargs):
        FakeHfApi.calls.append(("upload_folder", repo_id, revision))
        FakeHfApi.uploads.append(folder_files(folder_path))
        return f"https://huggingface.co/{repo_id}/commit/0123"

    @classmethod
    def reset(cls):
        cls.calls, cls.uploads = [], []


@pytest.fixture(scope="module")
def pushed_run(tmp_path_factory, tiny_encoder_dir, toy_data):
    """A run trained with --push_to_hub --hub_model_id (fake Hub, HF_TOKEN set): (run dir, fake calls, uploads, log)."""
    from hfclf.commands.finetune import main as train

    out = tmp_path_factory.mktemp("hub") / "run"
    files = [w for split, path in toy_data.items() for w in (f"--{split}_file", str(path))]
    argv = ["--model", str(tiny_encoder_dir), "--pooling", "attention", "--output_dir", str(out), *files, *QUICK]
    FakeHfApi.reset()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", TOKEN)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the fake Hub is reachable
        mp.setattr(hfclf.inference.hub, "HfApi", FakeHfApi)
        mp.setattr(sys, "argv", ["hfclf-train", *argv, "--push_to_hub", "--hub_model_id", "user/x"])
        code = train(sys.argv[1:] + ["--hub_private_repo", "true"])
    assert code == 0
    return out, list(FakeHfApi.calls), list(FakeHfApi.uploads)


def run_cli(argv, capfd):
    code = main([str(a) for a in argv])
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def test_training_push_uploads_the_exported_folder(pushed_run, tmp_path, capfd):
    run_dir, calls, uploads = pushed_run
    assert ("create_repo", "user/x", True, True) in calls and ("upload_folder", "user/x", None) in calls
    assert len(uploads) == 1  # one push at the end, not one per checkpoint
    assert run_cli(["export", run_dir, tmp_path / "export", "--repo-id", "user/x"], capfd)[0] == 0
    assert uploads[0] == folder_files(tmp_path / "export")
    assert "## Usage" in uploads[0]["README.md"].decode()  # hfclf's card, not the Trainer's


def test_export_folder_contents(pushed_run, tmp_path, capfd, caplog, tiny_encoder_dir):
    run_dir = pushed_run[0]
    out = tmp_path / "export"
    code, stdout, _ = run_cli(["export", run_dir, out], capfd)
    assert code == 0 and "Exported" in stdout
    names = set(os.listdir(out))
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "modeling_pooled_encoder.py"} <= names
    assert {"configuration_pooled_encoder.py", "modeling_heads.py"} <= names
    assert not any(n.startswith("checkpoint") or n in ("training_args.bin", "results.json") for n in names)
    assert all(p.is_file() for p in out.iterdir())
    assert json.loads((out / "config.json").read_text())["auto_map"]["AutoModelForSequenceClassification"]
    assert (out / "model.safetensors").read_bytes() == (run_dir / "model.safetensors").read_bytes()
    # where this machine loaded the encoder from stays here (transformers writes it; loading never reads it)
    assert str(tiny_encoder_dir) in (run_dir / "config.json").read_text()
    assert str(tiny_encoder_dir) not in (out / "config.json").read_text()

    # an exported folder has no results.json: exported again, its card names no data, and the log says why
    again = tmp_path / "again"
    with caplog.at_level("WARNING", logger="hfclf"):
        assert run_cli(["export", out, again], capfd)[0] == 0
    assert f"{out} has no results.json (an exported folder or a checkpoint)" in caplog.text

    # a non-empty target is refused (nothing written), unless --overwrite
    code, _, err = run_cli(["export", run_dir, out], capfd)
    assert code == 2 and err.startswith("error:") and "--overwrite" in err
    assert run_cli(["export", run_dir, out, "--overwrite"], capfd)[0] == 0
    # --overwrite never deletes the run itself, a folder that holds it, or the working directory
    files = sorted(p.name for p in run_dir.iterdir())
    for target in (run_dir, run_dir.parent, "."):
        code, _, err = run_cli(["export", run_dir, target, "--overwrite"], capfd)
        assert code == 2 and err.startswith("error:") and "would delete" in err, target
    assert sorted(p.name for p in run_dir.iterdir()) == files
    # no classifier head, not a LoRA run for --merge, missing folder
    assert "error:" in run_cli(["export", tmp_path / "nope", tmp_path / "e2"], capfd)[2]
    assert "LoRA" in run_cli(["export", run_dir, tmp_path / "e3", "--merge"], capfd)[2]


def test_model_card(pushed_run, tmp_path, capfd):
    run_dir = pushed_run[0]
    assert run_cli(["export", run_dir, tmp_path / "e", "--repo-id", "user/x"], capfd)[0] == 0
    text = (tmp_path / "e" / "README.md").read_text()
    meta = card_metadata(text)
    assert meta == yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert {"hfclf", "text-classification", "bert", "attention-pooling"} <= set(meta["tags"])
    assert meta["metrics"] == ["accuracy", "f1"]
    results = json.loads((run_dir / "results.json").read_text())
    [entry] = meta["model-index"][0]["results"]
    assert entry["task"]["type"] == "text-classification" and entry["dataset"]["split"] == "test"
    accuracy = next(m for m in entry["metrics"] if m["type"] == "accuracy")
    assert accuracy["value"] == round(results["test"]["test_accuracy"], 4)

    card = ModelCard(text)  # the Hub's own parser accepts the metadata, model-index included
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "text-classification" and card.data.eval_results
    for section in ("## Results", "## Architecture", "## Labels", "## Training", "## Usage"):
        assert section in text
    assert "| 0 | neg |" in text and "| 1 | pos |" in text
    assert 'AutoModelForSequenceClassification.from_pretrained("user/x", trust_remote_code=True)' in text
    assert 'pipeline("text-classification", model="user/x", trust_remote_code=True)' in text
    assert "`learning_rate`" in text and "**attention** pooling" in text


def test_named_dataset_card_metadata():
    from hfclf.inference.model_card import build_model_card
    from hfclf.run_folder import RunResults

    config = {"model_type": "hfclf_lstm", "pooling": "max", "num_layers": 2, "hidden_size": 8, "id2label": {"0": "a"}}
    results = RunResults(
        train={},
        eval={"eval_accuracy": 0.5, "eval_f1_macro": 0.4},
        test={},
        label_names=["a"],
        arguments={"data": {"dataset": "sst2"}},
    )
    meta = card_metadata(build_model_card(config, results, repo_id="u/m"))
    assert meta["datasets"] == ["stanfordnlp/sst2"]
    results.eval["eval_f1_macro"] = float("nan")  # e.g. a score of constant outputs: no `.nan` in the model-index
    index = card_metadata(build_model_card(config, results))["model-index"]
    assert [metric["type"] for metric in index[0]["results"][0]["metrics"]] == ["accuracy"]
    assert meta["model-index"][0]["results"][0]["dataset"] == {
        "name": "sst2",
        "type": "stanfordnlp/sst2",
        "split": "validation",
    }


def test_push_sends_exactly_the_export_and_never_the_token(pushed_run, tmp_path, capfd, monkeypatch, caplog):
    run_dir = pushed_run[0]
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(hfclf.inference.hub, "HfApi", FakeHfApi)
    FakeHfApi.reset()
    code, stdout, stderr = run_cli(["push", run_dir, "user/name", "--private", "--revision", "dev"], capfd)
    assert code == 0, stderr
    assert FakeHfApi.calls[1:] == [
        ("create_repo", "user/name", True, True),
        ("create_branch", "user/name", "dev"),
        ("upload_folder", "user/name", "dev"),
    ]
    assert run_cli(["export", run_dir, tmp_path / "export", "--repo-id", "user/name"], capfd)[0] == 0
    [uploaded] = FakeHfApi.uploads
    assert uploaded == folder_files(tmp_path / "export")

    # the token is read by huggingface_hub itself: never in output, logs, uploaded or run files
    assert TOKEN not in stdout + stderr + caplog.text
    assert not any(TOKEN.encode() in content for content in uploaded.values())
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert "error:" in run_cli(["push", run_dir, "no-namespace"], capfd)[2]


def test_push_offline_is_one_error_line(pushed_run, monkeypatch, capfd):
    """The real HfApi under HF_HUB_OFFLINE=1: one line naming the repo and what to check, no traceback."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code, _, stderr = run_cli(["push", pushed_run[0], "user/name"], capfd)
    lines = stderr.strip().splitlines()
    assert code == 2 and "Traceback" not in stderr, stderr
    assert lines[-1].startswith("error: Could not push to the Hub repo user/name (") and "HF_HUB_OFFLINE" in lines[-1]


def test_push_without_a_network_is_one_error_line(pushed_run, monkeypatch, capfd):
    """Offline mode not set and no Hub reachable (a closed local port): the HTTP client's own connection error is one
    line too, not a traceback."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    code, _, stderr = run_cli(["push", pushed_run[0], "user/name"], capfd)
    assert code == 2 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: Could not push to the Hub repo user/name (")
    assert "hf_not_a_real_token" not in stderr


def test_push_to_hub_without_namespace_fails_before_training(tiny_encoder_dir, toy_data, tmp_path, capfd):
    from hfclf.commands.finetune import main as train

    files = [w for split, path in toy_data.items() for w in (f"--{split}_file", str(path))]
    out = tmp_path / "run"
    argv = ["--model", str(tiny_encoder_dir), "--output_dir", str(out), *files, *QUICK]
    assert train([*argv, "--push_to_hub", "--hub_model_id", "no-namespace"]) == 2
    assert "needs a namespace" in capfd.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("offline, token", [(True, "hf_x"), (False, None)])
def test_push_to_hub_that_cannot_upload_fails_before_training(
    offline, token, tiny_encoder_dir, toy_data, tmp_path, capfd, monkeypatch
):
    """Offline, or without a token, the push after training could only fail: refused before anything is written
    (it failed after training, and the finished run then refused a rerun)."""
    from hfclf.commands.finetune import main as train

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: token)
    files = [w for split, path in toy_data.items() for w in (f"--{split}_file", str(path))]
    out = tmp_path / "run"
    argv = ["--model", str(tiny_encoder_dir), "--output_dir", str(out), *files, *QUICK]
    assert train([*argv, "--push_to_hub", "--hub_model_id", "user/x"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("HF_HUB_OFFLINE is set" if offline else "needs a Hugging Face token") in err[0], err
    assert not out.exists()


def test_export_refuses_a_bad_repo_id_and_a_file_target(pushed_run, tmp_path, capfd):
    run_dir = pushed_run[0]
    code, _, err = run_cli(["export", run_dir, tmp_path / "e", "--repo-id", "user/not a name!"], capfd)
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: Hub repo id 'user/not a name!' is not valid: ")
    (target := tmp_path / "notes.txt").write_text("mine")
    for overwrite in ([], ["--overwrite"]):
        code, _, err = run_cli(["export", run_dir, target, *overwrite], capfd)
        error = err.strip().splitlines()[-1]
        assert code == 2 and error == f"error: Export folder {target} is a file; pass a folder path."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and target.read_text() == "mine"


def test_hub_token_flag_is_redacted():
    from hfclf.training_args import redact_command

    assert redact_command(["x", "--hub_token", "s3cret", "--hub-token=s3cret", "--lr", "1"]) == [
        "x",
        "--hub_token",
        "<redacted>",
        "--hub-token=<redacted>",
        "--lr",
        "1",
    ]


DOWNSTREAM = textwrap.dedent(
    """
    import json, sys
    sys.modules["hfclf"] = None
    sys.modules["peft"] = None
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    folder = sys.argv[1]
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        probs = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits.softmax(-1)
    classify = pipeline("text-classification", model=folder, trust_remote_code=True)
    print("RESULTS" + json.dumps({"probs": probs.tolist(), "pipeline": classify(TEXTS)}))
    """
)
TEXTS = ["a great and moving film", "dull , boring plot"]


def downstream_predictions(folder, tmp_path):
    """Load and run `folder` in a subprocess where neither hfclf nor peft can be imported."""
    return run_downstream(f"TEXTS = {TEXTS!r}\n" + DOWNSTREAM, [folder], tmp_path)


def test_exported_folder_predicts_where_hfclf_cannot_be_imported(pushed_run, tmp_path, capfd):
    import pandas as pd

    run_dir = pushed_run[0]
    export = tmp_path / "export"
    assert run_cli(["export", run_dir, export], capfd)[0] == 0
    result = downstream_predictions(export, tmp_path)

    (tmp_path / "in.txt").write_text("\n".join(TEXTS))
    assert (
        run_cli(["predict", "--model", run_dir, "--input", tmp_path / "in.txt", "--output", tmp_path / "p.csv"], capfd)[
            0
        ]
        == 0
    )
    expected = pd.read_csv(tmp_path / "p.csv")
    assert [p["label"] for p in result["pipeline"]] == expected["label"].tolist()
    np.testing.assert_allclose(result["probs"], expected[["prob_neg", "prob_pos"]].to_numpy(), atol=1e-5)


def test_a_card_says_only_what_its_folder_records():
    """No 'custom data' for a folder without results (an exported folder, a checkpoint); n/a, not nan, for a metric
    without a value; thresholds tuned on validation are called optimistic there; a pair model's usage reads a table,
    and a model trained on joined columns names them and their separator; one that read long texts in windows says so
    where the pipeline call cuts them."""
    from hfclf.inference.model_card import build_model_card
    from hfclf.run_folder import RunResults

    config = {"model_type": "hfclf_lstm", "pooling": "max", "num_layers": 2, "hidden_size": 8, "id2label": {"0": "a"}}
    assert "data this folder does not record" in build_model_card(config, None)
    assert "texts.txt` classifies a file of one text per line" in build_model_card(config, None)
    results = RunResults(
        eval={"eval_accuracy": 0.5, "eval_f1_macro": float("nan")},
        arguments={"data": {"dataset": "sst2"}, "model": {"threshold": "0.5"}},
    )
    card = build_model_card(config, results)
    assert "| 0.5000 | n/a |" in card and "nan" not in card.lower() and "optimistic" not in card
    results.arguments["model"]["threshold"] = "tune"
    assert "thresholds were tuned on the validation split, so its scores are optimistic" in build_model_card(
        {**config, "problem_type": "multi_label_classification"}, results
    )
    pairs = {**config, "input_format": {"text_columns": ["premise"], "text_pair_column": "hypothesis"}}
    assert "--input pairs.csv` reads a table with both texts of each pair" in build_model_card(pairs, results)
    assert "carries its own model code" in build_model_card(config, None)
    stock = build_model_card({"model_type": "bert", "architectures": ["BertForSequenceClassification"]}, None)
    assert "It is a stock `transformers` model:" in stock and "trust_remote_code" not in stock  # --arch hf
    windows = {**config, "input_format": {"long_text": "windows", "stride": 16}}
    card = build_model_card(windows, RunResults(arguments={"data": {"long_text": "windows"}}))
    assert "- `long_text`: `windows`" in card and "training read long texts in overlapping windows (sharing 16" in card
    assert "long_text" not in build_model_card(config, RunResults(arguments={"data": {"long_text": "truncate"}}))
    joined = {**config, "input_format": {"text_columns": ["title", " description"], "text_separator": " | "}}
    assert 'a table with the columns title, description, joined with " | " as in training' in build_model_card(joined)
