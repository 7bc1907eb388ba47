"""Optimizers of BERT fine-tuning and TinyBERT distillation.

- "adamw": Keras' AdamW (bias-corrected Adam, decoupled weight decay), what
  the `fast` recipe uses.
- "bertadam": the official code's `BertAdam` (TinyBERT/transformer/
  optimization.py): Adam WITHOUT bias correction, epsilon outside the square
  root, decoupled weight decay scaled by the learning rate.

Both skip weight decay on biases and LayerNorm, and clip gradients either by
their global norm ("global", Keras' `global_clipnorm`) or each tensor apart
("per_tensor", Keras' `clipnorm`: the official `clip_grad_norm_(p, 1.0)` for
every parameter p).

Example:
>>> from tinybert_tf.optimizers import make_optimizer
>>> type(make_optimizer(1e-3, "bertadam", clip_mode="per_tensor")).__name__
'BertAdam'
"""

import keras
from keras import ops

from tinybert_tf.choices import CLIP_MODES, OPTIMIZERS

NO_DECAY = ["bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="tinybert_tf")
class BertAdam(keras.optimizers.Optimizer):
    """The official BertAdam step for a gradient g of a variable p:

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr * (m / (sqrt(v) + eps) + weight_decay * p)

    (no bias correction). Weight decay is Keras' decoupled one, applied
    before the step with the same lr, which is the same arithmetic.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-6, weight_decay=0.01, name="bert_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name,
                         weight_decay=weight_decay, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")
        self.velocities = self.add_optimizer_variables(variables, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self.momentums[index], self.velocities[index]
        self.assign_add(m, (gradient - m) * (1 - self.beta_1))
        self.assign_add(v, (ops.square(gradient) - v) * (1 - self.beta_2))
        self.assign_sub(variable, lr * m / (ops.sqrt(v) + self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon}


def make_optimizer(learning_rate, name="adamw", weight_decay=0.01,
                   clip_norm=1.0, clip_mode="global", epsilon=1e-6):
    """AdamW or BertAdam as BERT uses them (see the module doc);
    `clip_norm=0` or None turns clipping off."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of "
                         f"{OPTIMIZERS}.")
    if clip_mode not in CLIP_MODES:
        raise ValueError(f"Unknown clip mode {clip_mode!r}; expected one of "
                         f"{CLIP_MODES}.")
    clip = {"global_clipnorm" if clip_mode == "global" else "clipnorm":
            clip_norm or None}
    make = keras.optimizers.AdamW if name == "adamw" else BertAdam
    optimizer = make(learning_rate=learning_rate, weight_decay=weight_decay,
                     epsilon=epsilon, **clip)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
