"""Keras callbacks around distillation, in the trainers' pattern: short
"epochs" of `steps_per_epoch` steps (Keras 3.15's BackupAndRestore restores
at epoch boundaries only), the data skipped to the resumed step,
TerminateOnNaN with `StudentCheckpoint`, CSVLogger and TensorBoard."""

import csv
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from multiworker_worker import GLOBAL_BATCH, VOCAB_SIZE, examples, tiny_distiller
from tinybert_tf import checkpoint
from tinybert_tf.callbacks import StudentCheckpoint
from tinybert_tf.optimizers import make_optimizer
from tinybert_tf.schedules import WarmupLinearDecay

STEPS_PER_EPOCH, EPOCHS = 2, 3
TOTAL_STEPS = STEPS_PER_EPOCH * EPOCHS
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    f"w{i}" for i in range(VOCAB_SIZE - 5)]


class Interrupted(Exception):
    pass


class InterruptAfter(keras.callbacks.Callback):
    """Raises after `steps` training steps, as a killed process would stop."""

    def __init__(self, steps):
        super().__init__()
        self.steps, self.seen = steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.steps:
            raise Interrupted


class RecordStart(keras.callbacks.Callback):
    """Records the optimizer step and student weights when training starts
    (after BackupAndRestore, listed before it, has restored them)."""

    def on_train_begin(self, logs=None):
        self.iterations = int(self.model.optimizer.iterations)
        self.student = [v.numpy() for v in self.model.student.weights]


def resumed_epochs(backup_dir):
    """What the trainers read to skip the data already seen."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return json.load(f)["epoch"]


def run(directory, seed, interrupt_after=None):
    """One (possibly interrupted) run of the trainers' fit loop."""
    distiller = tiny_distiller(seed)
    schedule = WarmupLinearDecay(1e-2, TOTAL_STEPS, warmup_steps=1)
    distiller.compile(optimizer=make_optimizer(schedule), run_eagerly=True)
    os.makedirs(directory, exist_ok=True)
    backup_dir = os.path.join(directory, "backup")
    data = tf.data.Dataset.from_tensor_slices(
        examples(GLOBAL_BATCH * TOTAL_STEPS)).batch(GLOBAL_BATCH).repeat()
    data = data.skip(resumed_epochs(backup_dir) * STEPS_PER_EPOCH)
    start = RecordStart()
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir), start,
                 keras.callbacks.CSVLogger(os.path.join(directory, "log.csv"),
                                           append=True)]
    if interrupt_after:
        callbacks.append(InterruptAfter(interrupt_after))
    try:
        distiller.fit(data, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
                      callbacks=callbacks, shuffle=False, verbose=0)
    finally:  # an interrupted fit leaves the CSV log open (a killed process)
        callbacks[2].csv_file.close()
    return distiller, start


def student_weights(distiller):
    return [v.numpy() for v in distiller.student.weights]


def test_backup_and_restore_resumes_to_the_uninterrupted_result(tmp_path):
    reference, _ = run(str(tmp_path / "reference"), seed=1)
    assert int(reference.optimizer.iterations) == TOTAL_STEPS

    directory = str(tmp_path / "interrupted")
    # Killed 1 step into the second epoch: the backup is the first epoch's.
    with pytest.raises(Interrupted):
        run(directory, seed=1, interrupt_after=STEPS_PER_EPOCH + 1)
    assert resumed_epochs(os.path.join(directory, "backup")) == 1

    # A fresh process: other initial weights, all of them restored.
    resumed, start = run(directory, seed=2)
    assert start.iterations == STEPS_PER_EPOCH
    fresh = student_weights(tiny_distiller(seed=2))
    assert not all(np.array_equal(a, b) for a, b in zip(start.student, fresh))
    assert int(resumed.optimizer.iterations) == TOTAL_STEPS
    for a, b in zip(student_weights(resumed), student_weights(reference)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert not os.path.exists(os.path.join(directory, "backup"))  # finished

    # The appended CSV log has each epoch once, and the interrupted epoch
    # (not logged before the interruption) from the resumed run.
    with open(os.path.join(directory, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))


class PoisonTeacher(keras.callbacks.Callback):
    """Puts a NaN in the teacher at the start of `epoch`."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            embeddings = self.model.teacher.embeddings.word_embeddings.embeddings
            embeddings.assign(np.full(embeddings.shape, np.nan, "float32"))


class SnapshotStudent(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.weights = getattr(self, "weights", {})
        self.weights[epoch] = student_weights(self.model)


def test_terminate_on_nan_keeps_the_last_good_student(tmp_path):
    distiller = tiny_distiller()
    distiller.compile(keras.optimizers.Adam(1e-2), run_eagerly=True)
    directory = str(tmp_path / "student")
    snapshot = SnapshotStudent()
    data = tf.data.Dataset.from_tensor_slices(
        examples(GLOBAL_BATCH * TOTAL_STEPS)).batch(GLOBAL_BATCH).repeat()
    history = distiller.fit(
        data, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, shuffle=False,
        verbose=0,
        callbacks=[PoisonTeacher(epoch=1), keras.callbacks.TerminateOnNaN(),
                   StudentCheckpoint(directory, VOCAB), snapshot]).history

    # Stopped after the first NaN step, in the second epoch.
    assert int(distiller.optimizer.iterations) == STEPS_PER_EPOCH + 1
    assert len(history["loss"]) == 2 and np.isnan(history["loss"][1])
    assert np.isnan(distiller.student.weights[0].numpy()).any()

    # The checkpoint is the student after the first (good) epoch.
    saved = checkpoint.load_backbone(directory)
    for a, b in zip(saved.weights, snapshot.weights[0]):
        np.testing.assert_array_equal(a.numpy(), b)
    with open(os.path.join(directory, "config.json")) as f:
        assert json.load(f)["tinybert"]["step"] == STEPS_PER_EPOCH
    assert checkpoint.read(directory).weights.keys() >= {
        "fit_dense.weight", "fit_dense.bias"}


def _contents(directory):
    """{file name: bytes} of the files in `directory`."""
    out = {}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = f.read()
    return out


def test_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    distiller = tiny_distiller()
    directory = str(tmp_path / "student")
    checkpoint.save(distiller.student, directory, VOCAB)
    before = _contents(directory)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt  # killed halfway through writing

    monkeypatch.setattr(checkpoint.json, "dump", fail)
    distiller.student.weights[0].assign(np.zeros(distiller.student.weights[0].shape))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(distiller.student, directory, VOCAB, overwrite=True)
    after = _contents(directory)
    assert after == before
    assert os.listdir(tmp_path) == ["student"]  # no staging directory left


def test_csv_logger_and_tensorboard_write_every_loss(tmp_path):
    distiller = tiny_distiller()
    distiller.compile(keras.optimizers.Adam(1e-3), run_eagerly=True)
    data = tf.data.Dataset.from_tensor_slices(
        examples(GLOBAL_BATCH * STEPS_PER_EPOCH)).batch(GLOBAL_BATCH)
    csv_path, log_dir = str(tmp_path / "log.csv"), str(tmp_path / "tensorboard")
    history = distiller.fit(data, epochs=2, shuffle=False, verbose=0, callbacks=[
        keras.callbacks.CSVLogger(csv_path),
        keras.callbacks.TensorBoard(log_dir, update_freq=1)]).history

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    # (CSVLogger adds empty val_* columns when there is no validation data.)
    assert set(rows[0]) >= {"epoch"} | set(history)
    assert {"attention_loss_2", "hidden_loss_1", "embedding_loss"} <= set(history)
    for name, values in history.items():
        np.testing.assert_allclose([float(r[name]) for r in rows], values,
                                   rtol=1e-6)

    events = glob.glob(os.path.join(log_dir, "train", "events.out.tfevents.*"))
    assert events
    scalars = {}
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(
                    float(tf.make_ndarray(value.tensor)))
    for name, values in history.items():
        np.testing.assert_allclose(scalars[f"epoch_{name}"], values, rtol=1e-6)
    assert "batch_loss" in scalars  # update_freq=1 writes step scalars


def test_step_times_record_every_step_of_a_guarded_fit(tmp_path, monkeypatch):
    from tinybert_tf.callbacks import STEP_TIMES_ENV, guarded
    path = tmp_path / "steps.jsonl"
    monkeypatch.setenv(STEP_TIMES_ENV, str(path))
    distiller = tiny_distiller()
    distiller.compile(keras.optimizers.Adam(1e-3))
    data = tf.data.Dataset.from_tensor_slices(
        examples(GLOBAL_BATCH * STEPS_PER_EPOCH)).batch(GLOBAL_BATCH)
    distiller.fit(data, epochs=1, verbose=0, shuffle=False,
                  callbacks=guarded("general"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS_PER_EPOCH + 1))
    assert all(r["stage"] == "general" and r["seconds"] > 0 for r in rows)
