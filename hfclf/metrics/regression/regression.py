"""Regression metrics for text regression (scores, ratings), as an `evaluate` module."""

import datasets
import evaluate
import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

_DESCRIPTION = """
Standard scores for regression: mean squared error, its root, mean absolute error, Pearson and Spearman
correlation (scipy) and the coefficient of determination R^2 (scikit-learn).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[float]`): predicted values.
    references (`list[float]`): true values.

Returns:
    `mse`, `rmse`, `mae`, `pearson`, `spearman`, `r2`. The correlations are NaN when either side is constant.

Examples:
    >>> metric = evaluate.load("hfclf/metrics/regression")
    >>> metric.compute(predictions=[1.0, 2.0, 3.0], references=[1.0, 2.0, 4.0])["mae"]
    0.3333333333333333
"""

_CITATION = """
@article{2020SciPy-NMeth,
  title={{SciPy} 1.0: Fundamental Algorithms for Scientific Computing in Python},
  author={Virtanen, Pauli and Gommers, Ralf and others},
  journal={Nature Methods},
  volume={17},
  pages={261--272},
  year={2020}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Regression(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
            reference_urls=["https://docs.scipy.org/doc/scipy/reference/stats.html"],
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions, dtype=float), np.asarray(references, dtype=float)
        constant = np.ptp(predictions) == 0 or np.ptp(references) == 0
        mse = float(mean_squared_error(references, predictions))
        return {
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "mae": float(mean_absolute_error(references, predictions)),
            "pearson": float("nan") if constant else float(pearsonr(predictions, references)[0]),
            "spearman": float("nan") if constant else float(spearmanr(predictions, references)[0]),
            "r2": float(r2_score(references, predictions)),
        }
