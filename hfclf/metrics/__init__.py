"""Metrics for text classification, and the `compute_metrics` function handed to `transformers.Trainer`."""

from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..errors import HfclfInputError

# The shipped `evaluate` modules; `evaluate.load(path)` works offline.
METRICS_DIR = Path(__file__).resolve().parent
METRIC_PATH = str(METRICS_DIR / "classification")


def load_metric(name: str = "classification", config_name: Optional[str] = None, **kwargs):
    """
    Load a metric with `evaluate`: "classification" and "regression" are the modules shipped with hfclf (they work
    offline), any other name or path goes to `evaluate.load` (Hub names need a connection or a cached copy).
    Extra keyword arguments are passed on to `evaluate.load`.
    """
    # evaluate pulls in transformers.pipelines and torch (seconds), so it is only imported when needed.
    import evaluate

    if (METRICS_DIR / name).is_dir():
        return evaluate.load(str(METRICS_DIR / name), config_name, **kwargs)
    try:
        return evaluate.load(name, config_name, **kwargs)
    except (OSError, ConnectionError) as err:
        raise HfclfInputError(
            f"Could not load metric '{name}' ({type(err).__name__}). Go online so it can be downloaded, "
            "or use the built-in 'classification' or 'regression' metric."
        ) from err


def build_compute_metrics(
    problem_type: str = "single_label_classification", metric=None, thresholds=None, doc_ids=None
) -> Callable[[object], dict[str, float]]:
    """
    Build a `compute_metrics` function for `transformers.Trainer`, for a task shape (see `hfclf.data.tasks`).

    It turns model outputs into decisions (`hfclf.data.scoring.decisions`: argmax for single-label; the sigmoid
    probability at or above `thresholds`, 0.5 by default, for multi-label; the output itself for regression) and
    returns the metric's scores as floats, plus `samples`, the number of examples scored. With `doc_ids` (one per
    row, from `--long_text windows`), documents are scored, each from the mean of its windows' logits, not windows.
    `metric` is an `evaluate` module or a name for [`load_metric`]; by default the shipped module of the task.
    """
    from ..data.scoring import aggregate_windows, decisions, sigmoid
    from ..data.tasks import MULTI_LABEL, REGRESSION, get_task

    task = get_task(problem_type)
    if metric is None or isinstance(metric, str):
        metric = load_metric(metric or task.metric, task.metric_config, keep_in_memory=True)

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits, labels = _unpack(eval_pred)
        labels = np.asarray(labels)
        if doc_ids is not None:
            logits, first = aggregate_windows(logits, doc_ids)
            labels = labels[first]
        extra = {}
        if task.problem_type == MULTI_LABEL:
            references = labels.round().astype(np.int64)
            extra["scores"] = sigmoid(logits)
        elif task.problem_type == REGRESSION:
            references = labels.astype(float).reshape(-1)
        else:
            references = labels.astype(np.int64)
        # Already class ids when `preprocess_logits_for_metrics` took the argmax.
        predictions = logits if logits.ndim == 1 else decisions(logits, task.problem_type, thresholds)
        scores = metric.compute(predictions=predictions, references=references, **extra)
        # How many examples were scored: under multi-process evaluation it must equal the dataset size.
        return {**{key: float(value) for key, value in scores.items()}, "samples": len(references)}

    return compute_metrics


def _unpack(eval_pred) -> tuple[np.ndarray, Union[np.ndarray, tuple]]:
    if hasattr(eval_pred, "predictions"):
        predictions, labels = eval_pred.predictions, eval_pred.label_ids
    else:
        predictions, labels = eval_pred
    # Models that also return hidden states or attentions give a tuple whose first item is the logits.
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return np.asarray(predictions), labels
