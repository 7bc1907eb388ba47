import csv
import json
import shutil

import numpy as np
import pytest

from tests.tiny import VOCAB, save_tiny_backbone, tiny_config
from tinybert_tf import checkpoint
from tinybert_tf import training
from tinybert_tf.tasks import Split
from tinybert_tf.tokenizer import BertTextTokenizer
from trainers import task as task_cli

pytestmark = pytest.mark.slow

# Two topics with disjoint words: a tiny model learns them in a few steps.
TOPICS = {"market": "market price shares rose fell city news".split(),
          "sport": "sport game team won lost play park".split()}


def _rows(count, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        label = sorted(TOPICS)[i % 2]
        words = rng.choice(TOPICS[label], rng.integers(3, 8))
        rows.append({"text": " ".join(words), "label": label})
    return rows


def _write_csv(path, rows, fields=("text", "label")):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("task")
    teacher = save_tiny_backbone(str(root / "pretrained"), num_layers=2)
    student = root / "student.json"
    student.write_text(tiny_config(hidden_size=8, num_layers=1).to_json())
    return {"root": root, "teacher": teacher, "student": str(student),
            "train": _write_csv(root / "train.csv", _rows(48, 0)),
            "dev": _write_csv(root / "dev.csv", _rows(12, 1)),
            "test": _write_csv(root / "test.csv", _rows(12, 2))}


def _argv(files, out, *extra, train=None, dev=None):
    return ["--no-augment",
            "--teacher", files["teacher"], "--student", files["student"],
            "--train-file", train or files["train"],
            "--dev-file", dev or files["dev"], "--test-file", files["test"],
            "--sequence-length", "16", "--batch-size", "8",
            "--teacher-epochs", "2", "--teacher-lr", "1e-3",
            "--intermediate-epochs", "1", "--intermediate-lr", "1e-3",
            "--prediction-epochs", "1", "--prediction-lr", "1e-3",
            "--baseline-epochs", "1", "--baseline-lr", "1e-3",
            "--eval-every", "4", "--output-dir", str(out), "--quiet", *extra]


@pytest.fixture(scope="module")
def finished_run(files):
    out = files["root"] / "run"
    assert task_cli.main(_argv(files, out)) == 0
    return out


def _accuracy_by_hand(model_dir, csv_path):
    """Accuracy of a saved classifier, computed outside the training."""
    model = checkpoint.load_classifier(model_dir)
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    tokenizer = BertTextTokenizer(VOCAB, sequence_length=16)
    logits = np.asarray(model(tokenizer([r["text"] for r in rows])))
    predicted = [model.label_names[i] for i in logits.argmax(-1)]
    return np.mean([p == r["label"] for p, r in zip(predicted, rows)])


def test_end_to_end_writes_student_teacher_and_report(files, finished_run):
    report = json.loads((finished_run / "report.json").read_text())
    assert report["label_names"] == ["market", "sport"]
    assert report["teacher"]["status"] == "fine-tuned"
    assert report["examples"] == {"train": 48, "dev": 12, "test": 12}
    for role in ("teacher", "student", "baseline"):
        for split in ("dev", "test"):
            assert 0.0 <= report[role][split]["accuracy"] <= 1.0
    # Metrics agree with an independent evaluation of the saved checkpoints.
    for role in ("teacher", "student"):
        assert report[role]["test"]["accuracy"] == pytest.approx(
            _accuracy_by_hand(str(finished_run / role), files["test"]))
    for split in ("dev", "test"):
        assert report["retention"][split] == pytest.approx(
            report["student"][split]["accuracy"]
            / report["teacher"][split]["accuracy"])
    teacher = checkpoint.load_classifier(str(finished_run / "teacher"))
    student = checkpoint.load_classifier(str(finished_run / "student"))
    assert report["teacher"]["parameters"] == teacher.count_params()
    assert report["student"]["parameters"] == student.count_params()
    assert report["parameter_ratio"] == pytest.approx(
        student.count_params() / teacher.count_params())
    assert student.label_names == ["market", "sport"]
    assert student.config.hidden_size == 8 and student.head == "tanh_relu"
    # Step 1's shared projection (8 -> 16) is saved with the student.
    saved = checkpoint.read(str(finished_run / "student"))
    assert saved.weights["fit_dense.weight"].shape == (16, 8)
    for stage in ("data", "teacher", "intermediate", "prediction", "baseline",
                  "total"):
        assert report["wall_time_s"][stage] >= 0
    assert report["augmentation"]["augmented_examples"] == 48
    assert (report["baseline"]["train_data"], report["baseline"]["epochs"]) == (
        "original", 1)
    # The student kept is the best on dev among the evaluations made.
    best = max(h["accuracy"] for h in report["student"]["dev_history"])
    assert report["student"]["dev"]["accuracy"] == pytest.approx(best)


def test_rerun_reuses_teacher_and_refuses_to_overwrite(files, finished_run,
                                                       tmp_path, capsys):
    finished_run = shutil.copytree(finished_run, tmp_path / "run")
    teacher_bytes = (finished_run / "teacher" / "model.safetensors").read_bytes()
    student_bytes = (finished_run / "student" / "model.safetensors").read_bytes()
    assert task_cli.main(_argv(files, finished_run)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (finished_run / "student" / "model.safetensors").read_bytes() == student_bytes

    quick = ["--intermediate-epochs", "0", "--prediction-epochs", "1",
             "--no-baseline", "--overwrite"]
    argv = [a for a in _argv(files, finished_run) if a != "--quiet"] + quick
    assert task_cli.main(argv) == 0
    assert "Reusing the fine-tuned teacher" in capsys.readouterr().out
    report = json.loads((finished_run / "report.json").read_text())
    assert report["teacher"]["status"] == "reused"
    assert report["baseline"] is None
    assert (finished_run / "teacher" / "model.safetensors").read_bytes() == teacher_bytes


def test_given_teacher_general_student_and_augmentation(files, finished_run,
                                                       tmp_path, capsys):
    # A real GloVe text file of the topic words: each word's neighbour is a
    # word of the same topic, so augmented examples keep their label's words.
    glove = tmp_path / "glove.txt"
    lines = []
    for axis, words in enumerate(TOPICS.values()):
        for i, word in enumerate(words):
            vector = np.zeros(3)
            vector[axis], vector[2] = 1.0, 0.01 * i
            lines.append(word + " " + " ".join(f"{v:.3f}" for v in vector))
    glove.write_text("\n".join(lines) + "\n")
    out = files["root"] / "given"
    argv = _argv(files, out, "--fine-tuned-teacher", str(finished_run / "teacher"),
                 "--augment", "--aug-n", "3", "--aug-p", "1.0", "--aug-k", "2",
                 "--aug-glove", str(glove), "--aug-cache-dir",
                 str(tmp_path / "cache"), "--no-baseline")
    argv.remove("--quiet")
    argv[argv.index("--student") + 1] = str(finished_run / "student")
    assert task_cli.main(argv) == 0
    assert "projections reused" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["teacher"]["status"] == "given"
    assert report["teacher"]["test"] == json.loads(
        (finished_run / "report.json").read_text())["teacher"]["test"]
    assert report["student"]["init"].startswith("checkpoint")
    assert not (out / "teacher").exists()
    augmentation = report["augmentation"]
    assert augmentation["original_examples"] == 48
    assert augmentation["samples_per_example"] == 3
    # Each example keeps its original and adds up to 3 distinct variants.
    assert 48 < augmentation["augmented_examples"] <= 48 * 4
    assert augmentation["counts"]["glove_words"] > 0
    for stage in ("intermediate", "prediction"):
        rows = (out / "logs" / f"{stage}.csv").read_text().splitlines()
        assert rows[0].startswith("step,") and len(rows) > 1


def test_regression_task(files, tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"text": " ".join(rng.choice(TOPICS["sport"], n)), "label": f"{n / 2:.1f}"}
            for n in rng.integers(2, 9, 40)]
    train = _write_csv(tmp_path / "train.csv", rows[:30])
    dev = _write_csv(tmp_path / "dev.csv", rows[30:])
    argv = _argv(files, tmp_path / "out", "--regression", "--no-baseline",
                 "--intermediate-epochs", "0", "--teacher-epochs", "1",
                 train=train, dev=dev)
    argv[argv.index("--test-file"):argv.index("--test-file") + 2] = []
    assert task_cli.main(argv) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["primary_metric"] == "pearson"
    assert set(report["student"]) >= {"dev"} and "test" not in report["student"]
    assert checkpoint.load_classifier(str(tmp_path / "out" / "student")).num_labels == 1


# ------------------------------------------------------------------ bad input


def _fails(argv, capsys, *fragments):
    assert task_cli.main(argv) == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err


def test_bad_data(files, tmp_path, capsys):
    unseen = _write_csv(tmp_path / "dev.csv", _rows(4, 3) + [{"text": "game", "label": "weather"}])
    _fails(_argv(files, tmp_path / "a", dev=unseen), capsys, "'weather'",
           "never appears in the train")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    _fails(_argv(files, tmp_path / "b", train=str(empty)), capsys, "empty")
    no_label = _write_csv(tmp_path / "nolabel.csv", _rows(6, 0), fields=("text",))
    _fails(_argv(files, tmp_path / "c", train=no_label), capsys,
           "missing column", "label")
    blank = _write_csv(tmp_path / "blank.csv", _rows(6, 0) + [{"text": " ", "label": "sport"}])
    _fails(_argv(files, tmp_path / "d", train=blank), capsys, "empty text")
    _fails(["--task", "sst3", "--output-dir", str(tmp_path / "e")], capsys,
           "Unknown task 'sst3'", "sst2", "mnli")
    _fails(_argv(files, tmp_path / "f", "--batch-size", "0"), capsys,
           "--batch-size 0: must be >= 1")
    assert not any((tmp_path / name).exists() for name in "abcdef")


def test_bad_student_or_teacher(files, finished_run, tmp_path, capsys):
    other_vocab = tmp_path / "other_vocab"
    student = checkpoint.load_backbone(str(finished_run / "student"))
    checkpoint.save(student, str(other_vocab), VOCAB[:-1] + ["zebra"])
    argv = _argv(files, tmp_path / "a")
    argv[argv.index("--student") + 1] = str(other_vocab)
    _fails(argv, capsys, "different vocabulary")

    heads = tmp_path / "heads.json"
    heads.write_text(tiny_config(hidden_size=8, num_layers=1, num_heads=4).to_json())
    argv[argv.index("--student") + 1] = str(heads)
    _fails(argv, capsys, "attention heads")

    argv[argv.index("--student") + 1] = "no-such-preset"
    _fails(argv, capsys, "no-such-preset", "tinybert-3l-192d")

    three = tmp_path / "three.csv"
    _write_csv(three, _rows(6, 0) + [{"text": "news", "label": "weather"}])
    argv = _argv(files, tmp_path / "b", "--fine-tuned-teacher",
                 str(finished_run / "teacher"), train=str(three),
                 dev=str(three))
    _fails(argv, capsys, "3", "2 output")

    argv = _argv(files, tmp_path / "c", "--fine-tuned-teacher", files["teacher"])
    _fails(argv, capsys, "no classifier head")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c" / "student").exists()


# ------------------------------------------------------------------ pipeline


def test_make_dataset_tokenizes_and_keeps_labels():
    tokenizer = BertTextTokenizer(VOCAB, sequence_length=8)
    split = Split(["the cat sat", "a dog ran on the mat", "news"], ["a", "b", "c"],
                  np.array([0, 1, 1]))
    batches = list(training.make_dataset(split, tokenizer, batch_size=2))
    assert [len(labels) for _, labels in batches] == [2, 1]
    expected = tokenizer(split.text_a, split.text_b)
    for key in ("token_ids", "segment_ids", "padding_mask"):
        got = np.concatenate([inputs[key].numpy() for inputs, _ in batches])
        np.testing.assert_array_equal(got, expected[key].numpy())
    labels = np.concatenate([labels.numpy() for _, labels in batches])
    np.testing.assert_array_equal(labels, [0, 1, 1])
    shuffled = training.make_dataset(split, tokenizer, batch_size=3, shuffle=True)
    inputs, labels = next(iter(shuffled))
    pairs = sorted(zip(inputs["token_ids"].numpy().tolist(), labels.numpy().tolist()))
    assert pairs == sorted(zip(expected["token_ids"].numpy().tolist(), [0, 1, 1]))


def test_best_on_dev_restores_the_best_weights():
    from tinybert_tf.backbone import BertBackbone
    from tinybert_tf.heads import BertClassifier
    tokenizer = BertTextTokenizer(VOCAB, sequence_length=8)
    rows = _rows(16, 5)
    split = Split([r["text"] for r in rows], None,
                  np.array([sorted(TOPICS).index(r["label"]) for r in rows]))
    data = training.make_dataset(split, tokenizer, batch_size=8)
    model = BertClassifier(BertBackbone(tiny_config()), num_labels=2)
    # A large learning rate makes the dev score move up and down.
    best = training.fine_tune(
        model, data, training.DevSet(data, split.labels, ("accuracy",)),
        training.TrainOptions(epochs=2, learning_rate=3e-2), eval_every=1,
        verbose=0)
    scores = [h["accuracy"] for h in best.history]
    assert len(scores) == 4
    assert best.best_metrics["accuracy"] == max(scores)
    assert best.best_step == best.history[scores.index(max(scores))]["step"]
    final = training.evaluate(model, data, split.labels, ("accuracy",))
    assert final["accuracy"] == max(scores)


def test_names_a_person_recognises():
    """The offline teacher is named by its model name in logs and reports;
    --task-name names a task from files."""
    from tinybert_tf import assets, students
    name, ckpt, _ = students.read_teacher(None, 16)
    assert name == "all-MiniLM-L6-v2" and "site-packages" in ckpt.source
    assert assets.display_name("runs/teacher") == "runs/teacher"
    args = task_cli.parse_args(["--train-file", "data/train.csv",
                                "--task-name", "reviews"])
    from tinybert_tf.task_data import TaskDataOptions
    assert TaskDataOptions.from_mapping(vars(args)).task_name == "reviews"


def test_the_fast_recipe_follows_the_text_length():
    """Up to 64 word-pieces: N = 20 (the official single-sentence N) and
    1 + 1 epochs; longer texts: N = 4 and 2 + 3 epochs. Flags the user set,
    --quick and the paper recipe keep theirs; the baseline takes steps 1 + 2."""
    from tinybert_tf.task_distillation import TaskDistillationConfig
    from trainers.task import fill_length_settings

    def settings(length, *flags):
        args = fill_length_settings(task_cli.parse_args(list(flags)), length)
        config = TaskDistillationConfig.from_mapping(vars(args))
        return (args.aug_n, config.intermediate_epochs,
                config.prediction_epochs, config.baseline_epochs_or_default)
    assert task_cli.parse_args([]).prediction_epochs is None
    assert [settings(n) for n in (16, 64, 65, 128)] == [
        (20, 1, 1, 2), (20, 1, 1, 2), (4, 2, 3, 5), (4, 2, 3, 5)]
    assert settings(16, "--aug-n", "7", "--prediction-epochs", "4") == (
        7, 1, 4, 5)
    assert settings(16, "--quick") == (2, 2, 3, 5)
    assert settings(16, "--recipe", "paper") == (None, 10, 3, 13)
    assert settings(16, "--baseline-epochs", "9")[3] == 9


def test_the_training_seed_keeps_dev_and_test():
    """Runs of several --seed (ablation repeats, benchmarks) share their
    dev and test articles, so a teacher fine-tuned by one of them has not
    trained on another's test set; --split-seed draws another split."""
    from tinybert_tf.task_data import TaskDataOptions, load_task_data

    def test_texts(*flags):
        args = vars(task_cli.parse_args(list(flags)))
        return list(load_task_data(TaskDataOptions.from_mapping(args)).test.text_a)
    assert test_texts("--seed", "1") == test_texts("--seed", "0")
    assert test_texts("--split-seed", "1") != test_texts("--seed", "0")
