"""Callbacks of the trainers.

`StudentCheckpoint` saves the distilled student (with its projections) in the
project's checkpoint format after every Keras epoch whose logged losses are
all finite, so a NaN never overwrites the last good checkpoint.

`StepLog` appends the training logs to a CSV file every few steps (Keras's
`CSVLogger` writes once per epoch): the loss curves of the demo report.
"""

import csv
import math
import os

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


class StepLog(keras.callbacks.Callback):
    """Appends `step, <logs>` rows to a CSV file every `every` training steps.

    `step` is the optimizer's step count, so a resumed run continues the
    curve. The logged values are Keras's: running means since the start of
    the current epoch.

    Example:
    >>> log = StepLog("logs/steps.csv", every=10)  # model.fit(..., callbacks=[log])
    """

    def __init__(self, path, every=10):
        super().__init__()
        self.path = path
        self.every = max(1, int(every))
        self._columns = None

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every or not logs:
            return
        row = {"step": step, **{k: float(v) for k, v in logs.items()}}
        if self._columns is None:
            self._columns = list(row)
            os.makedirs(os.path.dirname(os.path.abspath(self.path)),
                        exist_ok=True)
            if os.path.exists(self.path):
                with open(self.path, newline="") as f:
                    self._columns = next(csv.reader(f), None) or self._columns
            else:
                with open(self.path, "w", newline="") as f:
                    csv.writer(f).writerow(self._columns)
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self._columns])


class StopAtStep(keras.callbacks.Callback):
    """Stops `fit` once the optimizer has made `total_steps` steps.

    With `epochs=ceil(total / chunk), steps_per_epoch=chunk` a run does
    exactly `total_steps` steps, the last Keras epoch a partial one (its
    epoch-end callbacks, checkpoints and backups included, still run). The
    optimizer's count is restored by `BackupAndRestore`, so a resumed run
    stops at the same step.

    Example:
    >>> stop = StopAtStep(250)  # model.fit(..., epochs=3, steps_per_epoch=100, callbacks=[stop])
    """

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = int(total_steps)

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.total_steps:
            self.model.stop_training = True
