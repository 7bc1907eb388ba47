"""`python -m export.tflite` on bad input and faults: one `error: ...` line
and exit status 2 before any model is loaded where it can be, an output
folder that loses nothing the export did not write, no staging left behind.

A tiny 1-layer classifier (the tests/tiny.py vocabulary, labels business /
sport, untrained) is the checkpoint; `export.tflite.main` runs in process.
Validation tests replace `export_classifier` by a function that fails the
test if it is reached; the few tests that convert use one variant
(dynamic_int8) without the MediaPipe and tokenizer checks.
"""

import hashlib
import json
import os
import shutil
import tempfile

import keras
import pytest

from export import classifier, tflite
from tiny import VOCAB, save_tiny_backbone, tiny_config
from tinybert_tf import checkpoint
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.heads import BertClassifier

LABELS = ["business", "sport"]
TEXTS = {"business": ["the market rose", "shares fell", "the price rose",
                      "market shares fell", "price of shares rose",
                      "the market fell"],
         "sport": ["the team won the game", "the team lost", "a game on",
                   "the team won", "sport game lost", "the game team won"]}


def _csv(path, labels=LABELS):
    rows = [f"{text},{label}" for label, name in zip(labels, LABELS)
            for text in TEXTS[name]]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    keras.utils.set_random_seed(0)
    model = BertClassifier(BertBackbone(tiny_config(num_layers=1)),
                           len(LABELS), label_names=LABELS)
    model(dummy_inputs())
    directory = str(root / "student")
    checkpoint.save(model, directory, VOCAB)
    return directory


@pytest.fixture
def data(tmp_path):
    return {"train": _csv(tmp_path / "train.csv"),
            "dev": _csv(tmp_path / "dev.csv")}


@pytest.fixture
def not_exported(monkeypatch):
    """Fails the test if the export (model loading) is reached."""
    def reached(*args, **kwargs):
        raise AssertionError("export_classifier was reached")
    monkeypatch.setattr(tflite, "export_classifier", reached)


def _args(student, output, data, *extra):
    return ["--checkpoint", student, "--output", str(output),
            "--train-file", data["train"], "--dev-file", data["dev"],
            "--eval-split", "dev", "--sequence-length", "16",
            "--variants", "dynamic_int8", "--mediapipe-examples", "0",
            "--latency-runs", "1", "--no-tokenizer-check",
            "--max-accuracy-drop", "100", *extra]


def _tree(folder):
    """Relative path -> content hash of every file under `folder`."""
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = hashlib.sha1(
                    f.read()).hexdigest()
    return found


def _refused(argv, capsys, start):
    code = tflite.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {start}"), err
    assert "Traceback" not in err
    return err


def _no_staging(folder):
    assert not [n for n in os.listdir(folder)
                if n.startswith((".export-", ".saved_models-", ".replaced-"))]


# ------------------------------------------------------------ flags

@pytest.mark.parametrize("flags, start", [
    (["--sequence-length", "0"], "--sequence-length must be at least 3"),
    (["--sequence-length", "65"],
     "--sequence-length 65 exceeds the position table"),
    (["--variants", "float32,int4"], "--variants 'float32,int4': choose"),
    (["--max-eval", "0"], "--max-eval must be at least 1, got 0"),
    (["--latency-runs", "-1"], "--latency-runs must be 0 or more, got -1"),
    (["--calibration-samples", "0"],
     "--calibration-samples must be at least 1, got 0"),
    (["--qat-epochs", "-1"], "--qat-epochs must be 0 or more, got -1"),
    (["--qat-learning-rate", "0"],
     "--qat-learning-rate must be a positive number, got 0.0"),
    (["--max-accuracy-drop", "-1"],
     "--max-accuracy-drop must be 0 or more"),
    (["--mediapipe-examples", "-2"],
     "--mediapipe-examples must be -1 (all), 0 (none) or a count, got -2"),
    (["--mask-value", "5"], "--mask-value must be a negative number"),
], ids=lambda value: value[0] if isinstance(value, list) else None)
def test_bad_flag_is_refused_before_loading(student, data, tmp_path, capsys,
                                            not_exported, flags, start):
    output = tmp_path / "out"
    _refused(_args(student, output, data, *flags), capsys, start)
    assert not output.exists()


def test_file_flags_without_train_file_are_refused(student, tmp_path, capsys,
                                                   not_exported):
    _refused(["--checkpoint", student, "--output", str(tmp_path / "out"),
              "--dev-file", "dev.csv", "--text-column", "body"], capsys,
             "--dev-file, --text-column only apply to your own files")


def test_missing_train_file_is_refused(student, data, tmp_path, capsys,
                                       not_exported):
    argv = _args(student, tmp_path / "out", data)
    argv[argv.index("--train-file") + 1] = str(tmp_path / "nope.csv")
    _refused(argv, capsys, f"--train-file {tmp_path / 'nope.csv'}: no such")


# ------------------------------------------------------------ checkpoint

def test_missing_checkpoint_folder_is_refused(data, tmp_path, capsys,
                                              not_exported):
    missing = str(tmp_path / "no_student")
    _refused(_args(missing, tmp_path / "out", data), capsys,
             f"--checkpoint {missing}: no such folder")


@pytest.mark.parametrize("removed", ["config.json", "model.safetensors"])
def test_checkpoint_without_its_files_is_refused(student, data, tmp_path,
                                                 capsys, not_exported,
                                                 removed):
    broken = str(tmp_path / "broken")
    shutil.copytree(student, broken)
    os.remove(os.path.join(broken, removed))
    _refused(_args(broken, tmp_path / "out", data), capsys,
             f"--checkpoint {broken} has no {removed}")


def test_checkpoint_without_head_is_refused(data, tmp_path, capsys):
    backbone = save_tiny_backbone(str(tmp_path / "backbone"), num_layers=1)
    _refused(_args(backbone, tmp_path / "out", data), capsys,
             f"Checkpoint {backbone} has no classification head")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------ labels

def test_other_label_names_are_refused(student, data, tmp_path, capsys):
    data["train"] = _csv(tmp_path / "other.csv", ["finance", "sport"])
    data["dev"] = _csv(tmp_path / "other_dev.csv", ["finance", "sport"])
    err = _refused(_args(student, tmp_path / "out", data), capsys,
                   "The labels of the data ['finance', 'sport'] are not "
                   "those of checkpoint")
    assert "['business', 'sport']" in err
    assert not (tmp_path / "out").exists()


def test_other_number_of_labels_is_refused(student, data, tmp_path, capsys):
    path = tmp_path / "three.csv"
    path.write_text(open(data["train"]).read() + "the film music,arts\n"
                    "play music,arts\n")
    data["train"] = data["dev"] = str(path)
    err = _refused(_args(student, tmp_path / "out", data), capsys,
                   "The data has 3 labels ['arts', 'business', 'sport'] but "
                   "the classifier of checkpoint")
    assert "has 2 ['business', 'sport']" in err


# ------------------------------------------------------------ output folder

def test_output_that_is_a_file_is_refused(student, data, tmp_path, capsys,
                                          not_exported):
    output = tmp_path / "out.tflite"
    output.write_text("mine")
    _refused(_args(student, output, data), capsys,
             f"--output {output} is a file")
    assert output.read_text() == "mine"


def test_unwritable_output_parent_is_refused(student, data, tmp_path, capsys,
                                             not_exported, monkeypatch):
    parent = tmp_path / "read_only"
    parent.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: (
        os.fspath(path) != str(parent) and access(path, mode)))
    _refused(_args(student, parent / "out", data), capsys,
             f"--output {parent / 'out'}: {parent} is not writable")


def test_non_empty_output_without_overwrite_is_refused(student, data,
                                                       tmp_path, capsys,
                                                       not_exported):
    output = tmp_path / "out"
    output.mkdir()
    (output / "model_float32.tflite").write_bytes(b"earlier export")
    _refused(_args(student, output, data), capsys,
             f"--output {output} already exists and is not empty; pass "
             "--overwrite")
    assert os.listdir(output) == ["model_float32.tflite"]


def test_overwrite_refuses_a_folder_with_other_files(student, data, tmp_path,
                                                     capsys, not_exported):
    output = tmp_path / "out"
    (output / "notes").mkdir(parents=True)
    (output / "notes" / "todo.txt").write_text("mine")
    (output / "model_float32.tflite").write_bytes(b"earlier export")
    (output / "results.csv").write_text("mine")
    before = _tree(output)
    _refused(_args(student, output, data, "--overwrite"), capsys,
             f"--output {output} holds entries no export writes: notes, "
             "results.csv.")
    assert _tree(output) == before


@pytest.mark.parametrize("where, start", [
    ("parent", "contains the checkpoint being exported"),
    ("same", "is the checkpoint being exported"),
    ("inside", "is inside the checkpoint being exported")])
def test_output_holding_the_checkpoint_is_refused(student, data, tmp_path,
                                                  capsys, not_exported,
                                                  where, start):
    run = tmp_path / "run"
    shutil.copytree(student, run / "student")
    (run / "train_report.json").write_text("{}")
    source = str(run / "student")
    output = {"parent": run, "same": run / "student",
              "inside": run / "student" / "tflite"}[where]
    before = _tree(run)
    _refused(_args(source, output, data, "--overwrite"), capsys,
             f"--output {output} {start}")
    assert _tree(run) == before


# ------------------------------------------------------------ real exports

def test_overwrite_replaces_only_the_export(student, data, tmp_path, capsys):
    """An earlier export's files are replaced (a variant not exported again
    is removed, the folder matches its report); --latency-runs 0: no
    timing; no staging is left."""
    output = tmp_path / "out"
    output.mkdir()
    (output / "model_float32.tflite").write_bytes(b"earlier export")
    (output / classifier.REPORT_FILE).write_text("{}")
    code = tflite.main(_args(student, output, data, "--overwrite",
                             "--latency-runs", "0"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(os.listdir(output)) == ["export_report.json",
                                          "model_dynamic_int8.tflite"]
    report = json.loads((output / "export_report.json").read_text())
    assert report["variants"]["dynamic_int8"]["median_latency_ms"] is None
    assert "latency not timed" in captured.out
    _no_staging(tmp_path)


@pytest.mark.parametrize("fault, code, start", [
    (OSError("No space left on device"), 2, "error: No space left on device"),
    (KeyboardInterrupt(), 130, "Interrupted."),
])
def test_failed_conversion_leaves_output_and_no_staging(
        student, data, tmp_path, capsys, monkeypatch, fault, code, start):
    output = tmp_path / "out"
    output.mkdir()
    (output / "model_dynamic_int8.tflite").write_bytes(b"earlier export")
    (output / "export_report.json").write_text("{}")
    before = _tree(output)
    temp = tmp_path / "system_tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    saved_models = []

    def fail(saved_model, *args):
        saved_models.append(saved_model)
        raise fault
    monkeypatch.setattr(classifier, "build_variant", fail)
    assert tflite.main(_args(student, output, data, "--overwrite")) == code
    assert capsys.readouterr().err.startswith(start)
    assert _tree(output) == before
    assert saved_models and not os.path.exists(saved_models[0])
    _no_staging(tmp_path)
    assert os.listdir(temp) == []


def test_strict_abort_writes_nothing(student, data, tmp_path, capsys,
                                     monkeypatch):
    """--strict and a flagged variant: exit status 1, a one-line error, the
    staged variant removed, no output folder."""
    def judge(result, *args):
        result.update(accuracy_drop_points=50.0, flagged=True)
        return result
    monkeypatch.setattr(classifier.verify, "judge", judge)
    output = tmp_path / "out"
    assert tflite.main(_args(student, output, data, "--strict")) == 1
    err = capsys.readouterr().err
    assert "error: Variants ['dynamic_int8'] lose more than 100.0" in err
    assert "Traceback" not in err
    assert not output.exists()
    _no_staging(tmp_path)
