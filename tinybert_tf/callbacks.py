"""Callbacks of the trainers.

`StudentCheckpoint` saves the distilled student (with its projections) in the
project's checkpoint format after every Keras epoch whose logged losses are
all finite, so a NaN never overwrites the last good checkpoint.
"""

import math

import keras

from tinybert_tf import checkpoint


class StudentCheckpoint(keras.callbacks.Callback):
    def __init__(self, directory, vocabulary, extras=None, enabled=True):
        super().__init__()
        self.directory = directory
        self.vocabulary = vocabulary
        self.extras = extras or {}
        self.enabled = enabled

    def on_epoch_end(self, epoch, logs=None):
        if not self.enabled:
            return
        if any(not math.isfinite(float(v)) for v in (logs or {}).values()):
            print(f"Non-finite loss: keeping the last good checkpoint "
                  f"{self.directory}")
            return
        distiller = self.model
        checkpoint.save(distiller.student, self.directory, self.vocabulary,
                        extra_weights=distiller.projection_weights(),
                        extras={**self.extras, "step": int(
                            distiller.optimizer.iterations.numpy())},
                        overwrite=True)
