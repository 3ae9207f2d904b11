#!/usr/bin/env python
"""Why bf16 on a GPU was slower than fp32 with length-sorted (dynamic) batches: the cost of a new sequence length.

Times a MiniLM-sized BertModel (random weights, SDPA attention, a padding mask as in real batches) in bf16 autocast
over batches of 60 different lengths, the first pass (each length new to the process) and a second pass (every length
seen), forward only (evaluation) and forward + backward (training), in a fresh process per setting:

    python benchmarks/gpu_attention_shapes.py            # all settings, each in its own process

Settings: `default` (torch's SDPA backend choice), `no_cudnn` (torch.backends.cuda.enable_cudnn_sdp(False)),
`pad8` (lengths rounded up to a multiple of 8), `fp32` (no autocast).
"""

import json
import subprocess
import sys
import time

SETTINGS = ("default", "no_cudnn", "pad8", "fp32")
BATCH = 32
LENGTHS = [8 + (i * 37) % 60 for i in range(60)]  # 60 distinct lengths 8..67, in a scrambled order


def batches(torch, pad8: bool):
    generator = torch.Generator().manual_seed(0)
    for length in LENGTHS:
        if pad8:
            length = -(-length // 8) * 8
        ids = torch.randint(1000, 30000, (BATCH, length), generator=generator)
        mask = torch.ones(BATCH, length, dtype=torch.long)
        mask[BATCH // 2 :, length // 2 :] = 0  # half the rows padded, as in a dynamically padded batch
        yield ids.cuda(), mask.cuda()


def timed_pass(torch, model, setting: str, train: bool) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for ids, mask in batches(torch, setting == "pad8"):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=setting != "fp32"):
            if train:
                model(input_ids=ids, attention_mask=mask).last_hidden_state.float().mean().backward()
            else:
                with torch.no_grad():
                    model(input_ids=ids, attention_mask=mask)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def kernels(torch, model) -> list[str]:
    """The attention kernels one bf16 forward runs (names holding attention, fmha, flash, cudnn or sdpa)."""
    ids, mask = next(batches(torch, False))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            model(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
    words = ("attention", "fmha", "flash", "cudnn", "sdpa", "attn")
    return sorted({e.key[:90] for e in prof.key_averages() if any(w in e.key.lower() for w in words)})


def child(setting: str) -> None:
    import torch
    from transformers import BertConfig, BertModel

    if setting == "no_cudnn":
        torch.backends.cuda.enable_cudnn_sdp(False)
    torch.manual_seed(0)
    config = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    model = BertModel(config, add_pooling_layer=False).cuda()
    warm = torch.randint(1000, 30000, (BATCH, 128)).cuda()
    model(input_ids=warm)  # CUDA context and cuBLAS handles, outside the timing
    result = {"setting": setting}
    for mode, train in (("eval", False), ("train", True)):
        model.train(train)
        result[f"{mode}_first_s"] = round(timed_pass(torch, model, setting, train), 3)
        result[f"{mode}_second_s"] = round(timed_pass(torch, model, setting, train), 3)
    result["attention_kernels"] = kernels(torch, model.eval()) if setting in ("default", "no_cudnn") else []
    print(json.dumps(result), flush=True)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2])
    if sys.argv[1:]:
        print(__doc__)
        return
    import torch

    if not torch.cuda.is_available():
        sys.exit("This benchmark times CUDA kernels: it needs a GPU.")
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, batch {BATCH}, {len(LENGTHS)} lengths 8-67")
    for setting in SETTINGS:
        subprocess.run([sys.executable, __file__, "--child", setting], check=True)


if __name__ == "__main__":
    main()
