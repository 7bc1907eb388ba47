import json
import os

import pytest

from tinybert_tf import checkpoint
from tests.tiny import save_tiny_backbone, tiny_config, tiny_corpus
from trainers import general


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("general")
    teacher = save_tiny_backbone(str(root / "teacher"), num_layers=4)
    student = root / "student.json"
    student.write_text(tiny_config(hidden_size=8).to_json())
    corpus = tiny_corpus(str(root / "corpus.txt"), documents=30)
    return root, teacher, str(student), corpus


def _argv(root, teacher, student, corpus, out, *extra):
    return ["--teacher", teacher, "--student", student, "--corpus", corpus,
            "--sequence-length", "32", "--batch-size", "4", "--steps", "4",
            "--save-every", "2", "--output-dir", str(out),
            "--cache-dir", str(root / "cache"), *extra]


def test_general_distillation_end_to_end(setup, capsys):
    root, teacher, student, corpus = setup
    out = root / "run"
    assert general.main(_argv(root, teacher, student, corpus, out)) == 0
    printed = capsys.readouterr().out
    assert "student layer 2 -> teacher layer 4" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 4
    assert report["mapping"]["teacher_layer_of_student"] == [2, 4]
    for key in ("loss", "embedding_loss", "attention_loss", "hidden_loss",
                "attention_loss_1", "hidden_loss_2"):
        assert report["final_losses"][key] > 0
    assert report["examples_per_s"] > 0
    saved = checkpoint.read(str(out / "student"))
    assert saved.weights["fit_dense.weight"].shape == (16, 8)
    assert saved.config.hidden_size == 8
    assert (out / "logs" / "training_log.csv").exists()
    assert not (out / "backup").exists()  # removed after a finished run


def test_refuses_to_overwrite_a_finished_run(setup, capsys):
    root, teacher, student, corpus = setup
    out = root / "twice"
    assert general.main(_argv(root, teacher, student, corpus, out)) == 0
    before = (out / "student" / "model.safetensors").read_bytes()
    assert general.main(_argv(root, teacher, student, corpus, out)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "student" / "model.safetensors").read_bytes() == before
    assert general.main(_argv(root, teacher, student, corpus, out,
                              "--overwrite")) == 0


def test_continues_from_a_general_student_and_checks_vocab(setup, capsys):
    root, teacher, student, corpus = setup
    first = root / "first"
    assert general.main(_argv(root, teacher, student, corpus, first)) == 0
    assert general.main(_argv(root, teacher, str(first / "student"), corpus,
                              root / "second")) == 0


def test_bad_inputs(setup, capsys):
    root, teacher, student, corpus = setup
    assert general.main(_argv(root, teacher, "no-such-preset", corpus,
                              root / "bad1")) == 2
    assert "no-such-preset" in capsys.readouterr().err
    assert general.main(_argv(root, teacher, student, str(root / "missing.txt"),
                              root / "bad2")) == 2
    assert "missing.txt" in capsys.readouterr().err
    heads = root / "heads.json"
    heads.write_text(tiny_config(hidden_size=8, num_heads=4).to_json())
    assert general.main(_argv(root, teacher, str(heads), corpus, root / "bad3")) == 2
    assert "attention heads" in capsys.readouterr().err
    assert general.main(_argv(root, teacher, student, corpus, root / "bad4",
                              "--mapping", "custom", "--custom-layers", "1,9")) == 2


def test_loss_and_layer_weights_from_flags():
    from argparse import Namespace
    weights = general.loss_weights_from_args(
        Namespace(loss_weights="1,0.5,2", layer_weights="1=0.5,3=2"))
    assert (weights.embedding, weights.attention, weights.hidden) == (1, 0.5, 2)
    assert weights.layers == {1: 0.5, 3: 2.0}
    for loss, layer in (("1,2", ""), ("1,x,2", ""), ("1,1,1", "1:2")):
        with pytest.raises(ValueError, match="--loss-weights"):
            general.loss_weights_from_args(
                Namespace(loss_weights=loss, layer_weights=layer))
