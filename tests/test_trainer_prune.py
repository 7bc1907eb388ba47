"""python -m trainers.prune: a tiny end-to-end run and its bad input (exit
status 2, a message naming the flag, nothing of the user's replaced)."""

import json
import os

import pytest

from tests.test_trainer_task import TOPICS, _rows, _write_csv
from tests.tiny import VOCAB, tiny_config
from tinybert_tf import checkpoint
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.heads import BertClassifier
from trainers import prune as prune_cli


def _classifier(directory, **config):
    import keras
    keras.utils.set_random_seed(len(directory))
    model = BertClassifier(BertBackbone(tiny_config(**config), name="bert"),
                           num_labels=2, label_names=sorted(TOPICS))
    model(dummy_inputs())
    checkpoint.save(model, directory, VOCAB, extras={"sequence_length": 16})
    return directory


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("prune")
    return {"root": root,
            "teacher": _classifier(str(root / "teacher"), num_layers=2),
            "student": _classifier(str(root / "student"), num_layers=1,
                                   hidden_size=8),
            "train": _write_csv(root / "train.csv", _rows(32, 0)),
            "dev": _write_csv(root / "dev.csv", _rows(8, 1)),
            "test": _write_csv(root / "test.csv", _rows(8, 2))}


def _argv(files, out, *extra):
    return ["--student", files["student"], "--teacher", files["teacher"],
            "--train-file", files["train"], "--dev-file", files["dev"],
            "--test-file", files["test"], "--batch-size", "8",
            "--intermediate-epochs", "1", "--prediction-epochs", "1",
            "--eval-every", "0", "--output-dir", str(out), "--quiet", *extra]


def test_end_to_end_writes_pruned_student_and_report(files):
    out = files["root"] / "run"
    assert prune_cli.main(_argv(files, out, "--heads-keep", "1",
                                "--ffn-keep", "0.5")) == 0
    report = json.loads((out / "prune_report.json").read_text())
    assert report["removed"][0]["ffn_neurons_kept"] == 16
    assert len(report["removed"][0]["heads_kept"]) == 1
    assert set(report["scores"]) == {"before_pruning", "after_pruning",
                                     "after_recovery"}
    assert report["parameters"]["non_embedding_after"] < \
        report["parameters"]["non_embedding_before"]
    student = checkpoint.load_classifier(out / "student")
    assert student.config.intermediate_sizes == (16,)
    assert student.label_names == sorted(TOPICS)
    saved = checkpoint.read(out / "student")
    assert "fit_dense.weight" in saved.weights  # projections kept
    assert saved.extras["sequence_length"] == 16
    # A second run does not replace it.
    before = (out / "prune_report.json").read_text()
    assert prune_cli.main(_argv(files, out, "--heads-keep", "1")) == 2
    assert (out / "prune_report.json").read_text() == before


def _fails(argv, capsys, *fragments):
    assert prune_cli.main(argv) == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err


def test_bad_input_names_the_flag(files, tmp_path, capsys):
    out = tmp_path / "out"
    good = _argv(files, out, "--ffn-keep", "0.5")
    _fails(["--student", str(tmp_path / "none"), *good[2:]], capsys,
           "--student", "no such checkpoint")
    _fails([*good[:2], "--teacher", str(tmp_path), *good[4:]], capsys,
           "--teacher", "no config.json")
    _fails(_argv(files, out), capsys, "--heads-keep", "--params-keep")
    _fails(_argv(files, out, "--heads-keep", "half"), capsys, "--heads-keep",
           "fraction")
    _fails(_argv(files, out, "--ffn-keep", "1.5"), capsys, "--ffn-keep")
    _fails(_argv(files, out, "--ffn-keep", "99999"), capsys, "--ffn-keep",
           "exceeds")
    _fails(_argv(files, out, "--params-keep", "0.5", "--heads-keep", "1"),
           capsys, "--params-keep")
    _fails([*good, "--rounds", "0"], capsys, "--rounds")
    _fails([*good, "--prediction-lr", "0"], capsys, "--prediction-lr")
    _fails(_argv(files, files["root"], "--ffn-keep", "0.5"), capsys,
           "--output-dir", "holds --student")
    _fails([*good, "--train-file", str(tmp_path / "missing.csv")], capsys,
           "--train-file")
    assert not out.exists()


def test_a_student_without_head_is_refused(files, tmp_path, capsys):
    backbone = BertBackbone(tiny_config(num_layers=1, hidden_size=8))
    backbone(dummy_inputs())
    checkpoint.save(backbone, tmp_path / "general", VOCAB)
    argv = _argv(files, tmp_path / "out", "--ffn-keep", "0.5")
    argv[1] = str(tmp_path / "general")
    _fails(argv, capsys, "--student", "no classifier head")
    assert not os.path.exists(tmp_path / "out" / "student")
