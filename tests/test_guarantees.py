"""What survives crashes, races and hostile folders: exact resume after `kill -9`, complete checkpoints, locks, atomic
outputs, no unpickling and no stored token (README, "Guarantees")."""

import hashlib
import json
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from hfclf.commands.finetune import main
from hfclf.errors import HfclfInputError
from hfclf.files import (
    LOCK_FILE,
    TEMPORARY_PREFIX,
    atomic_folder,
    atomic_output,
    folder_lock,
    remove_dead_lock,
    write_text,
)
from hfclf.run_folder import CHECKPOINT_RECORD, checkpoint_problem, latest_complete_checkpoint, read_checkpoint_record

REPO = Path(__file__).resolve().parents[1]

# 64 training examples in batches of 8: 8 steps an epoch, 24 in all; a checkpoint (and an evaluation) every 3 steps.
RUN = [
    "--arch", "lstm", "--no_word_vectors", "--embedding_dim", "8", "--lstm_hidden_size", "8", "--lstm_layers", "1",
    "--max_length", "32",
    "--per_device_train_batch_size", "8", "--num_train_epochs", "3", "--seed", "11",
    "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps", "--save_steps", "3",
    "--logging_steps", "2",
]  # fmt: skip

# Runs the recipe in a real process and kills it (SIGKILL) at a chosen point: after optimizer step N ("step"), in the
# middle of saving checkpoint N ("save": model written, optimizer and trainer state not yet), or after the final model
# was saved but before results.json ("final").
KILLER = """
import os, signal, sys
from transformers import TrainerCallback
import hfclf.commands.finetune as finetune

point, step = sys.argv[1], int(sys.argv[2])

def die():
    os.kill(os.getpid(), signal.SIGKILL)

class KillAfterStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if point == "step" and state.global_step == step:
            die()

build_trainer = finetune.build_trainer

def build_and_arm(*args, **kwargs):
    trainer = build_trainer(*args, **kwargs)
    trainer.add_callback(KillAfterStep())
    save = trainer._save_optimizer_and_scheduler
    def save_or_die(output_dir):
        if point == "save" and trainer.state.global_step == step:
            die()
        save(output_dir)
    trainer._save_optimizer_and_scheduler = save_or_die
    return trainer

finetune.build_trainer = build_and_arm
save_final_model = finetune.save_final_model

def save_and_die(*args):
    save_final_model(*args)
    if point == "final":
        die()

finetune.save_final_model = save_and_die
sys.exit(finetune.main(sys.argv[3:]))
"""


def data_flags(toy_data):
    return [word for split, path in toy_data.items() for word in (f"--{split}_file", str(path))]


def killed_run(argv, point: str, step: int):
    completed = subprocess.run(
        [sys.executable, "-c", KILLER, point, str(step), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr[-3000:]
    return completed


def read_results(folder) -> dict:
    return json.loads((Path(folder) / "results.json").read_text())


def assert_same_model(folder, reference):
    expected = AutoModelForSequenceClassification.from_pretrained(reference).state_dict()
    for name, value in AutoModelForSequenceClassification.from_pretrained(folder).state_dict().items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=1e-5)


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path, tiny_encoder_dir, toy_data, capsys, caplog):
    """kill -9 in epoch 1, in epoch 2, while saving a checkpoint in epoch 3 and after training: each resume with
    `auto` continues, and the run ends with the weights, metrics and train loss of the uninterrupted run."""
    argv = ["--model", tiny_encoder_dir, *data_flags(toy_data), *RUN]
    reference, out = tmp_path / "uninterrupted", tmp_path / "run"
    assert main([*map(str, argv), "--output_dir", str(reference)]) == 0
    resume = [*argv, "--output_dir", out, "--resume_from_checkpoint", "auto"]

    killed_run([*argv, "--output_dir", out], "step", 4)  # epoch 1, after checkpoint-3
    assert [p.name for p in sorted(out.glob("checkpoint-*"))] == ["checkpoint-3"]
    assert (out / LOCK_FILE).is_file()  # left behind by the killed process
    killed = killed_run(resume, "step", 13)  # epoch 2, after checkpoint-12
    assert "Taking over the lock" in killed.stderr and "Resuming from" in killed.stderr
    killed_run(resume, "save", 21)  # epoch 3, in the middle of writing checkpoint-21
    assert (out / "checkpoint-21" / "model.safetensors").is_file()
    assert "save did not finish" in checkpoint_problem(out / "checkpoint-21")
    killed = killed_run(resume, "step", 23)  # resumes from checkpoint-18, skipping the broken checkpoint-21
    assert f"Skipping checkpoint {out / 'checkpoint-21'}" in killed.stderr
    assert f"Resuming from {out / 'checkpoint-18'}" in killed.stderr
    killed_run(resume, "final", 0)  # training finished, the final model saved, results.json not yet written
    assert not (out / "results.json").exists() and (out / "model.safetensors").is_file()

    assert main([*map(str, argv), "--output_dir", str(out)]) == 2  # a plain rerun is refused
    # mark the last checkpoint's state (keeping its record consistent), to tell a real resume from a restart
    state_file = out / "checkpoint-24" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"].insert(0, {"step": 0, "resume_marker": True})
    state_file.write_text(json.dumps(state))
    record = json.loads((out / "checkpoint-24" / CHECKPOINT_RECORD).read_text())
    record["files"]["trainer_state.json"] = state_file.stat().st_size
    (out / "checkpoint-24" / CHECKPOINT_RECORD).write_text(json.dumps(record))
    caplog.set_level("INFO", logger="hfclf")
    assert main([*map(str, resume)]) == 0  # resumes after the end of training: only evaluation and outputs
    assert f"Resuming from {out / 'checkpoint-24'}" in caplog.text

    expected, resumed = read_results(reference), read_results(out)
    for split, key in (
        ("eval", "eval_loss"),
        ("eval", "eval_accuracy"),
        ("test", "test_loss"),
        ("test", "test_f1_macro"),
    ):
        assert resumed[split][key] == pytest.approx(expected[split][key], abs=1e-6), key
    assert resumed["best_checkpoint"].rsplit("-", 1)[-1] == expected["best_checkpoint"].rsplit("-", 1)[-1]
    assert_same_model(out, reference)
    assert (out / "predictions.csv").read_text() == (reference / "predictions.csv").read_text()
    # the train metrics describe the whole run, not the empty last part
    train = resumed["train"]
    assert train["train_loss"] == pytest.approx(expected["train"]["train_loss"], rel=1e-5)
    record = read_checkpoint_record(out / "checkpoint-24")
    assert train["train_runtime"] >= record["train_runtime"] > 0.1
    samples = 64 * 3  # the whole schedule
    assert train["train_samples_per_second"] == pytest.approx(samples / train["train_runtime"], rel=1e-3)
    assert resumed["log_history"][0] == {"step": 0, "resume_marker": True}

    # the loss logged every 2 steps, across resumes from checkpoints every 3, is the uninterrupted run's
    def logged(results):
        return {entry["step"]: entry["loss"] for entry in results["log_history"] if "loss" in entry}

    assert logged(resumed).keys() == logged(expected).keys() and len(logged(resumed)) == 12
    assert logged(resumed) == pytest.approx(logged(expected), abs=1e-6)
    summary = [entry for entry in resumed["log_history"] if "train_runtime" in entry][-1]
    assert summary["train_loss"] == train["train_loss"]
    assert not [p for p in out.iterdir() if p.name.startswith(TEMPORARY_PREFIX)] and not (out / LOCK_FILE).exists()


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory, tiny_encoder_dir, toy_data):
    """A finished run with complete checkpoints at steps 3, 6, ..., 24 (all kept)."""
    out = tmp_path_factory.mktemp("checkpointed") / "run"
    argv = ["--model", tiny_encoder_dir, *data_flags(toy_data), *RUN, "--save_total_limit", "10", "--output_dir", out]
    assert main([*map(str, argv)]) == 0
    return out, argv[:-2]


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.pt", "trainer_state.json", "rng_state.pth"])
def test_a_truncated_checkpoint_is_skipped_by_auto_and_refused_by_name(
    tmp_path, checkpointed_run, damaged, capsys, caplog
):
    source, argv = checkpointed_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    (out / "results.json").unlink()  # an unfinished run
    for checkpoint in ("checkpoint-21", "checkpoint-24"):
        path = out / checkpoint / damaged
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "truncated" in checkpoint_problem(out / "checkpoint-24")
    assert latest_complete_checkpoint(out) == out / "checkpoint-18"

    code = main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", str(out / "checkpoint-24")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert f"Checkpoint {out / 'checkpoint-24'} cannot be resumed: {damaged} has" in err
    assert not (out / "results.json").exists()

    caplog.set_level("INFO", logger="hfclf")
    assert main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", "auto"]) == 0
    assert f"Skipping checkpoint {out / 'checkpoint-24'}" in caplog.text
    assert f"Skipping checkpoint {out / 'checkpoint-21'}" in caplog.text
    assert f"Resuming from {out / 'checkpoint-18'}" in caplog.text
    assert read_results(out)["epochs"] == 3


def test_a_resume_with_other_settings_is_refused(tmp_path, checkpointed_run, capsys):
    """A resumed run that asks for another seed (or data, model, schedule, number of processes) would end as neither
    run; flags that only change where it logs, how fast it loads or how it saves memory may change, and a model size
    may be spelled another way."""
    source, argv = checkpointed_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    (out / "results.json").unlink()  # an unfinished run
    files = {str(path): path.stat().st_mtime_ns for path in out.rglob("*")}
    resume = [*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", "auto"]
    code = main([*resume, "--seed", "12", "--max_length", "16"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert (
        f"Checkpoint {out / 'checkpoint-24'} was made with other settings: --max_length 32 (now 16); --seed 11 " in err
    )
    assert {str(path): path.stat().st_mtime_ns for path in out.rglob("*")} == files  # nothing written
    record_path = out / "checkpoint-24" / CHECKPOINT_RECORD
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "settings": {**record["settings"], "num_processes": 2}}))
    assert main(resume) == 2  # made by two processes: each step saw twice the batch
    assert "was made with other settings: --num_processes 2 (now 1)" in capsys.readouterr().err
    record_path.write_text(json.dumps(record))
    at = resume.index("--lstm_layers")  # the same model size, spelled as a config override
    resume[at : at + 2] = ["--config_overrides", "num_layers=1"]
    speed = ["--per_device_eval_batch_size", "4", "--disable_tqdm", "true", "--gradient_checkpointing", "true"]
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("transformers").addHandler(handler)  # transformers' own handler does not propagate
    try:
        assert main([*resume, "--logging_steps", "5", *speed]) == 0
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    # hfclf checked the settings: no warning from transformers' own comparison of step arguments
    assert not [
        r.getMessage() for r in records if "do not match the ones in the `trainer_state.json`" in r.getMessage()
    ]
    assert read_results(out)["settings"]["seed"] == 11


def test_damaged_checkpoints_are_kept_when_none_is_complete(tmp_path, checkpointed_run, capsys):
    """A killed run leaves at most one unfinished checkpoint (its first): several broken ones were damaged after
    their save, and `auto` refuses rather than removing them and training from scratch."""
    source, argv = checkpointed_run
    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint-21", "checkpoint-24"):
        shutil.copytree(source / name, out / name)
    (out / "checkpoint-24" / "optimizer.pt").write_bytes(b"cut")
    (out / "checkpoint-21" / "rng_state.pth").unlink()
    files = {str(path): path.stat().st_mtime_ns for path in out.rglob("*")}
    code = main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", "auto"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert f"Output directory {out} has no complete checkpoint to resume from (checkpoint-24: optimizer.pt has 3" in err
    assert "checkpoint-21: rng_state.pth is missing). A killed run leaves at most one unfinished checkpoint" in err
    assert {str(path): path.stat().st_mtime_ns for path in out.rglob("*")} == files


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.pt", "trainer_state.json", "rng_state.pth"])
def test_a_checkpoint_file_changed_in_place_is_skipped_by_auto(tmp_path, checkpointed_run, damaged, caplog):
    """A file of its recorded size that does not read back (a JSON file that does not parse, a safetensors header
    that does not, a PyTorch archive whose checksums fail) is damage, not a traceback in the middle of the resume."""
    source, argv = checkpointed_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    (out / "results.json").unlink()  # an unfinished run
    path = out / "checkpoint-24" / damaged
    data = bytearray(path.read_bytes())
    start = {"model.safetensors": 8, "trainer_state.json": 0}.get(damaged, len(data) // 2)
    end = len(data) if damaged.endswith(".json") else start + 16
    data[start:end] = b"X" * (end - start)
    path.write_bytes(bytes(data))
    assert checkpoint_problem(out / "checkpoint-24").startswith(f"{damaged} is damaged (")
    caplog.set_level("INFO", logger="hfclf")
    assert main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", "auto"]) == 0
    assert f"Skipping checkpoint {out / 'checkpoint-24'}: {damaged} is damaged" in caplog.text
    assert f"Resuming from {out / 'checkpoint-21'}" in caplog.text


def test_a_model_only_checkpoint_is_not_resumed(tmp_path, checkpointed_run, caplog):
    """A checkpoint without optimizer and schedule (--save_only_model) would resume with fresh ones, in silence."""
    source, _ = checkpointed_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    record = json.loads((out / "checkpoint-24" / CHECKPOINT_RECORD).read_text())
    (out / "checkpoint-24" / CHECKPOINT_RECORD).write_text(json.dumps({**record, "save_only_model": True}))
    assert "--save_only_model" in checkpoint_problem(out / "checkpoint-24")
    assert latest_complete_checkpoint(out) == out / "checkpoint-21"
    assert "Skipping checkpoint" in caplog.text


def test_a_run_killed_while_saving_its_first_checkpoint_starts_over(tmp_path, tiny_encoder_dir, toy_data, caplog):
    argv = [
        "--model",
        tiny_encoder_dir,
        *data_flags(toy_data),
        *RUN,
        "--num_train_epochs",
        "1",
        "--output_dir",
        out := tmp_path / "run",
    ]
    killed_run(argv, "save", 3)
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-3"] and checkpoint_problem(out / "checkpoint-3")
    caplog.set_level("INFO", logger="hfclf")
    assert main([*map(str, argv), "--resume_from_checkpoint", "auto"]) == 0
    assert "Removing unfinished checkpoints of a run that stopped before completing one" in caplog.text
    assert read_results(out)["epochs"] == 1


def test_early_stopping_stays_stopped_after_a_resume(tmp_path, tiny_encoder_dir, toy_data):
    stop = ["--learning_rate", "1e-9", "--early_stopping_patience", "1", "--save_total_limit", "20"]
    argv = ["--model", tiny_encoder_dir, *data_flags(toy_data), *RUN, *stop]
    reference, out = tmp_path / "uninterrupted", tmp_path / "run"
    assert main([*map(str, argv), "--output_dir", str(reference)]) == 0
    killed_run([*argv, "--output_dir", out], "final", 0)
    assert main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", "auto"]) == 0
    expected, resumed = read_results(reference), read_results(out)
    assert expected["epochs"] < 3 and resumed["epochs"] == expected["epochs"]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == sorted(p.name for p in reference.glob("checkpoint-*"))


def test_a_resume_keeps_early_stoppings_patience_count(tmp_path, toy_data):
    """A run killed while early stopping counts evaluations without improvement goes on counting from its checkpoint
    (transformers restores callbacks' state only when asked): it stops where the uninterrupted run stopped. Resumed in
    another folder, the run's best checkpoint is that folder's."""
    stop = ["--learning_rate", "1e-9", "--early_stopping_patience", "3", "--save_total_limit", "20"]
    argv = [*data_flags(toy_data), *RUN, *stop]
    reference, out = tmp_path / "uninterrupted", tmp_path / "run"
    assert main([*map(str, argv), "--output_dir", str(reference)]) == 0
    counts = {
        path.name: json.loads((path / "trainer_state.json").read_text())["stateful_callbacks"]["EarlyStoppingCallback"]
        for path in reference.glob("checkpoint-*")
    }
    counting = [name for name, state in counts.items() if state["attributes"]["early_stopping_patience_counter"] == 2]
    assert counting, counts  # a checkpoint one evaluation before the stop
    cut = int(counting[0].split("-")[1])
    for checkpoint in reference.glob("checkpoint-*"):  # the run as it stood then, in another folder
        if int(checkpoint.name.split("-")[1]) <= cut:
            shutil.copytree(checkpoint, out / checkpoint.name)
    assert main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", "auto"]) == 0
    expected, resumed = read_results(reference), read_results(out)
    assert expected["epochs"] < 3 and resumed["epochs"] == expected["epochs"]
    # the best checkpoint of the folder the run now lives in, not of the one it was copied from
    assert resumed["best_checkpoint"] == str(out / Path(expected["best_checkpoint"]).name)
    for split in ("eval", "test"):
        scores = {key: value for key, value in expected[split].items() if "runtime" not in key and "_per_" not in key}
        assert {key: resumed[split][key] for key in scores} == pytest.approx(scores), split


def test_overwriting_a_folder_removes_the_previous_runs_state(tmp_path, checkpointed_run, caplog):
    source, argv = checkpointed_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    (out / "notes.txt").write_text("mine")
    caplog.set_level("INFO", logger="hfclf")
    assert (
        main(
            [
                *map(str, argv),
                "--output_dir",
                str(out),
                "--overwrite_output_dir",
                "--num_train_epochs",
                "1",
                "--seed",
                "99",
            ]
        )
        == 0
    )
    assert "Removing what the previous run left (--overwrite-output-dir)" in caplog.text
    # only this run's checkpoints (8 steps): the old run's later ones could have been resumed as this run's
    assert max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*")) == 8
    assert read_results(out)["arguments"]["training"]["seed"] == 99 and (out / "notes.txt").read_text() == "mine"


def folder_contents(folder: Path) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_finished_run_is_final(tmp_path, checkpointed_run, capsys):
    """The same command again, or a resume of any checkpoint, would train nothing and rewrite the finished run's
    results: each is refused with one line naming the ways on, and the folder stays as it was."""
    source, argv = checkpointed_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    before = folder_contents(out)
    argv = [*map(str, argv), "--output_dir", str(out)]
    further = f"or train further from its model with --arch hf --model {out} --output-dir NEW_FOLDER."  # an LSTM
    for resume in ([], ["--resume_from_checkpoint", "auto"], ["--resume_from_checkpoint", str(out / "checkpoint-12")]):
        for overwrite in ([], ["--overwrite_output_dir"]) if resume else ([],):
            assert main([*argv, *resume, *overwrite, "--num_train_epochs", "4"]) == 2
            error = capsys.readouterr().err.strip().splitlines()
            assert error[-1].startswith(f"error: Output directory {out} holds a finished run (results.json)")
            assert error[-1].endswith(further) and sum("error:" in line for line in error) == 1
            assert ("nothing to resume" in error[-1]) == bool(resume)
    assert folder_contents(out) == before  # nothing rewritten


def test_overwriting_removes_nothing_when_the_new_run_is_refused(tmp_path, checkpointed_run, capsys):
    """--overwrite-output-dir removes the previous run only once the new run's inputs are checked."""
    source, argv = checkpointed_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    before = folder_contents(out)
    code = main([*map(str, argv), "--output_dir", str(out), "--overwrite_output_dir", "--text_columns", "nope"])
    assert code == 2 and "nope" in capsys.readouterr().err.strip().splitlines()[-1]
    assert folder_contents(out) == before


def test_an_error_leaves_no_folders_behind(tmp_path, checkpointed_run, capsys):
    _, argv = checkpointed_run
    out = tmp_path / "new" / "deeper" / "run"
    assert main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "new").exists()


def test_resume_from_a_missing_checkpoint_is_one_clear_error(tmp_path, checkpointed_run, capsys):
    _, argv = checkpointed_run
    out = tmp_path / "run"
    code = main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: Checkpoint") and "does not exist" in err
    assert not out.exists()


class Payload:
    """Pickled, it runs `touch <path>` when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_planted_pickle_never_runs_and_resume_still_works(tmp_path, checkpointed_run, capsys):
    source, argv = checkpointed_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    (out / "results.json").unlink()
    marker = tmp_path / "payload-ran"
    for checkpoint in out.glob("checkpoint-*"):
        (checkpoint / "training_args.bin").write_bytes(pickle.dumps(Payload(marker)))
        # a crafted folder can also keep the record consistent with its files
        record = json.loads((checkpoint / CHECKPOINT_RECORD).read_text())
        record["files"]["training_args.bin"] = (checkpoint / "training_args.bin").stat().st_size
        (checkpoint / CHECKPOINT_RECORD).write_text(json.dumps(record))
    assert main([*map(str, argv), "--output_dir", str(out), "--resume_from_checkpoint", "auto"]) == 0
    assert not marker.exists()
    assert read_results(out)["epochs"] == 3


@pytest.mark.parametrize("form", ["flag", "equals", "yaml"])
def test_the_hub_token_is_stored_nowhere(tmp_path, tiny_encoder_dir, toy_data, form):
    token = "hf_FAKEtokenThatMustNeverBeWritten0123"
    out = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, *data_flags(toy_data), *RUN, "--num_train_epochs", "1", "--output_dir", out]
    argv = [*map(str, argv)]
    if form == "flag":
        argv += ["--hub_token", token]
    elif form == "equals":
        argv += [f"--hub-token={token}"]
    else:
        config = tmp_path / "run.yaml"
        config.write_text(f"hub_token: {token}\n")
        argv = [str(config), *argv]
    assert main(argv) == 0
    files = [path for path in out.rglob("*") if path.is_file()]
    assert any(path.name == "training_args.bin" for path in files) and len(files) > 20
    for path in files:
        assert token.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------------------------------------------- concurrency

HOLDER = """
import sys
from hfclf.files import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def hold_lock(folder):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_run_on_a_busy_folder_is_refused_and_a_dead_lock_is_taken_over(
    tmp_path, tiny_encoder_dir, toy_data, capsys, caplog
):
    out = tmp_path / "run"
    holder = hold_lock(out)
    argv = ["--model", tiny_encoder_dir, *data_flags(toy_data), *RUN, "--num_train_epochs", "1", "--output_dir", out]
    try:
        start = time.monotonic()
        code = main([*map(str, argv)])
        err = capsys.readouterr().err
        assert code == 2 and time.monotonic() - start < 10  # at once, not after training
        assert f"error: Output directory {out} is in use by process {holder.pid}" in err
        assert [p.name for p in out.iterdir()] == [LOCK_FILE]
        holder.kill()  # dies holding the lock: the lock file stays, the OS lock goes
        holder.wait()
        caplog.set_level("INFO", logger="hfclf")
        assert main([*map(str, argv)]) == 0
        assert f"Taking over the lock of {out} from process {holder.pid}" in caplog.text
        assert not (out / LOCK_FILE).exists()
    finally:
        holder.kill()


# A compare whose variants wait a minute before training: it holds its folders while a second one starts.
SLOW_COMPARE = """
import sys, time
import hfclf.commands.compare as compare

run_finetune = compare.run_finetune
compare.run_finetune = lambda *args, **kwargs: (time.sleep(60), run_finetune(*args, **kwargs))[1]
sys.exit(compare.main(sys.argv[1:]))
"""


def test_a_second_compare_on_the_same_report_is_refused_at_once(tmp_path, tiny_encoder_dir, toy_data, caplog):
    import yaml

    from hfclf.commands.compare import main as compare

    config = tmp_path / "grid.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "grid",
                "data": {f"{split}_file": str(path) for split, path in toy_data.items()},
                "common": {"arch": "lstm", "model": str(tiny_encoder_dir), "lstm_hidden_size": 16, "max_length": 32},
                "variants": [{"name": "a", "seed": 1}, {"name": "b", "seed": 2}],
            }
        )
    )
    report = tmp_path / "report"
    argv = [str(config), "--report_dir", str(report), "--num_train_epochs", "1"]
    first = subprocess.Popen([sys.executable, "-c", SLOW_COMPARE, *argv], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (report / "runs" / "b" / LOCK_FILE).exists():  # every variant is held from the start
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run(
            [sys.executable, "-m", "hfclf.commands.cli", "compare", *argv], capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 2, second.stderr[-2000:]
        error = second.stderr.strip().splitlines()[-1]
        assert error.startswith(f"error: Variant folder of a {report / 'runs' / 'a'} is in use by process {first.pid}")
        assert first.poll() is None  # still waiting to train, untouched
    finally:
        first.kill()
        first.wait()
    caplog.set_level("INFO", logger="hfclf")
    assert compare(argv) == 0  # the killed comparison's locks are taken over
    assert caplog.text.count(f"from process {first.pid}") == 2
    assert all((report / "runs" / name / "results.json").is_file() for name in ("a", "b"))
    # killed after variant a finished, while it still held a's folder: the rerun skips a and removes that lock
    (report / "runs" / "a" / LOCK_FILE).write_text(f"process {first.pid} on this host")
    assert compare(argv) == 0
    assert "a: finished earlier, skipped" in caplog.text and not (report / "runs" / "a" / LOCK_FILE).exists()


def test_a_live_lock_is_not_removed_as_dead(tmp_path):
    folder = tmp_path / "run"
    holder = hold_lock(folder)
    try:
        remove_dead_lock(folder)
        assert (folder / LOCK_FILE).read_text() == f"process {holder.pid} on {socket.gethostname()}"
    finally:
        holder.kill()
        holder.wait()
    remove_dead_lock(folder)
    assert not (folder / LOCK_FILE).exists()


# ---------------------------------------------------------------------------------------------- atomic outputs


def test_atomic_output_leaves_the_old_file_on_a_crash(tmp_path):
    path = tmp_path / "results.json"
    write_text(path, "good")
    with pytest.raises(RuntimeError), atomic_output(path) as temporary:
        temporary.write_text("half-writ")
        raise RuntimeError("crash while writing")
    assert path.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    write_text(path, "better")
    assert path.read_text() == "better" and oct(path.stat().st_mode & 0o777) != "0o600"


def test_a_write_removes_what_killed_writers_of_the_same_file_left(tmp_path):
    """A process killed while writing leaves its temporary file; the next write of that file removes it, and keeps
    those of live processes, of other hosts and of other files."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
    left = {
        "dead": f"{TEMPORARY_PREFIX}-predictions.csv.{dead.pid}-{host}.k1ll3d",
        "live": f"{TEMPORARY_PREFIX}-predictions.csv.{live.pid}-{host}.wr1t1n",
        "other host": f"{TEMPORARY_PREFIX}-predictions.csv.{dead.pid}-00000000.r3m0t3",
        "other file": f"{TEMPORARY_PREFIX}-predictions.csv.gz.{dead.pid}-{host}.0th3r",
    }
    try:
        for name in left.values():
            (tmp_path / name).write_text("half-writ")
        write_text(tmp_path / "predictions.csv", "text,label")
        kept = {p.name for p in tmp_path.iterdir()}
    finally:
        live.kill()
        live.wait()
    assert kept == {"predictions.csv", left["live"], left["other host"], left["other file"]}


def test_atomic_folder_replaces_only_when_complete(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model.safetensors").write_text("old model")
    with pytest.raises(RuntimeError), atomic_folder(folder, replace=True) as temporary:
        (temporary / "model.safetensors").write_text("new mod")
        raise RuntimeError("crash while exporting")
    assert (folder / "model.safetensors").read_text() == "old model"
    with atomic_folder(folder, replace=True) as temporary:
        (temporary / "model.safetensors").write_text("new model")
    assert (folder / "model.safetensors").read_text() == "new model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    with pytest.raises(HfclfInputError, match="appeared while it was being written"), atomic_folder(folder):
        pass


def test_folder_lock_is_reentrant_and_cleans_up(tmp_path):
    folder = tmp_path / "new"
    with folder_lock(folder), folder_lock(folder):  # a comparison holds a variant's folder, then the run takes it
        assert (folder / LOCK_FILE).read_text().startswith(f"process {os.getpid()}")
    assert not folder.exists()  # created for the lock only, and empty again


def test_a_crash_while_exporting_keeps_the_previous_export(tmp_path, checkpointed_run, monkeypatch):
    import hfclf.inference.hub
    from hfclf.inference.hub import export

    run, _ = checkpointed_run
    target = tmp_path / "export"
    export(run, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(hfclf.inference.hub, "build_model_card", crash)
    with pytest.raises(RuntimeError):
        export(run, target, overwrite=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_predictions_of_a_run_match_their_texts_after_outputs_are_moved(checkpointed_run):
    """The final model is saved aside and moved in: the run folder holds it, and nothing temporary."""
    run, _ = checkpointed_run
    names = {p.name for p in run.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "results.json", "predictions.csv"} <= names
    assert not [name for name in names if name.startswith(TEMPORARY_PREFIX) or name == LOCK_FILE]
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == 20
    assert np.allclose(predictions[["prob_neg", "prob_pos"]].sum(axis=1), 1.0, atol=1e-5)
