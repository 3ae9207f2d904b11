"""Load text-classification data (named benchmarks or local files), split it, and tokenize it.

Every split that comes out of [`load_raw_datasets`] has exactly two columns: `text` (string) and
`label` (a [`datasets.ClassLabel`] with the class names), whatever the source looked like.
"""

import csv
import gzip
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Optional, Union

import datasets
import numpy as np
import pandas as pd

from .errors import HfclfInputError, first_line

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "HFCLF_DATA_DIR"
SPLITS = ("train", "validation", "test")
SUPPORTED_FILE_TYPES = ("csv", "tsv", "json", "jsonl", "parquet")
TEXT_COLUMN_CANDIDATES = ("text", "sentence", "review", "content", "document")
LABEL_COLUMN_CANDIDATES = ("label", "labels", "target", "class", "sentiment")
WORDPIECE_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass
class DataArguments:
    """Where the data comes from and how it is split, subsampled and tokenized."""

    dataset: Optional[str] = field(
        default=None,
        metadata={"help": "Named dataset: ag_news, imdb, sst2 or rt_polarity (local copy first, else the Hub)."},
    )
    data_dir: Optional[str] = field(
        default=None,
        metadata={"help": f"Folder holding <name>/<split> files of the named datasets (default: ${DATA_DIR_ENV})."},
    )
    train_file: Optional[str] = field(
        default=None, metadata={"help": "Training file: csv, tsv, json, jsonl or parquet, optionally .gz."}
    )
    validation_file: Optional[str] = field(default=None, metadata={"help": "Validation file (same formats)."})
    test_file: Optional[str] = field(default=None, metadata={"help": "Test file (same formats)."})
    text_columns: Optional[str] = field(
        default=None,
        metadata={"help": "Comma-separated text column(s), joined in order, e.g. 'title,description'."},
    )
    text_separator: str = field(default=" ", metadata={"help": "String put between joined text columns."})
    label_column: Optional[str] = field(default=None, metadata={"help": "Label column (default: guessed)."})
    train_fraction: float = field(
        default=1.0, metadata={"help": "Keep this stratified fraction of the training split (0 < f <= 1)."}
    )
    validation_fraction: float = field(
        default=0.1,
        metadata={"help": "Stratified fraction of train held out for validation when there is no validation split."},
    )
    max_train_samples: Optional[int] = field(
        default=None, metadata={"help": "Keep at most this many training examples (seeded shuffle)."}
    )
    max_eval_samples: Optional[int] = field(
        default=None, metadata={"help": "Keep at most this many validation examples (seeded shuffle)."}
    )
    max_test_samples: Optional[int] = field(
        default=None, metadata={"help": "Keep at most this many test examples (seeded shuffle)."}
    )
    max_length: int = field(default=128, metadata={"help": "Truncate inputs to this many tokens."})
    tokenizer_vocab_size: int = field(
        default=30522, metadata={"help": "Vocabulary size when a WordPiece tokenizer is trained from scratch."}
    )
    preprocessing_num_workers: Optional[int] = field(
        default=None, metadata={"help": "Processes used for tokenization."}
    )

    def __post_init__(self):
        if self.max_length < 1:
            raise HfclfInputError(
                f"max_length must be a positive number of tokens, got {self.max_length}. Pass e.g. --max-length 128."
            )


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one named dataset, locally and on the Hub."""

    name: str
    label_names: tuple[str, ...]
    # (split, file name) pairs under <data_dir>/<name>/
    local_files: tuple[tuple[str, str], ...]
    text_columns: tuple[str, ...] = ("text",)
    label_column: str = "label"
    # Column names for header-less files (the original AG News CSVs have none).
    column_names: Optional[tuple[str, ...]] = None
    # Subtracted from the local labels (AG News numbers its classes 1..4).
    label_offset: int = 0
    hub_id: Optional[str] = None
    # (our split, Hub split) pairs
    hub_splits: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))
    hub_text_column: str = "text"
    hub_label_column: str = "label"


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="ag_news",
            label_names=("World", "Sports", "Business", "Sci/Tech"),
            local_files=(("train", "train.csv.gz"), ("test", "test.csv.gz")),
            text_columns=("title", "description"),
            label_column="class_index",
            column_names=("class_index", "title", "description"),
            label_offset=1,
            hub_id="fancyzhx/ag_news",
        ),
        DatasetSpec(
            name="imdb",
            label_names=("neg", "pos"),
            local_files=(("train", "train.csv.gz"), ("test", "test.csv.gz")),
            hub_id="stanfordnlp/imdb",
        ),
        DatasetSpec(
            name="sst2",
            label_names=("negative", "positive"),
            local_files=(("train", "train.tsv.gz"), ("validation", "dev.tsv.gz"), ("test", "test_labeled.tsv.gz")),
            text_columns=("sentence",),
            hub_id="stanfordnlp/sst2",
            # The Hub test split is unlabeled (label -1), so the labeled validation split doubles as test.
            hub_splits=(("train", "train"), ("validation", "validation"), ("test", "validation")),
            hub_text_column="sentence",
        ),
        DatasetSpec(
            name="rt_polarity",
            label_names=("negative", "positive"),
            local_files=(("train", "train.csv.gz"), ("validation", "valid.csv.gz"), ("test", "test.csv.gz")),
        ),
    )
}


def load_raw_datasets(data_args: DataArguments, seed: int = 42, need_train: bool = True) -> datasets.DatasetDict:
    """
    Load, validate and split the data described by `data_args`.

    Returns a `DatasetDict` with the splits `train` (if present), `validation` (carved out of train when
    missing) and `test` (if present); each has the columns `text` and `label` (a `ClassLabel`). The
    same `seed` always gives the same splits. Pass `need_train=False` when only evaluating.
    """
    _check_split_arguments(data_args)
    frames, label_names = _load_frames(data_args, need_train)
    if need_train and "train" not in frames:
        raise HfclfInputError("No training data. Pass --dataset NAME or --train-file PATH.")
    if not frames:
        raise HfclfInputError(
            "No data. Pass --dataset NAME or at least one of --train-file/--validation-file/--test-file."
        )

    names = _encode_labels(frames, label_names)
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    raw = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_pandas(frames[split][0], features=features, preserve_index=False)
            for split in SPLITS
            if split in frames
        }
    )
    raw = _resize_splits(raw, data_args, seed)
    logger.info(
        "Data: %s; %d classes (%s)",
        ", ".join(f"{split}={len(ds):,}" for split, ds in raw.items()),
        len(names),
        ", ".join(names),
    )
    return raw


def tokenize_datasets(
    raw: datasets.DatasetDict,
    tokenizer,
    max_length: int = 128,
    num_proc: Optional[int] = None,
    cache_dir: Optional[str] = None,
) -> tuple[datasets.DatasetDict, dict[str, float]]:
    """
    Tokenize every split with a fast tokenizer, truncating to `max_length` tokens and without padding.

    The `text` column is replaced by the tokenizer outputs (`input_ids`, `attention_mask`, ...) plus a
    `length` column (tokens per example, used by `group_by_length`); `label` is kept. Padding is left
    to the data collator.

    With `cache_dir`, the tokenized splits are cached there as Arrow files keyed by the data's fingerprint
    (a hash of its content), the tokenizer and `max_length`, and a later run on the same data loads them.

    Returns `(tokenized, stats)`, where `stats` has `tokenize_seconds`, `tokenize_examples_per_second`,
    `tokenize_tokens_per_second` over all splits, and `tokenize_from_cache`.
    """
    max_length = _capped_length(tokenizer, max_length)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length, return_length=True)

    cache_files = _cache_files(raw, tokenizer, max_length, cache_dir)
    # With num_proc > 1, `datasets` writes one shard per process: name_00000_of_00004.arrow, ...
    from_cache = cache_files is not None and all(
        Path(f).exists() or any(Path(f).parent.glob(f"{Path(f).stem}_*_of_*.arrow")) for f in cache_files.values()
    )

    start = time.perf_counter()
    tokenized = raw.map(
        tokenize,
        batched=True,
        num_proc=num_proc,
        remove_columns=["text"],
        desc="Tokenizing",
        cache_file_names=cache_files,
    )
    seconds = time.perf_counter() - start

    num_examples = sum(len(ds) for ds in tokenized.values())
    num_tokens = sum(int(_column(ds, "length").sum()) for ds in tokenized.values())
    stats = {
        "max_length": max_length,  # after capping at the tokenizer's limit
        "tokenize_seconds": seconds,
        "tokenize_examples_per_second": num_examples / max(seconds, 1e-9),
        "tokenize_tokens_per_second": num_tokens / max(seconds, 1e-9),
        "tokenize_from_cache": from_cache,
    }
    logger.info(
        "Tokenized %s examples (%s tokens) in %.1fs: %.0f examples/s%s",
        f"{num_examples:,}",
        f"{num_tokens:,}",
        seconds,
        stats["tokenize_examples_per_second"],
        " (loaded from the cache)" if from_cache else "",
    )
    return tokenized, stats


def _capped_length(tokenizer, max_length: int) -> int:
    """`max_length`, at most the tokenizer's own limit (a warning says so when it is lowered)."""
    if max_length < 1:
        raise HfclfInputError(
            f"max_length must be a positive number of tokens, got {max_length}. Pass e.g. --max-length 128."
        )
    model_max_length = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel value (~1e30), hence the sanity bound.
    if model_max_length is not None and model_max_length < 1_000_000 and max_length > model_max_length:
        logger.warning(
            "max_length=%d is above the tokenizer limit %d; using %d.", max_length, model_max_length, model_max_length
        )
        return model_max_length
    return max_length


def _cache_files(raw, tokenizer, max_length: int, cache_dir: Optional[str]) -> dict[str, str] | None:
    """Arrow cache file of each split, keyed by the split's content fingerprint, the tokenizer and `max_length`."""
    if cache_dir is None:
        return None
    from datasets.fingerprint import Hasher

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    key = Hasher.hash((tokenizer, max_length))
    return {split: str(Path(cache_dir) / f"{ds._fingerprint}-{key}.arrow") for split, ds in raw.items()}


def train_wordpiece_tokenizer(
    texts: Union[Iterable[str], datasets.Dataset],
    vocab_size: int = 30522,
    lowercase: bool = True,
    model_max_length: int = 512,
    batch_size: int = 1000,
):
    """
    Train a BERT-style WordPiece tokenizer on `texts` (strings, or a `Dataset` with a `text` column).

    Returns a `transformers.PreTrainedTokenizerFast` with `[PAD] [UNK] [CLS] [SEP] [MASK]` set, which
    round-trips through `save_pretrained` / `AutoTokenizer.from_pretrained`.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(WORDPIECE_SPECIAL_TOKENS) + 1:
        raise HfclfInputError(
            f"tokenizer_vocab_size={vocab_size} is too small. Pass e.g. --tokenizer-vocab-size 30522."
        )

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(WORDPIECE_SPECIAL_TOKENS))
    tokenizer.train_from_iterator(_text_batches(texts, batch_size), trainer=trainer)

    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )


# ---------------------------------------------------------------------------------------------------------
# Reading sources
# ---------------------------------------------------------------------------------------------------------


def _load_frames(data_args: DataArguments, need_train: bool):
    """
    Read every available split into `{split: (DataFrame[text, label], description)}`.

    Also returns the class names when they are known (named datasets), else None.
    """
    user_files = {
        split: path
        for split, path in zip(SPLITS, (data_args.train_file, data_args.validation_file, data_args.test_file))
        if path
    }
    text_columns = _parse_text_columns(data_args.text_columns)
    frames, label_names = {}, None

    if data_args.dataset:
        spec = _get_spec(data_args.dataset)
        if (data_args.text_columns or data_args.label_column) and not user_files:
            raise HfclfInputError(
                "--text-columns/--label-column apply to --train-file/--validation-file/--test-file; "
                f"--dataset {spec.name} has its own columns. Drop them."
            )
        label_names = list(spec.label_names)
        # Files passed explicitly replace the named dataset's own split, so that e.g. `--dataset ag_news
        # --train-file my_train.csv` works where no AG News train split is available.
        need_named_train = need_train and "train" not in user_files
        frames = _named_dataset_frames(spec, data_args, need_named_train, skip=set(user_files))

    for split, path in user_files.items():
        description = f"{split} file {path}"
        df = _read_table(Path(path), description)
        frames[split] = (
            _to_text_label(df, description, text_columns, data_args.label_column, data_args.text_separator),
            description,
        )
    return frames, label_names


def _get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise HfclfInputError(
            f"Unknown dataset '{name}'. Pass --dataset with one of: {', '.join(DATASETS)}; "
            "or use --train-file for your own data."
        )
    return DATASETS[name]


def _named_dataset_frames(spec: DatasetSpec, data_args: DataArguments, need_train: bool, skip: set[str]):
    """Read a named dataset from `<data_dir>/<name>/` when that folder exists, else from the Hub."""
    data_dir = data_args.data_dir or os.environ.get(DATA_DIR_ENV)
    local_dir = Path(data_dir).expanduser() / spec.name if data_dir else None
    if local_dir is not None and local_dir.is_dir():
        return _local_named_frames(spec, local_dir, need_train, skip)
    return _hub_named_frames(spec, data_dir, skip)


def _local_named_frames(spec: DatasetSpec, local_dir: Path, need_train: bool, skip: set[str]):
    frames = {}
    for split, file_name in spec.local_files:
        path = local_dir / file_name
        if split in skip or not path.is_file():
            continue
        description = f"{spec.name} {split} file {path}"
        df = _read_table(path, description, column_names=spec.column_names)
        df = _to_text_label(df, description, list(spec.text_columns), spec.label_column, " ")
        if spec.label_offset and pd.api.types.is_numeric_dtype(df["label"]):
            df["label"] = df["label"] - spec.label_offset
        frames[split] = (df, description)

    if need_train and "train" not in frames:
        train_name = dict(spec.local_files)["train"]
        raise HfclfInputError(
            f"Dataset '{spec.name}' has no train split in {local_dir} (missing {train_name}). "
            "Add that file, or pass --train-file with your own training data (evaluation-only runs do not need it)."
        )
    if not frames and not skip:
        raise HfclfInputError(
            f"Folder {local_dir} holds none of the {spec.name} files ({', '.join(dict(spec.local_files).values())}). "
            f"Put them there, or point --data-dir/{DATA_DIR_ENV} at the folder that has them."
        )
    return frames


def _hub_named_frames(spec: DatasetSpec, data_dir: Optional[str], skip: set[str]):
    where = f"{data_dir}/{spec.name}" if data_dir else f"${DATA_DIR_ENV} (not set)"
    local_hint = f"set {DATA_DIR_ENV} or --data-dir to a folder with {spec.name}/" + ", ".join(
        f for _, f in spec.local_files
    )
    if spec.hub_id is None:
        raise HfclfInputError(
            f"Dataset '{spec.name}' has no local copy in {where} and is not on the Hub. Fix: {local_hint}."
        )

    logger.info("No local copy of '%s' in %s; loading %s from the Hub.", spec.name, where, spec.hub_id)
    try:
        hub = datasets.load_dataset(spec.hub_id)
    except Exception as err:
        if not (_hub_offline() or _is_network_error(err)):
            raise
        reason = "the Hub is offline" if _hub_offline() else f"the Hub could not be reached ({type(err).__name__})"
        raise HfclfInputError(
            f"Dataset '{spec.name}' has no local copy in {where} and {reason}. Fix: {local_hint}, "
            f"or go online so it can be downloaded from the Hub as {spec.hub_id}."
        ) from err

    frames = {}
    for split, hub_split in spec.hub_splits:
        if split in skip or hub_split not in hub:
            continue
        description = f"{spec.name} {split} split (Hub {spec.hub_id}:{hub_split})"
        df = hub[hub_split].select_columns([spec.hub_text_column, spec.hub_label_column]).to_pandas()
        frames[split] = (
            _to_text_label(df, description, [spec.hub_text_column], spec.hub_label_column, " "),
            description,
        )
    return frames


def _hub_offline() -> bool:
    # datasets reads the flag once at import time; the environment may have changed since.
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    return bool(datasets.config.HF_HUB_OFFLINE)


def _is_network_error(err: Exception) -> bool:
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    text = f"{type(err).__name__} {err}".lower()
    return any(word in text for word in ("connect", "offline", "timed out", "timeout", "network"))


def _read_table(
    path: Path, description: str, column_names: Optional[tuple[str, ...]] = None, keep_blank_lines: bool = False
) -> pd.DataFrame:
    """Read a csv/tsv/json/jsonl/parquet file (optionally gzipped) into a DataFrame; `keep_blank_lines` keeps a blank
    line of a csv/tsv as an empty row (so that rows stay aligned with the input's lines)."""
    if path.is_dir():
        raise HfclfInputError(f"The {description} is a folder, not a file. Pass the path of the file inside it.")
    name = path.name.lower()
    compressed = name.endswith(".gz")
    file_type = Path(name.removesuffix(".gz")).suffix.lstrip(".")
    if file_type not in SUPPORTED_FILE_TYPES:
        raise HfclfInputError(
            f"Unsupported type for {description}: '{path.name}'. "
            f"Use one of {', '.join('.' + t for t in SUPPORTED_FILE_TYPES)} (optionally .gz)."
        )
    if not path.is_file():
        raise HfclfInputError(f"The {description} does not exist. Check the path.")

    header = "infer" if column_names is None else None
    # Only empty fields count as missing: "NA" or "null" are valid sentences.
    na_options = {"keep_default_na": False, "na_values": [""], "skip_blank_lines": not keep_blank_lines}
    try:
        if file_type == "csv":
            return pd.read_csv(path, header=header, names=column_names, **na_options)
        if file_type == "tsv":
            return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, header=header, names=column_names, **na_options)
        if file_type == "parquet":
            if compressed:
                with gzip.open(path, "rb") as f:
                    return pd.read_parquet(f)
            return pd.read_parquet(path)
        # JSON lines, or one JSON array of records (whatever the extension says).
        with (gzip.open if compressed else open)(path, "rt", encoding="utf-8") as f:
            is_array = f.read(1024).lstrip().startswith("[")
        return pd.read_json(path, lines=not is_array, dtype=False)
    except HfclfInputError:
        raise
    except Exception as err:
        raise HfclfInputError(
            f"Could not read {description} as {file_type}: {first_line(err)}. Check that the file matches its "
            "extension."
        ) from err


def _parse_text_columns(text_columns: Optional[str]) -> Optional[list[str]]:
    if text_columns is None:
        return None
    columns = [c.strip() for c in text_columns.split(",") if c.strip()]
    if not columns:
        raise HfclfInputError(
            f"--text-columns '{text_columns}' names no column. Pass e.g. --text-columns title,description."
        )
    return columns


def _find_column(df: pd.DataFrame, candidates: Iterable[str]) -> Optional[str]:
    by_lower = {str(c).lower(): c for c in df.columns}
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
    return None


def _to_text_label(
    df: pd.DataFrame, description: str, text_columns: Optional[list[str]], label_column: Optional[str], separator: str
) -> pd.DataFrame:
    """Select and check the text and label columns, returning a DataFrame with exactly `text` and `label`."""
    available = ", ".join(map(str, df.columns))
    if text_columns is None:
        guessed = _find_column(df, TEXT_COLUMN_CANDIDATES)
        if guessed is None:
            raise HfclfInputError(
                f"No text column found in {description} (columns: {available}). "
                "Pass --text-columns with one or more of those."
            )
        text_columns = [guessed]
    missing = [c for c in text_columns if c not in df.columns]
    if missing:
        raise HfclfInputError(
            f"Column '{missing[0]}' not found in {description} (columns: {available}). "
            "Pass --text-columns with one of those."
        )
    if label_column is None:
        label_column = _find_column(df, LABEL_COLUMN_CANDIDATES)
        if label_column is None:
            raise HfclfInputError(
                f"No label column found in {description} (columns: {available}). Pass --label-column with one of those."
            )
    elif label_column not in df.columns:
        raise HfclfInputError(
            f"Column '{label_column}' not found in {description} (columns: {available}). "
            "Pass --label-column with one of those."
        )

    parts = [df[c].fillna("").astype(str) for c in text_columns]
    text = parts[0].str.cat(parts[1:], sep=separator) if len(parts) > 1 else parts[0]
    empty = text.str.strip().eq("").to_numpy()
    if empty.any():
        raise HfclfInputError(
            f"{int(empty.sum())} rows of {description} have empty text (first at row index {int(np.argmax(empty))}). "
            "Remove or fill those rows."
        )
    label = df[label_column]
    missing_label = label.isna().to_numpy()
    if missing_label.any():
        raise HfclfInputError(
            f"{int(missing_label.sum())} rows of {description} have no label "
            f"(first at row index {int(np.argmax(missing_label))}). "
            "Remove or fill those rows."
        )
    return pd.DataFrame({"text": text.to_numpy(dtype=object), "label": label.to_numpy()})


# ---------------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------------


def _as_integer_labels(label: pd.Series) -> Optional[pd.Series]:
    """The labels as int64 if they are all integral numbers (bools count), else None."""
    if pd.api.types.is_bool_dtype(label):
        return label.astype("int64")
    if pd.api.types.is_integer_dtype(label):
        return label.astype("int64")
    if pd.api.types.is_float_dtype(label) and np.all(np.mod(label.to_numpy(), 1) == 0):
        return label.astype("int64")
    return None


def _encode_labels(frames: dict, label_names: Optional[list[str]]) -> list[str]:
    """Replace every split's labels by class ids 0..n-1 in place; return the class names."""
    integer = {split: _as_integer_labels(df["label"]) for split, (df, _) in frames.items()}
    for split, (df, description) in frames.items():
        if integer[split] is None and pd.api.types.is_float_dtype(df["label"]):
            values = pd.unique(df["label"])
            examples = ", ".join(f"{v:g}" for v in values[:4])
            raise HfclfInputError(
                f"The labels of {description} are non-integer numbers ({len(values)} distinct values, e.g. "
                f"{examples}): scores for regression, which hfclf does not train; a classifier would make one class "
                "per value. Map them to classes first (e.g. round or bin them)."
            )

    if label_names is not None:
        # Each split may give class ids or class names (e.g. a user's train file next to a benchmark's test file).
        for split, (df, description) in frames.items():
            if integer[split] is not None:
                df["label"] = _check_label_ids(integer[split], label_names, description)
            else:
                df["label"] = _codes(df["label"].astype(str), label_names, description, "the dataset's class names")
        return label_names

    # Classes are defined by the train split when there is one, else by all splits together.
    reference = [frames["train"][0]] if "train" in frames else [df for df, _ in frames.values()]
    source = "the training data" if "train" in frames else "the data"
    if all(values is not None for values in integer.values()):
        values = np.unique(np.concatenate([_as_integer_labels(df["label"]).to_numpy() for df in reference]))
        if values[0] == 1 and values[-1] == len(values):
            logger.warning(
                "Labels are 1..%d; treating them as 1-based and shifting to 0..%d.", len(values), len(values) - 1
            )
        elif not np.array_equal(values, np.arange(len(values))):
            logger.warning(
                "Labels %s are not 0..n-1; mapping them to 0..%d in sorted order.", values.tolist(), len(values) - 1
            )
        categories = values.tolist()
        for split, (df, description) in frames.items():
            df["label"] = _codes(integer[split], categories, description, source)
        return [str(v) for v in categories]

    categories = sorted(np.unique(np.concatenate([df["label"].astype(str).to_numpy() for df in reference])).tolist())
    _check_distinct_names(categories, source)
    for df, description in frames.values():
        df["label"] = _codes(df["label"].astype(str), categories, description, source)
    return categories


def _check_distinct_names(names: list[str], source: str) -> None:
    """Label names that differ only in case or surrounding spaces are almost always one class written two ways."""
    groups = {}
    for name in names:
        groups.setdefault(name.strip().casefold(), []).append(name)
    clashes = [group for group in groups.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(", ".join(repr(name) for name in group) for group in clashes[:3])
        raise HfclfInputError(
            f"Labels in {source} differ only in case or surrounding spaces ({shown}), which would make them separate "
            "classes. Write each class one way in the data."
        )


def _codes(label: pd.Series, categories: list, description: str, source: str) -> np.ndarray:
    """Positions of `label` values in `categories` (the classes found in `source`); unknown values are an error."""
    codes = pd.Index(categories).get_indexer(label.to_numpy())
    unseen = codes < 0
    if unseen.any():
        names = sorted(map(str, pd.unique(label[unseen])))
        raise HfclfInputError(
            f"{description} has labels not in {source}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}. "
            "Fix the labels, or train on data that contains these classes."
        )
    return codes


def _check_label_ids(label: pd.Series, label_names: list[str], description: str) -> np.ndarray:
    """Integer labels of a dataset with known class names: 0-based ids, or 1-based ids that are shifted."""
    values = label.to_numpy()
    num_labels = len(label_names)
    if values.min() >= 0 and values.max() < num_labels:
        return values
    if values.min() >= 1 and values.max() == num_labels:
        logger.warning(
            "Labels of %s are 1..%d; treating them as 1-based and shifting to 0..%d.",
            description,
            num_labels,
            num_labels - 1,
        )
        return values - 1
    bad = sorted({int(v) for v in values[(values < 0) | (values >= num_labels)]})
    raise HfclfInputError(
        f"{description} has labels outside 0..{num_labels - 1} ({', '.join(label_names)}): "
        f"{', '.join(map(str, bad[:10]))}. "
        "Use 0-based class ids or the class names."
    )


# ---------------------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------------------


def _check_split_arguments(data_args: DataArguments) -> None:
    if not 0.0 < data_args.train_fraction <= 1.0:
        raise HfclfInputError(
            f"train_fraction must be in (0, 1], got {data_args.train_fraction}. Pass e.g. --train-fraction 0.1."
        )
    if not 0.0 <= data_args.validation_fraction < 1.0:
        raise HfclfInputError(
            f"validation_fraction must be in [0, 1), got {data_args.validation_fraction}. "
            "Pass e.g. --validation-fraction 0.1."
        )
    for name in ("max_train_samples", "max_eval_samples", "max_test_samples"):
        value = getattr(data_args, name)
        if value is not None and value < 1:
            raise HfclfInputError(
                f"{name} must be at least 1, got {value}. Pass a positive --{name.replace('_', '-')} or leave it unset."
            )


def _stratified_split(dataset: datasets.Dataset, seed: int, **sizes) -> tuple[datasets.Dataset, datasets.Dataset]:
    """
    Seeded stratified split into (train, test) parts, falling back to a random split for very rare classes.

    `Dataset.train_test_split(stratify_by_column=...)` reads the labels row by row in datasets 5 (seconds
    for 25k rows), so the indices are drawn with scikit-learn from the label column read through Arrow.
    """
    from sklearn.model_selection import train_test_split

    labels = _column(dataset, "label")
    indices = np.arange(len(dataset))
    try:
        train_indices, test_indices = train_test_split(indices, **sizes, stratify=labels, random_state=seed)
    except ValueError as err:
        logger.warning("Stratified split impossible (%s); using a random split.", first_line(err))
        try:
            train_indices, test_indices = train_test_split(indices, **sizes, random_state=seed)
        except ValueError as err:
            raise HfclfInputError(
                f"Cannot split {len(dataset)} training examples with {sizes}: {first_line(err)} "
                "Use more data or a larger fraction."
            ) from err
    return dataset.select(train_indices), dataset.select(test_indices)


def _column(dataset: datasets.Dataset, name: str) -> np.ndarray:
    # Through Arrow: the numpy formatter and plain column access are much slower on large splits.
    return dataset.select_columns([name]).with_format("arrow")[:][name].to_numpy()


def _resize_splits(raw: datasets.DatasetDict, data_args: DataArguments, seed: int) -> datasets.DatasetDict:
    if "train" in raw:
        # Validation is carved out before `train_fraction` so that it does not shrink with the
        # training set: runs on different fractions are then evaluated on the same examples.
        if "validation" not in raw and data_args.validation_fraction > 0:
            train, validation = _stratified_split(raw["train"], seed, test_size=data_args.validation_fraction)
            raw = datasets.DatasetDict(
                {"train": train, "validation": validation, **{k: v for k, v in raw.items() if k != "train"}}
            )
            logger.info("Held out %s training examples as validation.", f"{len(raw['validation']):,}")
        if data_args.train_fraction < 1.0:
            raw["train"] = _stratified_split(raw["train"], seed, train_size=data_args.train_fraction)[0]

    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_test_samples,
    }
    for split, limit in limits.items():
        if split in raw and limit is not None and limit < len(raw[split]):
            raw[split] = raw[split].shuffle(seed=seed).select(range(limit))
    return raw


def _text_batches(texts: Union[Iterable[str], datasets.Dataset], batch_size: int) -> Iterator[list[str]]:
    if isinstance(texts, datasets.Dataset):
        for batch in texts.select_columns(["text"]).iter(batch_size=batch_size):
            yield batch["text"]
        return
    iterator = iter(texts)
    while batch := list(islice(iterator, batch_size)):
        yield batch
