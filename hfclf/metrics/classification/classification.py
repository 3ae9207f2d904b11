"""Classification metrics for single-label and multi-label text classification, as an `evaluate` module."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    hamming_loss,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

_DESCRIPTION = """
Standard scores for text classification, computed with scikit-learn (zero_division=0).

- Default config (single-label): accuracy, macro precision/recall/F1, weighted F1 and the Matthews
  correlation coefficient (MCC).
- "multilabel" config: micro, macro and weighted F1, subset accuracy (exact match of the whole label set), Hamming
  loss, and with `scores` (probabilities) the macro ROC-AUC over the labels that have both classes in `references`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`, or `list[list[int]]` of 0/1 indicators for "multilabel"): predicted labels.
    references (same shape as `predictions`): ground-truth labels.
    labels (`list[int]`, *optional*): class ids to average over; by default, those present in
        `predictions` or `references`.
    scores (`list[list[float]]`, *optional*, "multilabel"): probability of each label, for ROC-AUC.

Returns:
    Single-label: `accuracy`, `precision_macro`, `recall_macro`, `f1_macro`, `f1_weighted`, `mcc`.
    Multi-label: `f1_micro`, `f1_macro`, `f1_weighted`, `subset_accuracy`, `hamming_loss` (and `roc_auc_macro` with
    `scores`).

Examples:
    >>> metric = evaluate.load("hfclf/metrics/classification")
    >>> metric.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])["accuracy"]
    0.75
    >>> metric = evaluate.load("hfclf/metrics/classification", "multilabel")
    >>> metric.compute(predictions=[[1, 0], [1, 1]], references=[[1, 0], [0, 1]])["subset_accuracy"]
    0.5
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and Grisel, O.
          and Blondel, M. and Prettenhofer, P. and Weiss, R. and Dubourg, V. and Vanderplas, J. and
          Passos, A. and Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classification(evaluate.Metric):
    def _info(self):
        if self.config_name not in ("default", "multilabel"):
            raise ValueError(
                f"Unknown config '{self.config_name}' for the classification metric: use None or 'multilabel'."
            )
        if self.config_name == "multilabel":
            features = {
                "predictions": datasets.Sequence(datasets.Value("int32")),
                "references": datasets.Sequence(datasets.Value("int32")),
            }
        else:
            features = {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(features),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(self, predictions, references, labels=None, scores=None):
        if self.config_name == "multilabel":
            averaged = {"labels": labels, "zero_division": 0}
            results = {
                "f1_micro": float(f1_score(references, predictions, average="micro", **averaged)),
                "f1_macro": float(f1_score(references, predictions, average="macro", **averaged)),
                "f1_weighted": float(f1_score(references, predictions, average="weighted", **averaged)),
                # On indicator matrices, accuracy_score is the exact-match ratio.
                "subset_accuracy": float(accuracy_score(references, predictions)),
                "hamming_loss": float(hamming_loss(references, predictions)),
            }
            if scores is not None:
                results["roc_auc_macro"] = _roc_auc_macro(np.asarray(references), np.asarray(scores))
            return results
        averaged = {"labels": labels, "zero_division": 0}
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "precision_macro": float(precision_score(references, predictions, average="macro", **averaged)),
            "recall_macro": float(recall_score(references, predictions, average="macro", **averaged)),
            "f1_macro": float(f1_score(references, predictions, average="macro", **averaged)),
            "f1_weighted": float(f1_score(references, predictions, average="weighted", **averaged)),
            "mcc": float(matthews_corrcoef(references, predictions)),
        }


def _roc_auc_macro(references: np.ndarray, scores: np.ndarray) -> float:
    """Mean ROC-AUC of the labels that occur and are absent somewhere in `references` (NaN when none do)."""
    scored = [j for j in range(references.shape[1]) if 0 < references[:, j].sum() < len(references)]
    if not scored:
        return float("nan")
    return float(np.mean([roc_auc_score(references[:, j], scores[:, j]) for j in scored]))
