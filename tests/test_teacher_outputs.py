"""The teacher's logits computed once (`teacher_outputs.TeacherLogits`):
cached on disk under a key of teacher, tokenization and texts; step 2 fed
with them runs the student alone and learns what it learns with the teacher
running at every step."""

import numpy as np
import pytest
import tensorflow as tf

from tinybert_tf import training
from tinybert_tf import task_distillation as td
from tinybert_tf.backbone import BertBackbone
from tinybert_tf.distillation_options import DistillationOptions
from tinybert_tf.heads import BertClassifier
from tinybert_tf.tasks import Split, TaskData
from tinybert_tf.teacher_outputs import TeacherLogits
from tinybert_tf.tokenizer import BertTextTokenizer
from tiny import VOCAB, WORDS, tiny_config

RNG = np.random.default_rng(0)
SPLIT = Split([" ".join(RNG.choice(WORDS, size=int(n)))
               for n in RNG.integers(1, 12, 48)], None,
              RNG.integers(0, 3, 48))
TOKENIZER = BertTextTokenizer(VOCAB, sequence_length=16)


def classifier(layers=2, seed=0):
    import keras
    keras.utils.set_random_seed(seed)
    return BertClassifier(BertBackbone(tiny_config(num_layers=layers)), 3)


def test_computed_once_then_read_from_disk(tmp_path, monkeypatch):
    teacher = classifier()
    first = TeacherLogits(teacher, TOKENIZER, tmp_path).logits(SPLIT)
    assert first.shape == (48, 3) and len(list(tmp_path.iterdir())) == 1
    expected = training.predict(teacher, training.make_dataset(
        SPLIT, TOKENIZER, 8))
    np.testing.assert_allclose(first, expected, atol=1e-5)
    monkeypatch.setattr(training, "predict", lambda *a: pytest.fail(
        "the teacher ran again"))
    np.testing.assert_array_equal(
        TeacherLogits(teacher, TOKENIZER, tmp_path).logits(SPLIT), first)


def test_key_names_teacher_tokenization_and_texts():
    teacher = classifier()
    cache = TeacherLogits(teacher, TOKENIZER, None)
    key = cache.key(SPLIT)
    assert TeacherLogits(teacher, TOKENIZER.with_sequence_length(32),
                         None).key(SPLIT) != key
    assert cache.key(SPLIT.take(range(47))) != key
    teacher.weights[0].assign(teacher.weights[0] + 1.0)
    assert cache.key(SPLIT) != key


def test_a_damaged_file_is_computed_again(tmp_path):
    cache = TeacherLogits(classifier(), TOKENIZER, tmp_path)
    (tmp_path / f"{cache.key(SPLIT)}.npy").write_bytes(b"not numpy")
    assert cache.logits(SPLIT).shape == (48, 3)


def _prediction_run(teacher_logits):
    task = TaskData("toy", SPLIT, SPLIT, None, ["a", "b", "c"], False,
                    ("accuracy",))
    teacher, student = classifier(2, seed=1), classifier(1, seed=2)
    run = td.TaskDistillation(
        teacher, student, td.TaskInputs(task, TOKENIZER, 8, bucketing=True),
        td.TaskDistillationConfig(intermediate_epochs=0, prediction_epochs=1,
                                  eval_every=0))
    if teacher_logits:
        run.teacher_logits = TeacherLogits(teacher, TOKENIZER, None)
        run.teacher_logits.logits(SPLIT)
    traced = []  # the teacher in a training step's graph
    features = teacher.features

    def watched(*args, **kwargs):
        if not tf.executing_eagerly():
            traced.append(1)
        return features(*args, **kwargs)
    teacher.features = watched
    run.prediction_step()
    return student.get_weights(), traced


def test_step_2_on_the_logits_runs_the_student_alone_and_learns_the_same():
    cached, cached_traced = _prediction_run(teacher_logits=True)
    plain, plain_traced = _prediction_run(teacher_logits=False)
    assert not cached_traced and plain_traced
    for a, b in zip(cached, plain):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_no_cache_for_a_teacher_with_dropout():
    task = TaskData("toy", SPLIT, SPLIT, None, ["a", "b", "c"], False,
                    ("accuracy",))
    teacher = classifier()
    with pytest.raises(ValueError, match="dropout"):
        td.TaskDistillation(
            teacher, classifier(1), td.TaskInputs(task, TOKENIZER, 8),
            td.TaskDistillationConfig(intermediate_epochs=0),
            DistillationOptions(teacher_training=True),
            teacher_logits=TeacherLogits(teacher, TOKENIZER, None))
