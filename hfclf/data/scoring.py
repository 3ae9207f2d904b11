"""What a classifier's outputs mean for each task shape: probabilities, decisions (a class, the classes above their
thresholds, or a value), tuned thresholds, documents scored from their windows, and the rows that predictions are
written as. Training (predictions.csv), evaluation and `hfclf predict` all go through here.
"""

import numpy as np

from .tasks import MULTI_LABEL, REGRESSION

# Thresholds tried when tuning a multi-label classifier's decision thresholds on validation data.
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
LIST_SEPARATOR = ";"  # between the labels of one example in predictions.csv and `hfclf predict` tables


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of each row of logits (numerically stable)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def probabilities(logits: np.ndarray, problem_type: str) -> np.ndarray | None:
    """Softmax over classes, an independent sigmoid per label (multi-label), or None (regression)."""
    if problem_type == REGRESSION:
        return None
    return sigmoid(logits) if problem_type == MULTI_LABEL else softmax(logits)


def decisions(logits: np.ndarray, problem_type: str, thresholds=None) -> np.ndarray:
    """Class ids (single-label), 0/1 per label at or above its threshold (multi-label; 0.5 by default), or values."""
    if problem_type == REGRESSION:
        return logits.reshape(len(logits), -1)[:, 0]
    if problem_type == MULTI_LABEL:
        cutoff = np.asarray(0.5 if thresholds is None else thresholds, dtype=float)
        return (sigmoid(logits) >= cutoff).astype(np.int64)
    return logits.argmax(axis=-1)


def tune_thresholds(logits: np.ndarray, labels: np.ndarray, per_label: bool = False):
    """The decision threshold (one for all labels, or one per label) that maximizes macro-F1 on `labels`; ties go to
    the threshold nearest 0.5. Per label, each threshold maximizes that label's F1."""
    from sklearn.metrics import f1_score

    scores = sigmoid(logits)
    labels = np.asarray(labels).round().astype(np.int64)
    order = np.argsort(np.abs(THRESHOLD_GRID - 0.5), kind="stable")  # nearest 0.5 first: wins ties
    if not per_label:
        f1 = [f1_score(labels, scores >= THRESHOLD_GRID[i], average="macro", zero_division=0) for i in order]
        return float(THRESHOLD_GRID[order[int(np.argmax(f1))]])
    chosen = []
    for j in range(labels.shape[1]):
        f1 = [f1_score(labels[:, j], scores[:, j] >= THRESHOLD_GRID[i], zero_division=0) for i in order]
        chosen.append(float(THRESHOLD_GRID[order[int(np.argmax(f1))]]))
    return chosen


def aggregate_windows(values: np.ndarray, doc_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(per-document mean of the rows of `values`, the first row of each document)`, documents in the order of
    their first window. A document's logits are the mean of its windows' logits."""
    doc_ids = np.asarray(doc_ids)
    documents, first, inverse = np.unique(doc_ids, return_index=True, return_inverse=True)
    sums = np.zeros((len(documents), *values.shape[1:]), dtype=np.float64)
    np.add.at(sums, inverse, values)
    means = sums / np.bincount(inverse, minlength=len(documents)).reshape(-1, *([1] * (values.ndim - 1)))
    order = np.argsort(first, kind="stable")
    return means[order].astype(values.dtype), first[order]


def label_list(row: np.ndarray, label_names: list[str]) -> str:
    """The names of the labels a 0/1 row marks, joined: `joy;love` (empty when none is)."""
    return LIST_SEPARATOR.join(name for name, on in zip(label_names, row) if on)


def prediction_rows(logits: np.ndarray, problem_type: str, label_names: list[str], thresholds=None, top_k: int = 0):
    """One dict per example: the prediction (`label` and its `score`, the `labels` above their thresholds, or the
    `value`), then the probability of every class or label, then the `top_k` most likely classes."""
    chosen = decisions(logits, problem_type, thresholds)
    if problem_type == REGRESSION:
        return [{"value": round(float(value), 6)} for value in chosen]
    probs = probabilities(logits, problem_type)
    rows = []
    ranked = np.argsort(-probs, axis=-1, kind="stable")
    for i, p in enumerate(probs):
        if problem_type == MULTI_LABEL:
            row = {"labels": label_list(chosen[i], label_names)}
        else:
            row = {"label": label_names[chosen[i]], "score": round(float(p[chosen[i]]), 6)}
        row.update({f"prob_{name}": round(float(value), 6) for name, value in zip(label_names, p)})
        for rank in range(top_k):
            label = ranked[i, rank]
            row[f"top{rank + 1}_label"] = label_names[label]
            row[f"top{rank + 1}_score"] = round(float(p[label]), 6)
        rows.append(row)
    return rows


def per_label_rows(gold: np.ndarray, predicted: np.ndarray, label_names: list[str]) -> list[dict]:
    """Multi-label: precision, recall, F1 and support (gold examples) of each label, from 0/1 matrices."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, average=None, zero_division=0)
    return [
        {"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
        for name, p, r, f, n in zip(label_names, precision, recall, f1, support)
    ]


def multi_hot_rows(id_lists, num_labels: int) -> np.ndarray:
    """Multi-label gold as lists of label ids -> a 0/1 matrix, one row per example."""
    rows = np.zeros((len(id_lists), num_labels), dtype=np.int64)
    for i, ids in enumerate(id_lists):
        rows[i, np.asarray(ids, dtype=int)] = 1
    return rows


def gold_cells(gold, problem_type: str, label_names: list[str]) -> list:
    """The true label of each example as predictions.csv shows it: a class name, the names of its labels joined
    (multi-label gold is the list of its label ids), or the value."""
    if problem_type == REGRESSION:
        gold = np.asarray(gold)
        if gold.dtype == np.float32:  # the model's targets: 177.05 as written, not its float32's 177.050003
            gold = gold.astype(str).astype(np.float64)
        return [round(float(value), 6) for value in gold]
    if problem_type == MULTI_LABEL:
        return [LIST_SEPARATOR.join(label_names[i] for i in ids) for ids in gold]
    return [label_names[i] for i in gold]
