"""Use a trained model: `predict` (labels and class probabilities), `evaluate` (metrics on labelled data) and
`embed` (pooled sentence vectors), for the `hfclf predict/eval/embed` commands.

All three tokenize once, sort the texts by token length, run padded batches under `torch.no_grad()` (on the GPU when
there is one) and return results in the input order.
"""

import json
import logging
import re
import sys
from pathlib import Path

import numpy as np

from .architectures import hfclf_architecture_of
from .errors import HfclfInputError
from .files import atomic_output, check_not_input, check_writable
from .run_folder import load_run, metric_prefix

logger = logging.getLogger("hfclf")

TEXT_FILE_SUFFIXES = (".txt", ".text")
TABLE_OUTPUT_SUFFIXES = (".csv", ".tsv", ".jsonl")
EMBED_OUTPUT_SUFFIXES = (".npy", ".parquet")
# A sentence ends at . ! or ? (optionally followed by closing quotes or brackets) before whitespace, or at a line break.
SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'\u201d\u2019)\]])\s+|\s*\n\s*")


# ------------------------------------------------------------------------------------------------------- loading


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise HfclfInputError(f"Unknown --device '{name}'; pass auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HfclfInputError("--device cuda was asked for but no CUDA GPU is available; pass --device cpu.")
    return device


def load_classifier(model_dir, device="cpu"):
    """(classifier in eval mode on `device`, tokenizer) from a run/exported folder, or a LoRA run (merged)."""
    run = load_run(model_dir)
    return run.classifier().to(device), run.tokenizer()


def load_encoder(model_dir, device="cpu"):
    """(base model, tokenizer, uses_own_pooling) for embeddings.

    hfclf models return their pooling head's sentence vector as `pooler_output`; any other model is mean-pooled.
    """
    run = load_run(model_dir)
    model = run.encoder()
    own_pooling = hfclf_architecture_of(model.config.model_type) is not None
    if own_pooling:
        logger.info("Embedding with the model's own %s pooling head", getattr(model.config, "pooling", ""))
    else:
        logger.info("%s has no hfclf pooling head; embedding with mean pooling of its token vectors", model_dir)
    return model.to(device), run.tokenizer(), own_pooling


def default_max_length(model, tokenizer, requested: int | None = None) -> int:
    """Tokens per text: --max-length if given, else the length the model was trained with (its tokenizer's
    `model_max_length`, at most 512); capped by the model's positions."""
    limits = [requested or 512]
    if requested is None and 0 < (tokenizer.model_max_length or 0) < 1_000_000:
        limits.append(tokenizer.model_max_length)
    config = model.config
    for cfg in (config, getattr(config, "encoder_config", None)):
        positions = getattr(cfg, "max_position_embeddings", None)
        if positions:
            # RoBERTa-style encoders reserve padding_idx + 1 positions
            offset = (getattr(cfg, "pad_token_id", 0) or 0) + 1 if getattr(cfg, "model_type", "") == "roberta" else 0
            limits.append(positions - offset)
    return max(1, min(limits))


# --------------------------------------------------------------------------------------------------------- input


def read_texts(path: str, text_column: str | None = None, allow_empty: bool = False) -> list[str]:
    """Texts from a csv/tsv/json/jsonl/parquet file (text column auto-detected), a .txt file or `-` (stdin), one
    text per line. Empty texts (blank lines included) are an error that names their line numbers, unless
    `allow_empty`."""
    is_lines = path == "-" or path.lower().removesuffix(".gz").endswith(TEXT_FILE_SUFFIXES)
    if is_lines and text_column:
        raise HfclfInputError(
            f"--text-column applies to tables (csv, tsv, json, jsonl, parquet); {path} has one text per line. "
            "Drop --text-column."
        )
    if path == "-":
        texts, where = [line.rstrip("\r\n") for line in sys.stdin], "line"
    elif is_lines:
        texts, where = _read_lines(Path(path)), "line"
    else:
        texts, where = _read_table_texts(Path(path), text_column), "row"
    empty = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if empty and not allow_empty:
        listed = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        kind = "data row" if where == "row" else "line"
        raise HfclfInputError(f"{len(empty)} empty text(s) in {path} at {kind} {listed}; remove or fill them.")
    if not texts:
        raise HfclfInputError(f"{path} holds no texts; pass a file with one text per line or a text column.")
    return texts


def _read_lines(path: Path) -> list[str]:
    import gzip

    if path.is_dir():
        raise HfclfInputError(f"Input {path} is a folder; pass a file (csv, tsv, jsonl, txt) or - for stdin.")
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except FileNotFoundError:
        raise HfclfInputError(f"Input file {path} does not exist; check the path.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise HfclfInputError(
            f"Could not read {path} ({type(err).__name__}); pass a readable UTF-8 text file."
        ) from None
    while lines and not lines[-1].strip():  # a trailing blank line is not an (empty) text
        lines.pop()
    return lines


def _read_table_texts(path: Path, text_column: str | None) -> list[str]:
    from .data import TEXT_COLUMN_CANDIDATES, _find_column, _read_table

    if path.is_dir():
        raise HfclfInputError(f"Input {path} is a folder; pass a file (csv, tsv, jsonl, txt) or - for stdin.")
    try:
        df = _read_table(path, f"input file {path}", keep_blank_lines=True)
    except PermissionError:
        raise HfclfInputError(
            f"Input file {path} is not readable (permission denied); check its permissions."
        ) from None
    column = text_column or _find_column(df, TEXT_COLUMN_CANDIDATES)
    if column is None or column not in df.columns:
        what = f"Column '{text_column}' not found" if text_column else "No text column found"
        raise HfclfInputError(
            f"{what} in {path} (columns: {', '.join(map(str, df.columns))}); pass --text-column with one of those."
        )
    texts = df[column].fillna("").astype(str).tolist()
    while texts and not texts[-1].strip() and df.iloc[len(texts) - 1].isna().all():  # blank lines at the end
        texts.pop()
    return texts


def check_output_file(output_path, inputs, model_dir) -> None:
    """Before any work: the output file can be written and is none of the inputs (data or model files)."""
    if output_path in (None, "-"):
        return
    check_writable(output_path, "--output file")
    model_dir = Path(model_dir)
    model_files = list(model_dir.iterdir()) if model_dir.is_dir() else []
    check_not_input(output_path, [*inputs, *model_files])


def split_sentences(text: str) -> list[str]:
    """Sentences of a document: split after . ! ? (and closing quotes/brackets) before whitespace, and at line
    breaks. A simple rule, not a linguistic parser: abbreviations like 'e.g. this' split too."""
    return [part.strip() for part in SENTENCE_BOUNDARY.split(text) if part and part.strip()]


# ---------------------------------------------------------------------------------------------------------- batches


def length_sorted_batches(tokenizer, texts: list[str], max_length: int, batch_size: int, desc: str):
    """Yield `(positions, padded batch)` in order of decreasing token length (little padding), with a progress bar."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise HfclfInputError(f"--batch-size must be positive, got {batch_size}; pass e.g. --batch-size 64.")
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    keys = [key for key in encoded.keys() if key in ("input_ids", "attention_mask", "token_type_ids")]
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    with tqdm(total=len(texts), desc=desc, unit="text", file=sys.stderr, disable=None) as bar:
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            features = [{key: encoded[key][i] for key in keys} for i in positions]
            yield positions, tokenizer.pad(features, return_tensors="pt")
            bar.update(len(positions))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of each row of logits (numerically stable)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)


def classify(model, tokenizer, texts, batch_size=64, max_length=None, device="cpu", labels=None):
    """Logits (in input order) of `texts`; with `labels`, also the mean loss as the model computes it."""
    import torch

    max_length = default_max_length(model, tokenizer, max_length)
    logits = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    loss_sum = 0.0
    with torch.no_grad():
        for positions, batch in length_sorted_batches(tokenizer, texts, max_length, batch_size, "Predicting"):
            batch = {key: value.to(device) for key, value in batch.items()}
            if labels is not None:
                batch["labels"] = torch.as_tensor(np.asarray(labels)[positions], device=device)
            output = model(**batch)
            logits[positions] = output.logits.float().cpu().numpy()
            if labels is not None:
                loss_sum += float(output.loss) * len(positions)
    return logits, (loss_sum / len(texts) if labels is not None else None)


# ---------------------------------------------------------------------------------------------------------- predict


def predict(
    model_dir, input_path, output_path=None, text_column=None, top_k=0, batch_size=64, max_length=None, device="auto"
) -> list[dict]:
    """Predict `input_path`'s texts; write rows (text, label, score, prob_<label>..., top-k) to `output_path`."""
    if output_path not in (None, "-") and not str(output_path).lower().endswith(TABLE_OUTPUT_SUFFIXES):
        raise HfclfInputError(
            f"Unsupported --output '{output_path}'; use a .csv, .tsv or .jsonl file (or - for stdout)."
        )
    check_output_file(output_path, [input_path], model_dir)
    texts = read_texts(input_path, text_column)
    device = resolve_device(device)
    model, tokenizer = load_classifier(model_dir, device)
    id2label = model.config.id2label
    names = [str(id2label[i]) for i in range(model.config.num_labels)]
    if top_k < 0 or top_k > len(names):
        raise HfclfInputError(f"--top-k must be between 1 and the number of labels ({len(names)}), got {top_k}.")
    logits, _ = classify(model, tokenizer, texts, batch_size, max_length, device)
    probabilities = softmax(logits)
    best = probabilities.argmax(axis=-1)
    ranked = np.argsort(-probabilities, axis=-1, kind="stable")
    rows = []
    for i, text in enumerate(texts):
        row = {"text": text, "label": names[best[i]], "score": round(float(probabilities[i, best[i]]), 6)}
        row.update({f"prob_{name}": round(float(p), 6) for name, p in zip(names, probabilities[i])})
        for rank in range(top_k):
            label = ranked[i, rank]
            row[f"top{rank + 1}_label"] = names[label]
            row[f"top{rank + 1}_score"] = round(float(probabilities[i, label]), 6)
        rows.append(row)
    write_rows(rows, output_path)
    return rows


def write_rows(rows: list[dict], output_path) -> None:
    """csv/tsv by extension, else JSON lines (also on stdout for None or `-`)."""
    import pandas as pd

    if output_path in (None, "-"):
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    path = Path(output_path)
    df = pd.DataFrame(rows)
    suffix = path.suffix.lower()
    with atomic_output(path) as temporary:
        if suffix == ".jsonl":
            df.to_json(temporary, orient="records", lines=True, force_ascii=False)
        else:
            df.to_csv(temporary, index=False, sep="\t" if suffix == ".tsv" else ",")
    logger.info("Wrote %d predictions to %s", len(rows), path)


# ------------------------------------------------------------------------------------------------------------- eval


def label_mapping(data_names: list[str], model_id2label: dict) -> np.ndarray:
    """Model class id for each of the data's class ids, matched by label name (or by id for numeric labels)."""
    by_name = {str(name): int(i) for i, name in model_id2label.items()}
    if all(name in by_name for name in data_names):
        return np.array([by_name[name] for name in data_names])
    if all(name.isdigit() and int(name) < len(by_name) for name in data_names):
        logger.warning("The data's labels are class ids (%s); using them as the model's ids.", ", ".join(data_names))
        return np.array([int(name) for name in data_names])
    unknown = [name for name in data_names if name not in by_name]
    raise HfclfInputError(
        f"The data has labels the model does not know: {', '.join(unknown[:10])} (model labels: "
        f"{', '.join(by_name)}). Evaluate on data with the model's labels."
    )


def evaluate_model(model_dir, data_args, split="test", batch_size=64, device="auto", max_length=None) -> dict:
    """Metrics of a trained model on a split of labelled data: the same set as training (loss, accuracy,
    macro precision/recall/F1, weighted F1, MCC, samples), keyed like results.json (`test_accuracy`, `eval_...`)."""
    from dataclasses import replace

    from .data import load_raw_datasets
    from .metrics import build_compute_metrics

    raw = load_raw_datasets(replace(data_args, validation_fraction=0.0), need_train=False)
    if split == "validation" and "validation" not in raw and "train" in raw:
        # The run's validation was carved out of train with its own seed and fraction; a different carve would
        # score examples the model trained on.
        results = load_run(model_dir).results
        if results is None:
            raise HfclfInputError(
                f"The data has no validation split of its own, and {model_dir} has no results of its run with the "
                "seed that carved it out of train; evaluate on --split test."
            )
        carve = replace(data_args, validation_fraction=results.data_arguments["validation_fraction"])
        raw = load_raw_datasets(carve, seed=results.seed, need_train=False)
    if split not in raw:
        raise HfclfInputError(
            f"The data has no {split} split (it has: {', '.join(raw)}); pass --split with one of those."
        )
    dataset = raw[split]
    device = resolve_device(device)
    model, tokenizer = load_classifier(model_dir, device)
    mapping = label_mapping(dataset.features["label"].names, model.config.id2label)
    labels = mapping[np.asarray(dataset["label"])]
    logits, loss = classify(model, tokenizer, list(dataset["text"]), batch_size, max_length, device, labels)
    scores = build_compute_metrics()((logits, labels))
    prefix = metric_prefix(split)
    return {f"{prefix}_loss": loss, **{f"{prefix}_{key}": value for key, value in scores.items()}}


def format_metrics(metrics: dict) -> str:
    width = max(len(key) for key in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    for key, value in metrics.items():
        lines.append(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------ embed


def embed(
    model_dir,
    input_path,
    output_path,
    text_column=None,
    split=False,
    batch_size=64,
    max_length=None,
    normalize=False,
    device="auto",
) -> np.ndarray:
    """Pooled sentence vectors of `input_path`'s texts (or of each sentence, with `split`), written to .npy or
    .parquet. Returns the float32 matrix."""
    import torch

    suffix = Path(output_path).suffix.lower()
    if suffix not in EMBED_OUTPUT_SUFFIXES:
        raise HfclfInputError(f"Unsupported --output '{output_path}'; use a .npy or .parquet file.")
    check_output_file(output_path, [input_path], model_dir)
    if split and suffix == ".npy":
        check_output_file(_index_path(Path(output_path)), [input_path], model_dir)
    documents = read_texts(input_path, text_column)
    if split:
        units = [(d, s, sentence) for d, doc in enumerate(documents) for s, sentence in enumerate(split_sentences(doc))]
    else:
        units = [(d, None, doc) for d, doc in enumerate(documents)]
    texts = [text for _, _, text in units]
    device = resolve_device(device)
    model, tokenizer, own_pooling = load_encoder(model_dir, device)
    max_length = default_max_length(model, tokenizer, max_length)
    truncated = sum(n > max_length for n in (len(ids) for ids in tokenizer(texts)["input_ids"]))
    if truncated:
        logger.warning("%d of %d texts are longer than %d tokens and were truncated", truncated, len(texts), max_length)
    vectors = None
    with torch.no_grad():
        for positions, batch in length_sorted_batches(tokenizer, texts, max_length, batch_size, "Embedding"):
            batch = {key: value.to(device) for key, value in batch.items()}
            output = model(**batch)
            if own_pooling:
                pooled = output.pooler_output
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(output.last_hidden_state.dtype)
                pooled = (output.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = pooled.float().cpu().numpy()
            if vectors is None:
                vectors = np.zeros((len(texts), pooled.shape[-1]), dtype=np.float32)
            vectors[positions] = pooled
    if normalize:
        vectors /= np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    _write_embeddings(Path(output_path), vectors, units, split)
    return vectors


def _write_embeddings(path: Path, vectors: np.ndarray, units, split: bool) -> None:
    import pandas as pd

    index = pd.DataFrame({"doc_id": [d for d, _, _ in units]})
    if split:
        index["sentence_id"] = [s for _, s, _ in units]
    index["text"] = [t for _, _, t in units]
    if path.suffix.lower() == ".npy":
        if split:  # which document and sentence each row of the matrix belongs to
            with atomic_output(_index_path(path)) as temporary:
                index.to_csv(temporary, index=False)
        with atomic_output(path) as temporary, open(temporary, "wb") as f:
            np.save(f, vectors)
    else:
        index["embedding"] = list(vectors)
        with atomic_output(path) as temporary:
            index.to_parquet(temporary, index=False)
    logger.info("Wrote %d x %d embeddings to %s", *vectors.shape, path)


def _index_path(path: Path) -> Path:
    """The csv beside an .npy of sentence vectors that says which document and sentence each row is."""
    return path.with_suffix(".index.csv")
