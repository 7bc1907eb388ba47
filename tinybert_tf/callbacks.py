"""Callbacks of the trainers.

`StudentCheckpoint` saves the distilled student (with its projections) in the
project's checkpoint format after every Keras epoch whose logged losses are
all finite, so a NaN never overwrites the last good checkpoint.

`StepLog` appends the training logs to a CSV file every few steps (Keras's
`CSVLogger` writes once per epoch): the loss curves of the demo report.

`NonFiniteGuard` stops a training at the first NaN/Inf loss with a message
naming the stage and the step (Keras's `TerminateOnNaN` stops silently).

`FaultInjection` is a testing aid: with TINYBERT_TF_FAULT=STAGE:STEP:KIND
in the environment, the training of STAGE is SIGKILLed (KIND `kill`) or
its weights made NaN (`nan`) once its optimizer reaches STEP; the fault
tests of docs/reliability.md use it to stop a real run at a known step.

`StepTimes` is a benchmarking aid: with TINYBERT_TF_STEP_TIMES=PATH, every
training appends `{"stage", "step", "seconds"}` JSON lines to PATH
(benchmarks/cli_steps.py times the trainers' own `fit` this way).
"""

import csv
import json
import math
import os
import signal
import time

import keras
import numpy as np

from tinybert_tf import checkpoint, console

FAULT_ENV = "TINYBERT_TF_FAULT"
STEP_TIMES_ENV = "TINYBERT_TF_STEP_TIMES"


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


class NonFiniteLoss(console.RunStopped):
    pass


class NonFiniteGuard(keras.callbacks.Callback):
    """Raises `NonFiniteLoss` at the first step whose logged losses are not
    all finite, naming `stage`, the step and the losses."""

    def __init__(self, stage):
        super().__init__()
        self.stage = stage

    def on_train_batch_end(self, batch, logs=None):
        bad = {k: float(v) for k, v in (logs or {}).items()
               if not math.isfinite(float(v))}
        if bad:
            step = int(self.model.optimizer.iterations.numpy())
            raise NonFiniteLoss(
                f"{self.stage}: non-finite loss at step {step} ("
                + ", ".join(f"{k} {v}" for k, v in bad.items()) + "); the "
                "stage was stopped and what it saved before is kept. Lower "
                "the learning rate, or use float32 if you trained in mixed "
                "precision.")


class FaultInjection(keras.callbacks.Callback):
    """A fault at `step` of a training: `kind` "kill" (SIGKILL, as a lost
    machine) or "nan" (the first trainable weight set to NaN)."""

    def __init__(self, step, kind):
        super().__init__()
        if kind not in ("kill", "nan"):
            raise ValueError(f"{FAULT_ENV}: unknown fault {kind!r} (kill, nan).")
        self.step, self.kind = int(step), kind

    @classmethod
    def from_environment(cls, stage):
        """[FaultInjection] if $TINYBERT_TF_FAULT names `stage`, else []."""
        spec = os.environ.get(FAULT_ENV, "")
        if not spec:
            return []
        name, step, kind = spec.split(":")
        return [cls(step, kind)] if name == stage else []

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) < self.step:
            return
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        variable = self.model.trainable_variables[0]
        variable.assign(np.full(variable.shape, np.nan, variable.dtype))
        self.step = float("inf")  # once


class StepTimes(keras.callbacks.Callback):
    """Appends each training step's wall time (batch begin to end, the
    logs read back) to a JSON-lines file."""

    def __init__(self, path, stage):
        super().__init__()
        self.path, self.stage = path, stage

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        seconds = time.perf_counter() - self._start
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"stage": self.stage, "step": int(
                self.model.optimizer.iterations.numpy()),
                "seconds": seconds}) + "\n")


def guarded(stage):
    """The callbacks every training of `stage` runs with: the non-finite
    guard, the fault of $TINYBERT_TF_FAULT if it names `stage`, and
    `StepTimes` with $TINYBERT_TF_STEP_TIMES."""
    timed = ([StepTimes(os.environ[STEP_TIMES_ENV], stage)]
             if os.environ.get(STEP_TIMES_ENV) else [])
    return [*timed, NonFiniteGuard(stage),
            *FaultInjection.from_environment(stage)]
