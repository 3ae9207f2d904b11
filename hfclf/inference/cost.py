"""What a trained model costs: inference throughput and latency measured on a fixed sample, on the run's device,
through the same code as `hfclf predict`, and the run's peak memory.

- throughput: the first `texts` examples of the reported split scored in length-sorted batches (texts/s);
- latency: the first `LATENCY_TEXTS` of them one at a time, tokenization included (median and 95th percentile, ms);
- peak memory: the device's peak allocation on a GPU, the process's peak resident memory on a CPU (data included),
  both from the start of the run (`reset_peak_memory`). On a CPU, training keeps the memory a step frees for the next
  step (`keep_freed_memory`).

The model runs as training left it: fp32 weights, and for a bf16/fp16 run under the autocast that accelerate wrapped
its forward in, so a bf16 run's inference is measured in bf16 (`hfclf predict --bf16` runs it that way too).

And how close training came to the machine's limit (`training_compute`): the model FLOP/s it achieved (transformers'
count, 6 x non-embedding parameters x tokens, padding included, over the training time, which includes the
evaluations during training) next to the measured peak of a large square matmul on the same device, in fp32 and in
the run's precision.
"""

import ctypes
import functools
import logging
import resource
import sys
import time

import numpy as np

LATENCY_TEXTS = 50
WARM_UP_CALLS = 3
MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}  # large enough to reach the peak, small enough to take about a second
MATMUL_START_SIZE = 256
MATMUL_SECONDS = 0.5

logger = logging.getLogger("hfclf")


def _glibc():
    """The C library when it is glibc (Linux), else None (its malloc settings below do not apply)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None  # another C library (musl)


def keep_freed_memory() -> None:
    """Keep the memory a training step frees for the next step (glibc). glibc returns every freed block over 32 MiB
    (a BERT word-embedding gradient is 45 MiB) to the system, so each step faults its pages in again: a few percent
    of a MiniLM training step on this project's CPU (docs/PERFORMANCE.md). The peak is unchanged;
    `reset_peak_memory` hands what is kept back before the next run is measured."""
    libc = _glibc()
    if libc is not None:
        m_trim_threshold, m_mmap_max = -1, -4  # glibc's malloc.h
        libc.mallopt(m_mmap_max, 0)  # large blocks from the heap, not fresh mappings...
        libc.mallopt(m_trim_threshold, 2**31 - 1)  # ... and the heap is not shrunk when they are freed


def reset_peak_memory() -> None:
    """Start measuring a run's peak memory afresh: several runs (a comparison, a search) share one process."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)  # what `keep_freed_memory` kept from an earlier run is not this run's memory
    try:
        with open("/proc/self/clear_refs", "w") as f:  # Linux: resets the process's peak resident memory (VmHWM)
            f.write("5")
    except OSError:
        pass


def peak_memory() -> tuple[float, str]:
    """`(megabytes, what was measured)`: the GPU's peak allocation since `reset_peak_memory`, else the process's
    peak resident memory since then (Linux), else since the process started."""
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return torch.cuda.max_memory_allocated() / 2**20, "GPU peak allocated"
    try:
        with open("/proc/self/status") as f:
            peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        return peak_kb / 1024, "process peak RSS"
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS since it started"


def measure_inference(model, tokenizer, texts: list[str], pairs: list[str] | None, batch_size: int, device) -> dict:
    """Throughput over `texts` in batches of `batch_size` and single-text latency over the first `LATENCY_TEXTS`."""
    from .predict import classify

    was_training = model.training
    model.eval()
    pairs = pairs[: len(texts)] if pairs is not None else None
    for i in range(min(WARM_UP_CALLS, len(texts))):
        classify(model, tokenizer, texts[i : i + 1], batch_size=1, device=device, pairs=pairs and pairs[i : i + 1])
    start = time.perf_counter()
    classify(model, tokenizer, texts, batch_size=batch_size, device=device, pairs=pairs)
    throughput = len(texts) / (time.perf_counter() - start)
    latencies = []
    for i in range(min(LATENCY_TEXTS, len(texts))):
        start = time.perf_counter()
        classify(model, tokenizer, texts[i : i + 1], batch_size=1, device=device, pairs=pairs and pairs[i : i + 1])
        latencies.append(1000 * (time.perf_counter() - start))
    model.train(was_training)
    memory, memory_kind = peak_memory()
    return {
        "texts_per_second": throughput,
        "latency_ms_median": float(np.median(latencies)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "throughput_texts": len(texts),
        "latency_texts": len(latencies),
        "batch_size": batch_size,
        "device": str(device),
        "peak_memory_mb": memory,
        "peak_memory": memory_kind,
    }


@functools.cache
def matmul_peak(device_type: str, precision: str) -> float:
    """FLOP/s of a large square matmul on this process's `device_type` (cpu, cuda) in `precision` (fp32, bf16,
    fp16): the best of repeated timings, after a warm-up, of the largest size up to `MATMUL_SIZE` that the device
    computes in a fraction of `MATMUL_SECONDS` (a CPU without native bf16 emulates it: a 2048 bf16 matmul takes
    about a minute on an AVX2 core, so it is measured on a smaller one). Measured once per process."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6: synchronize any accelerator (CUDA, MPS, XPU)
    synchronize = (lambda: None) if device_type == "cpu" else (accelerator or torch.cuda).synchronize

    def timed(a, b) -> float:
        start = time.perf_counter()
        torch.matmul(a, b)
        synchronize()
        return time.perf_counter() - start

    size, largest = MATMUL_START_SIZE, MATMUL_SIZE.get(device_type, MATMUL_SIZE["cpu"])
    while True:
        a, b = (torch.randn(size, size, device=device_type).to(dtype) for _ in range(2))
        timed(a, b)  # warm-up: the first call of a size sets up its kernels
        elapsed = timed(a, b)
        if size >= largest or 8 * elapsed > MATMUL_SECONDS / 2:  # twice the size takes 8 times as long
            break
        size *= 2
    best, spent = elapsed, elapsed
    while spent < MATMUL_SECONDS:
        elapsed = timed(a, b)
        best, spent = min(best, elapsed), spent + elapsed
    return 2 * size**3 / best


def training_compute(train_metrics: dict, precision: str, device, processes: int, resumed: bool) -> dict:
    """Achieved model FLOP/s of a finished training and the device's measured matmul peaks (all processes
    together: each process's peak, measured by the first with its own threads, times the processes, which on a CPU
    share the cores); empty for a resumed run, whose FLOP count covers steps its time does not."""
    flops, seconds = train_metrics.get("total_flos"), train_metrics.get("train_runtime")
    if resumed or not flops or not seconds:
        if resumed:
            logger.info("Model FLOP/s not recorded: the run was resumed, so its time covers only part of its steps")
        return {}
    device_type = getattr(device, "type", str(device))
    peaks = {name: processes * matmul_peak(device_type, name) for name in dict.fromkeys(("fp32", precision))}
    achieved = flops / seconds
    return {
        "model_flops_per_second": achieved,
        "matmul_peak_flops_per_second": peaks,
        "fraction_of_peak": achieved / peaks[precision],
        "precision": precision,
        "device": device_type,
        "processes": processes,
    }
