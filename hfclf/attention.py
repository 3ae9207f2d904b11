"""The attention kernels for hfclf's batches, whose length varies from batch to batch.

hfclf pads each batch to its own longest text (length-grouped in training, length-sorted in evaluation, prediction and
embedding), so one run meets many sequence lengths. For bf16/fp16 on Hopper GPUs, torch prefers cuDNN's attention,
which builds an execution plan for every new shape: on an H200, 60 batches of 60 lengths took 5.2 s to score and
12.8 s to train in bf16 the first time, against 0.54 s and 0.88 s without cuDNN's attention, and the same once every
length had been seen (benchmarks/gpu_attention_shapes.py, docs/PERFORMANCE.md). So hfclf computes without it.
"""

import contextlib

import torch


@contextlib.contextmanager
def varying_length_attention():
    """Inside: scaled-dot-product attention uses any backend but cuDNN's (flash, memory-efficient or math, as torch
    picks), whose per-shape plans cost more than they save on batches of varying length. The setting is restored on
    exit; on a CPU it changes nothing."""
    enabled = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(False)
    try:
        yield
    finally:
        torch.backends.cuda.enable_cudnn_sdp(enabled)
