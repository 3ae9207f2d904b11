"""Use a trained model: `predict` (labels and class probabilities), `evaluate` (metrics on labelled data) and
`embed` (pooled sentence vectors), for the `hfclf predict/eval/embed` commands.

All three tokenize once, sort the texts by token length, run padded batches under `torch.no_grad()` (on the GPU when
there is one) and return results in the input order.
"""

import csv
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np

from ..architectures import hfclf_architecture_of
from ..data.scoring import aggregate_windows, decisions, multi_hot_rows, per_label_rows, prediction_rows
from ..data.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL
from ..errors import HfclfInputError
from ..files import atomic_output, check_not_input, check_writable
from ..run_folder import default_max_length, input_format, load_run, metric_prefix
from .onnx_backend import OnnxClassifier

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


def load_classifier(model_dir, device="cpu", backend="torch"):
    """(classifier in eval mode on `device`, tokenizer) from a run/exported folder, or a LoRA run (merged); with
    `backend` onnx or onnx-int8, the exported ONNX graph run by ONNX Runtime in its place."""
    run = load_run(model_dir)
    tokenizer = run.tokenizer()  # first: a folder without one is refused before the model loads
    if backend != "torch":
        return OnnxClassifier.from_run(run, backend, device), tokenizer
    return run.classifier().to(device), tokenizer


def load_encoder(model_dir, device="cpu", backend="torch"):
    """(model, tokenizer, gives_pooled_vector) for embeddings: with `gives_pooled_vector`, the output's
    `pooler_output` is the sentence vector, else the caller mean-pools `last_hidden_state`.

    hfclf models return their pooling head's sentence vector as `pooler_output`; any other model is mean-pooled (an
    ONNX graph has that mean built in).
    """
    run = load_run(model_dir)
    tokenizer = run.tokenizer()
    model = run.encoder() if backend == "torch" else OnnxClassifier.from_run(run, backend, device)
    own_pooling = hfclf_architecture_of(model.config.model_type) is not None
    if own_pooling:
        logger.info("Embedding with the model's own %s pooling head", getattr(model.config, "pooling", ""))
    else:
        logger.info("%s has no hfclf pooling head; embedding with mean pooling of its token vectors", model_dir)
    return model.to(device), tokenizer, own_pooling or backend != "torch"


# --------------------------------------------------------------------------------------------------------- input


def read_texts(
    path: str,
    text_column: str | None = None,
    allow_empty: bool = False,
    pair_column: str | None = None,
    model_format: dict | None = None,
) -> list[str] | tuple[list[str], list[str]]:
    """Texts from a csv/tsv/json/jsonl/parquet file, a .txt file or `-` (stdin), one text per line. A table's text
    is `text_column` (comma-separated columns are joined), else the text columns of `model_format` (a model's
    `input_format`: the columns it was trained on), else a guessed column. Empty texts (blank lines included) are an
    error that names their line numbers, unless `allow_empty`. With `pair_column`, `(texts, second texts)` from a
    table."""
    is_lines = path == "-" or path.lower().removesuffix(".gz").endswith(TEXT_FILE_SUFFIXES)
    if is_lines and (text_column or pair_column):
        raise HfclfInputError(
            f"{'--text-column' if text_column else 'A sentence-pair model'} needs a table (csv, tsv, json, jsonl, "
            f"parquet); {path} has one text per line. "
            + ("Drop --text-column." if text_column else "Pass a table with both texts of each pair.")
        )
    if path == "-":
        lines = [line.rstrip("\r\n") for line in sys.stdin]
        if lines:  # a byte order mark is no part of the first text (as utf-8-sig reads a file)
            lines[0] = lines[0].removeprefix("\ufeff")
        columns, where = [_without_blank_end(lines)], "line"
    elif is_lines:
        columns, where = [_read_lines(Path(path))], "line"
    else:
        columns, where = _read_table_texts(Path(path), text_column, pair_column, model_format), "row"
    blanks = [sum(not text.strip() for text in row) for row in zip(*columns)]  # a pair's two texts are one row
    empty = [i + 1 for i, count in enumerate(blanks) if count]
    if empty and not allow_empty:
        listed = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        kind = "data row" if where == "row" else "line"
        raise HfclfInputError(f"{sum(blanks)} empty text(s) in {path} at {kind} {listed}; remove or fill them.")
    if not columns[0]:
        raise HfclfInputError(f"{path} holds no texts; pass a file with one text per line or a text column.")
    return (columns[0], columns[1]) if pair_column else columns[0]


def _read_lines(path: Path) -> list[str]:
    import gzip

    if path.is_dir():
        raise HfclfInputError(f"Input {path} is a folder; pass a file (csv, tsv, jsonl, txt) or - for stdin.")
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8-sig") as f:  # -sig: a byte order mark is no part of the first text
            lines = [line.rstrip("\r\n") for line in f]
    except FileNotFoundError:
        raise HfclfInputError(f"Input file {path} does not exist; check the path.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise HfclfInputError(
            f"Could not read {path} ({type(err).__name__}); pass a readable UTF-8 text file."
        ) from None
    return _without_blank_end(lines)


def _without_blank_end(lines: list[str]) -> list[str]:
    """`lines` without the blank lines at their end, which are no (empty) texts; a line of spaces is one."""
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _read_table_texts(
    path: Path, text_column: str | None, pair_column: str | None = None, model_format: dict | None = None
) -> list[list[str]]:
    """The texts of a table (and the pair column), blank rows kept in place as empty texts; several text columns
    joined as training joined them."""
    from ..data.loading import headerless_hint, join_text_columns

    df = _read_input_table(path)
    model_format = model_format or input_format({})
    names = _text_columns_of(df, path, text_column, model_format)
    if pair_column and pair_column not in df.columns:
        raise HfclfInputError(
            f"Column '{pair_column}' not found in {path} (columns: {', '.join(map(str, df.columns))}); pass "
            "--text-pair-column with one of those." + headerless_hint(df)
        )
    # Blank lines at the end of a csv/tsv are no rows; a row of empty cells ("" or ",") is an empty text.
    end = len(df) - min(_trailing_blank_lines(path), len(df))
    if not df.iloc[end:].isna().all().all():
        end = len(df)
    df = df.iloc[:end]
    texts = join_text_columns(df, names, model_format["text_separator"]).tolist()
    return [texts, *([df[pair_column].fillna("").astype(str).tolist()] if pair_column else [])]


def _read_input_table(path: Path):
    """The rows of an input table, blank rows kept; a folder, another kind of file or an unreadable one refused."""
    from ..data.loading import SUPPORTED_FILE_TYPES, _read_table, table_type

    if path.is_dir():
        raise HfclfInputError(f"Input {path} is a folder; pass a file (csv, tsv, jsonl, txt) or - for stdin.")
    if table_type(path) not in SUPPORTED_FILE_TYPES:
        tables = ", ".join("." + name for name in SUPPORTED_FILE_TYPES)
        raise HfclfInputError(
            f"Unsupported input file '{path.name}'; pass a table ({tables}), a {' or '.join(TEXT_FILE_SUFFIXES)} file "
            "with one text per line (each optionally .gz), or - for stdin."
        )
    try:
        return _read_table(path, f"input file {path}", keep_blank_lines=True)
    except PermissionError:
        raise HfclfInputError(
            f"Input file {path} is not readable (permission denied); check its permissions."
        ) from None


def _text_columns_of(df, path: Path, text_column: str | None, model_format: dict) -> list[str]:
    """The text columns to read: --text-column, else those the model was trained on, else a guessed one (logged)."""
    from ..data.loading import (
        TEXT_COLUMN_CANDIDATES,
        _find_column,
        headerless_hint,
        log_guessed_column,
        parse_text_columns,
    )

    available = ", ".join(map(str, df.columns))
    # stripped: runs trained with --text_columns "title, description" saved the space
    trained = None if text_column else [column.strip() for column in model_format["text_columns"] or []] or None
    names = parse_text_columns(text_column, "--text-column") if text_column else trained
    if not names:
        names = [_find_column(df, TEXT_COLUMN_CANDIDATES)]
        if names == [None]:
            raise HfclfInputError(
                f"No text column found in {path} (columns: {available}); pass --text-column with one of those."
                + headerless_hint(df)
            )
        log_guessed_column(names[0], "text", "--text-column")
    elif trained:
        logger.info(
            "Using %s as the text, as the model was trained; pass --text-column to choose another.", _quoted(names)
        )
    for name in names:
        if name not in df.columns:
            fix = "; pass --text-column with one of those."
            if trained:
                fix = (
                    f": the model was trained on the text of {_quoted(trained)}. Pass --text-column with one of the "
                    "file's columns to read instead (several, comma-separated, are joined)."
                )
            raise HfclfInputError(
                f"Column '{name}' not found in {path} (columns: {available}){fix}" + headerless_hint(df)
            )
    return names


def _trailing_blank_lines(path: Path) -> int:
    """How many lines at the end of a csv/tsv file have nothing on them (0 for other files)."""
    import gzip

    if not path.name.lower().removesuffix(".gz").endswith((".csv", ".tsv")):
        return 0
    blank = 0
    with (gzip.open if path.name.lower().endswith(".gz") else open)(path, "rb") as f:
        for line in f:
            blank = 0 if line.rstrip(b"\r\n") else blank + 1
    return blank


def _quoted(columns: list[str]) -> str:
    """'a' as "column 'a'", several as "columns 'a', 'b' (joined)"."""
    listed = ", ".join(f"'{column}'" for column in columns)
    return f"column {listed}" if len(columns) == 1 else f"columns {listed} (joined)"


def check_output_file(output_path, inputs, model_dir, overwrite: bool = False) -> None:
    """Before any work: the output file can be written, is new unless `overwrite`, and is none of the inputs (data
    or model files)."""
    if output_path in (None, "-"):
        return
    check_writable(output_path, "--output file")
    model_dir = Path(model_dir)
    model_files = list(model_dir.iterdir()) if model_dir.is_dir() else []
    check_not_input(output_path, [*inputs, *model_files])
    if Path(output_path).exists() and not overwrite:
        raise HfclfInputError(
            f"--output {output_path} already exists; pass --overwrite to replace it, or choose another file."
        )


def split_sentences(text: str) -> list[str]:
    """Sentences of a document: split after . ! ? (and closing quotes/brackets) before whitespace, and at line
    breaks. A simple rule, not a linguistic parser: abbreviations like 'e.g. this' split too."""
    return [part.strip() for part in SENTENCE_BOUNDARY.split(text) if part and part.strip()]


# ---------------------------------------------------------------------------------------------------------- batches


def length_sorted_batches(tokenizer, encoded: dict, batch_size: int, desc: str):
    """Yield `(positions, padded batch)` of the rows of `encoded` (token ids without padding) in order of decreasing
    length (little padding), with a progress bar."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise HfclfInputError(f"--batch-size must be positive, got {batch_size}; pass e.g. --batch-size 64.")
    keys = [key for key in encoded if key in ("input_ids", "attention_mask", "token_type_ids")]
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    with tqdm(total=len(order), desc=desc, unit="text", file=sys.stderr, disable=None) as bar:
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            features = [{key: encoded[key][i] for key in keys} for i in positions]
            yield positions, tokenizer.pad(features, return_tensors="pt")
            bar.update(len(positions))


def running(device, bf16: bool = False):
    """`torch.no_grad()` with attention kernels for length-sorted batches, and with `bf16` also bf16 autocast on
    `device` (fp32 weights, bf16 matmuls)."""
    import contextlib

    import torch

    from ..attention import varying_length_attention

    stack = contextlib.ExitStack()
    stack.enter_context(torch.no_grad())
    stack.enter_context(varying_length_attention())
    if bf16:
        stack.enter_context(torch.autocast(torch.device(device).type, dtype=torch.bfloat16))
    return stack


def model_inputs(model, tokenizer, texts, pairs, max_length, fmt: dict):
    """`(encoding, origin)` of `texts` (and their `pairs`) as the model was trained to read them: long texts cut by
    its `--long-text` strategy (see `tokenization.encode_texts`), at most `max_length` tokens (default: the length it
    was trained with). `fmt`: the model's `input_format`."""
    from ..data.loading import shortest_max_length
    from ..data.tokenization import LongText, encode_texts

    long_text = LongText(fmt["long_text"], fmt.get("head_tokens", 128), fmt.get("stride", 128))
    requested, max_length = max_length, default_max_length(model, tokenizer, max_length)
    shortest = shortest_max_length(long_text.strategy, long_text.head_tokens, long_text.stride)
    if requested and max_length < shortest:
        windows = long_text.strategy == "windows"
        trained = f"--stride {long_text.stride}" if windows else f"--head-tokens {long_text.head_tokens}"
        raise HfclfInputError(
            f"--max-length {requested} is too short for this model's --long-text {long_text.strategy} (trained with "
            f"{trained}); pass --max-length {shortest} or more, or drop it to use the length it was trained with."
        )
    return encode_texts(tokenizer, list(texts), pairs, max_length, long_text)


def classify(
    model, tokenizer, texts, batch_size=64, max_length=None, device="cpu", labels=None, pairs=None, bf16=False
):
    """Logits (in input order) of `texts` (and their `pairs`), long texts cut as in the model's training (documents
    cut into windows are scored from the mean of their windows' logits); with `labels`, also the mean loss as the model
    computes it. `bf16`: compute in bf16 autocast."""
    import torch

    encoded, origin = model_inputs(model, tokenizer, texts, pairs, max_length, input_format(model.config))
    rows = np.arange(len(texts)) if origin is None else np.asarray(origin)
    logits = np.zeros((len(rows), model.config.num_labels), dtype=np.float32)
    loss_sum = 0.0
    targets = None if labels is None else np.asarray(labels)[rows]
    with running(device, bf16):
        for positions, batch in length_sorted_batches(tokenizer, encoded, batch_size, "Predicting"):
            batch = {key: value.to(device) for key, value in batch.items()}
            if targets is not None:
                batch["labels"] = torch.as_tensor(targets[positions], device=device)
            output = model(**batch)
            logits[positions] = output.logits.float().cpu().numpy()
            if targets is not None:
                loss_sum += float(output.loss) * len(positions)
    loss = loss_sum / len(rows) if labels is not None else None
    if origin is not None:
        logits, _ = aggregate_windows(logits, rows)
    return logits, loss


# ---------------------------------------------------------------------------------------------------------- predict


def predict(
    model_dir,
    input_path,
    output_path=None,
    text_column=None,
    top_k=0,
    batch_size=64,
    max_length=None,
    device="auto",
    text_pair_column=None,
    backend="torch",
    bf16=False,
    overwrite=False,
) -> list[dict]:
    """Predict `input_path`'s texts; write rows to `output_path` (an existing file only with `overwrite`): the text
    (and its pair), the prediction (`label` and `score`; the multi-label `labels` above their thresholds; a regression
    `value`), the probability of every label, and the `top_k` most likely ones."""
    if output_path not in (None, "-") and not str(output_path).lower().endswith(TABLE_OUTPUT_SUFFIXES):
        raise HfclfInputError(
            f"Unsupported --output '{output_path}'; use a .csv, .tsv or .jsonl file (or - for stdout)."
        )
    check_output_file(output_path, [input_path], model_dir, overwrite)
    fmt = input_format(load_run(model_dir).config)
    if text_pair_column and not fmt["text_pair_column"]:
        raise HfclfInputError(f"{model_dir} was trained on single texts; drop --text-pair-column.")
    pair_column = text_pair_column or fmt["text_pair_column"]
    texts = read_texts(input_path, text_column, pair_column=pair_column, model_format=fmt)
    texts, pairs = texts if pair_column else (texts, None)
    if str(output_path).lower().endswith(".tsv"):
        _check_tsv_cells(texts + (pairs or []))
    device = resolve_device(device)
    model, tokenizer = load_classifier(model_dir, device, backend)
    config = model.config
    problem_type = config.problem_type or SINGLE_LABEL
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    if top_k and problem_type == REGRESSION:
        raise HfclfInputError("--top-k ranks labels, and this model predicts a number (regression); drop --top-k.")
    if top_k and not 0 < top_k <= len(names):
        raise HfclfInputError(f"--top-k must be between 1 and the number of labels ({len(names)}), got {top_k}.")
    logits, _ = classify(model, tokenizer, texts, batch_size, max_length, device, pairs=pairs, bf16=bf16)
    predictions = prediction_rows(logits, problem_type, names, getattr(config, "thresholds", None), top_k)
    first = {"text": texts} if pairs is None else {"text": texts, "text_pair": pairs}
    rows = [{**{key: values[i] for key, values in first.items()}, **row} for i, row in enumerate(predictions)]
    write_rows(rows, output_path)
    return rows


def _check_tsv_cells(texts: list[str]) -> None:
    """A .tsv file holds its cells as they are (hfclf reads .tsv without quoting), so a tab or a line break in a text
    cannot be written to one."""
    for number, text in enumerate(texts, start=1):
        if any(character in text for character in "\t\n\r"):
            raise HfclfInputError(
                f"Text {number} holds a tab or a line break, which a .tsv file cannot hold; write a .csv or .jsonl "
                "file."
            )


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
            tsv = {"sep": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {}  # read back as written
            df.to_csv(temporary, index=False, **tsv)
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
    if all(name.isdigit() for name in data_names):  # class ids, some beyond the model's
        outside = [name for name in data_names if int(name) >= len(by_name)]
        raise HfclfInputError(
            f"The data's labels are class ids, and {', '.join(outside[:10])} {'is' if len(outside) == 1 else 'are'} "
            f"not among the model's ids 0 to {len(by_name) - 1} ({', '.join(by_name)}). Evaluate on data with the "
            "model's labels."
        )
    unknown = [name for name in data_names if name not in by_name]
    raise HfclfInputError(
        f"The data has labels the model does not know: {', '.join(unknown[:10])} (model labels: "
        f"{', '.join(by_name)}). Evaluate on data with the model's labels."
    )


def model_labels(dataset, config) -> np.ndarray:
    """A split's labels in the model's terms: its class ids, a multi-hot row per example (multi-label), or values."""
    from ..data.loading import column_array, label_names_of

    problem_type = config.problem_type or SINGLE_LABEL
    labels = column_array(dataset, "label")
    if problem_type == REGRESSION:
        return labels.astype(np.float32)
    mapping = label_mapping(label_names_of(dataset), config.id2label)
    if problem_type == MULTI_LABEL:
        return multi_hot_rows([mapping[np.asarray(ids, dtype=int)] for ids in labels], config.num_labels).astype(
            np.float32
        )
    return mapping[labels]


def _check_label_columns_cover(data_args, config: dict) -> None:
    """--label-columns (one 0/1 column per label) must name every label of a multi-label model: a label without its
    column would count as absent from every example, and its predictions as false positives."""
    from ..data.loading import parse_text_columns

    given = set(parse_text_columns(data_args.label_columns, "--label-columns") or [])
    id2label = config.get("id2label") or {}
    missing = [id2label[key] for key in sorted(id2label, key=int) if id2label[key] not in given]
    if given and missing and config.get("problem_type") == MULTI_LABEL:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise HfclfInputError(
            f"--label-columns names {len(id2label) - len(missing)} of the model's {len(id2label)} labels; a label "
            f"without a column would count as absent everywhere. Give a 0/1 column for each (missing: {shown})."
        )


def evaluate_model(
    model_dir, data_args, split="test", batch_size=64, device="auto", max_length=None, backend="torch", bf16=False
) -> dict:
    """Metrics of a trained model on a split of labelled data: the same set as training (for its task shape),
    keyed like results.json (`test_accuracy`, `eval_...`). The data is read as the model's training read it (task
    shape, sentence pairs, long texts); documents cut into windows are scored whole."""
    from dataclasses import replace

    from ..data.loading import load_raw_datasets
    from ..metrics import build_compute_metrics

    run = load_run(model_dir)
    problem_type = run.config.get("problem_type") or SINGLE_LABEL
    data_args = replace(data_args, problem_type=data_args.problem_type or problem_type)
    _check_label_columns_cover(data_args, run.config)
    fmt = input_format(run.config)
    data_args = replace(data_args, text_separator=fmt["text_separator"])  # several text columns joined as in training
    if data_args.test_file and not data_args.text_columns and (fmt["text_columns"] or fmt["text_pair_column"]):
        # A file is read by the columns the model was trained on (as predict reads it), unless told otherwise.
        data_args = replace(
            data_args,
            text_columns=",".join(fmt["text_columns"] or []) or None,
            text_pair_column=data_args.text_pair_column or fmt["text_pair_column"],
        )
    task_source = f"the model in {model_dir}"
    only = replace(data_args, validation_fraction=0.0)
    raw = load_raw_datasets(only, need_train=False, task_source=task_source, splits=(split,))
    if split == "validation" and not raw:
        # The run's validation was carved out of train with its own seed and fraction; a different carve would
        # score examples the model trained on.
        if run.results is None:
            raise HfclfInputError(
                f"The data has no validation split of its own, and {model_dir} has no results of its run with the "
                "seed that carved it out of train; evaluate on --split test."
            )
        carve = replace(data_args, validation_fraction=run.results.data_arguments["validation_fraction"])
        raw = load_raw_datasets(
            carve, seed=run.results.seed, need_train=False, task_source=task_source, splits=("train", "validation")
        )
    if split not in raw:
        other = "test" if split == "validation" else "validation"
        raise HfclfInputError(f"The data has no {split} split; pass --split {other}.")
    dataset = raw[split]
    device = resolve_device(device)
    model, tokenizer = load_classifier(model_dir, device, backend)
    pairs = _pairs_of(dataset, model.config)
    labels = model_labels(dataset, model.config)
    logits, loss = classify(model, tokenizer, dataset["text"][:], batch_size, max_length, device, labels, pairs, bf16)
    thresholds = getattr(model.config, "thresholds", None)
    problem_type = model.config.problem_type or SINGLE_LABEL
    scores = build_compute_metrics(problem_type, thresholds=thresholds)((logits, labels))
    if problem_type == MULTI_LABEL:
        names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        predicted = decisions(logits, MULTI_LABEL, thresholds)
        scores["per_label"] = per_label_rows(labels.round().astype(int), predicted, names)
    prefix = metric_prefix(split)
    return {f"{prefix}_loss": loss, **{f"{prefix}_{key}": value for key, value in scores.items()}}


def _pairs_of(dataset, config) -> list[str] | None:
    """The second texts of a sentence-pair split, which a pair model needs and another model refuses."""
    has_pairs = "text_pair" in dataset.column_names
    trained_on_pairs = bool(input_format(config)["text_pair_column"])
    if has_pairs != trained_on_pairs:
        wanted = "sentence pairs: pass --text-pair-column" if trained_on_pairs else "single texts: drop the pairs"
        raise HfclfInputError(f"The model was trained on {wanted} to give the data the same shape.")
    return dataset["text_pair"][:] if has_pairs else None


def format_metrics(metrics: dict) -> str:
    """The metrics as a two-column table; per-label rows (multi-label) as a table of their own below."""
    scalars = {key: value for key, value in metrics.items() if not isinstance(value, list)}
    width = max(len(key) for key in scalars)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    for key, value in scalars.items():
        lines.append(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    for key, rows in metrics.items():
        if isinstance(rows, list) and rows:
            name_width = max(5, *(len(row["label"]) for row in rows))
            lines += ["", key, f"{'label':<{name_width}}  precision  recall  f1      support"]
            for row in rows:
                lines.append(
                    f"{row['label']:<{name_width}}  {row['precision']:<9.4f}  {row['recall']:<6.4f}  {row['f1']:<6.4f}"
                    f"  {row['support']}"
                )
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
    backend="torch",
    bf16=False,
    overwrite=False,
) -> np.ndarray:
    """Pooled sentence vectors of `input_path`'s texts (or of each sentence, with `split`), written to .npy or
    .parquet (an existing file only with `overwrite`). Returns the float32 matrix."""
    suffix = Path(output_path).suffix.lower()
    if suffix not in EMBED_OUTPUT_SUFFIXES:
        raise HfclfInputError(f"Unsupported --output '{output_path}'; use a .npy or .parquet file.")
    check_output_file(output_path, [input_path], model_dir, overwrite)
    if split and suffix == ".npy":
        check_output_file(_index_path(Path(output_path)), [input_path], model_dir, overwrite)
    fmt = input_format(load_run(model_dir).config)
    if fmt["text_pair_column"]:
        raise HfclfInputError(
            f"{model_dir} was trained on sentence pairs; its vectors stand for a pair, not for one text, so embed "
            "refuses it. Use a model trained on single texts."
        )
    documents = read_texts(input_path, text_column, model_format=fmt)
    if split:
        units = [(d, s, sentence) for d, doc in enumerate(documents) for s, sentence in enumerate(split_sentences(doc))]
    else:
        units = [(d, None, doc) for d, doc in enumerate(documents)]
    texts = [text for _, _, text in units]
    device = resolve_device(device)
    model, tokenizer, gives_pooled_vector = load_encoder(model_dir, device, backend)
    # as the classifier reads them: a document cut into windows is the mean of its windows' vectors
    encoded, origin = model_inputs(model, tokenizer, texts, None, max_length, fmt)
    if fmt["long_text"] == "truncate":  # head_tail and windows cut long texts as the model was trained to
        limit = default_max_length(model, tokenizer, max_length)
        truncated = sum(len(ids) > limit for ids in tokenizer(texts, verbose=False)["input_ids"])
        if truncated:
            logger.warning("%d of %d texts are longer than %d tokens and were truncated", truncated, len(texts), limit)
    rows = np.arange(len(texts)) if origin is None else np.asarray(origin)
    vectors = _pooled_vectors(model, tokenizer, encoded, len(rows), batch_size, device, bf16, gives_pooled_vector)
    if origin is not None:
        vectors, _ = aggregate_windows(vectors, rows)
    if normalize:
        vectors /= np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    _write_embeddings(Path(output_path), vectors, units, split)
    return vectors


def _pooled_vectors(model, tokenizer, encoded, rows: int, batch_size, device, bf16, gives_pooled_vector) -> np.ndarray:
    """A float32 vector for each of the `rows` encoded texts, in batches sorted by length: the model's pooled vector,
    or the mean of its real tokens' vectors for a model without one."""
    vectors = None
    with running(device, bf16):
        for positions, batch in length_sorted_batches(tokenizer, encoded, batch_size, "Embedding"):
            batch = {key: value.to(device) for key, value in batch.items()}
            output = model(**batch)
            if gives_pooled_vector:
                pooled = output.pooler_output
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(output.last_hidden_state.dtype)
                pooled = (output.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = pooled.float().cpu().numpy()
            if vectors is None:
                vectors = np.zeros((rows, pooled.shape[-1]), dtype=np.float32)
            vectors[positions] = pooled
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
