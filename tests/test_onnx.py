"""`hfclf export --onnx [--int8]` and `--backend onnx|onnx-int8` in predict, eval and embed: the ONNX graph gives the
torch model's outputs for every model family, its int8 quantization stays close, and bad use is one clear error."""

import json
import shutil

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from tiny_models import tiny_encoder_config, tiny_lstm_config, tiny_pooled_config, tiny_transformer_config
from transformers import AutoModelForSequenceClassification, BertConfig

import hfclf.models  # noqa: F401  (registers hfclf's model types)
from hfclf.commands.cli import main

TEXTS = [
    "a great and moving film",
    "dull , boring plot",
    "the acting was really wonderful and fun , with a story that keeps going and going",
    "bad",
]


def stock_bert_config():
    return BertConfig(**{**tiny_encoder_config("bert").to_dict(), "model_type": "bert"})


FAMILIES = {
    "pooled-attention": lambda: tiny_pooled_config("attention"),
    "pooled-cls_mean-roberta": lambda: tiny_pooled_config("cls_mean", "roberta"),
    "lstm-last": lambda: tiny_lstm_config("last"),
    "transformer-max": lambda: tiny_transformer_config("max"),
    "stock-bert": stock_bert_config,
}


def cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def save_model(folder, config, minilm_tokenizer, **config_fields):
    """A random-init classifier of `config` (3 labels) with the MiniLM tokenizer, saved like a run folder."""
    config.num_labels = config_fields.pop("num_labels", 3)
    for key, value in config_fields.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    minilm_tokenizer.save_pretrained(folder)
    return folder


def predictions(model_dir, source, out, backend, capsys):
    argv = ["predict", "--model", model_dir, "--input", source, "--output", out, "--backend", backend]
    code, _, err = cli(argv, capsys)
    assert code == 0, err
    return pd.read_csv(out)


def error_line(err: str) -> str:
    """The error a failed command printed (stderr also holds progress bars of the set-up)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def probabilities(frame):
    return frame[[c for c in frame.columns if c.startswith("prob_")]].to_numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_backend_gives_the_torch_outputs(family, tmp_path, minilm_tokenizer, capsys):
    run = save_model(tmp_path / "run", FAMILIES[family](), minilm_tokenizer)
    exported = tmp_path / "exported"
    code, _, err = cli(["export", run, exported, "--int8"], capsys)  # --int8 implies --onnx
    assert code == 0, err
    graph = onnx.load(exported / "onnx" / "classifier.onnx")
    assert [o.name for o in graph.graph.output] == ["logits", "sentence_embedding"]

    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS))  # different lengths: padding must not change any result
    torch_rows = predictions(exported, source, tmp_path / "torch.csv", "torch", capsys)
    onnx_rows = predictions(exported, source, tmp_path / "onnx.csv", "onnx", capsys)
    np.testing.assert_allclose(probabilities(onnx_rows), probabilities(torch_rows), atol=1e-5)
    assert list(onnx_rows["label"]) == list(torch_rows["label"])

    vectors = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.npy"
        argv = ["embed", "--model", exported, "--input", source, "--output", out, "--backend", backend]
        code, _, err = cli(argv, capsys)
        assert code == 0, err
        vectors[backend] = np.load(out)
    np.testing.assert_allclose(vectors["onnx"], vectors["torch"], atol=1e-5)

    # int8: weights are quantized (integer matmuls), outputs stay close to the float model's
    quantized = onnx.load(exported / "onnx" / "classifier_int8.onnx")
    assert {"MatMulInteger", "DynamicQuantizeLinear"} & {node.op_type for node in quantized.graph.node}
    int8_rows = predictions(exported, source, tmp_path / "int8.csv", "onnx-int8", capsys)
    np.testing.assert_allclose(probabilities(int8_rows), probabilities(torch_rows), atol=0.05)


def test_onnx_eval_matches_torch_eval_and_regression_scale(tmp_path, minilm_tokenizer, toy_data, capsys):
    run = save_model(tmp_path / "run", tiny_pooled_config("mean"), minilm_tokenizer, num_labels=2)
    config = json.loads((run / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "neg", "1": "pos"}, {"neg": 0, "pos": 1}
    (run / "config.json").write_text(json.dumps(config))
    exported = tmp_path / "exported"
    assert cli(["export", run, exported, "--onnx"], capsys)[0] == 0
    assert not (exported / "onnx" / "classifier_int8.onnx").exists()
    metrics = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.json"
        argv = ["eval", "--model", exported, "--test-file", toy_data["test"], "--output", out, "--backend", backend]
        code, _, err = cli(argv, capsys)
        assert code == 0, err
        metrics[backend] = json.loads(out.read_text())
    assert metrics["onnx"]["test_accuracy"] == metrics["torch"]["test_accuracy"]
    assert metrics["onnx"]["test_loss"] == pytest.approx(metrics["torch"]["test_loss"], abs=1e-5)

    # a regression model trained on standardized targets: values (and the loss) on the targets' scale
    regression = save_model(
        tmp_path / "regression",
        tiny_transformer_config("mean"),
        minilm_tokenizer,
        num_labels=1,
        problem_type="regression",
        target_mean=5.0,
        target_std=2.0,
    )
    assert cli(["export", regression, tmp_path / "regression-onnx", "--onnx"], capsys)[0] == 0
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS))
    torch_rows = predictions(tmp_path / "regression-onnx", source, tmp_path / "r-torch.csv", "torch", capsys)
    onnx_rows = predictions(tmp_path / "regression-onnx", source, tmp_path / "r-onnx.csv", "onnx", capsys)
    np.testing.assert_allclose(onnx_rows["value"], torch_rows["value"], atol=1e-5)
    assert torch_rows["value"].between(1, 9).all()  # around the targets' mean, not around 0


def test_onnx_backend_bad_use_is_one_clear_error(tmp_path, minilm_tokenizer, capsys):
    run = save_model(tmp_path / "run", tiny_lstm_config("mean"), minilm_tokenizer)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS))
    out = tmp_path / "out.csv"
    code, _, err = cli(["predict", "--model", run, "--input", source, "--output", out, "--backend", "onnx"], capsys)
    assert code == 2 and "hfclf export" in error_line(err) and "--onnx" in error_line(err)
    assert not out.exists()

    exported = tmp_path / "exported"
    assert cli(["export", run, exported, "--onnx"], capsys)[0] == 0
    code, _, err = cli(["predict", "--model", exported, "--input", source, "--backend", "onnx-int8"], capsys)
    assert code == 2 and "--int8" in error_line(err)

    # a graph beside other weights (another model's copied over the exported ones) is refused, not run for them
    other = save_model(tmp_path / "other", tiny_lstm_config("mean"), minilm_tokenizer, initializer_range=0.5)
    swapped = tmp_path / "swapped"
    shutil.copytree(exported, swapped)
    shutil.copy(other / "model.safetensors", swapped / "model.safetensors")
    code, _, err = cli(["predict", "--model", swapped, "--input", source, "--backend", "onnx"], capsys)
    assert code == 2 and error_line(err).startswith(f"error: {swapped / 'onnx' / 'classifier.onnx'} was exported from")
    (exported / "onnx" / "classifier.onnx").write_bytes(b"not a graph")
    argv = ["predict", "--model", exported, "--input", source, "--output", out, "--backend", "onnx"]
    code, _, err = cli(argv, capsys)
    assert code == 2 and "classifier.onnx" in error_line(err)
    assert not out.exists()
    code, _, err = cli(["predict", "--model", exported, "--input", source, "--backend", "tensorrt"], capsys)
    assert code == 2 and "--backend" in error_line(err)


def test_onnx_sentence_pairs_and_long_text_windows(tmp_path, minilm_tokenizer, capsys):
    """A pair model gets its segment ids through the graph; a windows model is scored from the mean of its windows'
    logits, the same with both backends."""
    pairs = save_model(
        tmp_path / "pairs",
        tiny_pooled_config("mean"),
        minilm_tokenizer,
        input_format={"text_columns": ["premise"], "text_pair_column": "hypothesis", "long_text": "truncate"},
    )
    windows = save_model(
        tmp_path / "windows",
        tiny_transformer_config("mean"),
        minilm_tokenizer,
        input_format={"text_columns": ["text"], "long_text": "windows", "stride": 4},
    )
    settings = json.loads((windows / "tokenizer_config.json").read_text())
    settings["model_max_length"] = 16  # the training length: longer texts are cut into 16-token windows
    (windows / "tokenizer_config.json").write_text(json.dumps(settings))
    long_texts = [" ".join([t] * 3) for t in TEXTS]
    assert max(len(ids) for ids in minilm_tokenizer(long_texts)["input_ids"]) > 2 * 16  # several windows each
    table = pd.DataFrame({"premise": TEXTS, "hypothesis": list(reversed(TEXTS)), "text": long_texts})
    source = tmp_path / "in.csv"
    table.to_csv(source, index=False)
    for run in (pairs, windows):
        exported = tmp_path / f"{run.name}-exported"
        assert cli(["export", run, exported, "--onnx"], capsys)[0] == 0
        graph_inputs = [i.name for i in onnx.load(exported / "onnx" / "classifier.onnx").graph.input]
        assert "token_type_ids" in graph_inputs  # the BERT tokenizer's segment ids reach the encoder
        rows = {
            backend: predictions(exported, source, tmp_path / f"{run.name}-{backend}.csv", backend, capsys)
            for backend in ("torch", "onnx")
        }
        np.testing.assert_allclose(probabilities(rows["onnx"]), probabilities(rows["torch"]), atol=1e-5)
        assert len(rows["onnx"]) == len(TEXTS)  # one row per document, windows or not
