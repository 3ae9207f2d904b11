import evaluate
import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef, precision_score, recall_score

from hfclf.errors import HfclfInputError
from hfclf.metrics import METRIC_PATH, build_compute_metrics, load_metric

PREDICTIONS = [0, 1, 1, 0, 2, 2, 1]
REFERENCES = [0, 1, 0, 0, 2, 1, 1]


@pytest.fixture(scope="module")
def metric():
    return load_metric()


def test_single_label_against_hand_computed_values(metric):
    scores = metric.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    # Class 0: P = 2/2, R = 2/3, F1 = 0.8; class 1: P = 1/2, R = 1/1, F1 = 2/3.
    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["precision_macro"] == pytest.approx(0.75)
    assert scores["recall_macro"] == pytest.approx(5 / 6)
    assert scores["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert scores["f1_weighted"] == pytest.approx((3 * 0.8 + 1 * 2 / 3) / 4)
    # TP=1, TN=2, FP=1, FN=0: (1*2 - 1*0) / sqrt(2*1*3*2)
    assert scores["mcc"] == pytest.approx(2 / np.sqrt(12))


def test_single_label_matches_sklearn(metric):
    scores = metric.compute(predictions=PREDICTIONS, references=REFERENCES)
    assert set(scores) == {"accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted", "mcc"}
    assert all(type(value) is float for value in scores.values())
    assert scores["accuracy"] == pytest.approx(5 / 7)
    assert scores["precision_macro"] == pytest.approx(precision_score(REFERENCES, PREDICTIONS, average="macro"))
    assert scores["recall_macro"] == pytest.approx(recall_score(REFERENCES, PREDICTIONS, average="macro"))
    assert scores["f1_weighted"] == pytest.approx(f1_score(REFERENCES, PREDICTIONS, average="weighted"))
    assert scores["mcc"] == pytest.approx(matthews_corrcoef(REFERENCES, PREDICTIONS))


def test_zero_division_is_zero(metric):
    # Class 1 is never predicted: its precision counts as 0 without a warning turning into an error.
    scores = metric.compute(predictions=[0, 0, 0], references=[0, 1, 0])
    assert scores["precision_macro"] == pytest.approx(1 / 3)


def test_evaluate_load_by_path_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for path in (METRIC_PATH, f"{METRIC_PATH}/classification.py"):
        scores = evaluate.load(path).compute(predictions=[1, 1], references=[1, 0])
        assert scores["accuracy"] == 0.5


def test_multilabel_config():
    metric = load_metric(config_name="multilabel")
    predictions = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    references = [[1, 0, 1], [0, 1, 1], [1, 0, 0]]
    scores = metric.compute(predictions=predictions, references=references)
    assert set(scores) == {"f1_micro", "f1_macro", "f1_weighted", "subset_accuracy", "hamming_loss"}
    assert scores["subset_accuracy"] == pytest.approx(1 / 3)
    assert scores["hamming_loss"] == pytest.approx(2 / 9)  # two wrong cells of nine
    # Micro: TP=4, FP=1, FN=1, so F1 = 2*4 / (2*4 + 1 + 1).
    assert scores["f1_micro"] == pytest.approx(0.8)
    assert scores["f1_macro"] == pytest.approx(f1_score(references, predictions, average="macro"))


def test_unknown_metric_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
    with pytest.raises(HfclfInputError, match="'no_such_metric_xyz'.*'classification'"):
        load_metric("no_such_metric_xyz")


def test_build_compute_metrics_with_logits(metric):
    from transformers import EvalPrediction

    logits = np.eye(3)[PREDICTIONS] * 2.0 - 1.0
    compute_metrics = build_compute_metrics(metric=metric)
    expected = {**metric.compute(predictions=PREDICTIONS, references=REFERENCES), "samples": len(REFERENCES)}
    assert compute_metrics(EvalPrediction(predictions=logits, label_ids=np.array(REFERENCES))) == expected
    # Extra model outputs come as a tuple whose first item is the logits.
    hidden = np.zeros((len(PREDICTIONS), 4))
    assert compute_metrics(EvalPrediction(predictions=(logits, hidden), label_ids=np.array(REFERENCES))) == expected
    # Class ids from `preprocess_logits_for_metrics` pass through.
    assert compute_metrics((np.array(PREDICTIONS), np.array(REFERENCES))) == expected


def test_build_compute_metrics_multilabel():
    from transformers import EvalPrediction

    compute_metrics = build_compute_metrics("multi_label_classification")
    logits = np.array([[2.0, -1.0, 0.5], [-3.0, 1.0, -0.1], [0.2, 0.3, -2.0]])
    labels = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    scores = compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    assert scores["subset_accuracy"] == pytest.approx(1 / 3)
    assert scores["f1_micro"] == pytest.approx(0.8)
    assert scores["samples"] == 3


def test_multilabel_thresholds_and_roc_auc():
    from sklearn.metrics import roc_auc_score

    logits = np.array([[2.0, -1.0], [-3.0, 0.4], [0.2, -0.3], [-1.0, 1.0]])
    labels = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
    probabilities = 1 / (1 + np.exp(-logits))
    default = build_compute_metrics("multi_label_classification")((logits, labels))
    # label 1 of row 3 has probability 0.43: found with a threshold of 0.4 for that label, not with 0.5
    tuned = build_compute_metrics("multi_label_classification", thresholds=[0.5, 0.4])((logits, labels))
    assert default["subset_accuracy"] == pytest.approx(3 / 4) and tuned["subset_accuracy"] == 1.0
    expected_auc = np.mean([roc_auc_score(labels[:, j], probabilities[:, j]) for j in range(2)])
    assert default["roc_auc_macro"] == pytest.approx(expected_auc) == tuned["roc_auc_macro"]


def test_regression_against_scipy_and_sklearn():
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    predictions = np.array([2.5, 0.1, 4.2, 3.0, 1.1])
    references = np.array([3.0, 0.0, 5.0, 2.0, 1.0])
    scores = build_compute_metrics("regression")((predictions[:, None], references))
    assert scores["mse"] == pytest.approx(mean_squared_error(references, predictions))
    assert scores["rmse"] == pytest.approx(np.sqrt(mean_squared_error(references, predictions)))
    assert scores["mae"] == pytest.approx(mean_absolute_error(references, predictions))
    assert scores["pearson"] == pytest.approx(pearsonr(predictions, references)[0])
    assert scores["spearman"] == pytest.approx(spearmanr(predictions, references)[0]) == pytest.approx(0.9)
    assert scores["r2"] == pytest.approx(r2_score(references, predictions))
    assert scores["samples"] == 5


def test_unknown_problem_type():
    with pytest.raises(HfclfInputError, match="regression"):
        build_compute_metrics("ordinal_regression")
