#!/usr/bin/env python
"""LoRA vs full fine-tuning of MiniLM on SST-2: accuracy, train samples/s, peak memory, checkpoint size.

    python benchmarks/lora_vs_full.py --data_dir ../shared/data --out reports/lora_vs_full [finetune flags ...]

Each variant runs in its own process, so that its peak resident memory (CPU) or peak allocated GPU memory is its own.
Extra flags go to both runs (e.g. --max_train_samples 4000 --num_train_epochs 1).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from hfclf.run_folder import RunResults

VARIANTS = {
    "full": ["--learning_rate", "1e-4"],
    "lora": ["--lora", "true", "--lora_r", "8", "--lora_alpha", "16", "--learning_rate", "5e-4"],
}
CHECKPOINT_FILES = ("model.safetensors", "adapter_model.safetensors")

# Runs inside the child process: fine-tune, then report peak memory.
CHILD = """
import json, resource, sys, torch
from hfclf.commands.finetune import main
code = main(sys.argv[1:])
peak_gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
print("PEAK" + json.dumps({"code": code, "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                           "peak_gpu_bytes": peak_gpu}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--out", default="reports/lora_vs_full")
    args, extra = parser.parse_known_args()
    out = Path(args.out)
    rows = []
    for name, flags in VARIANTS.items():
        run_dir = out / name
        argv = [
            "--dataset",
            "sst2",
            "--data_dir",
            args.data_dir,
            "--pooling",
            "mean",
            "--max_length",
            "66",
            "--output_dir",
            str(run_dir),
            "--overwrite_output_dir",
            "true",
            *flags,
            *extra,
        ]
        completed = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True)
        if completed.returncode != 0 or "PEAK" not in completed.stdout:
            print(completed.stderr[-3000:], file=sys.stderr)
            return 1
        peak = json.loads(completed.stdout.rsplit("PEAK", 1)[1])
        results = RunResults.load(run_dir)
        checkpoint = sum((run_dir / f).stat().st_size for f in CHECKPOINT_FILES if (run_dir / f).exists())
        rows.append(
            {
                "variant": name,
                "dev_accuracy": results.metric("accuracy", "eval"),
                "test_accuracy": results.metric("accuracy", "test"),
                "trainable_parameters": results.num_trainable_parameters,
                "parameters": results.num_parameters,
                "train_samples_per_second": results.train_samples_per_second,
                "peak_rss_mb": peak["max_rss_kb"] / 1024,
                "peak_gpu_mb": peak["peak_gpu_bytes"] / 2**20 if peak["peak_gpu_bytes"] else None,
                "checkpoint_mb": checkpoint / 1e6,
                "hardware": results.hardware,
            }
        )
    lines = [
        "| variant | dev acc | test acc | trainable params | train samples/s | peak RSS | peak GPU | checkpoint |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gpu = f"{r['peak_gpu_mb']:.0f} MB" if r["peak_gpu_mb"] else "-"
        lines.append(
            f"| {r['variant']} | {100 * r['dev_accuracy']:.2f} | {100 * r['test_accuracy']:.2f} | "
            f"{r['trainable_parameters']:,} ({100 * r['trainable_parameters'] / r['parameters']:.1f}%) | "
            f"{r['train_samples_per_second']:.1f} | {r['peak_rss_mb']:.0f} MB | {gpu} | {r['checkpoint_mb']:.1f} MB |"
        )
    table = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(f"Command: `{' '.join(['python', *sys.argv])}`\n\n{table}\n")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
