"""TinyBERT distillation losses (arXiv 1909.10351, Eq. 7-10).

Each loss is a `keras.distillation.DistillationLoss`, so it also plugs into
Keras' own `keras.distillation.Distiller` (`compute_loss(teacher_outputs,
student_outputs)`); called directly, it takes student and teacher tensors of
one layer pair (student first) and returns a scalar float32 loss. They hold no weights: the distiller applies its learnable
projections (W_e, W_h) to the student before calling them. Inputs are cast to
float32 so the losses stay exact when the models run in mixed precision. All
ops are graph ops, so the losses work inside `tf.function` and `tf.distribute`
(they return the per-replica mean; scaling by the number of replicas is the
distiller's job).

`mode="official"` reproduces huawei-noah/Pretrained-Language-Model/TinyBERT;
`mode="exact"` averages over real (non-padding) tokens only, using
`padding_mask` ([batch, T], 1 = real token, 0 = padding).

Example:

```python
import numpy as np
scores = np.random.randn(2, 12, 8, 8).astype("float32")
AttentionLoss()(scores + 0.1, scores)  # ~0.01
```
"""

import keras
from keras import ops

ATTENTION_MODES = ("official", "exact")
PREDICTION_REDUCTIONS = ("official", "per_example")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.")


def _check_same_shape(loss_name, student, teacher):
    """Raises on a static shape mismatch; unknown dimensions pass."""
    s_shape, t_shape = tuple(student.shape), tuple(teacher.shape)
    if len(s_shape) != len(t_shape):
        raise ValueError(
            f"{loss_name}: student and teacher must have the same rank, got "
            f"student shape {s_shape} and teacher shape {t_shape}."
        )
    for s_dim, t_dim in zip(s_shape, t_shape):
        if s_dim is not None and t_dim is not None and s_dim != t_dim:
            raise ValueError(
                f"{loss_name}: student and teacher shapes differ, got student "
                f"{s_shape} and teacher {t_shape}."
            )


def _as_float32(*tensors):
    return [ops.cast(ops.convert_to_tensor(x), "float32") for x in tensors]


def _require_padding_mask(loss_name, padding_mask, batch, length):
    """`padding_mask` as float32 [batch, T]; raises if missing or misshapen."""
    if padding_mask is None:
        raise ValueError(
            f"{loss_name}(mode='exact') needs `padding_mask` [batch, T] "
            "(1 = real token, 0 = padding), got None."
        )
    mask = ops.cast(ops.convert_to_tensor(padding_mask), "float32")
    shape = tuple(mask.shape)
    if len(shape) != 2 or any(
        got is not None and want is not None and got != want
        for got, want in zip(shape, (batch, length))
    ):
        raise ValueError(
            f"{loss_name}: `padding_mask` must have shape [batch, T] = "
            f"{[batch, length]}, got {list(shape)}."
        )
    return mask


class TinyBertLoss(keras.distillation.DistillationLoss):
    """Base: `__call__(student, teacher, ...)` is the loss; `compute_loss` is
    the same with Keras' argument order (teacher first)."""

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        return self(student_outputs, teacher_outputs, **kwargs)

    def validate_outputs(self, teacher_outputs, student_outputs):
        # Shapes are checked by each loss (with a message that names it).
        pass

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _masked_mean(values, weights):
    """sum(values * weights) / sum(weights); 0 when nothing is included."""
    return ops.divide_no_nan(ops.sum(values * weights), ops.sum(weights))


class AttentionLoss(TinyBertLoss):
    """MSE between student and teacher attention scores of one layer pair.

    The scores are the UNNORMALISED ones, QK^T / sqrt(d) plus the additive mask
    (e.g. -10000 at padded keys), shape [batch, heads, T, T]. Student and
    teacher need the same number of heads.

    Args:
        mode: "official": entries <= `threshold` (the additive mask) are set to
            0 in both tensors, then the MSE is averaged over batch x heads x
            T x T, padded query rows included. "exact": the MSE only over the
            (query, key) entries where both tokens are real, averaged over
            those entries and the heads; needs `padding_mask`.
        threshold: "official" mode only: scores at or below it count as masked.

    Example:

    ```python
    import numpy as np
    student = np.random.randn(2, 12, 8, 8).astype("float32")
    teacher = np.random.randn(2, 12, 8, 8).astype("float32")
    padding_mask = np.array([[1] * 8, [1] * 5 + [0] * 3])
    AttentionLoss()(student, teacher)  # ~2.0
    AttentionLoss(mode="exact")(student, teacher, padding_mask=padding_mask)
    ```
    """

    def __init__(self, mode="official", threshold=-100.0):
        _check_choice("mode", mode, ATTENTION_MODES)
        self.mode = mode
        self.threshold = float(threshold)

    def __call__(self, student_scores, teacher_scores, padding_mask=None):
        student, teacher = _as_float32(student_scores, teacher_scores)
        self._check_shapes(student, teacher)
        if self.mode == "official":
            student = self._zero_masked(student)
            teacher = self._zero_masked(teacher)
            return ops.mean(ops.square(student - teacher))
        batch, _, length, _ = student.shape
        mask = _require_padding_mask("AttentionLoss", padding_mask, batch, length)
        # [batch, 1, T, T]: 1 where both the query and the key are real tokens.
        pair_mask = mask[:, None, :, None] * mask[:, None, None, :]
        squared_error = ops.square(student - teacher)
        heads = ops.cast(ops.shape(student)[1], "float32")
        included = ops.sum(pair_mask) * heads
        return ops.divide_no_nan(ops.sum(squared_error * pair_mask), included)

    def _zero_masked(self, scores):
        return ops.where(scores <= self.threshold, ops.zeros_like(scores), scores)

    @staticmethod
    def _check_shapes(student, teacher):
        if len(student.shape) != 4 or len(teacher.shape) != 4:
            raise ValueError(
                "AttentionLoss expects scores of shape [batch, heads, T, T], "
                f"got student {tuple(student.shape)} and teacher "
                f"{tuple(teacher.shape)}."
            )
        s_heads, t_heads = student.shape[1], teacher.shape[1]
        if s_heads is not None and t_heads is not None and s_heads != t_heads:
            raise ValueError(
                "AttentionLoss: student and teacher must have the same number "
                f"of attention heads, got {s_heads} (student) and {t_heads} "
                "(teacher)."
            )
        _check_same_shape("AttentionLoss", student, teacher)

    def get_config(self):
        return {"mode": self.mode, "threshold": self.threshold}


class HiddenStateLoss(TinyBertLoss):
    """MSE between projected student and teacher hidden states [batch, T, d].

    The distiller projects the student to the teacher width first (W_h).

    Args:
        mode: "official": mean over every position, padding included. "exact":
            mean over the real (non-padding) positions only; needs
            `padding_mask`.

    Example:

    ```python
    import numpy as np
    student = np.random.randn(2, 8, 16).astype("float32")
    teacher = np.random.randn(2, 8, 16).astype("float32")
    padding_mask = np.array([[1] * 8, [1] * 5 + [0] * 3])
    HiddenStateLoss()(student, teacher)  # ~2.0
    HiddenStateLoss(mode="exact")(student, teacher, padding_mask=padding_mask)
    ```
    """

    def __init__(self, mode="official"):
        _check_choice("mode", mode, ATTENTION_MODES)
        self.mode = mode

    def __call__(self, student_hidden, teacher_hidden, padding_mask=None):
        name = type(self).__name__
        student, teacher = _as_float32(student_hidden, teacher_hidden)
        if len(student.shape) != 3:
            raise ValueError(
                f"{name} expects hidden states of shape [batch, T, d], got "
                f"student {tuple(student.shape)}."
            )
        _check_same_shape(name, student, teacher)
        squared_error = ops.square(student - teacher)
        if self.mode == "official":
            return ops.mean(squared_error)
        batch, length, _ = student.shape
        mask = _require_padding_mask(name, padding_mask, batch, length)
        width = ops.cast(ops.shape(student)[-1], "float32")
        per_position = ops.sum(squared_error, axis=-1) / width
        return _masked_mean(per_position, mask)

    def get_config(self):
        return {"mode": self.mode}


class EmbeddingLoss(HiddenStateLoss):
    """MSE between projected student and teacher embedding outputs (W_e).

    Same computation as `HiddenStateLoss`, applied to hidden-state index 0 (the
    embedding output); a separate class only so that reports name it.

    Example:

    ```python
    import numpy as np
    student = np.random.randn(2, 8, 16).astype("float32")
    EmbeddingLoss()(student, student)  # 0.0
    ```
    """


class PredictionLoss(TinyBertLoss):
    """Soft cross-entropy -softmax(z_T / t) . log_softmax(z_S / t) on logits.

    The temperature divides both logits; there is no t^2 factor and no
    hard-label term (as in the official code).

    Args:
        temperature: t > 0.
        reduction: "official": mean over batch AND classes (the per-example
            cross-entropy divided by the number of classes, as the official
            `(-targets_prob * student_likelihood).mean()`). "per_example": sum
            over classes, mean over the batch (the textbook cross-entropy).

    Example:

    ```python
    import numpy as np
    logits = np.array([[2.0, 0.0, -1.0]], "float32")
    PredictionLoss(reduction="per_example")(logits, logits)  # the entropy
    ```
    """

    def __init__(self, temperature=1.0, reduction="official"):
        if not float(temperature) > 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature!r}.")
        _check_choice("reduction", reduction, PREDICTION_REDUCTIONS)
        self.temperature = float(temperature)
        self.reduction = reduction

    def __call__(self, student_logits, teacher_logits):
        student, teacher = _as_float32(student_logits, teacher_logits)
        _check_same_shape("PredictionLoss", student, teacher)
        teacher_probs = ops.softmax(teacher / self.temperature, axis=-1)
        student_log_probs = ops.log_softmax(student / self.temperature, axis=-1)
        cross_entropy = -teacher_probs * student_log_probs
        if self.reduction == "official":
            return ops.mean(cross_entropy)
        return ops.mean(ops.sum(cross_entropy, axis=-1))

    def get_config(self):
        return {"temperature": self.temperature, "reduction": self.reduction}


class RegressionLoss(TinyBertLoss):
    """MSE between student predictions and gold labels (STS-B style).

    Predictions may be [batch] or [batch, 1]; labels likewise.

    Example:

    ```python
    import numpy as np
    RegressionLoss()(np.array([[1.0], [2.0]]), np.array([1.5, 2.0]))  # 0.125
    ```
    """

    def __call__(self, student_predictions, labels):
        predictions, labels = _as_float32(student_predictions, labels)
        for name, tensor in (("predictions", predictions), ("labels", labels)):
            shape = tuple(tensor.shape)
            if len(shape) > 2 or (len(shape) == 2 and shape[1] not in (1, None)):
                raise ValueError(
                    f"RegressionLoss expects {name} of shape [batch] or "
                    f"[batch, 1], got {shape}."
                )
        predictions = ops.reshape(predictions, (-1,))
        labels = ops.reshape(labels, (-1,))
        _check_same_shape("RegressionLoss", predictions, labels)
        return ops.mean(ops.square(predictions - labels))
