"""The official evaluation metric of each task (GLUE conventions).

- "accuracy": fraction of exact matches (SST-2, MNLI, QNLI, RTE, WNLI, BBC News),
- "f1": binary F1 of the positive class 1 (MRPC, QQP, with accuracy),
- "matthews": Matthews correlation coefficient, multi-class form (CoLA),
- "pearson" / "spearman": correlations for regression (STS-B),
- "corr": (pearson + spearman) / 2, what the official TinyBERT code selects
  STS-B checkpoints on.

Classification metrics take class ids, or scores/logits of shape
`(n, num_classes)` which are arg-maxed. Regression metrics take values of shape
`(n,)` or `(n, 1)`.

Undefined values follow scikit-learn's convention of returning 0.0 instead of
NaN (Matthews with a constant prediction, F1 with no positive at all, a
correlation with a constant input), so that "best checkpoint" comparisons
never meet a NaN.

Example:

```python
compute_metrics(("f1", "accuracy"), [1, 0, 1, 1], [1, 0, 0, 1])
# {'f1': 0.8, 'accuracy': 0.75}
primary_metric(("f1", "accuracy"))  # 'f1'
```
"""

import numpy as np
import scipy.stats

from tinybert_tf.choices import METRICS


def _class_ids(predictions, labels):
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if predictions.ndim == 2:
        predictions = predictions.argmax(axis=-1)
    return _check_pair(predictions, labels)


def _values(predictions, labels):
    predictions = np.asarray(predictions, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    return _check_pair(predictions, labels)


def _check_pair(predictions, labels):
    if predictions.ndim != 1 or labels.ndim != 1:
        raise ValueError(
            "Expected 1-D predictions (or 2-D scores) and 1-D labels, got shapes "
            f"{predictions.shape} and {labels.shape}."
        )
    if len(predictions) != len(labels):
        raise ValueError(
            f"predictions and labels differ in length: {len(predictions)} vs "
            f"{len(labels)}."
        )
    if len(labels) == 0:
        raise ValueError("Cannot compute a metric on zero examples.")
    return predictions, labels


def accuracy(predictions, labels):
    """Fraction of predictions equal to the label. `accuracy([1, 0], [1, 1])` -> 0.5."""
    predictions, labels = _class_ids(predictions, labels)
    return float(np.mean(predictions == labels))


def f1(predictions, labels, positive=1):
    """Binary F1 of class `positive`. `f1([1, 0, 1, 1], [1, 0, 0, 1])` -> 0.8."""
    predictions, labels = _class_ids(predictions, labels)
    true_positives = np.sum((predictions == positive) & (labels == positive))
    denominator = np.sum(predictions == positive) + np.sum(labels == positive)
    return float(2 * true_positives / denominator) if denominator else 0.0


def matthews(predictions, labels):
    """Matthews correlation (Gorodkin's multi-class form). `matthews([0, 1], [0, 1])` -> 1.0."""
    predictions, labels = _class_ids(predictions, labels)
    classes, ids = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    true_ids, predicted_ids = ids[: len(labels)], ids[len(labels) :]
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(confusion, (true_ids, predicted_ids), 1.0)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    total, correct = confusion.sum(), np.trace(confusion)
    numerator = correct * total - true_counts @ predicted_counts
    denominator = np.sqrt(
        (total**2 - predicted_counts @ predicted_counts)
        * (total**2 - true_counts @ true_counts)
    )
    return float(numerator / denominator) if denominator else 0.0


def pearson(predictions, labels):
    """Pearson correlation. `pearson([1, 2, 3], [2, 4, 7])` -> 0.993..."""
    predictions, labels = _values(predictions, labels)
    predictions = predictions - predictions.mean()
    labels = labels - labels.mean()
    denominator = np.sqrt((predictions @ predictions) * (labels @ labels))
    return float(predictions @ labels / denominator) if denominator else 0.0


def spearman(predictions, labels):
    """Spearman rank correlation (ties get their average rank). `spearman([1, 2, 3], [2, 4, 7])` -> 1.0."""
    predictions, labels = _values(predictions, labels)
    return pearson(scipy.stats.rankdata(predictions), scipy.stats.rankdata(labels))


def corr(predictions, labels):
    """(Pearson + Spearman) / 2. `corr([1, 2, 3], [2, 4, 7])` -> 0.996..."""
    return (pearson(predictions, labels) + spearman(predictions, labels)) / 2


_FUNCTIONS = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews": matthews,
    "pearson": pearson,
    "spearman": spearman,
    "corr": corr,
}


def check_metric_names(metric_names):
    """Returns `metric_names` as a non-empty tuple, or raises a ValueError naming the unknown one."""
    if isinstance(metric_names, str):
        metric_names = (metric_names,)
    metric_names = tuple(metric_names)
    if not metric_names:
        raise ValueError(f"No metric given; choose among {METRICS}.")
    for name in metric_names:
        if name not in _FUNCTIONS:
            raise ValueError(f"Unknown metric {name!r}; known metrics: {METRICS}.")
    return metric_names


def compute_metrics(metric_names, predictions, labels):
    """Computes each named metric; returns `{name: float}` in the given order.

    Example:

    ```python
    compute_metrics(("pearson", "spearman"), [0.1, 0.5, 0.4], [0.0, 1.0, 2.0])
    ```
    """
    return {
        name: _FUNCTIONS[name](predictions, labels)
        for name in check_metric_names(metric_names)
    }


def primary_metric(metric_names):
    """The first metric (the default selection metric of a metric list). `primary_metric(("matthews",))` -> 'matthews'."""
    return check_metric_names(metric_names)[0]


def with_metric(metric_names, name):
    """`metric_names` with `name` appended if missing (reports show every
    metric, the selection metric included)."""
    names = check_metric_names(metric_names)
    check_metric_names(name)
    return names if name in names else names + (name,)
