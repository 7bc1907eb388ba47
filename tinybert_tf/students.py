"""The two models of a distillation run: the student, built from a preset, a
config file or a checkpoint, and the teacher, read from any checkpoint source.

General and task distillation both build their student with `make_student`
and read their teacher with `read_teacher`.

Example:
>>> from tinybert_tf.config import BertConfig
>>> from tinybert_tf.students import make_student
>>> teacher_config = BertConfig(vocab_size=30, hidden_size=16, num_layers=2,
...                             num_heads=2, intermediate_size=32,
...                             max_position_embeddings=64)
>>> student, ckpt, description = make_student("tinybert-3l-192d",
...                                           teacher_config, num_labels=2)
>>> (student.config.vocab_size, student.config.max_position_embeddings,
...  student.num_labels, ckpt, description)
(30, 64, 2, None, 'random tinybert-3l-192d')
"""

import json
import os


def make_student(source, teacher_config, num_labels=None, *, label_names=None,
                 head="tanh_relu", pooling=None, vocabulary=None):
    """(student model, its `Checkpoint` or None, a description).

    `source` is a checkpoint directory (its weights, and projections for a
    later `Distiller.load_projections`, are reused), a config `.json` or a
    preset name of `tinybert_tf.config.PRESETS` (random weights). For a
    config file or preset, `vocab_size`, `type_vocab_size` AND
    `max_position_embeddings` are taken from `teacher_config`: TinyBERT feeds
    both models the same ids and positions.

    With `num_labels` the student is a `BertClassifier` (a checkpoint's own
    classifier head is kept, else a new `head` with `pooling` is created),
    without it a `BertBackbone`. With `vocabulary` (the teacher's list of
    word-pieces) a checkpoint's vocabulary must be the same.
    """
    from tinybert_tf import checkpoint
    from tinybert_tf.backbone import BertBackbone, dummy_inputs
    from tinybert_tf.config import PRESETS, BertConfig
    from tinybert_tf.heads import BertClassifier
    if os.path.isdir(source):
        ckpt = checkpoint.read(source)
        if vocabulary is not None:
            _check_vocabulary(ckpt, source, vocabulary)
        if num_labels is None:
            return checkpoint.load_backbone(ckpt), ckpt, f"checkpoint {source}"
        has_head = "classifier.weight" in ckpt.weights
        student = checkpoint.load_classifier(
            ckpt, num_labels=num_labels, label_names=label_names or None,
            head=None if has_head else head,
            pooling=None if has_head else pooling)
        return student, ckpt, f"checkpoint {source}"
    if source.endswith(".json"):
        if not os.path.exists(source):
            raise FileNotFoundError(f"Student config {source} not found.")
        with open(source, encoding="utf-8") as f:
            config = BertConfig.from_dict(json.load(f))
    elif source in PRESETS:
        config = BertConfig.from_preset(source)
    else:
        raise ValueError(
            f"--student {source!r} is neither a checkpoint directory, a "
            f"config .json, 'random' nor a preset ({', '.join(sorted(PRESETS))}).")
    config = config.replace(
        vocab_size=teacher_config.vocab_size,
        max_position_embeddings=teacher_config.max_position_embeddings,
        type_vocab_size=teacher_config.type_vocab_size)
    if num_labels is None:
        return BertBackbone(config), None, f"random {source}"
    student = BertClassifier(BertBackbone(config, name="bert"), num_labels,
                             head=head, label_names=label_names or None,
                             pooling=pooling or "cls")
    student(dummy_inputs())
    return student, None, f"random {source}"


def _check_vocabulary(ckpt, source, vocabulary):
    if ckpt.vocab_file is None:
        raise FileNotFoundError(f"Student checkpoint {source} has no "
                                "vocab.txt.")
    if ckpt.vocabulary() != list(vocabulary):
        raise ValueError(
            f"Student checkpoint {source} has a different vocabulary "
            f"({len(ckpt.vocabulary())} word-pieces) from the teacher's "
            f"({len(vocabulary)}): TinyBERT feeds both the same ids.")


def read_teacher(source=None, sequence_length=128):
    """(name, `Checkpoint`, `BertTextTokenizer`) of a teacher.

    `source` is any checkpoint source (HF directory or hub id, keras-hub
    preset, project checkpoint); None is the offline MiniLM. `name` is the
    source as logs and reports show it (`assets.display_name`). The
    tokenizer of its vocabulary is checked against its config.
    """
    from tinybert_tf import assets, checkpoint
    from tinybert_tf.tokenizer import BertTextTokenizer
    source = source or assets.minilm_dir()
    ckpt = checkpoint.read(source)
    name = assets.display_name(source)
    if ckpt.vocab_file is None:
        raise FileNotFoundError(f"Teacher {name} has no vocab.txt.")
    positions = ckpt.config.max_position_embeddings
    if sequence_length > positions:
        raise ValueError(
            f"--sequence-length {sequence_length} exceeds the position table "
            f"of the teacher {name} (max_position_embeddings {positions}); "
            f"use at most {positions}.")
    tokenizer = BertTextTokenizer(ckpt.vocab_file, sequence_length)
    tokenizer.check_model(ckpt.config)
    return name, ckpt, tokenizer


LABEL_MAPPINGS = ("names", "index")


def load_fine_tuned_teacher(ckpt, num_labels, label_names=None,
                            label_mapping="names"):
    """The `BertClassifier` of a fine-tuned teacher `Checkpoint`, checked
    against the task's number of labels.

    `label_mapping="names"`: the teacher's classes are put in the task's
    order by their names (checkpoints carry them: the project's own, and
    Hugging Face's `id2label`), and a teacher whose names are not the task's
    is refused (the official MNLI order bug, huawei-noah/Pretrained-
    Language-Model#229). "index": class i of the teacher is class i of the
    task, as the official code assumes. A teacher without label names is
    taken in index order.
    """
    from tinybert_tf import checkpoint
    from tinybert_tf.heads import reorder_labels
    if label_mapping not in LABEL_MAPPINGS:
        raise ValueError(f"Unknown label mapping {label_mapping!r}; expected "
                         f"one of {LABEL_MAPPINGS}.")
    if "classifier.weight" not in ckpt.weights:
        raise ValueError(f"{ckpt.source} has no classifier head: it is not a "
                         "fine-tuned teacher (give a pre-trained one with "
                         "--teacher instead).")
    teacher = checkpoint.load_classifier(ckpt)
    if teacher.num_labels != num_labels:
        raise ValueError(
            f"Teacher {ckpt.source} has {teacher.num_labels} output(s) but the "
            f"task needs {num_labels}.")
    if (label_mapping == "names" and teacher.label_names and label_names
            and list(teacher.label_names) != list(label_names)):
        if sorted(teacher.label_names) != sorted(label_names):
            raise ValueError(
                f"Teacher {ckpt.source} was fine-tuned for labels "
                f"{teacher.label_names} but the task has {list(label_names)}."
                " Use another --output-dir, or --retrain-teacher --overwrite "
                "(--label-mapping index takes its classes in index order).")
        reorder_labels(teacher, label_names)
    elif label_names:
        teacher.label_names = list(label_names)
    return teacher
