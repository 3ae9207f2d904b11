"""LoRA (peft): target modules per encoder family, a LoRA run, reloading the adapter, merging, bad input."""

import json
import logging
import os

import numpy as np
import pandas as pd
import pytest
from tiny_models import tiny_pooled_config
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfclf import PooledEncoderForSequenceClassification
from hfclf.commands.cli import main as cli_main
from hfclf.commands.finetune import main as train
from hfclf.errors import HfclfInputError
from hfclf.inference.predict import classify
from hfclf.training.lora import apply_lora, default_target_modules, load_base_model, load_lora_model

QUICK = ["--num_train_epochs", "2", "--per_device_train_batch_size", "16", "--max_length", "32", "--seed", "11"]
QUICK += ["--bf16", "false"]  # fp32: the runs' metrics are checked against plain fp32 forwards
LORA = ["--lora", "--lora_r", "4", "--lora_alpha", "8", "--merge_lora", "--learning_rate", "1e-2"]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_encoder_dir, toy_data):
    """(run dir, stdout and log) of a LoRA run with attention pooling and --merge_lora on the toy data."""
    out = tmp_path_factory.mktemp("lora") / "run"
    files = [w for split, path in toy_data.items() for w in (f"--{split}_file", str(path))]
    argv = ["--model", str(tiny_encoder_dir), "--pooling", "attention", "--output_dir", str(out), *files, *QUICK, *LORA]
    with pytest.MonkeyPatch.context() as mp, _capture() as captured:
        mp.setenv("HF_HUB_OFFLINE", "1")
        assert train(argv) == 0
    return out, captured.getvalue()


class _capture:
    """Capture stdout and hfclf's log inside a module-scoped fixture (capsys and caplog are function-scoped)."""

    def __enter__(self):
        import contextlib
        import io
        import logging

        self.buffer = io.StringIO()
        self._redirect = contextlib.redirect_stdout(self.buffer)
        self._redirect.__enter__()
        self._log, logger = logging.StreamHandler(self.buffer), logging.getLogger("hfclf")
        self._level = logger.level
        logger.addHandler(self._log)
        logger.setLevel(logging.INFO)
        return self.buffer

    def __exit__(self, *exc):
        import logging

        logger = logging.getLogger("hfclf")
        logger.removeHandler(self._log)
        logger.setLevel(self._level)
        return self._redirect.__exit__(*exc)


def validation_accuracy(model, folder, toy_data) -> float:
    df = pd.read_csv(toy_data["validation"])
    label2id = {name: int(i) for i, name in model.config.id2label.items()}
    labels = df["sentiment"].map(label2id).to_numpy()
    logits, _ = classify(model.eval(), AutoTokenizer.from_pretrained(folder), df["review"].tolist(), batch_size=8)
    return float((logits.argmax(-1) == labels).mean())


def test_default_target_modules_per_family():
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    assert default_target_modules(BertConfig()) == ["query", "value"]
    assert default_target_modules(RobertaConfig()) == ["query", "value"]
    assert default_target_modules(DistilBertConfig()) == ["q_lin", "v_lin"]

    class Unknown:
        model_type = "no-such-encoder"

    with pytest.raises(HfclfInputError, match="--lora-target-modules"):
        default_target_modules(Unknown())


@pytest.mark.parametrize("model_type, target", [("distilbert", "q_lin"), ("roberta", "query")])
def test_apply_lora_trains_adapters_and_head_only(model_type, target, capsys):
    from hfclf.training_args import ModelArguments

    model = PooledEncoderForSequenceClassification(tiny_pooled_config("attention", model_type, num_labels=3))
    peft_model = apply_lora(model, ModelArguments(lora=True, lora_r=2), "pooled")
    trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
    assert any(f"{target}.lora_A" in name for name in trainable)
    assert any("classifier.modules_to_save" in name for name in trainable)
    assert any("attention_pooling.modules_to_save" in name for name in trainable)
    assert not any("word_embeddings" in name or name.endswith(f"{target}.base_layer.weight") for name in trainable)
    assert "trainable parameters of" in capsys.readouterr().out

    with pytest.raises(HfclfInputError, match="not found"):
        apply_lora(
            PooledEncoderForSequenceClassification(tiny_pooled_config()),
            ModelArguments(lora_target_modules="nope"),
            "pooled",
        )


@pytest.mark.parametrize("family", ["bert", "distilbert", "deberta-v2"])
def test_stock_classifier_heads_are_fully_trained(family):
    """--arch hf: the layers between encoder and classifier train with it; BERT's pretrained pooler stays frozen."""
    from transformers import AutoConfig

    from hfclf.training_args import ModelArguments

    sizes = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 37}
    if family == "distilbert":
        sizes = {"dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 37}
    config = AutoConfig.for_model(family, vocab_size=99, num_labels=2, **sizes)
    model = AutoModelForSequenceClassification.from_config(config)
    trainable = [
        n for n, p in apply_lora(model, ModelArguments(lora=True, lora_r=2), "hf").named_parameters() if p.requires_grad
    ]
    head = {"bert": "classifier", "distilbert": "pre_classifier", "deberta-v2": "pooler"}[family]
    assert any(f"{head}.modules_to_save" in name for name in trainable), trainable
    assert not any("bert.pooler" in name for name in trainable)


def test_lora_bad_flags_exit_2(tiny_encoder_dir, toy_data, tmp_path, capsys):
    files = ["--train_file", str(toy_data["train"]), "--output_dir", str(tmp_path / "x")]
    assert train(["--arch", "lstm", "--lora", "--model", str(tiny_encoder_dir), *files]) == 2
    assert "--arch pooled or hf" in capsys.readouterr().err
    assert train(["--merge_lora", "--model", str(tiny_encoder_dir), *files]) == 2
    assert "--merge-lora needs --lora" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_finished_lora_run_names_a_model_that_trains_further(lora_run, toy_data, tmp_path, capsys):
    """The refusal of a rerun advises `--model RUN`; of a LoRA run that is its merged model (the run folder holds an
    adapter, which --model cannot build from), and the advice works."""
    run_dir = lora_run[0]
    files = [w for split, path in toy_data.items() for w in (f"--{split}_file", str(path))]
    assert train(["--output_dir", str(run_dir), *files, *QUICK]) == 2
    assert f"--model {run_dir / 'merged'} --output-dir NEW_FOLDER" in capsys.readouterr().err
    further = ["--model", str(run_dir / "merged"), "--output_dir", str(tmp_path / "further"), *files, *QUICK]
    assert train([*further, "--max_steps", "1"]) == 0, capsys.readouterr().err


def test_lora_records_the_encoder_by_name(tmp_path, monkeypatch):
    """The embedded MiniLM is recorded as `minilm` (not this machine's path) and cards name its Hub id."""
    from types import SimpleNamespace

    from test_hub import card_metadata

    from hfclf.inference.model_card import build_model_card
    from hfclf.training.lora import base_model_spec
    from hfclf.training_args import ModelArguments

    config = SimpleNamespace(
        num_labels=2,
        id2label={0: "neg", 1: "pos"},
        pooling="mean",
        classifier_dropout=0.1,
        attention_hidden_size=8,
        class_weights=None,
        pad_token_id=0,
    )
    spec = base_model_spec(ModelArguments(model="minilm", pooling="mean", lora=True), SimpleNamespace(config=config))
    assert spec["encoder"] == "minilm"
    (tmp_path / "hfclf_lora.json").write_text(json.dumps(spec))
    base = load_base_model(tmp_path)  # resolves the alias to the installed package
    assert base.config.encoder_config.hidden_size == 384 and base.config.pooling == "mean"
    card = build_model_card(base.config.to_dict(), None, lora={"encoder": "minilm", "r": 4, "alpha": 8})
    assert card_metadata(card)["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "adapters on `sentence-transformers/all-MiniLM-L6-v2`" in card
    assert "base_model" not in card.split("---")[-1]  # the text's snippets use no name they do not define
    assert "including the trained pooling head and classifier" in card
    assert "`load_lora_model` builds the base classifier that `hfclf_lora.json` describes" in card
    stock = build_model_card({"model_type": "bert", "architectures": ["BertModel"]}, None, lora={"encoder": "minilm"})
    assert "A stock `bert` encoder with transformers' sequence-classification head." in stock  # --arch hf's base
    assert "including the trained classifier" in stock


def test_a_stock_classifier_with_an_adapter_loads_without_a_missing_weights_report(
    tiny_encoder_dir, toy_data, tmp_path
):
    """The base's fresh head is no news when the adapter brings the trained one (transformers reports it as missing)."""
    files = [w for split, path in toy_data.items() for w in (f"--{split}_file", str(path))]
    argv = ["--model", str(tiny_encoder_dir), "--arch", "hf", "--output_dir", str(tmp_path / "run"), *files, *QUICK]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        assert train([*argv, "--num_train_epochs", "1", *LORA[:-3]]) == 0
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("transformers").addHandler(handler)  # transformers' own handler does not propagate
    try:
        model = load_lora_model(tmp_path / "run")
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert type(model.base_model.model).__name__ == "BertForSequenceClassification"
    assert not [r.getMessage() for r in records if "LOAD REPORT" in r.getMessage()]


def test_lora_run_outputs(lora_run):
    run_dir, stdout = lora_run
    names = {p.name for p in run_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "hfclf_lora.json", "tokenizer.json"} <= names
    assert {"results.json", "predictions.csv", "merged"} <= names and "model.safetensors" not in names
    assert "README.md" not in names  # not peft's stub card: `hfclf export` writes the card
    assert f"Wrote the merged model to {run_dir / 'merged'}\n" in stdout  # where it is, not its temporary name
    assert "trainable parameters of" in stdout and "%" in stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert results["arguments"]["model"]["lora"] and results["arguments"]["model"]["lora_r"] == 4
    assert results["num_trainable_parameters"] < results["num_parameters"] / 10
    assert results["eval"]["eval_loss"] > 0 and results["best_checkpoint"]  # label_names: eval loss, best model
    adapter = json.loads((run_dir / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and set(adapter["modules_to_save"]) == {"classifier", "attention_pooling"}
    adapter_size = (run_dir / "adapter_model.safetensors").stat().st_size
    umask = os.umask(0)
    os.umask(umask)
    assert (run_dir / "merged" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file
    assert adapter_size < (run_dir / "merged" / "model.safetensors").stat().st_size / 10


def test_lora_and_merged_models_reproduce_eval_accuracy(lora_run, toy_data, tmp_path, capsys):
    from peft import PeftModel

    run_dir = lora_run[0]
    expected = json.loads((run_dir / "results.json").read_text())["eval"]["eval_accuracy"]

    # the adapter on its base, in peft's format
    peft_model = PeftModel.from_pretrained(load_base_model(run_dir), str(run_dir))
    assert validation_accuracy(peft_model, run_dir, toy_data) == pytest.approx(expected)
    assert validation_accuracy(load_lora_model(run_dir), run_dir, toy_data) == pytest.approx(expected)

    # the merged model of --merge_lora and of `hfclf export --merge`: plain models, no peft
    export = tmp_path / "export"
    assert cli_main(["export", str(run_dir), str(export), "--merge"]) == 0
    assert not (export / "adapter_config.json").exists() and (export / "model.safetensors").is_file()
    for folder in (run_dir / "merged", export):
        merged = AutoModelForSequenceClassification.from_pretrained(folder)
        assert type(merged).__name__ == "PooledEncoderForSequenceClassification"
        assert validation_accuracy(merged, folder, toy_data) == pytest.approx(expected)

    # and the same through `hfclf eval` on the LoRA run folder itself
    out = tmp_path / "m.json"
    args = ["eval", "--model", str(run_dir), "--test-file", str(toy_data["validation"]), "--output", str(out)]
    assert cli_main(args) == 0
    assert json.loads(out.read_text())["test_accuracy"] == pytest.approx(expected)
    capsys.readouterr()


def test_merged_export_loads_without_peft_or_hfclf(lora_run, tmp_path):
    from test_hub import downstream_predictions

    run_dir = lora_run[0]
    export = tmp_path / "export"
    assert cli_main(["export", str(run_dir), str(export), "--merge"]) == 0
    result = downstream_predictions(export, tmp_path)
    model = load_lora_model(run_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    import torch

    with torch.no_grad():
        texts = ["a great and moving film", "dull , boring plot"]
        expected = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1).numpy()
    np.testing.assert_allclose(result["probs"], expected, atol=1e-5)


def test_lora_export_without_merge_is_the_adapter(lora_run, tmp_path, caplog):
    from test_hub import card_metadata

    run_dir = lora_run[0]
    export = tmp_path / "adapter"
    with caplog.at_level("WARNING", logger="hfclf"):
        assert cli_main(["export", str(run_dir), str(export)]) == 0
    assert "The adapter goes on the local model" in caplog.text and "Pass --merge" in caplog.text
    assert {p.name for p in export.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    assert (export / "adapter_model.safetensors").read_bytes() == (run_dir / "adapter_model.safetensors").read_bytes()
    card = (export / "README.md").read_text()
    meta = card_metadata(card)
    assert meta["library_name"] == "peft" and "lora" in meta["tags"]
    # the base is a local folder here: neither the Hub metadata nor the text carry this machine's path
    assert "base_model" not in meta and str(run_dir.parent) not in card
    # the exported adapter reloads like the run folder, also through the card's own snippet (no repo id: the folder)
    assert load_lora_model(export).peft_config["default"].r == 4
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0].replace("path/to/this/folder", str(export))
    namespace = {}
    exec(snippet, namespace)
    assert namespace["model"].peft_config["default"].r == 4


def test_an_adapter_on_a_local_model_is_pushed_merged_only(lora_run, monkeypatch):
    """Hub users cannot load an adapter whose base is a folder on this machine: refused before any Hub call."""
    import hfclf.inference.hub

    def no_hub(*args, **kwargs):
        raise AssertionError("the Hub was called")

    monkeypatch.setattr(hfclf.inference.hub, "HfApi", no_hub)
    with pytest.raises(HfclfInputError, match=r"goes on the local model .*; pass --merge to push a model that stands"):
        hfclf.inference.hub.push(lora_run[0], "user/adapter")
