"""ClassifierTrainer's learning-rate groups: a separate head rate and layer-wise decay of the encoder's rate."""

import json
import subprocess
import sys

import pytest
import torch
from tiny_models import tiny_encoder_config, tiny_pooled_config
from transformers import AutoModelForSequenceClassification

from hfclf import PooledEncoderForSequenceClassification
from hfclf.inference.model_card import build_model_card
from hfclf.run_folder import RunResults
from hfclf.training.trainer import ClassifierTrainer, parameter_learning_rates
from hfclf.training_args import ClassifierTrainingArguments

LR, HEAD_LR, DECAY = 1e-4, 1e-3, 0.5


def expected_rate(local_name: str, num_layers: int = 2) -> float:
    """Rate of an encoder parameter, by its name inside the encoder (2 layers: layer 1 = top)."""
    if "embed" in local_name:
        return LR * DECAY**num_layers
    for i in range(num_layers):
        if f"layer.{i}." in local_name:
            return LR * DECAY ** (num_layers - 1 - i)
    return LR  # outside the layers (a pooler)


@pytest.mark.parametrize("pooling", ["cls", "attention"])
def test_pooled_encoder_rates(pooling):
    model = PooledEncoderForSequenceClassification(tiny_pooled_config(pooling, num_labels=2))
    rates = parameter_learning_rates(model, LR, HEAD_LR, DECAY)
    assert set(rates) == {name for name, _ in model.named_parameters()}
    head = {name for name in rates if not name.startswith("model.encoder.")}
    assert "classifier.weight" in head
    assert any("attention_pooling" in name for name in head) == (pooling == "attention")
    for name, rate in rates.items():
        want = HEAD_LR if name in head else expected_rate(name[len("model.encoder.") :])
        assert rate == pytest.approx(want), name
    assert rates["model.encoder.embeddings.word_embeddings.weight"] == pytest.approx(LR / 4)
    assert rates["model.encoder.encoder.layer.1.output.dense.weight"] == pytest.approx(LR)


@pytest.mark.parametrize("model_type, encoder_prefix", [("bert", "bert."), ("distilbert", "distilbert.")])
def test_stock_head_rates(model_type, encoder_prefix):
    config = tiny_encoder_config(model_type)
    config.num_labels = 2
    model = AutoModelForSequenceClassification.from_config(config)
    rates = parameter_learning_rates(model, LR, HEAD_LR, DECAY)
    for name, rate in rates.items():
        want = HEAD_LR if not name.startswith(encoder_prefix) else expected_rate(name[len(encoder_prefix) :])
        assert rate == pytest.approx(want), name
    assert rates["classifier.weight"] == HEAD_LR
    if model_type == "bert":  # BERT's pretrained pooler sits above the top layer
        assert rates["bert.pooler.dense.weight"] == LR
    else:  # DistilBERT's pre_classifier is new
        assert rates["pre_classifier.weight"] == HEAD_LR


def test_defaults_change_nothing():
    model = PooledEncoderForSequenceClassification(tiny_pooled_config("mean", num_labels=2))
    assert set(parameter_learning_rates(model, LR).values()) == {LR}


def test_optimizer_groups_and_schedule(tmp_path):
    torch.manual_seed(0)
    model = PooledEncoderForSequenceClassification(tiny_pooled_config("cls", num_labels=2))
    args = ClassifierTrainingArguments(
        output_dir=str(tmp_path),
        learning_rate=LR,
        head_learning_rate=HEAD_LR,
        layerwise_lr_decay=DECAY,
        warmup_steps=0,
        weight_decay=0.01,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    trainer = ClassifierTrainer(model=model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    groups = trainer.optimizer.param_groups
    rates = parameter_learning_rates(model, LR, HEAD_LR, DECAY)
    by_id = {id(p): name for name, p in model.named_parameters()}
    assert sum(len(g["params"]) for g in groups) == len(rates)  # every parameter, once
    for group in groups:
        for p in group["params"]:
            name = by_id[id(p)]
            assert group["lr"] == pytest.approx(rates[name]), name
            no_decay = name.endswith("bias") or "LayerNorm" in name
            assert group["weight_decay"] == (0.0 if no_decay else 0.01), name
    assert groups[0]["lr"] == LR  # the rate Trainer logs is --learning-rate's
    # The linear schedule scales every group from its own peak.
    for _ in range(5):
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    for group in groups:
        assert group["lr"] == pytest.approx(group["initial_lr"] * 5 / 10)


def test_finetune_trains_with_the_groups(tmp_path, tiny_encoder_dir, toy_data, capsys):
    """A real run: with a steep decay the embeddings stay put while the top layer and the head train."""
    from test_finetune import QUICK, data_flags, read_results, run
    from transformers import BertModel

    out = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, "--output_dir", out, *data_flags(toy_data), *QUICK]
    argv += ["--pooling", "cls", "--learning_rate", "1e-3", "--head_learning_rate", "1e-2"]
    argv += ["--layerwise_lr_decay", "1e-4", "--warmup_steps", "0"]
    code, _, stderr = run(argv, capsys)
    assert code == 0, stderr[-2000:]
    before = BertModel.from_pretrained(tiny_encoder_dir).state_dict()
    after = PooledEncoderForSequenceClassification.from_pretrained(out).model.encoder.state_dict()

    def moved(name):
        return (after[name] - before[name]).abs().max().item()

    assert moved("embeddings.word_embeddings.weight") < 1e-6  # 1e-3 * 1e-4^2 per step
    assert moved("encoder.layer.1.output.dense.weight") > 1e-4
    results = read_results(out)
    assert results["arguments"]["training"]["head_learning_rate"] == 1e-2
    card = build_model_card(json.loads((out / "config.json").read_text()), RunResults.load(out))
    assert "- `head_learning_rate`: `0.01`" in card and "- `layerwise_lr_decay`: `0.0001`" in card
    first_logged = next(entry["learning_rate"] for entry in results["log_history"] if "learning_rate" in entry)
    assert first_logged <= 1e-3  # the logged rate is the encoder's, not the head's


def test_gpt2_embeddings_and_layers():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(vocab_size=100, n_positions=32, n_embd=16, n_layer=2, n_head=2, num_labels=2, pad_token_id=0)
    rates = parameter_learning_rates(GPT2ForSequenceClassification(config), LR, HEAD_LR, DECAY)
    assert rates["transformer.wte.weight"] == rates["transformer.wpe.weight"] == pytest.approx(LR * DECAY**2)
    assert rates["transformer.h.0.mlp.c_fc.weight"] == pytest.approx(LR * DECAY)
    assert rates["transformer.h.1.mlp.c_fc.weight"] == rates["transformer.ln_f.weight"] == LR
    assert rates["score.weight"] == HEAD_LR


def test_encoder_decoder_refuses_layer_decay():
    from transformers import BartConfig, BartForSequenceClassification

    from hfclf.errors import HfclfInputError

    config = BartConfig(
        vocab_size=100, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
    )  # fmt: skip
    model = BartForSequenceClassification(config)
    with pytest.raises(HfclfInputError, match="encoder-decoder"):
        parameter_learning_rates(model, LR, layer_decay=DECAY)
    assert set(parameter_learning_rates(model, LR, HEAD_LR).values()) == {LR, HEAD_LR}  # a head rate alone is fine


def make_trainer(tmp_path, **flags) -> ClassifierTrainer:
    torch.manual_seed(0)
    model = PooledEncoderForSequenceClassification(tiny_pooled_config("cls", num_labels=2))
    args = ClassifierTrainingArguments(
        output_dir=str(tmp_path), eval_strategy="no", save_strategy="no", load_best_model_at_end=False, **flags
    )
    return ClassifierTrainer(model=model, args=args)


def test_default_flags_keep_trainers_two_groups(tmp_path):
    """Without the flags the optimizer is exactly `Trainer`'s (decay / no decay), so older checkpoints resume."""
    trainer = make_trainer(tmp_path, learning_rate=LR, weight_decay=0.01)
    trainer.create_optimizer()
    assert [(g["lr"], g["weight_decay"]) for g in trainer.optimizer.param_groups] == [(LR, 0.01), (LR, 0.0)]


def test_optimizer_with_its_own_groups_is_refused(tmp_path, monkeypatch):
    from transformers import Trainer

    from hfclf.errors import HfclfInputError

    trainer = make_trainer(tmp_path, learning_rate=LR, layerwise_lr_decay=DECAY)
    # as GaLore, APOLLO and LOMO do: they hand `Trainer` their own parameter list
    own_groups = staticmethod(lambda args, model=None: (torch.optim.AdamW, {"params": [], "lr": LR}))
    monkeypatch.setattr(Trainer, "get_optimizer_cls_and_kwargs", own_groups)
    with pytest.raises(HfclfInputError, match="builds its own parameter groups"):
        trainer.create_optimizer()


def test_resume_with_other_rates_is_refused(tmp_path, tiny_encoder_dir, toy_data, capsys):
    from test_finetune import QUICK, data_flags, run

    out = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, "--output_dir", out, *data_flags(toy_data), *QUICK]
    assert run([*argv, "--layerwise_lr_decay", "0.5"], capsys)[0] == 0
    (out / "results.json").unlink()  # an unfinished run: a finished one is never resumed
    files = sorted(str(path) for path in out.rglob("*"))
    resume = [*argv, "--resume_from_checkpoint", "auto", "--num_train_epochs", "3"]
    code, _, stderr = run([*resume, "--layerwise_lr_decay", "0.9"], capsys)
    assert code == 2
    assert "was trained with --layerwise-lr-decay 0.5 but this run asks for 0.9" in stderr.splitlines()[-1]
    assert sorted(str(path) for path in out.rglob("*")) == files  # nothing written


def test_resume_in_another_precision_is_refused(tmp_path, tiny_encoder_dir, toy_data, capsys):
    """The default precision depends on the CPU: a checkpoint resumed elsewhere must not switch it silently."""
    from test_finetune import QUICK, data_flags, run

    out = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, "--output_dir", out, *data_flags(toy_data), *QUICK]
    assert run([*argv, "--bf16", "false"], capsys)[0] == 0
    (out / "results.json").unlink()  # an unfinished run: a finished one is never resumed
    files = sorted(str(path) for path in out.rglob("*"))
    code, _, stderr = run([*argv, "--resume_from_checkpoint", "auto", "--num_train_epochs", "3", "--bf16"], capsys)
    assert code == 2
    assert "was trained in fp32 but this run would train in bf16; pass --bf16 false" in stderr.splitlines()[-1]
    assert sorted(str(path) for path in out.rglob("*")) == files  # nothing written


def test_evaluation_runs_sorted_by_length_and_answers_in_dataset_order(tmp_path):
    """Batches of similar length, longest first, and every output (predictions, labels, what metrics see) back in
    dataset order: the same as scoring each row alone."""
    import numpy as np
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import DataCollatorWithPadding, PreTrainedTokenizerFast

    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 30, 40)
    rows = [{"input_ids": [1, *rng.integers(5, 90, n - 2).tolist(), 2], "labels": int(n > 15)} for n in lengths]
    dataset = Dataset.from_list(rows)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[PAD]": 0}, "[PAD]")),
                                        pad_token="[PAD]")  # fmt: skip
    trainer = make_trainer(tmp_path, per_device_eval_batch_size=8)
    trainer.data_collator = DataCollatorWithPadding(tokenizer)
    seen = {}
    trainer.compute_metrics = lambda p: seen.update(labels=p.label_ids.copy(), logits=p.predictions.copy()) or {}
    batches = []
    trainer.model.register_forward_pre_hook(lambda module, args, kwargs: batches.append(kwargs["input_ids"].shape[1]),
                                            with_kwargs=True)  # fmt: skip
    output = trainer.predict(dataset)
    assert batches == sorted(batches, reverse=True) and batches[0] == lengths.max()  # longest first
    trainer.model.eval()
    with torch.no_grad():
        alone = [trainer.model(input_ids=torch.tensor([row["input_ids"]])).logits.numpy() for row in rows]
    alone = np.concatenate(alone)
    np.testing.assert_allclose(output.predictions, alone, atol=1e-5)
    assert output.label_ids.tolist() == [row["labels"] for row in rows]
    np.testing.assert_allclose(seen["logits"], alone, atol=1e-5)
    assert seen["labels"].tolist() == [row["labels"] for row in rows]


@pytest.mark.parametrize("flags", [{"batch_eval_metrics": True}, {"eval_do_concat_batches": False}])
def test_evaluation_keeps_dataset_order_where_outputs_could_not_be_restored(tmp_path, flags):
    from datasets import Dataset
    from torch.utils.data import SequentialSampler

    dataset = Dataset.from_list([{"input_ids": [1] * n, "labels": 0} for n in (3, 9, 5)])
    trainer = make_trainer(tmp_path, **flags)
    assert isinstance(trainer._get_eval_sampler(dataset), SequentialSampler)
    assert list(make_trainer(tmp_path / "sorted")._get_eval_sampler(dataset)) == [1, 2, 0]


def test_peak_memory_is_measured_per_run():
    import numpy as np

    from hfclf.inference.cost import keep_freed_memory, peak_memory, reset_peak_memory

    keep_freed_memory()  # as an earlier training in this process left it: freed memory is kept, not unmapped
    reset_peak_memory()
    before, kind = peak_memory()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    during, _ = peak_memory()
    del block
    reset_peak_memory()
    after, _ = peak_memory()
    assert kind == "process peak RSS" and during >= before + 60 and after < during - 60


CHILD_MAPPED = """
import ctypes, sys, torch, hfclf.inference.cost as cost

class MallInfo2(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"  # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in names.split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if "--keep" in sys.argv:
    cost.keep_freed_memory()
before = libc.mallinfo2().hblkhd
block = torch.empty(64 * 2**20, dtype=torch.uint8)  # larger than glibc's largest mapping threshold (32 MiB)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator settings: Linux only")
def test_training_keeps_large_freed_blocks_for_the_next_step():
    """glibc serves a 64 MiB block from a fresh mapping (given back when freed, faulted in again on the next step);
    after keep_freed_memory() it comes from the heap, which keeps it."""

    def mapped(*flags):
        run = subprocess.run([sys.executable, "-c", CHILD_MAPPED, *flags], capture_output=True, text=True, check=True)
        return int(run.stdout)

    assert mapped() >= 64 * 2**20
    assert mapped("--keep") == 0


def test_training_compute_against_the_matmul_peak(monkeypatch):
    import hfclf.inference.cost as cost

    peak = cost.matmul_peak("cpu", "fp32")
    assert peak > 1e9  # any CPU of this decade does more than 1 GFLOP/s in a large fp32 matmul
    assert cost.matmul_peak("cpu", "fp32") == peak  # measured once per process

    monkeypatch.setattr(cost, "matmul_peak", lambda device, precision: {"fp32": 100e9, "bf16": 400e9}[precision])
    metrics = {"total_flos": 6e12, "train_runtime": 120.0}
    compute = cost.training_compute(metrics, "bf16", torch.device("cpu"), processes=2, resumed=False)
    assert compute["model_flops_per_second"] == 50e9
    assert compute["matmul_peak_flops_per_second"] == {"fp32": 200e9, "bf16": 800e9}
    assert compute["fraction_of_peak"] == 50e9 / 800e9
    assert cost.training_compute(metrics, "fp32", "cpu", processes=1, resumed=True) == {}


@pytest.mark.parametrize("seconds_at_2048, measured_size", [(53, 256), (0.23, 2048)])
def test_the_matmul_peak_of_an_emulated_precision_takes_a_second_not_minutes(
    monkeypatch, seconds_at_2048, measured_size
):
    """A CPU without native bf16 emulates it: a 2048 bf16 matmul took 53 s on an AVX2 core, and the peak was measured
    on two of them at the end of every bf16 run. The peak is now measured on the largest size the device keeps up
    with, and a device that computes 2048 in fp32 in 0.23 s (the same core) is still measured at 2048."""
    import time

    import hfclf.inference.cost as cost

    sizes = []

    def timed_like_the_device(a, b):  # the time grows with the cube of the size
        sizes.append(a.shape[0])
        time.sleep(seconds_at_2048 * (a.shape[0] / 2048) ** 3)

    monkeypatch.setattr(torch, "matmul", timed_like_the_device)
    start = time.perf_counter()
    peak = cost.matmul_peak.__wrapped__("cpu", "bf16")  # not the cached value of another test
    assert time.perf_counter() - start < 4 * cost.MATMUL_SECONDS
    assert peak == pytest.approx(2 * 2048**3 / seconds_at_2048, rel=0.5)
    assert max(sizes) == measured_size
