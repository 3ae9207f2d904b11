"""Load text-classification data (named benchmarks or local files), split it, and tokenize it.

Every split that comes out of [`load_raw_datasets`] has exactly two columns: `text` (string) and
`label` (a [`datasets.ClassLabel`] with the class names), whatever the source looked like.
"""

import csv
import gzip
import logging
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import datasets
import numpy as np
import pandas as pd

from ..errors import HfclfInputError, first_line
from .labels import encode_labels, log_task_shape, other_task_fix
from .tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL, TASKS

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "HFCLF_DATA_DIR"
SPLITS = ("train", "validation", "test")
SUPPORTED_FILE_TYPES = ("csv", "tsv", "json", "jsonl", "parquet")
NUMBER = re.compile(r"[-+]?\d+(\.\d*)?")  # a header cell that is a number is a data row
TEXT_COLUMN_CANDIDATES = ("text", "sentence", "review", "content", "document")
LABEL_COLUMN_CANDIDATES = ("label", "labels", "target", "class", "sentiment", "score")


@dataclass
class DataArguments:
    """Where the data comes from and how it is split, subsampled and tokenized."""

    dataset: Optional[str] = field(
        default=None,
        metadata={
            "help": "Named dataset (local copy first, else the Hub): ag_news, imdb, sst2, rt_polarity, imdb_ratings "
            "(regression), stsb (sentence-pair regression), rte (sentence pairs), go_emotions (multi-label)."
        },
    )
    dataset_name: Optional[str] = field(
        default=None,
        metadata={"help": "Any dataset on the Hub, e.g. user/name; columns as for files (--text-columns, ...)."},
    )
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Config of --dataset-name."})
    train_split: str = field(default="train", metadata={"help": "Split of --dataset-name to train on."})
    validation_split: str = field(default="validation", metadata={"help": "Split of --dataset-name to validate on."})
    test_split: str = field(default="test", metadata={"help": "Split of --dataset-name to test on."})
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
    text_pair_column: Optional[str] = field(
        default=None,
        metadata={
            "help": "Second text of a sentence pair (e.g. sentence2): the two texts are tokenized as a pair, with "
            "[SEP] between them and segment ids."
        },
    )
    label_columns: Optional[str] = field(
        default=None,
        metadata={"help": "Comma-separated 0/1 columns, one per label: multi-label classification."},
    )
    problem_type: Optional[str] = field(
        default=None,
        metadata={
            "help": "The task shape (default: detected from the labels, and logged).",
            "choices": ["single_label_classification", "multi_label_classification", "regression"],
        },
    )
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
    long_text: str = field(
        default="truncate",
        metadata={
            "help": "Texts longer than --max-length: truncate (keep the start), head_tail (keep the first "
            "--head-tokens and the last tokens; Sun et al. 2019), or windows (overlapping windows, each trained with "
            "its document's label; evaluation and prediction average the windows of each document).",
            "choices": ["truncate", "head_tail", "windows"],
        },
    )
    head_tokens: Optional[int] = field(
        default=None,
        metadata={
            "help": "head_tail: tokens kept from the start of a text (default: 128, or half the tokens where "
            "--max-length leaves fewer than 256)."
        },
    )
    stride: Optional[int] = field(
        default=None,
        metadata={"help": "windows: tokens each window shares with the one before (default: a quarter of a window)."},
    )
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
        named_pairs = dataset_pair_columns(self.dataset)[1]
        if self.long_text != "truncate" and (self.text_pair_column or named_pairs):
            fix = "drop it or --text-pair-column"
            if named_pairs:  # a pair too long for --max-length is truncated, the longer text first
                fix = f"--dataset {self.dataset} holds sentence pairs, which are truncated: drop --long-text"
            raise HfclfInputError(f"--long-text {self.long_text} takes single texts; {fix}.")
        if self.stride is None:
            self.stride = max(0, (self.max_length - SPECIAL_TOKENS) // 4)
        if self.head_tokens is None:  # Sun et al.'s 128 of 512; a shorter input keeps as much tail as head
            budget = (self.max_length - SPECIAL_TOKENS) // 2 if self.long_text == "head_tail" else 128  # else unread
            self.head_tokens = max(1, min(128, budget))
        if self.stride < 0 or self.head_tokens < 1:
            flag, value = ("--stride", self.stride) if self.stride < 0 else ("--head-tokens", self.head_tokens)
            raise HfclfInputError(f"{flag} must be {'0' if flag == '--stride' else '1'} or more, got {value}.")
        shortest = shortest_max_length(self.long_text, self.head_tokens, self.stride)
        if self.max_length < shortest:
            window = self.max_length - SPECIAL_TOKENS
            if self.long_text == "windows":
                fix = f"pass --stride {max(0, window // 4)} (a quarter of the window)" if window > 0 else ""
                raise HfclfInputError(
                    f"--stride {self.stride} must be smaller than the window (--max-length {self.max_length} minus "
                    f"the {SPECIAL_TOKENS} special tokens), or windows would never advance; "
                    f"{fix + ' or ' if fix else 'pass '}a --max-length of {shortest} or more."
                )
            fix = f"pass --head-tokens {window // 2} (half the budget)" if window > 1 else ""
            raise HfclfInputError(
                f"--head-tokens {self.head_tokens} must leave room for a tail in --max-length "
                f"{self.max_length}; {fix + ' or ' if fix else 'pass '}a --max-length of {shortest} or more."
            )
        if self.dataset and self.dataset_name:
            raise HfclfInputError("Pass --dataset (a named dataset) or --dataset-name (any Hub dataset), not both.")


SPECIAL_TOKENS = 2  # [CLS] and [SEP] around each window or head and tail


def shortest_max_length(long_text: str, head_tokens: int, stride: int) -> int:
    """The fewest tokens per input that `--long-text` can work with: a window longer than its stride (windows), a head
    with room for a tail (head_tail)."""
    needed = {"windows": stride + 1, "head_tail": head_tokens + 1}.get(long_text, 0)
    return needed + SPECIAL_TOKENS if needed else 1


# GoEmotions' 27 emotions and neutral, in the order of their ids (its emotions.txt).
GO_EMOTIONS = tuple(
    "admiration amusement anger annoyance approval caring confusion curiosity desire disappointment disapproval "
    "disgust embarrassment excitement fear gratitude grief joy love nervousness optimism pride realization relief "
    "remorse sadness surprise neutral".split()
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
    text_pair_column: Optional[str] = None
    problem_type: Optional[str] = None  # None: single-label classification
    # TSV files whose fields are quoted like CSV (GoEmotions); other TSVs are read without quoting.
    quoted: bool = False
    # Column names for header-less files (the original AG News CSVs have none).
    column_names: Optional[tuple[str, ...]] = None
    # Subtracted from the local labels (AG News numbers its classes 1..4).
    label_offset: int = 0
    hub_id: Optional[str] = None
    folder: Optional[str] = None  # under <data_dir>, when not the dataset's name (the ratings live in imdb/)
    # (our split, Hub split) pairs
    hub_splits: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))
    hub_text_column: str = "text"
    hub_label_column: str = "label"
    hub_config: Optional[str] = None


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
        DatasetSpec(
            name="imdb_ratings",
            label_names=(),
            local_files=(("train", "train_ratings.csv.gz"), ("test", "test_ratings.csv.gz")),
            label_column="rating",
            problem_type="regression",
            folder="imdb",
        ),
        DatasetSpec(
            name="stsb",
            label_names=(),
            local_files=(("train", "train.tsv.gz"), ("validation", "dev.tsv.gz")),
            text_columns=("sentence1",),
            text_pair_column="sentence2",
            label_column="score",
            problem_type="regression",
            hub_id="nyu-mll/glue",
            hub_config="stsb",
            hub_splits=(("train", "train"), ("validation", "validation")),
        ),
        DatasetSpec(
            name="rte",
            label_names=("entailment", "not_entailment"),
            local_files=(("train", "train.tsv.gz"), ("validation", "dev.tsv.gz")),
            text_columns=("sentence1",),
            text_pair_column="sentence2",
            hub_id="nyu-mll/glue",
            hub_config="rte",
            hub_splits=(("train", "train"), ("validation", "validation")),
        ),
        DatasetSpec(
            name="go_emotions",
            label_names=GO_EMOTIONS,
            local_files=(("train", "train.tsv.gz"), ("validation", "dev.tsv.gz")),
            column_names=("text", "labels", "id"),
            label_column="labels",
            problem_type="multi_label_classification",
            quoted=True,
            hub_id="google-research-datasets/go_emotions",
            hub_config="simplified",
            hub_splits=(("train", "train"), ("validation", "validation")),
            hub_label_column="labels",
        ),
    )
}


def load_raw_datasets(
    data_args: DataArguments,
    seed: int = 42,
    need_train: bool = True,
    task_source: str | None = None,
    splits: tuple[str, ...] = SPLITS,
) -> datasets.DatasetDict:
    """
    Load, validate and split the data described by `data_args`.

    Returns a `DatasetDict` with the splits `train` (if present), `validation` (carved out of train when
    missing) and `test` (if present); each has the columns `text`, `text_pair` (sentence pairs only) and `label`:
    a `ClassLabel`, a `Sequence(ClassLabel)` (multi-label) or a float (regression), see `hfclf.data.labels`. The
    same `seed` always gives the same splits. Pass `need_train=False` when only evaluating, and `task_source` (e.g.
    "the model in runs/x") when that sets `data_args.problem_type`, so that data of another shape is refused with
    the right fix. Only the `splits` named are read (evaluation reads the one it scores): an empty `DatasetDict`
    when the data has none of them.
    """
    _check_split_arguments(data_args)
    frames, label_names, problem_type = _load_frames(data_args, need_train, task_source, skip=set(SPLITS) - {*splits})
    if need_train and "train" not in frames:
        raise HfclfInputError("No training data. Pass --dataset NAME or --train-file PATH.")
    if not frames and set(splits) != set(SPLITS):
        return datasets.DatasetDict()  # none of the splits asked for: the caller names the one it needs
    if not frames:
        raise HfclfInputError(
            "No data. Pass --dataset NAME or at least one of --train-file/--validation-file/--test-file."
        )

    label_column = data_args.label_column or "label"
    label, names, problem_type = encode_labels(frames, label_names, problem_type, label_column, task_source)
    columns = {"text": datasets.Value("string")}
    if "text_pair" in next(iter(frames.values()))[0]:
        columns["text_pair"] = datasets.Value("string")
    features = datasets.Features({**columns, "label": label})
    raw = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_pandas(frames[split][0], features=features, preserve_index=False)
            for split in SPLITS
            if split in frames
        }
    )
    raw = _resize_splits(raw, data_args, seed)
    what = "a number to predict" if problem_type == REGRESSION else f"{len(names)} classes ({', '.join(names)})"
    logger.info("Data: %s; %s", ", ".join(f"{split}={len(ds):,}" for split, ds in raw.items()), what)
    return raw


def task_shape_of(data_args: DataArguments) -> str:
    """The task shape the arguments train: --problem_type, multi-label for --label-columns, a named dataset's own;
    otherwise read (and logged) from the training labels."""
    if data_args.problem_type:
        return data_args.problem_type
    if data_args.label_columns:
        return MULTI_LABEL
    if data_args.dataset:
        return _get_spec(data_args.dataset).problem_type or SINGLE_LABEL
    return problem_type_of(load_raw_datasets(data_args, need_train=True)["train"])


def dataset_pair_columns(name: Optional[str]) -> tuple[Optional[list[str]], Optional[str]]:
    """The columns of the first and the second texts of a named sentence-pair dataset (None, None for others)."""
    spec = DATASETS.get(name or "")
    if spec is None or not spec.text_pair_column:
        return None, None
    return list(spec.text_columns), spec.text_pair_column


def problem_type_of(dataset: datasets.Dataset) -> str:
    """The task shape of a split from [`load_raw_datasets`], read off its label feature."""
    label = dataset.features["label"]
    if isinstance(label, datasets.Sequence):
        return MULTI_LABEL
    return SINGLE_LABEL if isinstance(label, datasets.ClassLabel) else REGRESSION


def label_names_of(dataset: datasets.Dataset) -> list[str]:
    """The class names of a split (for regression, the name of the value)."""
    label = dataset.features["label"]
    if isinstance(label, datasets.Sequence):
        return list(label.feature.names)
    return list(label.names) if isinstance(label, datasets.ClassLabel) else ["value"]


# ---------------------------------------------------------------------------------------------------------
# Reading sources
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Columns:
    """Which columns of a table hold the text, the second text of a pair and the label(s)."""

    text: Optional[list[str]] = None  # None: guessed
    text_pair: Optional[str] = None
    label: Optional[str] = None  # None: guessed
    labels: Optional[list[str]] = None  # one 0/1 column per label (multi-label)
    separator: str = " "


def _user_columns(data_args: DataArguments) -> Columns:
    label_columns = parse_text_columns(data_args.label_columns, "--label-columns")
    if label_columns and data_args.label_column:
        raise HfclfInputError("Pass --label-column (one label column) or --label-columns (0/1 columns), not both.")
    return Columns(
        text=parse_text_columns(data_args.text_columns),
        text_pair=data_args.text_pair_column,
        label=data_args.label_column,
        labels=label_columns,
        separator=data_args.text_separator,
    )


def _load_frames(data_args: DataArguments, need_train: bool, task_source: str | None = None, skip: set[str] = ()):
    """
    Read every available split but those in `skip` into `{split: (DataFrame[text, (text_pair,) label], description)}`.

    Also returns the class names when they are known (named datasets), else None, and the task shape when the
    arguments or the dataset set it, else None (detected from the labels).
    """
    user_files = {
        split: path
        for split, path in zip(SPLITS, (data_args.train_file, data_args.validation_file, data_args.test_file))
        if path and split not in skip
    }
    columns = _user_columns(data_args)
    if columns.labels and data_args.problem_type not in (None, MULTI_LABEL):
        fix = "drop --problem-type or them" if task_source is None else f"{task_source} does not; drop them"
        raise HfclfInputError(f"--label-columns means multi-label classification; {fix}.")
    frames, label_names, problem_type = {}, None, data_args.problem_type or (MULTI_LABEL if columns.labels else None)

    if data_args.dataset:
        spec = _get_spec(data_args.dataset)
        given = [
            flag
            for flag, value in (
                ("--text-columns", columns.text),
                ("--label-column", columns.label),
                ("--label-columns", columns.labels),
                ("--text-pair-column", columns.text_pair),
            )
            if value
        ]
        if given and not user_files:
            raise HfclfInputError(
                f"{'/'.join(given)} apply to --train-file/--validation-file/--test-file; --dataset {spec.name} has "
                "its own columns. Drop them."
            )
        label_names = list(spec.label_names) or None
        problem_type = data_args.problem_type or spec.problem_type
        if spec.problem_type == MULTI_LABEL and problem_type != MULTI_LABEL:
            fix = "drop --problem_type" if task_source is None else other_task_fix(problem_type, "", task_source)
            raise HfclfInputError(
                f"{spec.name} is {TASKS[MULTI_LABEL].description} (each example has a list of classes); {fix}."
            )
        if spec.problem_type and not data_args.problem_type:  # the others' shape is detected (and logged) from labels
            shape = TASKS[spec.problem_type].description
            log_task_shape(spec.problem_type, f"{spec.name} is {shape} (the dataset's task shape)")
        # Files passed explicitly replace the named dataset's own split, so that e.g. `--dataset ag_news
        # --train-file my_train.csv` works where no AG News train split is available.
        need_named_train = need_train and "train" not in user_files
        frames = _named_dataset_frames(spec, data_args, need_named_train, skip={*skip, *user_files})
    elif data_args.dataset_name:
        frames = _hub_dataset_frames(data_args, columns, skip={*skip, *user_files})

    guessed_in = None  # the first file's columns are every file's: no split reads another column
    for split, path in user_files.items():
        description = f"{split} file {path}"
        df, columns = _select_columns(_read_table(Path(path), description), description, columns, guessed_in)
        guessed_in = guessed_in or description
        frames[split] = (df, description)
    return frames, label_names, problem_type


def _get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise HfclfInputError(
            f"Unknown dataset '{name}'. Pass --dataset with one of: {', '.join(DATASETS)}; "
            "or pass your own files (--train-file to train, --test-file to evaluate)."
        )
    return DATASETS[name]


def _named_dataset_frames(spec: DatasetSpec, data_args: DataArguments, need_train: bool, skip: set[str]):
    """Read a named dataset from `<data_dir>/<name>/` when that folder exists, else from the Hub."""
    data_dir = data_args.data_dir or os.environ.get(DATA_DIR_ENV)
    local_dir = Path(data_dir).expanduser() / (spec.folder or spec.name) if data_dir else None
    if local_dir is not None and local_dir.is_dir():
        return _local_named_frames(spec, local_dir, need_train, skip)
    return _hub_named_frames(spec, data_dir, skip)


def _local_named_frames(spec: DatasetSpec, local_dir: Path, need_train: bool, skip: set[str]):
    frames = {}
    columns = Columns(text=list(spec.text_columns), text_pair=spec.text_pair_column, label=spec.label_column)
    for split, file_name in spec.local_files:
        path = local_dir / file_name
        if split in skip or not path.is_file():
            continue
        description = f"{spec.name} {split} file {path}"
        df = _read_table(path, description, column_names=spec.column_names, quoted=spec.quoted)
        df = _select_columns(df, description, columns)[0]
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
    where = f"{data_dir}/{spec.folder or spec.name}" if data_dir else f"${DATA_DIR_ENV} (not set)"
    local_hint = f"set {DATA_DIR_ENV} or --data-dir to a folder with {spec.folder or spec.name}/" + ", ".join(
        f for _, f in spec.local_files
    )
    if spec.hub_id is None:
        raise HfclfInputError(
            f"Dataset '{spec.name}' has no local copy in {where} and is not on the Hub. Fix: {local_hint}."
        )
    logger.info("No local copy of '%s' in %s; loading %s from the Hub.", spec.name, where, spec.hub_id)
    hub = _load_from_hub(
        spec.hub_id, spec.hub_config, f"Dataset '{spec.name}' has no local copy in {where} and", local_hint
    )
    columns = Columns(text=[spec.hub_text_column], text_pair=spec.text_pair_column, label=spec.hub_label_column)
    if spec.text_pair_column:  # the GLUE pairs keep their column names on the Hub
        columns.text = list(spec.text_columns)
    return _hub_splits(hub, dict(spec.hub_splits), columns, spec.hub_id, skip)


def _hub_dataset_frames(data_args: DataArguments, columns: Columns, skip: set[str]):
    """Any dataset of the Hub (`--dataset-name`), its columns chosen as for files."""
    name = data_args.dataset_name
    hub = _load_from_hub(name, data_args.dataset_config_name, f"Dataset {name} cannot be loaded:", "use local files")
    splits = {"train": data_args.train_split, "validation": data_args.validation_split, "test": data_args.test_split}
    if data_args.train_split not in hub and "train" not in skip:
        raise HfclfInputError(
            f"Dataset {name} has no split '{data_args.train_split}' (it has: {', '.join(hub)}); pass --train-split "
            "with one of those."
        )
    return _hub_splits(hub, splits, columns, name, skip)


def _load_from_hub(name: str, config: Optional[str], what: str, local_hint: str):
    try:
        return datasets.load_dataset(name, **({"name": config} if config else {}))
    except Exception as err:
        if not (_hub_offline() or _is_network_error(err)):
            raise HfclfInputError(
                f"{what} {first_line(err)}. Check the dataset name and --dataset-config-name."
            ) from err
        reason = "the Hub is offline" if _hub_offline() else f"the Hub could not be reached ({type(err).__name__})"
        raise HfclfInputError(
            f"{what} {reason}. Fix: {local_hint}, or go online so it can be downloaded from the Hub as {name}."
        ) from err


def _hub_splits(hub, splits: dict[str, str], columns: Columns, name: str, skip: set[str]) -> dict:
    frames, guessed_in = {}, None
    for split, hub_split in splits.items():
        if split in skip or hub_split not in hub:
            continue
        description = f"{split} split (Hub {name}:{hub_split})"
        dataset = hub[hub_split]
        df, columns = _select_columns(dataset.to_pandas(), description, columns, guessed_in)
        label_feature = dataset.features.get(columns.label or "label")  # the label column read (or guessed)
        guessed_in = guessed_in or description
        names = getattr(getattr(label_feature, "feature", label_feature), "names", None)
        if names and columns.labels is None:  # class ids of a ClassLabel become their names
            df["label"] = [
                [names[i] for i in value] if isinstance(value, (list, np.ndarray)) else names[value]
                for value in df["label"]
            ]
        frames[split] = (df, description)
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


def table_type(path: Path) -> str:
    """The type of a data file by its name (`csv`, `jsonl`, ...), a `.gz` ending set aside."""
    return Path(path.name.lower().removesuffix(".gz")).suffix.lstrip(".")


def _read_table(
    path: Path,
    description: str,
    column_names: Optional[tuple[str, ...]] = None,
    keep_blank_lines: bool = False,
    quoted: bool = False,
) -> pd.DataFrame:
    """Read a csv/tsv/json/jsonl/parquet file (optionally gzipped) into a DataFrame of at least one row;
    `keep_blank_lines` keeps a blank line of a csv/tsv as an empty row (so that rows stay aligned with the input's
    lines). TSV fields are read without quoting unless `quoted`."""
    frame = _parse_table(path, description, column_names, keep_blank_lines, quoted)
    if len(frame) == 0:
        raise HfclfInputError(f"The {description} has no rows (a header only?); pass a file with at least one example.")
    return frame


def _parse_table(
    path: Path, description: str, column_names: Optional[tuple[str, ...]], keep_blank_lines: bool, quoted: bool
) -> pd.DataFrame:
    if path.is_dir():
        raise HfclfInputError(f"The {description} is a folder, not a file. Pass the path of the file inside it.")
    compressed = path.name.lower().endswith(".gz")
    file_type = table_type(path)
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
    # index_col=False: rows with more fields than the header are an error, not a first column turned into the index
    table_options = {"header": header, "names": column_names, "index_col": False, **na_options}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # pandas would drop the extra fields
            if file_type == "csv":
                return pd.read_csv(path, **table_options)
            if file_type == "tsv":
                quoting = csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE
                return pd.read_csv(path, sep="\t", quoting=quoting, **table_options)
        if file_type == "parquet":
            if compressed:
                with gzip.open(path, "rb") as f:
                    return pd.read_parquet(f)
            return pd.read_parquet(path)
        # JSON lines, or one JSON array of records (whatever the extension says); a byte order mark is skipped.
        with (gzip.open if compressed else open)(path, "rt", encoding="utf-8-sig") as f:
            is_array = f.read(1024).lstrip().startswith("[")
        return pd.read_json(path, lines=not is_array, dtype=False, encoding="utf-8-sig")
    except HfclfInputError:
        raise
    except (pd.errors.ParserWarning, pd.errors.ParserError) as err:
        if isinstance(err, pd.errors.ParserError) and "fields in line" not in str(err):
            raise HfclfInputError(f"Could not read {description} as {file_type}: {first_line(err)}.") from None
        separator = "a tab" if file_type == "tsv" else "a comma"
        raise HfclfInputError(
            f"The {description} has rows with more fields than its header ({first_line(err)}); quote the texts that "
            f"contain {separator}, or fix those rows."
        ) from None
    except Exception as err:
        raise HfclfInputError(
            f"Could not read {description} as {file_type}: {first_line(err)}. Check that the file matches its "
            "extension."
        ) from err


def parse_text_columns(text_columns: Optional[str], flag: str = "--text-columns") -> Optional[list[str]]:
    if text_columns is None:
        return None
    columns = [c.strip() for c in text_columns.split(",") if c.strip()]
    if not columns:
        raise HfclfInputError(f"{flag} '{text_columns}' names no column. Pass e.g. {flag} title,description.")
    return columns


def join_text_columns(df: pd.DataFrame, names: list[str], separator: str) -> pd.Series:
    """The text of each row: the columns `names` (a missing value as ''), joined by `separator`."""
    parts = [df[name].fillna("").astype(str) for name in names]
    return parts[0].str.cat(parts[1:], sep=separator) if len(parts) > 1 else parts[0]


def _find_column(df: pd.DataFrame, candidates: Iterable[str]) -> Optional[str]:
    by_lower = {str(c).lower(): c for c in df.columns}
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
    return None


def log_guessed_column(name: str, kind: str, flag: str) -> None:
    """Say which column was guessed as the `kind` (text, label) and which flag chooses another."""
    logger.info("Using column '%s' as the %s; pass %s to choose another.", name, kind, flag)


def headerless_hint(df: pd.DataFrame) -> str:
    """A sentence for column errors when the header reads like a data row (a number, or a sentence, as a column
    name: a file without a header row, such as AG News' csv files), else ''."""
    names = [str(name).strip() for name in df.columns]
    if any(NUMBER.fullmatch(name) or len(name) > 60 for name in names):
        return (
            " Its first row looks like data, not column names: add a header row naming the columns (e.g. label,text)."
        )
    return ""


def _select_columns(
    df: pd.DataFrame, description: str, columns: Columns, guessed_in: str | None = None
) -> tuple[pd.DataFrame, Columns]:
    """Select and check the text, text pair and label columns: a DataFrame with exactly `text`, `text_pair` (pairs
    only) and `label` (for `--label-columns`, the list of the columns that are 1), and the columns it read. Columns
    not given are guessed, and the guess is logged with how to choose others; `guessed_in`: the file whose columns
    `columns` are (every file of a run reads the same columns)."""

    def guessed(kind: str, name: str, flag: str) -> None:
        if guessed_in is None:
            log_guessed_column(name, kind, flag)

    available = ", ".join(map(str, df.columns))

    def column(name: str, flag: str) -> str:
        if name in df.columns:
            return name
        if guessed_in is not None:
            raise HfclfInputError(
                f"Column '{name}' (as in {guessed_in}) not found in {description} (columns: {available}). Give "
                f"every file the same columns ({flag} names them for every file)."
            )
        raise HfclfInputError(
            f"Column '{name}' not found in {description} (columns: {available}). Pass {flag} with one of those."
            + headerless_hint(df)
        )

    selected, text_columns = _selected_texts(df, description, columns, column, guessed)
    if columns.labels:
        flags = df[[column(c, "--label-columns") for c in columns.labels]]
        if not flags.isin([0, 1, True, False]).all().all():
            raise HfclfInputError(
                f"--label-columns of {description} must hold 0 or 1 (or true/false) in every row; fix the columns."
            )
        values = flags.to_numpy(dtype=bool)
        labels = [[columns.labels[j] for j in np.flatnonzero(row)] for row in values]
        return pd.DataFrame({**selected, "label": labels}), replace(columns, text=text_columns)
    label_column = columns.label or _find_column(df, LABEL_COLUMN_CANDIDATES)
    if label_column is None:
        used = {*text_columns, columns.text_pair}
        flags = [str(c) for c in df.columns if c not in used and df[c].isin([0, 1, True, False]).all()]
        or_flags = f", or --label-columns {','.join(flags)} (one 0/1 column per label)" if flags else ""
        raise HfclfInputError(
            f"No label column found in {description} (columns: {available}). Pass --label-column with one of "
            f"those{or_flags}." + headerless_hint(df)
        )
    if not columns.label:
        guessed("label", label_column, "--label-column")
    label = df[column(label_column, "--label-column")]
    missing_label = label.isna().to_numpy()
    if missing_label.any():
        raise HfclfInputError(
            f"{int(missing_label.sum())} rows of {description} have no label "
            f"(first at row index {int(np.argmax(missing_label))}). "
            "Remove or fill those rows."
        )
    return pd.DataFrame({**selected, "label": label.to_numpy()}), replace(
        columns, text=text_columns, label=label_column
    )


def _selected_texts(df: pd.DataFrame, description: str, columns: Columns, column, guessed) -> tuple[dict, list[str]]:
    """`({"text": ..., "text_pair": ...}, text columns)` of `df`: the given or guessed text columns joined, the
    pair column (pairs only), with empty texts refused. `column` checks a name; `guessed` logs a guess."""
    text_columns = columns.text or [_find_column(df, TEXT_COLUMN_CANDIDATES)]
    if text_columns == [None]:
        raise HfclfInputError(
            f"No text column found in {description} (columns: {', '.join(map(str, df.columns))}). "
            "Pass --text-columns with one or more of those." + headerless_hint(df)
        )
    if not columns.text:
        guessed("text", text_columns[0], "--text-columns")
    selected = {"text": join_text_columns(df, [column(c, "--text-columns") for c in text_columns], columns.separator)}
    if columns.text_pair:
        selected["text_pair"] = df[column(columns.text_pair, "--text-pair-column")].fillna("").astype(str)
    for name, text in selected.items():
        empty = text.str.strip().eq("").to_numpy()
        if empty.any():
            what = "empty text" if name == "text" else f"an empty second text ({columns.text_pair})"
            raise HfclfInputError(
                f"{int(empty.sum())} rows of {description} have {what} (first at row index {int(np.argmax(empty))}). "
                "Remove or fill those rows."
            )
    return {name: text.to_numpy(dtype=object) for name, text in selected.items()}, text_columns


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
    Seeded stratified split into (train, test) parts; a random split for multi-label rows and regression values (no
    classes), and for very rare classes.

    `Dataset.train_test_split(stratify_by_column=...)` reads the labels row by row in datasets 5 (seconds
    for 25k rows), so the indices are drawn with scikit-learn from the label column read through Arrow.
    """
    from sklearn.model_selection import train_test_split

    labels = column_array(dataset, "label")
    indices = np.arange(len(dataset))
    if problem_type_of(dataset) == SINGLE_LABEL:
        try:
            train_indices, test_indices = train_test_split(indices, **sizes, stratify=labels, random_state=seed)
            return dataset.select(train_indices), dataset.select(test_indices)
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


def column_array(dataset: datasets.Dataset, name: str) -> np.ndarray:
    """A column as a numpy array."""
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
        "train": ("max_train_samples", data_args.max_train_samples),
        "validation": ("max_eval_samples", data_args.max_eval_samples),
        "test": ("max_test_samples", data_args.max_test_samples),
    }
    for split, (flag, limit) in limits.items():
        if split not in raw or limit is None:
            continue
        if limit < len(raw[split]):
            raw[split] = raw[split].shuffle(seed=seed).select(range(limit))
        elif limit > len(raw[split]):
            logger.warning("--%s %s is above the %s %s examples: all of them are used.",
                           flag, f"{limit:,}", f"{len(raw[split]):,}", split)  # fmt: skip
    return raw
