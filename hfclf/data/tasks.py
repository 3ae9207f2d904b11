"""The task shapes hfclf trains, one entry each: single-label and multi-label classification, and regression.

An entry names the `problem_type` that transformers' configs and losses use, the `evaluate` module (shipped with
hfclf, so it works offline) that scores it, and its main metric: the one that picks the best checkpoint and leads
comparison reports and model cards.
"""

from dataclasses import dataclass

from ..errors import HfclfInputError


@dataclass(frozen=True)
class Task:
    problem_type: str  # as in `PreTrainedConfig.problem_type`
    description: str
    metric: str  # the shipped evaluate module
    metric_config: str | None
    main_metric: str  # picks the best checkpoint, leads reports and cards
    greater_is_better: bool
    report_metrics: tuple[str, ...]  # shown in comparison tables and model cards, main metric first
    metric_names: dict  # display name of each metric (the model card's results table)
    in_percent: bool  # reports show the metrics as percentages
    main_metric_range: tuple[float, float] = (0.0, 1.0)  # the values the main metric can take


# Metrics where a smaller value is better (the rest: larger).
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mse", "hamming_loss", "loss"})


TASKS: dict[str, Task] = {
    task.problem_type: task
    for task in (
        Task(
            problem_type="single_label_classification",
            description="single-label classification",
            metric="classification",
            metric_config=None,
            main_metric="accuracy",
            greater_is_better=True,
            report_metrics=("accuracy", "f1_macro"),
            metric_names={
                "accuracy": "Accuracy",
                "f1_macro": "Macro F1",
                "precision_macro": "Macro precision",
                "recall_macro": "Macro recall",
                "f1_weighted": "Weighted F1",
                "mcc": "MCC",
            },
            in_percent=True,
        ),
        Task(
            problem_type="multi_label_classification",
            description="multi-label classification",
            metric="classification",
            metric_config="multilabel",
            main_metric="f1_macro",
            greater_is_better=True,
            report_metrics=("f1_macro", "f1_micro"),
            metric_names={
                "f1_macro": "Macro F1",
                "f1_micro": "Micro F1",
                "f1_weighted": "Weighted F1",
                "subset_accuracy": "Subset accuracy",
                "hamming_loss": "Hamming loss",
                "roc_auc_macro": "Macro ROC-AUC",
            },
            in_percent=True,
        ),
        Task(
            problem_type="regression",
            description="regression",
            metric="regression",
            metric_config=None,
            main_metric="pearson",
            greater_is_better=True,
            report_metrics=("pearson", "spearman", "mae"),
            metric_names={
                "pearson": "Pearson",
                "spearman": "Spearman",
                "mae": "MAE",
                "rmse": "RMSE",
                "mse": "MSE",
                "r2": "R²",
            },
            in_percent=False,
            main_metric_range=(-1.0, 1.0),
        ),
    )
}
SINGLE_LABEL, MULTI_LABEL, REGRESSION = TASKS


def get_task(problem_type: str | None) -> Task:
    """The entry of a problem type (None: single-label classification, the default of classifiers)."""
    problem_type = problem_type or SINGLE_LABEL
    if problem_type not in TASKS:
        raise HfclfInputError(f"Unknown problem type '{problem_type}'; choose one of: {', '.join(TASKS)}.")
    return TASKS[problem_type]
