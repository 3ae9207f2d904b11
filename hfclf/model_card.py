"""The Hub model card (README.md) of an exported hfclf model, built from the run's `results.json` and config.

The card is deterministic (no dates, no paths of the machine that trained it) so that the same run always
exports the same folder. Its YAML front matter follows the Hub conventions: `library_name`, `pipeline_tag`,
`tags`, `datasets`, `metrics` and a `model-index` with the evaluation results.
"""

from pathlib import Path

import yaml

from .architectures import model_hub_id
from .training_args import LEARNING_RATE_GROUP_FLAGS

# Metrics shown in the results table, in order, with their display names and Hub metric types.
TABLE_METRICS = (
    ("accuracy", "Accuracy", "accuracy"),
    ("f1_macro", "Macro F1", "f1"),
    ("precision_macro", "Macro precision", "precision"),
    ("recall_macro", "Macro recall", "recall"),
    ("f1_weighted", "Weighted F1", "f1"),
    ("mcc", "MCC", "matthews_correlation"),
)
# Training arguments worth showing (the full list is in results.json of the run).
SHOWN_TRAINING_ARGUMENTS = (
    "learning_rate",
    "head_learning_rate",
    "layerwise_lr_decay",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "warmup_steps",
    "weight_decay",
    "lr_scheduler_type",
    "optim",
    "seed",
    "bf16",
    "fp16",
    "metric_for_best_model",
)
HIDDEN_DEFAULTS = LEARNING_RATE_GROUP_FLAGS  # shown only when set
SHOWN_MODEL_ARGUMENTS = ("arch", "pooling", "class_weights", "lora_r", "lora_alpha", "lora_dropout")
SHOWN_DATA_ARGUMENTS = ("dataset", "max_length", "train_fraction", "max_train_samples", "text_columns")


def _hub_dataset_id(name: str | None) -> str | None:
    from .data import DATASETS

    spec = DATASETS.get(name or "")
    return spec.hub_id if spec else None


def _describe_architecture(config: dict) -> tuple[str, str | None, list[str]]:
    """(one-paragraph description, pooling, tags) of a model from its config.json."""
    model_type = config.get("model_type", "")
    pooling = config.get("pooling")
    if model_type == "hfclf_pooled_encoder":
        encoder = config.get("encoder_config") or {}
        size = f"{encoder.get('num_hidden_layers', '?')} layers, hidden size {encoder.get('hidden_size', '?')}"
        text = (
            f"A pretrained `{encoder.get('model_type', '?')}` encoder ({size}) with hfclf's **{pooling}** pooling "
            "head: the token vectors are pooled into one sentence vector (padding never reaches it), followed by "
            "dropout and a linear classifier."
        )
        return text, pooling, [encoder.get("model_type", "encoder"), f"{pooling}-pooling"]
    if model_type == "hfclf_lstm":
        direction = "bidirectional" if config.get("bidirectional", True) else "unidirectional"
        text = (
            f"A {direction}, {config.get('num_layers', '?')}-layer LSTM (hidden size {config.get('hidden_size', '?')}) "
            f"that never reads padding, with **{pooling}** pooling and a linear classifier."
        )
        return text, pooling, ["lstm", f"{pooling}-pooling"]
    if model_type == "hfclf_tiny_transformer":
        text = (
            f"A Transformer encoder trained from scratch ({config.get('num_hidden_layers', '?')} layers, width "
            f"{config.get('d_model', '?')}, sinusoidal positions) with **{pooling}** pooling and a linear classifier."
        )
        return text, pooling, ["transformer", f"{pooling}-pooling"]
    architectures = ", ".join(config.get("architectures") or [model_type])
    return f"A stock `{architectures}` (`{model_type}`) classifier.", None, [model_type]


def _split_metrics(results: dict) -> tuple[str, dict]:
    """The split to report in model-index (test if it was scored, else validation) and its metrics, unprefixed."""
    for split, prefix in (("test", "test_"), ("eval", "eval_")):
        metrics = results.get(split) or {}
        values = {key[len(prefix) :]: value for key, value in metrics.items() if key.startswith(prefix)}
        if "accuracy" in values:
            return ("test" if split == "test" else "validation"), values
    return "", {}


def encoder_name(lora: dict) -> str:
    """How the card names a LoRA run's encoder: its Hub id, or a local folder's own name (never a local path)."""
    encoder = lora.get("encoder") or ""
    return model_hub_id(encoder) or Path(encoder).name


def _front_matter(results: dict, repo_id: str | None, tags: list[str], lora: dict | None) -> dict:
    data_args = ((results.get("arguments") or {}).get("data")) or {}
    dataset = data_args.get("dataset")
    hub_dataset = _hub_dataset_id(dataset)
    meta = {"library_name": "peft" if lora else "transformers", "pipeline_tag": "text-classification"}
    meta["tags"] = ["hfclf", "text-classification", *dict.fromkeys(t for t in tags if t)]
    if lora:
        meta["tags"].append("lora")
        base_model = model_hub_id(lora.get("encoder") or "")
        if base_model:  # a Hub id only: a local folder means nothing on the Hub
            meta["base_model"] = base_model
    if hub_dataset:
        meta["datasets"] = [hub_dataset]
    meta["metrics"] = ["accuracy", "f1"]
    split, values = _split_metrics(results)
    if values:
        metrics = []
        for key, name, hub_type in TABLE_METRICS[:2]:
            if key in values:
                entry = {"type": hub_type, "value": round(float(values[key]), 4), "name": name}
                if hub_type == "f1":
                    entry["args"] = {"average": "macro"}
                metrics.append(entry)
        meta["model-index"] = [
            {
                "name": (repo_id or "hfclf-model").split("/")[-1],
                "results": [
                    {
                        "task": {"type": "text-classification", "name": "Text Classification"},
                        "dataset": {
                            "name": dataset or "custom data",
                            "type": hub_dataset or dataset or "custom",
                            "split": split,
                        },
                        "metrics": metrics,
                    }
                ],
            }
        ]
    return meta


def _results_table(results: dict) -> list[str]:
    rows = []
    for split, prefix, title in (("eval", "eval_", "validation"), ("test", "test_", "test")):
        metrics = results.get(split) or {}
        if f"{prefix}accuracy" in metrics:
            cells = [f"{metrics[prefix + key]:.4f}" if prefix + key in metrics else "" for key, _, _ in TABLE_METRICS]
            samples = metrics.get(f"{prefix}samples", "")
            rows.append(f"| {title} | {samples} | " + " | ".join(cells) + " |")
    if not rows:
        return ["No evaluation results were recorded for this model."]
    header = "| split | examples | " + " | ".join(name for _, name, _ in TABLE_METRICS) + " |"
    return [header, "|" + "---|" * (len(TABLE_METRICS) + 2), *rows]


def _arguments_list(results: dict) -> list[str]:
    arguments = results.get("arguments") or {}
    lines = []
    for group, names in (
        ("model", SHOWN_MODEL_ARGUMENTS),
        ("data", SHOWN_DATA_ARGUMENTS),
        ("training", SHOWN_TRAINING_ARGUMENTS),
    ):
        values = arguments.get(group) or {}
        if group == "model" and not values.get("lora"):
            names = [n for n in names if not n.startswith("lora")]
        for name in names:
            if values.get(name) not in (None, False, "") and values.get(name) != HIDDEN_DEFAULTS.get(name):
                lines.append(f"- `{name}`: `{values[name]}`")
    extra = []
    if results.get("data_sizes"):
        extra.append("- data sizes: " + ", ".join(f"{k} {v:,}" for k, v in results["data_sizes"].items()))
    if results.get("train_samples_per_second"):
        extra.append(f"- training speed: {results['train_samples_per_second']:,.1f} samples/s on {results['hardware']}")
    if results.get("num_parameters"):
        trainable = results.get("num_trainable_parameters")
        share = f" ({trainable:,} trained)" if trainable and trainable != results["num_parameters"] else ""
        extra.append(f"- parameters: {results['num_parameters']:,}{share}")
    if results.get("versions"):
        extra.append("- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()))
    return lines + extra


def _usage(repo: str, lora: dict | None) -> list[str]:
    if lora:
        return [
            "This repository holds a LoRA adapter (peft format, including the trained pooling head and classifier).",
            "With hfclf installed:",
            "",
            "```python",
            "from hfclf.lora import load_lora_model",
            "from huggingface_hub import snapshot_download",
            "",
            f'model = load_lora_model(snapshot_download("{repo}"))  # PeftModel; .merge_and_unload() for a plain model',
            "```",
            "",
            "or with peft alone, on the base classifier that `hfclf_lora.json` describes:",
            "",
            "```python",
            "from peft import PeftModel",
            "",
            f'model = PeftModel.from_pretrained(base_model, "{repo}")',
            "```",
        ]
    return [
        "The repository carries its own model code, so plain `transformers` loads it (`trust_remote_code=True`):",
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline",
        "",
        f'model = AutoModelForSequenceClassification.from_pretrained("{repo}", trust_remote_code=True)',
        f'tokenizer = AutoTokenizer.from_pretrained("{repo}")',
        "",
        f'classify = pipeline("text-classification", model="{repo}", trust_remote_code=True)',
        'classify("a gripping, beautifully acted film")',
        "```",
        "",
        "With `hfclf` installed, `import hfclf` registers the classes and `trust_remote_code` is not needed; "
        "`hfclf predict --model DIR --input texts.txt` classifies a file.",
    ]


def build_model_card(
    config: dict, results: dict | None = None, repo_id: str | None = None, lora: dict | None = None
) -> str:
    """The README.md of an exported model: YAML front matter, results, architecture, labels, arguments, usage.

    `config`: the model's config.json (for a LoRA adapter, pass the base classifier's); `results`: the run's
    results.json; `lora`: the run's `hfclf_lora.json` when the export is an unmerged adapter.
    """
    results = results or {}
    description, pooling, tags = _describe_architecture(config)
    meta = _front_matter(results, repo_id, tags, lora)
    repo = repo_id or "path/to/this/folder"
    id2label = config.get("id2label") or {}
    labels = [id2label[key] for key in sorted(id2label, key=int)] or results.get("label_names") or []
    dataset = ((results.get("arguments") or {}).get("data") or {}).get("dataset") or "custom data"

    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines += [f"# {repo_id.split('/')[-1] if repo_id else 'hfclf text classifier'}", ""]
    lines += [f"A text classifier fine-tuned on {dataset} with hfclf (`transformers.Trainer`, PyTorch).", ""]
    if lora:
        lines += [
            f"Trained with LoRA (peft): rank {lora.get('r', '?')} adapters on `{encoder_name(lora)}`; "
            "this is the adapter, not a full model.",
            "",
        ]
    lines += ["## Results", "", *_results_table(results), ""]
    lines += ["## Architecture", "", description, ""]
    if pooling:
        lines += [f"Pooling: `{pooling}`.", ""]
    lines += ["## Labels", ""]
    lines += ["| id | label |", "|---|---|", *(f"| {i} | {name} |" for i, name in enumerate(labels)), ""]
    arguments = _arguments_list(results)
    if arguments:
        lines += ["## Training", "", *arguments, ""]
    lines += ["## Usage", "", *_usage(repo, lora), ""]
    return "\n".join(lines)
