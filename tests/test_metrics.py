import numpy as np
import pytest
import scipy.stats

from tinybert_tf.metrics import (
    METRICS,
    accuracy,
    compute_metrics,
    f1,
    matthews,
    pearson,
    primary_metric,
    spearman,
)


def _binary_counts(predictions, labels):
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    tp = np.sum((predictions == 1) & (labels == 1))
    tn = np.sum((predictions == 0) & (labels == 0))
    fp = np.sum((predictions == 1) & (labels == 0))
    fn = np.sum((predictions == 0) & (labels == 1))
    return tp, tn, fp, fn


def test_accuracy_hand_value():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75


def test_f1_against_precision_recall():
    rng = np.random.default_rng(0)
    predictions, labels = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    tp, _, fp, fn = _binary_counts(predictions, labels)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    expected = 2 * precision * recall / (precision + recall)
    assert f1(predictions, labels) == pytest.approx(expected)
    # TP=2, FP=1, FN=0: precision 2/3, recall 1 -> F1 0.8.
    assert f1([1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx(0.8)


def test_f1_without_any_positive_is_zero():
    assert f1([0, 0], [0, 0]) == 0.0


def test_matthews_binary_formula():
    rng = np.random.default_rng(1)
    predictions, labels = rng.integers(0, 2, 80), rng.integers(0, 2, 80)
    tp, tn, fp, fn = (float(x) for x in _binary_counts(predictions, labels))
    expected = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert matthews(predictions, labels) == pytest.approx(expected)


def test_matthews_multiclass_equals_one_hot_correlation():
    # Gorodkin's R_K is the correlation between the one-hot label and prediction matrices.
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 100)
    predictions = np.where(rng.random(100) < 0.6, labels, rng.integers(0, 4, 100))
    x, y = np.eye(4)[labels], np.eye(4)[predictions]
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    expected = np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y))
    assert matthews(predictions, labels) == pytest.approx(expected)


def test_matthews_perfect_inverse_and_constant():
    assert matthews([0, 1, 1, 0], [0, 1, 1, 0]) == pytest.approx(1.0)
    assert matthews([1, 0, 0, 1], [0, 1, 1, 0]) == pytest.approx(-1.0)
    assert matthews([1, 1, 1, 1], [0, 1, 1, 0]) == 0.0


def test_correlations_against_scipy():
    rng = np.random.default_rng(3)
    labels = rng.random(40) * 5
    predictions = labels + rng.normal(size=40)
    predictions[:10] = np.round(predictions[:10])  # ties for Spearman
    assert pearson(predictions, labels) == pytest.approx(scipy.stats.pearsonr(predictions, labels)[0])
    assert spearman(predictions, labels) == pytest.approx(
        scipy.stats.spearmanr(predictions, labels)[0]
    )


def test_pearson_hand_value_and_column_predictions():
    # x - mean = (-1, 0, 1), y - mean = (-7/3, -1/3, 8/3): r = 5 / sqrt(2 * 38/3).
    expected = 5 / np.sqrt(2 * 38 / 3)
    assert pearson([[1.0], [2.0], [3.0]], [2.0, 4.0, 7.0]) == pytest.approx(expected)
    assert spearman([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]) == pytest.approx(1.0)
    assert pearson([1.0, 1.0, 1.0], [2.0, 4.0, 7.0]) == 0.0


def test_compute_metrics_takes_logits_and_keeps_order():
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.3, 0.4], [0.0, 1.0]])  # argmax 1, 0, 1, 1
    labels = [1, 0, 0, 1]
    result = compute_metrics(("f1", "accuracy"), logits, labels)
    assert list(result) == ["f1", "accuracy"]
    assert result == pytest.approx({"f1": 0.8, "accuracy": 0.75})


def test_primary_metric_is_first():
    assert primary_metric(("pearson", "spearman")) == "pearson"
    assert primary_metric("matthews") == "matthews"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: compute_metrics(("auc",), [1], [1]), "Unknown metric 'auc'"),
        (lambda: primary_metric(()), "No metric"),
        (lambda: accuracy([1, 0], [1]), "differ in length"),
        (lambda: pearson([], []), "zero examples"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_known_metric_runs():
    result = compute_metrics(METRICS, [0, 1, 1, 0], [0, 1, 0, 0])
    assert set(result) == set(METRICS)
    assert all(isinstance(value, float) for value in result.values())


def test_corr_is_the_mean_of_pearson_and_spearman():
    from tinybert_tf.metrics import corr, spearman, with_metric
    predictions, labels = [0.1, 0.5, 0.4, 2.0], [0.0, 1.0, 2.0, 3.0]
    assert corr(predictions, labels) == pytest.approx(
        (pearson(predictions, labels) + spearman(predictions, labels)) / 2)
    assert with_metric(("pearson", "spearman"), "corr") == (
        "pearson", "spearman", "corr")
    assert with_metric(("f1", "accuracy"), "accuracy") == ("f1", "accuracy")
