"""Resuming an interrupted run exactly, and refusing to resume another one.

- `RunRecord`: OUTPUT/run.json, the configuration of the run that owns an
  output folder; a re-run with other values is refused, the differing keys
  listed.
- `TrainingBackup`: a Keras callback that saves, after every epoch, what a
  distillation needs to continue (the student, the projections, the
  optimizer's state and step, the dropout seeds), and not the frozen
  teacher, which is reloaded from its source. `restore` before `fit`
  returns the epoch to pass as `fit(initial_epoch=...)`.
- `reseed`: puts the dropout seed generators of models in a known state, so
  a stage that is re-run from its start repeats itself exactly.

Example:
>>> import os, tempfile
>>> from tinybert_tf.resume import RunRecord
>>> folder = tempfile.mkdtemp()
>>> RunRecord(folder, {"learning_rate": 1e-3, "seed": 0}).check()
>>> RunRecord(folder, {"learning_rate": 1e-3, "seed": 0}).check()  # same run
>>> try:
...     RunRecord(folder, {"learning_rate": 5e-4, "seed": 0}).check()
... except ValueError as error:
...     print(str(error).splitlines()[1])
  learning_rate: 0.001 in the unfinished run, 0.0005 now
"""

import json
import os
import shutil

import keras
import numpy as np

from tinybert_tf import files

RUN_FILE = "run.json"
_SEED_STATE = "seed_generator_state"


class RunRecord:
    """The configuration of the run that owns `output_dir` (JSON values)."""

    def __init__(self, output_dir, config):
        self.path = os.path.join(output_dir, RUN_FILE)
        self.config = json.loads(json.dumps(config, default=str))

    def recorded(self):
        if not os.path.exists(self.path):
            return None
        try:
            return files.read_json(self.path)
        except ValueError as error:
            raise ValueError(f"{error} Pass --overwrite to start the run "
                             "again.") from None

    def differences(self):
        """{key: (recorded, now)} of the values that differ."""
        recorded = self.recorded()
        if recorded is None:
            return {}
        keys = sorted(set(recorded) | set(self.config))
        return {k: (recorded.get(k), self.config.get(k)) for k in keys
                if recorded.get(k) != self.config.get(k)}

    def write(self):
        files.write_json(self.path, self.config)

    def check(self, write=True):
        """Raises ValueError if an unfinished run with another configuration
        owns the folder; else records this one (with `write`)."""
        differences = self.differences()
        if differences:
            raise ValueError(
                f"{os.path.dirname(self.path)} holds an unfinished run with "
                "another configuration:\n" + "\n".join(
                    f"  {k}: {old!r} in the unfinished run, {new!r} now"
                    for k, (old, new) in differences.items())
                + "\nRe-run it with its own flags to resume it, pass "
                  "--overwrite to start afresh, or choose another output "
                  "folder.")
        if write:
            self.write()


def reseed(models, seed):
    """Sets every dropout seed generator of `models` to a state derived from
    `seed` (and the generator's position), and Keras's global seed."""
    keras.utils.set_random_seed(seed)
    index = 0
    for model in models:
        for variable in model.non_trainable_variables:
            if _SEED_STATE in variable.path:
                variable.assign(np.array([seed, index], variable.dtype))
                index += 1


def resumable_variables(distiller):
    """What a `Distiller` needs to continue: the student's variables (its
    dropout seeds included), the projections', the teacher's dropout seeds
    when it trains with dropout, the optimizer's (its step included)."""
    teacher_seeds = [v for v in distiller.teacher.non_trainable_variables
                     if _SEED_STATE in v.path] if distiller.teacher_training else []
    projections = [v for dense in distiller.projections for v in dense.variables]
    return (list(distiller.student.variables) + projections + teacher_seeds
            + list(distiller.optimizer.variables))


def _layout(variables):
    # Shapes and dtypes: Keras's variable paths depend on how many layers
    # the process made before.
    return [[list(v.shape), str(v.dtype)] for v in variables]


class TrainingBackup(keras.callbacks.Callback):
    """Saves `resumable_variables` of the distiller being fit into
    `directory` after every epoch, all or nothing (with the epoch count in
    state.json); `restore(distiller)` loads it back. Removed at the end of
    a completed fit (`finished()`), as Keras's `BackupAndRestore`.

    `enabled=False` (a worker that is not the chief) restores but never
    writes.
    """

    def __init__(self, directory, enabled=True):
        super().__init__()
        self.directory = os.fspath(directory)
        self.enabled = enabled
        self.epoch = 0

    def _recover_swap(self):
        # A kill between the two renames of `files.staged_directory`.
        old = self.directory + ".old"
        if not os.path.exists(self.directory) and os.path.isdir(old):
            os.replace(old, self.directory)

    def restore(self, distiller):
        """Loads the backup into `distiller` (built, compiled); returns the
        epochs already done (0 without a backup)."""
        self._recover_swap()
        state = os.path.join(self.directory, "state.json")
        if not os.path.exists(state):
            return 0
        from safetensors.numpy import load_file
        with open(state, encoding="utf-8") as f:
            meta = json.load(f)
        variables = resumable_variables(distiller)
        if meta["variables"] != _layout(variables):
            raise ValueError(
                f"The backup in {self.directory} was made by other models "
                "or another optimizer than this run's; pass --overwrite to "
                "start afresh.")
        values = load_file(os.path.join(self.directory, "state.safetensors"))
        for i, variable in enumerate(variables):
            variable.assign(values[f"{i:05d}"])
        self.epoch = int(meta["epoch"])
        return self.epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = epoch + 1
        if not self.enabled:
            return
        from safetensors.numpy import save_file
        variables = resumable_variables(self.model)
        with files.staged_directory(self.directory, prefix=".backup-") as staging:
            save_file({f"{i:05d}": np.asarray(v.numpy())
                       for i, v in enumerate(variables)},
                      os.path.join(staging, "state.safetensors"))
            with open(os.path.join(staging, "state.json"), "w",
                      encoding="utf-8") as f:
                json.dump({"epoch": self.epoch,
                           "variables": _layout(variables)}, f)

    def finished(self):
        """Removes the backup (the run it served is complete)."""
        if self.enabled:
            for path in (self.directory, self.directory + ".old"):
                if os.path.isdir(path):
                    shutil.rmtree(path)
