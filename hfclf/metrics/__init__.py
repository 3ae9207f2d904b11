"""Metrics for text classification, and the `compute_metrics` function handed to `transformers.Trainer`."""

from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..errors import HfclfInputError

# The shipped `evaluate` module; `evaluate.load(METRIC_PATH)` works offline.
METRIC_PATH = str(Path(__file__).resolve().parent / "classification")
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")


def load_metric(name: str = "classification", config_name: Optional[str] = None, **kwargs):
    """
    Load a metric with `evaluate`: "classification" is the module shipped with hfclf (works offline),
    any other name or path goes to `evaluate.load` (Hub names need a connection or a cached copy).
    Extra keyword arguments are passed on to `evaluate.load`.
    """
    # evaluate pulls in transformers.pipelines and torch (seconds), so it is only imported when needed.
    import evaluate

    if name == "classification":
        return evaluate.load(METRIC_PATH, config_name, **kwargs)
    try:
        return evaluate.load(name, config_name, **kwargs)
    except (OSError, ConnectionError) as err:
        raise HfclfInputError(
            f"Could not load metric '{name}' ({type(err).__name__}). Go online so it can be downloaded, "
            "or use the built-in 'classification' metric."
        ) from err


def build_compute_metrics(
    problem_type: str = "single_label_classification", metric=None
) -> Callable[[object], dict[str, float]]:
    """
    Build a `compute_metrics` function for `transformers.Trainer`.

    It turns logits into predictions (argmax for single-label; sigmoid > 0.5, i.e. logit > 0, for
    multi-label) and returns the metric's scores as floats, plus `samples`, the number of examples scored.
    `metric` is an `evaluate` module or a name for [`load_metric`]; by default the shipped "classification"
    metric in the matching config.
    """
    if problem_type not in PROBLEM_TYPES:
        raise HfclfInputError(f"Unknown problem_type '{problem_type}'. Use one of: {', '.join(PROBLEM_TYPES)}.")
    multi_label = problem_type == "multi_label_classification"
    if metric is None or isinstance(metric, str):
        metric = load_metric(metric or "classification", "multilabel" if multi_label else None, keep_in_memory=True)

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits, labels = _unpack(eval_pred)
        if multi_label:
            predictions = (logits > 0).astype(np.int64)
            references = np.asarray(labels).round().astype(np.int64)
        else:
            # Already class ids when `preprocess_logits_for_metrics` took the argmax.
            predictions = logits if logits.ndim == 1 else logits.argmax(axis=-1)
            references = np.asarray(labels).astype(np.int64)
        scores = metric.compute(predictions=predictions, references=references)
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
