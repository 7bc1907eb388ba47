import json
import os
import subprocess
import sys

import pytest

from tinybert_tf import checkpoint
from tests.tiny import save_tiny_backbone, tiny_config, tiny_corpus
from trainers import general

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    from tinybert_tf.distillation_options import parse_loss_weights
    weights = parse_loss_weights("1,0.5,2", "1=0.5,3=2")
    assert (weights.embedding, weights.attention, weights.hidden) == (1, 0.5, 2)
    assert weights.layers == {1: 0.5, 3: 2.0}
    for loss, layer in (("1,2", ""), ("1,x,2", ""), ("1,1,1", "1:2")):
        with pytest.raises(ValueError, match="--loss-weights"):
            parse_loss_weights(loss, layer)


def test_runs_exactly_the_steps_it_reports(setup, capsys):
    # 5 steps in checkpoints of 2: the last Keras epoch is cut after 1 step,
    # and the learning-rate schedule spans exactly the 5 steps run.
    root, teacher, student, corpus = setup
    out = root / "five"
    argv = _argv(root, teacher, student, corpus, out)
    argv[argv.index("--steps") + 1] = "5"
    assert general.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 5
    schedule = report["learning_rate_schedule"]
    assert schedule["total_steps"] == report["steps"]
    assert schedule["last_step_learning_rate"] > 0
    saved = checkpoint.read(str(out / "student"))
    assert saved.extras["step"] == 5
    rows = (out / "logs" / "training_log.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # header + epochs of 2, 2 and 1 steps
    assert "5 steps of 4" in capsys.readouterr().out


def test_zero_steps_is_refused(setup, capsys):
    root, teacher, student, corpus = setup
    argv = _argv(root, teacher, student, corpus, root / "zero")
    argv[argv.index("--steps") + 1] = "0"
    assert general.main(argv) == 2
    err = capsys.readouterr().err
    assert "error: --steps 0" in err and "Traceback" not in err
    assert not (root / "zero").exists()


def test_resumes_from_its_backup_and_still_stops_at_the_total(
        setup, capsys, monkeypatch):
    from tinybert_tf.callbacks import StudentCheckpoint
    root, teacher, student, corpus = setup
    out = root / "resume"
    argv = _argv(root, teacher, student, corpus, out)
    argv[argv.index("--steps") + 1] = "5"
    save = StudentCheckpoint.on_epoch_end

    def killed_in_second_checkpoint(self, epoch, logs=None):
        if epoch == 1:  # Ctrl-C before the backup of steps 3-4 is written
            raise KeyboardInterrupt
        save(self, epoch, logs)

    monkeypatch.setattr(StudentCheckpoint, "on_epoch_end",
                        killed_in_second_checkpoint)
    assert general.main(argv) == 130
    assert (out / "backup").exists() and not (out / "report.json").exists()
    monkeypatch.setattr(StudentCheckpoint, "on_epoch_end", save)
    assert general.main(argv) == 0
    assert "Resumed from" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 5
    assert checkpoint.read(str(out / "student")).extras["step"] == 5
    assert not (out / "backup").exists()


def test_into_a_log_file_one_line_per_epoch_and_nothing_else(setup):
    # What `python -m trainers.general ... > log 2>&1` (or CI) shows: Keras's
    # epochs as plain lines, no carriage returns or colours, and nothing
    # from TensorFlow's start-up on stderr (its default log level).
    root, teacher, student, corpus = setup
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TINYBERT_TF_VERBOSE", "CI")}
    done = subprocess.run(
        [sys.executable, "-m", "trainers.general",
         *_argv(root, teacher, student, corpus, root / "piped")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    assert "\r" not in done.stdout and "\x1b[" not in done.stdout
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("Epoch ")] == [
        "Epoch 1/2", "Epoch 2/2"]
    assert len([line for line in lines if line.startswith("2/2 - ")]) == 2
