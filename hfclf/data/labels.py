"""Labels of every task shape: detecting the shape from the data, and encoding each split's labels.

- single-label classification: one class per example, as a class name or id -> a `ClassLabel` id;
- multi-label classification: a list of classes per example (a list, a JSON list, names or ids separated by `,` or
  `;`, or one 0/1 column per class with `--label_columns`) -> a `Sequence(ClassLabel)` of ids;
- regression: a number per example -> a float.

When the data does not say (`--problem_type` unset), the shape is detected and one log line says what was detected
and how to override it. Classes are those of the training split (or of the named dataset); a class of another split
that training never saw is an error.
"""

import json
import logging
import re

import datasets
import numpy as np
import pandas as pd

from ..errors import HfclfInputError
from .tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL, TASKS

logger = logging.getLogger("hfclf")

LIST_SEPARATORS = re.compile(r"\s*[,;]\s*")


def encode_labels(
    frames: dict,
    label_names: list[str] | None,
    problem_type: str | None,
    label_column: str = "label",
    task_source: str | None = None,
):
    """Encode the `label` column of every split (`{split: (DataFrame, description)}`) in place.

    `label_names`: the classes of a named dataset (None: taken from the data). `task_source`: what set
    `problem_type` when it is not `--problem_type` (e.g. "the model in runs/x"), for the errors of data that does not
    fit it. Returns `(feature, names, problem_type)`: the `datasets` feature of the encoded labels, the class names
    (for regression, the name of the value), and the task shape.
    """
    if problem_type is None:
        problem_type = detect_problem_type(frames)
    elif problem_type not in TASKS:
        raise HfclfInputError(f"Unknown --problem-type '{problem_type}'; choose one of: {', '.join(TASKS)}.")
    if problem_type == REGRESSION:
        for df, description in frames.values():
            df["label"] = _numbers(df["label"], description, task_source)
        return datasets.Value("float32"), [label_column], problem_type
    if problem_type == MULTI_LABEL:
        names = _encode_multi_label(frames, label_names, task_source)
        return datasets.Sequence(datasets.ClassLabel(names=names)), names, problem_type
    names = _encode_single_label(frames, label_names, task_source)
    return datasets.ClassLabel(names=names), names, problem_type


def other_task_fix(problem_type: str, flag_advice: str, task_source: str | None) -> str:
    """How to fix data that does not fit `problem_type`: pass --problem_type with `flag_advice`, or, when a model
    sets the task shape (`task_source`), use data of that shape."""
    if task_source is None:
        return f"pass --problem_type {flag_advice}"
    return f"use data of that shape: {task_source} does {TASKS[problem_type].description}"


def detect_problem_type(frames: dict) -> str:
    """The task shape that the labels show, logged with the way to override it."""
    labels = pd.concat([df["label"] for df, _ in frames.values()], ignore_index=True)
    kinds = {_kind(value) for value in labels}
    if "list" in kinds and kinds - {"list"}:
        example = next(value for value in labels if _kind(value) != "list")
        raise HfclfInputError(
            f"The labels mix lists and single values (e.g. {example!r}); give every example a list of labels "
            "(multi-label) or one label each."
        )
    if kinds == {"list"} or (kinds <= {"text", "text list"} and "text list" in kinds):
        detected, why = MULTI_LABEL, "labels are lists of classes"
    elif pd.api.types.is_float_dtype(labels) and not np.all(np.mod(labels.to_numpy(), 1) == 0):
        detected, why = REGRESSION, f"labels are numbers with fractions ({labels.nunique()} distinct values)"
    else:
        # counted in the training split: another split may give the same classes as ids (a named dataset's test file)
        reference = frames["train"][0]["label"] if "train" in frames else labels
        detected, why = SINGLE_LABEL, f"each example has one of {reference.astype(str).nunique()} classes"
    log_task_shape(detected, f"Detected {TASKS[detected].description}: {why}")
    return detected


def log_task_shape(problem_type: str, reason: str) -> None:
    """Log the task shape a run takes (`reason`: how it was chosen), with the --problem_type values that choose
    another."""
    others = " or ".join(other for other in TASKS if other != problem_type)
    logger.info("%s. Pass --problem_type %s to choose otherwise.", reason, others)


def _kind(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "list"
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            return "list"
        return "text list" if LIST_SEPARATORS.search(text) else "text"
    return "number"


def _label_list(value) -> list[str]:
    """The classes of one multi-label example, as strings."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    elif isinstance(value, str) and value.strip().startswith("["):
        try:
            items = json.loads(value)
        except ValueError:
            raise HfclfInputError(f'Label {value!r} is not a valid JSON list; write it like ["a", "b"].') from None
    elif isinstance(value, str):
        items = [item for item in LIST_SEPARATORS.split(value.strip()) if item]
    else:
        items = [value]
    return [str(int(item)) if isinstance(item, float) and item.is_integer() else str(item).strip() for item in items]


def _refuse_fractions(frames: dict, problem_type: str, task_source: str | None) -> None:
    """Labels that are numbers with fractions (scores) are not classes: refused, naming regression."""
    for df, description in frames.values():
        if pd.api.types.is_float_dtype(df["label"]) and _as_integer_labels(df["label"]) is None:
            values = pd.unique(df["label"])
            examples = ", ".join(f"{v:g}" for v in values[:4])
            raise HfclfInputError(
                f"The labels of {description} are non-integer numbers ({len(values)} distinct values, e.g. "
                f"{examples}), which cannot be classes; "
                f"{other_task_fix(problem_type, 'regression to predict them as numbers', task_source)}."
            )


def _encode_multi_label(frames: dict, label_names: list[str] | None, task_source: str | None = None) -> list[str]:
    _refuse_fractions(frames, MULTI_LABEL, task_source)
    lists = {split: [_label_list(value) for value in df["label"]] for split, (df, _) in frames.items()}
    if label_names is None:
        reference = lists["train"] if "train" in lists else [items for values in lists.values() for items in values]
        label_names = sorted({item for items in reference for item in items})
        _check_distinct_names(label_names, "the training data")
    by_name = {name: i for i, name in enumerate(label_names)}
    source = "the training data" if "train" in frames else "the data"
    for split, (df, description) in frames.items():
        ids = []
        for items in lists[split]:
            row = []
            for item in items:
                if item in by_name:
                    row.append(by_name[item])
                elif item.isdigit() and int(item) < len(label_names) and item not in by_name:
                    row.append(int(item))  # a class id of a dataset whose classes have names
                else:
                    raise HfclfInputError(
                        f"{description} has the label '{item}', which is not in {source} ({len(label_names)} labels: "
                        f"{', '.join(label_names[:8])}{' ...' if len(label_names) > 8 else ''}). Fix the labels, or "
                        "train on data that contains it."
                    )
            ids.append(sorted(set(row)))
        df["label"] = pd.Series(ids, index=df.index, dtype=object)
    return label_names


def _numbers(label: pd.Series, description: str, task_source: str | None = None) -> np.ndarray:
    """Regression targets as float32; anything that is not a number is an error naming it."""
    values = pd.to_numeric(label, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        first = label[bad].iloc[0]
        listed = any(_kind(value) in ("list", "text list") for value in label[bad])  # e.g. GoEmotions' "0,1,11"
        advice = (
            "multi_label_classification to treat them as lists of classes"
            if listed
            else "single_label_classification to treat the labels as classes"
        )
        raise HfclfInputError(
            f"{int(bad.sum())} labels of {description} are not numbers (e.g. {first!r} at row index "
            f"{int(np.argmax(bad.to_numpy()))}); a regression target must be a number. Fix them, or "
            f"{other_task_fix(REGRESSION, advice, task_source)}."
        )
    return values.to_numpy(dtype=np.float32)


# ----------------------------------------------------------------------------------------------- single-label


def _as_integer_labels(label: pd.Series) -> pd.Series | None:
    """The labels as int64 if they are all integral numbers (bools count), else None."""
    if pd.api.types.is_bool_dtype(label):
        return label.astype("int64")
    if pd.api.types.is_integer_dtype(label):
        return label.astype("int64")
    if pd.api.types.is_float_dtype(label) and np.all(np.mod(label.to_numpy(), 1) == 0):
        return label.astype("int64")
    return None


def _encode_single_label(frames: dict, label_names: list[str] | None, task_source: str | None = None) -> list[str]:
    """Replace every split's labels by class ids 0..n-1 in place; return the class names."""
    integer = {split: _as_integer_labels(df["label"]) for split, (df, _) in frames.items()}
    _refuse_fractions(frames, SINGLE_LABEL, task_source)
    for split, (df, description) in frames.items():
        if integer[split] is not None:  # class ids: no lists among them
            continue
        lists = df["label"][[_kind(value) == "list" for value in df["label"]]]
        if len(lists):
            raise HfclfInputError(
                f"The labels of {description} are lists of classes (e.g. {lists.iloc[0]!r}), which is "
                f"{TASKS[MULTI_LABEL].description}; "
                f"{other_task_fix(SINGLE_LABEL, 'multi_label_classification', task_source)}."
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
        # The names stay the values: nothing is reinterpreted. Said where the data defines the classes (training);
        # against a model (`task_source`), the data's names are then matched to the model's by name.
        if not np.array_equal(values, np.arange(len(values))) and task_source is None:
            shown = f"1..{len(values)}" if values[0] == 1 and values[-1] == len(values) else str(values.tolist())
            logger.info(
                "Labels %s are class names: class ids 0..%d stand for them in sorted order.", shown, len(values) - 1
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
            "Labels of %s are 1..%d; treating them as 1-based class ids (1 is %s) and shifting to 0..%d. Write the "
            "class names in the data to avoid this guess.",
            description,
            num_labels,
            label_names[0],
            num_labels - 1,
        )
        return values - 1
    bad = sorted({int(v) for v in values[(values < 0) | (values >= num_labels)]})
    raise HfclfInputError(
        f"{description} has labels outside 0..{num_labels - 1} ({', '.join(label_names)}): "
        f"{', '.join(map(str, bad[:10]))}. "
        "Use 0-based class ids or the class names."
    )
