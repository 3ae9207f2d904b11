"""The Hub model card (README.md) of an exported hfclf model, built from the run's `results.json` and config.

The card is deterministic (no dates, no paths of the machine that trained it) so that the same run always
exports the same folder. Its YAML front matter follows the Hub conventions: `library_name`, `pipeline_tag`,
`tags`, `datasets`, `metrics` and a `model-index` with the evaluation results.
"""

import json
import math
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..architectures import describe_model, hfclf_architecture_of, model_hub_id
from ..data.tasks import MULTI_LABEL, REGRESSION, Task, get_task
from ..run_folder import RunResults, input_format, split_of
from ..tables import markdown_table
from ..training_args import LEARNING_RATE_GROUP_FLAGS, THRESHOLD_CHOICES

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"

# The Hub's metric type of each hfclf metric (the model-index), and the averaging it was computed with.
HUB_METRIC_TYPES = {
    "accuracy": "accuracy",
    "subset_accuracy": "accuracy",
    "f1_macro": "f1",
    "f1_micro": "f1",
    "f1_weighted": "f1",
    "precision_macro": "precision",
    "recall_macro": "recall",
    "mcc": "matthews_correlation",
    "hamming_loss": "hamming_loss",
    "roc_auc_macro": "roc_auc",
    "pearson": "pearsonr",
    "spearman": "spearmanr",
    "mae": "mae",
    "rmse": "rmse",
    "mse": "mse",
    "r2": "r_squared",
}
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
HIDDEN_DEFAULTS = {**LEARNING_RATE_GROUP_FLAGS, "long_text": "truncate"}  # shown only when set
SHOWN_MODEL_ARGUMENTS = ("arch", "pooling", "class_weights", "lora_r", "lora_alpha", "lora_dropout")
SHOWN_DATA_ARGUMENTS = ("dataset", "max_length", "train_fraction", "max_train_samples", "text_columns", "long_text")
LONG_TEXT_READING = {  # how a model trained with --long_text reads a text longer than its length
    "windows": "in overlapping windows (sharing {stride} tokens) whose outputs are averaged",
    "head_tail": "as their first {head_tokens} tokens and their end",
}


def _hub_dataset_id(name: str | None) -> str | None:
    from ..data.loading import DATASETS

    spec = DATASETS.get(name or "")
    return spec.hub_id if spec else None


def encoder_name(lora: dict) -> str:
    """How the card names a LoRA run's encoder: its Hub id, or a local folder's own name (never a local path)."""
    encoder = lora.get("encoder") or ""
    return model_hub_id(encoder) or Path(encoder).name


def _card_data(
    results: RunResults | None, repo_id: str | None, tags: list[str], lora: dict | None, task: Task
) -> ModelCardData:
    """The card's Hub metadata: library, task, tags, base model, dataset, metrics and a model-index entry with the
    task's report metrics on test (validation when the run had no test split)."""
    dataset = results.data_arguments.get("dataset") if results else None
    hub_dataset = _hub_dataset_id(dataset)
    eval_results = []
    if results is not None and _is_number(results.metric(task.main_metric)):
        split = split_of(results.split)
        for key in task.report_metrics:
            if _is_number(results.metric(key)):  # the Hub's model-index takes no NaN (a constant regression output)
                average = key.rpartition("_")[2] if key.startswith(("f1_", "precision_", "recall_")) else None
                eval_results.append(
                    EvalResult(
                        task_type="text-classification",
                        task_name="Text Classification",
                        dataset_type=hub_dataset or dataset or "custom",
                        dataset_name=dataset or "custom data",
                        dataset_split=split,
                        metric_type=HUB_METRIC_TYPES[key],
                        metric_value=round(float(results.metric(key)), 4),
                        metric_name=task.metric_names[key],
                        metric_args={"average": average} if average else None,
                    )
                )
    return ModelCardData(
        library_name="peft" if lora else "transformers",
        pipeline_tag="text-classification",
        tags=["hfclf", "text-classification", *dict.fromkeys(t for t in tags if t), *(["lora"] if lora else [])],
        base_model=model_hub_id(lora.get("encoder") or "") if lora else None,  # a Hub id only, never a local path
        datasets=[hub_dataset] if hub_dataset else None,
        metrics=list(dict.fromkeys(HUB_METRIC_TYPES[key] for key in task.report_metrics)),
        eval_results=eval_results or None,
        model_name=(repo_id or "hfclf-model").split("/")[-1] if eval_results else None,
    )


def _results_table(results: RunResults | None, task: Task) -> str:
    rows = []
    for split, title in (("eval", "validation"), ("test", "test")):
        if results is not None and results.metric(task.main_metric, split) is not None:
            values = [results.metric(key, split) for key in task.metric_names]
            samples = results.metric("samples", split) or ""
            rows.append([title, samples, *(_cell(value) for value in values)])
    if not rows:
        return "No evaluation results were recorded for this model."
    table = markdown_table(["split", "examples", *task.metric_names.values()], rows)
    if results.model_arguments.get("threshold") in THRESHOLD_CHOICES:
        table += "\n\nThe decision thresholds were tuned on the validation split, so its scores are optimistic."
    return table


def _cell(value) -> str:
    """A metric as the table shows it: 4 decimals; n/a where it has no value (a constant prediction's correlation)."""
    if value is None:
        return ""
    return f"{value:.4f}" if _is_number(value) else "n/a"


def _arguments_list(results: RunResults | None) -> list[str]:
    if results is None:
        return []
    lines = []
    for values, names in (
        (results.model_arguments, SHOWN_MODEL_ARGUMENTS),
        (results.data_arguments, SHOWN_DATA_ARGUMENTS),
        (results.training_arguments, SHOWN_TRAINING_ARGUMENTS),
    ):
        if names is SHOWN_MODEL_ARGUMENTS and not values.get("lora"):
            names = [n for n in names if not n.startswith("lora")]
        for name in names:
            if values.get(name) not in (None, False, "") and values.get(name) != HIDDEN_DEFAULTS.get(name):
                lines.append(f"- `{name}`: `{values[name]}`")
    if results.data_sizes:
        lines.append("- data sizes: " + ", ".join(f"{k} {v:,}" for k, v in results.data_sizes.items()))
    if results.train_samples_per_second:
        lines.append(f"- training speed: {results.train_samples_per_second:,.1f} samples/s on {results.hardware}")
    if results.num_parameters:
        trainable = results.num_trainable_parameters
        share = f" ({trainable:,} trained)" if trainable and trainable != results.num_parameters else ""
        lines.append(f"- parameters: {results.num_parameters:,}{share}")
    if results.versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in results.versions.items()))
    return lines


def _usage(
    repo: str | None,
    lora: dict | None,
    task: Task,
    fmt: dict,
    sentence_transformers: bool = False,
    remote_code: bool = True,
) -> list[str]:
    """The card's code snippets, for the Hub repo `repo`, or for the folder itself when it has none; `remote_code`:
    the folder carries its model code (hfclf's architectures), else it is a stock `transformers` model."""
    if lora:
        folder = f'snapshot_download("{repo}")' if repo else '"path/to/this/folder"'
        head = "pooling head and classifier" if remote_code else "classifier"
        return [
            f"This repository holds a LoRA adapter (peft format, including the trained {head}).",
            "With hfclf installed:",
            "",
            "```python",
            "from hfclf.training.lora import load_lora_model",
            *(["from huggingface_hub import snapshot_download"] if repo else []),
            "",
            f"model = load_lora_model({folder})  # PeftModel; .merge_and_unload() for a plain model",
            "```",
            "",
            "`load_lora_model` builds the base classifier that `hfclf_lora.json` describes and puts the adapter on "
            "it; for a model that needs neither hfclf nor peft, export the run merged (`hfclf export RUN OUT "
            "--merge`).",
        ]
    repo = repo or "path/to/this/folder"
    if not remote_code:  # a stock transformers architecture (--arch hf)
        intro, trust, registered = "It is a stock `transformers` model:", "", "With `hfclf` installed, "
    else:
        intro = (
            "The repository carries its own model code, so plain `transformers` loads it (`trust_remote_code=True`):"
        )
        trust = ", trust_remote_code=True"
        registered = (
            "With `hfclf` installed, `import hfclf` registers the classes and `trust_remote_code` is not needed; "
        )
    return [
        intro,
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline",
        "",
        f'model = AutoModelForSequenceClassification.from_pretrained("{repo}"{trust})',
        f'tokenizer = AutoTokenizer.from_pretrained("{repo}"{trust})'
        + ("  # config.json names the code" if trust else ""),
        "",
        f'classify = pipeline("text-classification", model="{repo}"{trust})',
        *_pipeline_call(task, fmt),
        "```",
        "",
        registered + _predict_usage(task, fmt),
        *(_sentence_transformers_usage(repo) if sentence_transformers else []),
    ]


def _predict_usage(task: Task, fmt: dict) -> str:
    """How `hfclf predict` reads a file for this model (`fmt`: its `input_format`): a table of pairs, a table of the
    several text columns it joined in training, or one text per line."""
    if fmt["text_pair_column"]:
        return (
            "`hfclf predict --model DIR --input pairs.csv` reads a table with both texts of each pair, in the columns "
            "the model was trained on."
        )
    verb = "scores" if task.problem_type == REGRESSION else "classifies"
    columns = [column.strip() for column in fmt["text_columns"] or []]
    if len(columns) > 1:
        return (
            f"`hfclf predict --model DIR --input table.csv` {verb} a table with the columns {', '.join(columns)}, "
            f"joined with {json.dumps(fmt['text_separator'])} as in training; give a pipeline each text joined the "
            "same way."
        )
    return f"`hfclf predict --model DIR --input texts.txt` {verb} a file of one text per line."


def _sentence_transformers_usage(repo: str) -> list[str]:
    return [
        "",
        "It is also a sentence-transformers model, whose embeddings are the pooled vectors of `hfclf embed`:",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        f'model = SentenceTransformer("{repo}", trust_remote_code=True)',
        'embeddings = model.encode(["a gripping, beautifully acted film"])',
        "```",
    ]


def _pipeline_call(task: Task, fmt: dict) -> list[str]:
    """The pipeline call of the usage snippet (`fmt`: the model's `input_format`): a pair as `text`/`text_pair`; every
    label's score for multi-label (each an independent sigmoid); the raw value for regression. `truncation=True` cuts
    a text to the training length (the tokenizer's `model_max_length`), as training did unless it read long texts in
    windows or by head and tail, which a pipeline cannot; a pipeline does not truncate unless asked."""
    pairs = '{"text": "A man is playing a guitar.", "text_pair": "A person plays an instrument."}'
    text = pairs if fmt["text_pair_column"] else '"a gripping, beautifully acted film"'
    cut = "# truncation=True: a longer text is cut to the training length, as in training"
    if fmt["long_text"] != "truncate":
        cut = (
            f"# truncation=True: a longer text is cut to the training length, but training read long texts "
            f"{LONG_TEXT_READING[fmt['long_text']].format(**fmt)} (hfclf predict does too)"
        )
    if task.problem_type == MULTI_LABEL:
        return [
            cut,
            f"classify({text}, top_k=None, truncation=True)  # every label's probability; labels above their "
            "threshold apply",
            "# the thresholds tuned in training: model.config.thresholds",
        ]
    if task.problem_type == REGRESSION:
        return [cut, f'classify({text}, function_to_apply="none", truncation=True)  # the predicted value']
    return [cut, f"classify({text}, truncation=True)"]


def _output_section(task: Task, labels: list[str], config: dict) -> str:
    """What the model outputs: its labels (and multi-label thresholds), or the value it predicts."""
    if task.problem_type == REGRESSION:
        scale = ""
        if config.get("target_mean") is not None:
            mean, std = config["target_mean"], config["target_std"]
            scale = f" Trained on standardized targets (mean {mean:.4g}, std {std:.4g}); it returns the original scale."
        return "One value per text (regression)." + scale
    table = markdown_table(["id", "label"], list(enumerate(labels)))
    if task.problem_type != MULTI_LABEL:
        return table
    thresholds = config.get("thresholds")
    if isinstance(thresholds, list):
        rows = [(i, name, threshold) for i, (name, threshold) in enumerate(zip(labels, thresholds))]
        table = markdown_table(["id", "label", "threshold"], rows)
        rule = "at or above its own threshold"
    else:
        rule = f"at or above {thresholds if thresholds is not None else 0.5}"
    return f"Multi-label: each label has its own sigmoid probability; a text gets every label {rule}.\n\n{table}"


def build_model_card(
    config: dict,
    results: RunResults | None = None,
    repo_id: str | None = None,
    lora: dict | None = None,
    sentence_transformers: bool = False,
) -> str:
    """The README.md of an exported model: Hub metadata, results, architecture, labels, arguments, usage, rendered
    from `templates/model_card.md` by `huggingface_hub`'s `ModelCard`.

    `config`: the model's config.json (for a LoRA adapter, the base classifier's); `results`: the run's results;
    `lora`: the encoder and rank of an unmerged adapter; `sentence_transformers`: the folder is also a
    sentence-transformers model (usage shown).
    """
    description, pooling, tags = describe_model(config)
    task = get_task(config.get("problem_type"))
    id2label = config.get("id2label") or {}
    labels = [id2label[key] for key in sorted(id2label, key=int)] or (results.label_names if results else [])
    fmt = input_format(config)
    card = ModelCard.from_template(
        _card_data(results, repo_id, [*tags, task.problem_type.replace("_", "-")], lora, task),
        template_path=str(TEMPLATE),
        title=repo_id.split("/")[-1] if repo_id else "hfclf text classifier",
        dataset=(results.data_arguments.get("dataset") or "custom data")
        if results
        else "data this folder does not record (it has no results.json)",
        lora=lora,
        encoder=encoder_name(lora) if lora else None,
        task=task.description,
        pairs=bool(fmt["text_pair_column"]),
        results_table=_results_table(results, task),
        architecture=description,
        pooling=pooling,
        output=_output_section(task, labels, config),
        training="\n".join(_arguments_list(results)),
        usage="\n".join(
            _usage(
                repo_id,
                lora,
                task,
                fmt,
                sentence_transformers,
                remote_code=hfclf_architecture_of(config.get("model_type", "")) is not None,
            )
        ),
    )
    return str(card)


def _is_number(value) -> bool:
    return value is not None and math.isfinite(value)
