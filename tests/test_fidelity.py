"""The official TinyBERT behaviours are options, `--recipe paper` turns them
on, and the two official bugs are fixed by default (docs/fidelity.md)."""

import json

import numpy as np
import pytest

from tests.test_trainer_task import _argv, files  # noqa: F401 (fixture)
from tests.tiny import VOCAB, tiny_config
from tinybert_tf import checkpoint, students
from tinybert_tf import task_distillation as td
from tinybert_tf.backbone import BertBackbone
from tinybert_tf.heads import BertClassifier
from trainers import general as general_cli
from trainers import task as task_cli

OFFICIAL = dict(optimizer="bertadam", clip_mode="per_tensor",
                teacher_dropout=True)


def test_paper_recipe_turns_every_official_behaviour_on():
    paper = task_cli.parse_args(["--recipe", "paper"])
    assert {k: getattr(paper, k) for k in OFFICIAL} == OFFICIAL
    assert paper.drop_remainder and paper.pooling == "cls"
    assert (paper.intermediate_lr, paper.prediction_lr) == (5e-5, 3e-5)
    fast = task_cli.parse_args([])
    assert (fast.optimizer, fast.clip_mode, fast.teacher_dropout,
            fast.drop_remainder) == ("adamw", "global", False, False)
    # The official bugs stay fixed in the paper recipe, one flag away; the
    # "official" recipe is the paper's with them, to compare with that code.
    assert (paper.regression_target, paper.label_mapping) == ("teacher",
                                                              "names")
    official = task_cli.parse_args(["--recipe", "official"])
    assert (official.regression_target, official.label_mapping) == ("labels",
                                                                    "index")
    assert {k: getattr(official, k) for k in OFFICIAL} == OFFICIAL
    assert (fast.regression_target, fast.label_mapping) == ("teacher", "names")
    # An explicit flag wins over the recipe.
    mixed = task_cli.parse_args(["--recipe", "paper", "--optimizer", "adamw",
                                 "--no-teacher-dropout"])
    assert (mixed.optimizer, mixed.teacher_dropout) == ("adamw", False)
    general = general_cli.parse_args(["--recipe", "paper"])
    assert {k: getattr(general, k) for k in OFFICIAL} == OFFICIAL
    assert general.learning_rate == 5e-5
    assert general_cli.parse_args([]).learning_rate == 1e-3


def test_command_line_options_reach_the_library():
    args = task_cli.parse_args(["--recipe", "paper", "--regression-target",
                                "labels", "--loss-weights", "1,1,1,0.5",
                                "--intermediate-stage", "all"])
    from trainers import common
    options = common.distillation_options(args)
    assert options.teacher_training and options.regression_target == "labels"
    assert options.loss_weights.prediction == 0.5
    config = td.TaskDistillationConfig.from_mapping(vars(args))
    assert (config.optimizer, config.clip_mode, config.intermediate_stage) == (
        "bertadam", "per_tensor", "all")


def test_paper_recipe_runs_end_to_end(files, tmp_path):  # noqa: F811
    """Every official behaviour at once, on tiny models: BertAdam,
    per-tensor clipping, teacher dropout, partial batches dropped, and the
    selection metric recorded."""
    out = tmp_path / "paper"
    assert task_cli.main(_argv(files, out, "--recipe", "paper",
                               "--select-metric", "f1")) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["primary_metric"] == "f1"
    assert {"accuracy", "f1"} <= set(report["student"]["test"])
    assert report["arguments"]["optimizer"] == "bertadam"


def test_select_metric_of_the_wrong_kind_is_refused(files, tmp_path, capsys):  # noqa: F811
    assert task_cli.main(_argv(files, tmp_path / "x", "--select-metric",
                               "pearson")) == 2
    err = capsys.readouterr().err
    assert "--select-metric pearson" in err and "Traceback" not in err


def _saved_teacher(directory, label_names):
    model = BertClassifier(BertBackbone(tiny_config()), len(label_names),
                           label_names=label_names)
    inputs = {"token_ids": np.array([[2, 9, 12, 3]]),
              "segment_ids": np.zeros((1, 4), "int32"),
              "padding_mask": np.ones((1, 4), "int32")}
    logits = model(inputs).numpy()
    checkpoint.save(model, directory, VOCAB)
    return checkpoint.read(directory), inputs, logits


def test_teacher_classes_are_matched_by_name(tmp_path):
    """Official issue #229: a teacher whose classes are in another order is
    reordered by name; other names are refused; "index" keeps the order."""
    ckpt, inputs, logits = _saved_teacher(
        str(tmp_path / "mnli"), ["contradiction", "entailment", "neutral"])
    task_order = ["entailment", "neutral", "contradiction"]
    teacher = students.load_fine_tuned_teacher(ckpt, 3, task_order)
    np.testing.assert_allclose(teacher(inputs).numpy(), logits[:, [1, 2, 0]],
                               rtol=1e-6)
    official = students.load_fine_tuned_teacher(ckpt, 3, task_order, "index")
    np.testing.assert_allclose(official(inputs).numpy(), logits, rtol=1e-6)
    with pytest.raises(ValueError, match="fine-tuned for labels"):
        students.load_fine_tuned_teacher(ckpt, 3, ["a", "b", "c"])


def test_hugging_face_label_names_are_read(tmp_path):
    """A classifier fine-tuned with transformers names its classes in
    id2label; default LABEL_i names are no names."""
    directory = tmp_path / "hf"
    _saved_teacher(str(directory), ["neg", "pos"])
    config = json.loads((directory / "config.json").read_text())
    config.pop("tinybert")
    config["id2label"] = {"1": "pos", "0": "neg"}
    (directory / "config.json").write_text(json.dumps(config))
    assert checkpoint.read(str(directory)).extras["label_names"] == ["neg",
                                                                     "pos"]
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    (directory / "config.json").write_text(json.dumps(config))
    assert "label_names" not in checkpoint.read(str(directory)).extras


def test_one_step_distillation_trains_the_prediction_layer_too():
    """`intermediate_stage="all"` (`LossWeights.prediction` reachable): step 1
    adds the prediction loss to the layer losses."""
    from tinybert_tf.distillation_options import (DistillationOptions,
                                                  parse_loss_weights)
    from tinybert_tf.tasks import Split, TaskData
    from tinybert_tf.tokenizer import BertTextTokenizer
    split = Split(["the cat sat", "market rose", "team won", "shares fell"],
                  None, np.array([0, 1, 0, 1]))
    task = TaskData("toy", split, split, None, ["a", "b"], False,
                    ("accuracy",))
    inputs = td.TaskInputs(task, BertTextTokenizer(VOCAB, 8), batch_size=2)
    run = td.TaskDistillation(
        BertClassifier(BertBackbone(tiny_config()), 2),
        BertClassifier(BertBackbone(tiny_config(num_layers=1)), 2), inputs,
        td.TaskDistillationConfig(intermediate_epochs=1,
                                  intermediate_stage="all"),
        DistillationOptions(loss_weights=parse_loss_weights("1,1,1,0.5")))
    _, losses, _ = run.intermediate_step()
    assert run.intermediate.stage == "all"
    expected = (losses["embedding_loss"] + losses["attention_loss"]
                + losses["hidden_loss"] + 0.5 * losses["prediction_loss"])
    assert losses["loss"] == pytest.approx(expected, rel=1e-4)
