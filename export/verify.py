"""Checks of a converted variant against the Keras student.

Nothing is final before it is verified: `verify_variant` runs the .tflite
with LiteRT (one thread) on the evaluation inputs (accuracy, agreement with
the Keras arg-max, largest probability difference, median latency; None
with `latency_runs=0`),
`mediapipe_check` runs it end to end in MediaPipe's TextClassifier on the
raw texts, and `judge` flags a variant that loses more than the allowed
accuracy points.

Example:

```python
from export import runtimes, verify
reference = runtimes.keras_probabilities(model, eval_inputs)
result = verify.verify_variant(content, eval_inputs, eval_labels, reference)
verify.judge(result, verify.accuracy(reference, eval_labels), 1.0)
print(verify.variant_line("dynamic_int8", {**result, "size_mb": 7.7}))
```
"""

import numpy as np

from export.runtimes import LiteRTClassifier, mediapipe_top_classes


def _share_equal(classes, other):
    return float(np.mean(np.asarray(classes) == np.asarray(other)))


def accuracy(probabilities, labels):
    """Share of rows whose arg-max is the label; None without labels."""
    if labels is None:
        return None
    return _share_equal(np.argmax(probabilities, -1), labels)


def agreement(probabilities, reference):
    """Share of rows with the same arg-max as `reference`."""
    return _share_equal(np.argmax(probabilities, -1),
                        np.argmax(reference, -1))


def verify_variant(model_content, eval_inputs, eval_labels, reference,
                   latency_runs=50):
    """LiteRT (one thread) on the eval inputs vs the Keras probabilities."""
    runner = LiteRTClassifier(model_content, num_threads=1)
    probabilities = runner.predict(eval_inputs)
    return {
        "accuracy": accuracy(probabilities, eval_labels),
        "agreement": agreement(probabilities, reference),
        "max_probability_diff": float(np.max(np.abs(probabilities
                                                    - reference))),
        "median_latency_ms": (runner.median_latency_ms(
            eval_inputs, runs=latency_runs) if latency_runs else None),
    }


def mediapipe_check(model_path, model_content, texts, inputs, labels=None):
    """MediaPipe's TextClassifier on the raw `texts` vs LiteRT on our
    tokenizer's ids (`inputs`, the first rows of which are `texts`).

    MediaPipe tokenizes the raw text itself: this checks the whole on-device
    path. Returns mediapipe_examples / _agreement (/ _accuracy with labels).
    """
    top = mediapipe_top_classes(model_path, texts)
    ours = LiteRTClassifier(model_content).predict(
        {k: v[:len(texts)] for k, v in inputs.items()})
    result = {"mediapipe_examples": len(texts),
              "mediapipe_agreement": _share_equal(top, ours.argmax(-1))}
    if labels is not None:
        result["mediapipe_accuracy"] = _share_equal(top, labels[:len(texts)])
    return result


def accuracy_drop_points(reference, accuracy_):
    """Accuracy points lost against `reference` (None if either is None)."""
    if reference is None or accuracy_ is None:
        return None
    return round(100.0 * (reference - accuracy_), 2)


def judge(result, keras_accuracy, max_accuracy_drop):
    """Adds `accuracy_drop_points` and `flagged` to a variant's `result`."""
    drop = accuracy_drop_points(keras_accuracy, result["accuracy"])
    result["accuracy_drop_points"] = drop
    result["flagged"] = drop is not None and drop > max_accuracy_drop
    return result


def variant_line(variant, result):
    accuracy_, latency = result["accuracy"], result["median_latency_ms"]
    return (f"{variant:>13}: {result['size_mb']:8.2f} MB, accuracy "
            f"{'n/a' if accuracy_ is None else f'{accuracy_:.4f}'}, agreement "
            f"{100 * result['agreement']:.1f}%, max prob diff "
            f"{result['max_probability_diff']:.4f}, "
            + ("latency not timed" if latency is None
               else f"{latency:.2f} ms (1 thread)"))


def flag_banner(variant, drop, limit):
    bar = "!" * 72
    return (f"{bar}\n!!! {variant} loses {drop:.2f} accuracy points against "
            f"the Keras student (limit {limit}).\n{bar}")
