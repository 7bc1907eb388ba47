"""A user's mistake gets one `error: ...` line naming the flag or the file,
and exit status 2, never a traceback, a silent success or a run on garbage
(issue 14, "Reliability"). The trainer command lines are called in-process;
flag checks fire before any model is loaded, so most cases take no time.
"""

import json
import os

import pytest

from tests.test_trainer_task import _rows, _write_csv
from tests.tiny import save_tiny_backbone, tiny_config, tiny_corpus
from trainers import augment, general, pipeline, predict, report, task


def _status(main, argv):
    try:
        return main(argv)
    except SystemExit as exit:  # argparse's own checks: usage + message
        return exit.code


def _refused(main, argv, capsys, *fragments):
    """Asserts exit status 2, each fragment in stderr and no traceback."""
    code = _status(main, [str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    for fragment in fragments:
        assert fragment in captured.err, captured.err
    assert "Traceback" not in captured.err
    return captured


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny teacher, student config, corpus and task files."""
    root = tmp_path_factory.mktemp("inputs")
    student = root / "student.json"
    student.write_text(tiny_config(hidden_size=8, num_layers=1).to_json())
    return {
        "root": root,
        "teacher": save_tiny_backbone(str(root / "teacher")),
        "student": str(student),
        "corpus": tiny_corpus(str(root / "corpus.txt"), documents=20),
        "train": _write_csv(root / "train.csv", _rows(40, 0)),
        "dev": _write_csv(root / "dev.csv", _rows(10, 1)),
    }


def _general_argv(tiny, out, *extra, steps=True):
    return ["--teacher", tiny["teacher"], "--student", tiny["student"],
            "--corpus", tiny["corpus"], "--sequence-length", "16",
            "--batch-size", "4", "--save-every", "2",
            "--cache-dir", tiny["root"] / "cache", "--output-dir", out,
            *(["--steps", "2"] if steps else []), *extra]


def _task_argv(tiny, out, *extra):
    return ["--teacher", tiny["teacher"], "--student", tiny["student"],
            "--train-file", tiny["train"], "--dev-file", tiny["dev"],
            "--sequence-length", "16", "--quick", "--no-augment",
            "--no-baseline", "--aug-cache-dir", tiny["root"] / "aug",
            "--output-dir", out, *extra]


# ------------------------------------------------------------------ flags

GENERAL_FLAGS = [
    ("learning-rate", "-1"), ("learning-rate", "0"), ("learning-rate", "nan"),
    ("epochs", "0"), ("epochs", "-1"), ("batch-size", "0"),
    ("save-every", "0"), ("sequence-length", "0"), ("max-documents", "0"),
    ("warmup", "1.5"), ("warmup", "-0.1"), ("weight-decay", "-0.01"),
    ("clip-norm", "-1"), ("steps", "0"), ("steps", "-3"),
]
TASK_FLAGS = [
    ("teacher-lr", "-1"), ("intermediate-lr", "0"), ("prediction-lr", "-1e-5"),
    ("baseline-lr", "0"), ("temperature", "0"), ("temperature", "-1"),
    ("aug-p", "1.5"), ("aug-p", "-0.1"), ("aug-k", "0"), ("aug-n", "0"),
    ("dev-fraction", "1.5"), ("test-fraction", "-0.5"), ("test-fraction", "1"),
    ("weight-decay", "-1"), ("clip-norm", "-1"), ("warmup", "2"),
    ("sequence-length", "0"), ("sequence-length", "2"),
    ("max-train-examples", "0"), ("max-eval-examples", "0"),
    ("batch-size", "0"), ("teacher-epochs", "0"), ("eval-every", "-1"),
    ("prediction-epochs", "0"), ("intermediate-epochs", "-1"),
    ("baseline-epochs", "0"),
]


def _flag_id(case):
    flag, value = case
    return f"{flag}={value}"


@pytest.mark.parametrize("flag,value", GENERAL_FLAGS,
                         ids=[_flag_id(c) for c in GENERAL_FLAGS])
def test_bad_flag_general(tiny, tmp_path, capsys, flag, value):
    # --learning-rate -1 trained (loss 11.8 -> 49,244, "Student saved"),
    # --epochs 0 ran one step, --sequence-length 0 was a traceback.
    argv = _general_argv(tiny, tmp_path / "out", f"--{flag}={value}",
                         steps=flag != "steps")
    _refused(general.main, argv, capsys, f"--{flag} ", "must be"
             if flag != "steps" else "at least one step")
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.parametrize("flag,value", TASK_FLAGS,
                         ids=[_flag_id(c) for c in TASK_FLAGS])
def test_bad_flag_task(tiny, tmp_path, capsys, flag, value):
    # --teacher-lr -1, --temperature 0, --aug-p 1.5 ... trained;
    # --sequence-length 0 was read as "not set" (128).
    argv = _task_argv(tiny, tmp_path / "out", f"--{flag}={value}")
    _refused(task.main, argv, capsys, f"--{flag}", "must be")
    assert not (tmp_path / "out").exists()


def test_dev_fraction_without_dev_file(tiny, tmp_path, capsys):
    argv = _task_argv(tiny, tmp_path / "out", "--dev-fraction", "0")
    argv.remove("--dev-file")
    argv.remove(tiny["dev"])
    _refused(task.main, argv, capsys, "--dev-fraction 0.0",
             "strictly between 0 and 1 without --dev-file")


@pytest.mark.parametrize("cli", ["general", "task"])
def test_unknown_student_preset_lists_the_known_ones(tiny, tmp_path, capsys,
                                                     cli):
    main, argv = ((general.main, _general_argv(tiny, tmp_path / "out"))
                  if cli == "general" else
                  (task.main, _task_argv(tiny, tmp_path / "out")))
    argv[argv.index("--student") + 1] = "tinybert-5l"
    _refused(main, argv, capsys, "--student 'tinybert-5l': unknown preset",
             "tinybert-3l-192d", "tinybert-4l-312d")
    assert not (tmp_path / "out").exists()


def test_unknown_student_preset_of_a_random_student(tiny, tmp_path, capsys):
    # Named --student before, the flag the user did not give.
    argv = _task_argv(tiny, tmp_path / "out", "--student-preset", "nope")
    argv[argv.index("--student") + 1] = "random"
    _refused(task.main, argv, capsys, "--student-preset 'nope'",
             "tinybert-4l-312d")


@pytest.mark.parametrize("flags, message", [
    ("--steps '10", "--general-args \"--steps '10\": cannot be split"),
    ("--output-dir x", "--general-args: --output-dir is the cache's"),
])
def test_bad_general_args_of_the_default_student(tiny, tmp_path, capsys,
                                                 flags, message):
    argv = _task_argv(tiny, tmp_path / "out", "--general-args", flags)
    argv[argv.index("--student") + 1] = "general"
    _refused(task.main, argv, capsys, message)
    assert not (tmp_path / "out").exists()


def test_a_failed_general_student_stops_the_task_run(tiny, tmp_path, capfd):
    argv = _task_argv(tiny, tmp_path / "out", "--general-args",
                      f"--corpus {tmp_path / 'missing.txt'}")
    argv[argv.index("--student") + 1] = "general"
    assert _status(task.main, [str(a) for a in argv]) == 1
    said = capfd.readouterr()
    assert "missing.txt: no such file" in said.err  # trainers.general's own
    assert "trainers.general failed (exit status 2)" in said.err
    assert "Traceback" not in said.err
    assert not (tmp_path / "out" / "student").exists()


@pytest.mark.parametrize("kind", ["missing-json", "missing-dir"])
def test_missing_student(tiny, tmp_path, capsys, kind):
    missing = str(tmp_path / ("nope.json" if kind == "missing-json"
                              else "runs/student"))
    argv = _general_argv(tiny, tmp_path / "out")
    argv[argv.index("--student") + 1] = missing
    _refused(general.main, argv, capsys, f"--student {missing}")


@pytest.mark.parametrize("cli,flag", [
    ("general", "--corpus"), ("task", "--train-file"), ("task", "--dev-file"),
    ("task", "--aug-glove")])
def test_missing_input_file(tiny, tmp_path, capsys, cli, flag):
    missing = str(tmp_path / "nope.csv")
    if cli == "general":
        main, argv = general.main, _general_argv(tiny, tmp_path / "out")
    else:
        main, argv = task.main, _task_argv(tiny, tmp_path / "out")
    if flag in argv:
        argv[argv.index(flag) + 1] = missing
    else:
        argv += [flag, missing]
    _refused(main, argv, capsys, f"{flag} {missing}: no such file")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cli", ["general", "task"])
def test_sequence_length_beyond_the_teacher(tiny, tmp_path, capsys, cli):
    main, argv = ((general.main, _general_argv(tiny, tmp_path / "out"))
                  if cli == "general" else
                  (task.main, _task_argv(tiny, tmp_path / "out")))
    argv[argv.index("--sequence-length") + 1] = "100"
    _refused(main, argv, capsys, "--sequence-length 100 exceeds the position "
             "table of the teacher", "max_position_embeddings 64")


# ------------------------------------------------------------------ files

def _broken_teacher(tiny, root, kind):
    import shutil
    teacher = root / "teacher"
    shutil.copytree(tiny["teacher"], teacher)
    weights, config = teacher / "model.safetensors", teacher / "config.json"
    if kind == "truncated-safetensors":
        data = weights.read_bytes()
        weights.write_bytes(data[:len(data) // 2])
        return teacher, weights
    if kind == "garbage-safetensors":
        weights.write_bytes(b"not a tensor file")
        return teacher, weights
    if kind == "truncated-config":
        config.write_text(config.read_text()[:40])
        return teacher, config
    if kind == "config-not-object":
        config.write_text("[1, 2]")
        return teacher, config
    (teacher / "vocab.txt").write_bytes(b"\xff\xfe\x00garbage\n" * 8)
    return teacher, teacher / "vocab.txt"


@pytest.mark.parametrize("kind", ["truncated-safetensors", "garbage-safetensors",
                                  "truncated-config", "config-not-object",
                                  "vocab-not-utf8"])
def test_broken_checkpoint_is_named(tiny, tmp_path, capsys, kind):
    # A truncated model.safetensors was a SafetensorError traceback (exit 1)
    # naming no file; a truncated config.json a JSON error naming none.
    teacher, broken = _broken_teacher(tiny, tmp_path, kind)
    argv = _general_argv(tiny, tmp_path / "out")
    argv[argv.index("--teacher") + 1] = teacher
    _refused(general.main, argv, capsys, str(broken))


def test_binary_corpus_is_refused(tiny, tmp_path, capsys):
    # Random bytes were tokenized ("2 documents into 5 sequences") and
    # trained on.
    corpus = tmp_path / "random.txt"
    corpus.write_bytes(os.urandom(20_000))
    argv = _general_argv(tiny, tmp_path / "out")
    argv[argv.index("--corpus") + 1] = corpus
    _refused(general.main, argv, capsys, f"Corpus file {corpus}",
             "not UTF-8 text")


def test_a_few_undecodable_lines_are_skipped_and_counted(tiny, tmp_path,
                                                         capsys):
    corpus = tmp_path / "mostly_good.txt"
    good = open(tiny["corpus"], "rb").read()
    corpus.write_bytes(b"\xff\xfe bad line\n" + good + b"\x80\x81\n")
    argv = _general_argv(tiny, tmp_path / "out")
    argv[argv.index("--corpus") + 1] = corpus
    assert general.main([str(a) for a in argv]) == 0
    lines = sum(1 for line in good.splitlines() if line.strip()) + 2
    assert (f"{corpus}: skipped 2 of {lines} lines that are not UTF-8 text "
            "(15 bytes)") in capsys.readouterr().out


# ------------------------------------------------------------------ augment

@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\nthe cat sat on the mat\t0\n"
                    "the dog ran in the park\t1\n")
    return path


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink"])
def test_augment_refuses_to_overwrite_its_input(tsv, tmp_path, capsys,
                                                monkeypatch, spelling):
    # It overwrote the source, dropping the rows past --limit.
    original = tsv.read_text()
    output = tsv
    if spelling == "relative":
        monkeypatch.chdir(tmp_path)
        output = os.path.join(".", "sub", "..", tsv.name)
        os.makedirs(tmp_path / "sub")
    elif spelling == "symlink":
        output = tmp_path / "link.tsv"
        os.symlink(tsv, output)
    _refused(augment.main, ["--input", tsv, "--output", output, "--limit",
                            "1", "--no-cache", "--quiet"], capsys,
             f"--output {output} is the --input file")
    assert tsv.read_text() == original


@pytest.mark.parametrize("flag,value", [("p", "1.5"), ("k", "0"), ("n", "0"),
                                        ("limit", "0"),
                                        ("glove-vocab-size", "0"),
                                        ("max-seq-length", "4"),
                                        ("tokens-per-batch", "0"),
                                        ("threads", "0")],
                         ids=lambda v: v)
def test_bad_flag_augment(tsv, tmp_path, capsys, flag, value):
    out = tmp_path / "out.tsv"
    _refused(augment.main, ["--input", tsv, "--output", out,
                            f"--{flag}={value}", "--no-cache", "--quiet"],
             capsys,
             f"--{flag} ", "must be")
    assert not out.exists()


@pytest.mark.parametrize("case", ["missing-input", "missing-glove",
                                  "unsupported-output", "output-folder"])
def test_augment_bad_paths(tsv, tmp_path, capsys, case):
    argv = ["--input", tsv, "--output", tmp_path / "out.tsv", "--no-cache",
            "--quiet"]
    if case == "missing-input":
        argv[1], expected = tmp_path / "nope.tsv", "--input"
    elif case == "missing-glove":
        argv += ["--glove", tmp_path / "nope.txt"]
        expected = "--glove"
    elif case == "unsupported-output":
        argv[3], expected = tmp_path / "out.xlsx", "unsupported file type"
    else:
        argv[3], expected = tmp_path, "is a folder"
    _refused(augment.main, argv, capsys, expected)


@pytest.mark.parametrize("content,problem", [
    ("word,x,y\ncat,0.1,0.2\ndog,0.3,0.1\n", "has no numbers"),
    ("cat\ndog\nmat\n", "has no numbers"),
    ("cat 0.1 0.2\ndog 0.3\n", "has 1 values where the lines before have 2"),
    ("cat 0.1 0.2\ndog 0.3 high\n", "not numbers"),
    ("2 3\ncat 0.1 0.2\ndog 0.3 0.4\n", "has 2 values"),
], ids=["csv", "words-only", "ragged", "not-numbers", "header-mismatch"])
def test_augment_refuses_a_glove_file_in_another_format(
        tsv, tmp_path, capsys, content, problem):
    # A CSV was read as vectors of dimension 0: no candidate for any word,
    # and the output held lower-cased copies of the input.
    glove = tmp_path / "vectors.csv"
    glove.write_text(content)
    out = tmp_path / "out.tsv"
    _refused(augment.main, ["--input", tsv, "--output", out, "--glove",
                            glove, "--no-cache", "--quiet", "--n", "2"],
             capsys, str(glove), problem, "'word float float ...'")
    assert not out.exists()


def test_augment_output_is_written_all_or_nothing(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"text": "kept"}\n')
    with pytest.raises(TypeError):
        augment.write_rows(str(out), ["text"],
                           [{"text": "new"}, {"text": object()}])
    assert out.read_text() == '{"text": "kept"}\n'
    assert os.listdir(tmp_path) == ["out.jsonl"]  # no temporary file left


# ------------------------------------------------------------------ pipeline

@pytest.mark.parametrize("flag,value,fragment", [
    ("--general-args", '--corpus "my file.txt', "No closing quotation"),
    ("--task-args", "--train-file train.csv \\", "No escaped character"),
    ("--export-args", "--output elsewhere", "--output is set by the pipeline"),
    ("--general-args", "--steps 3 --output-dir=x",
     "--output-dir is set by the pipeline"),
], ids=["unbalanced-quote", "trailing-backslash", "export-output",
        "general-output-dir"])
def test_pipeline_stage_flags(tmp_path, capsys, flag, value, fragment):
    # An unbalanced quote was a ValueError traceback after the earlier
    # stages had run.
    out = tmp_path / "run"
    _refused(pipeline.main, ["--output-dir", out, flag, value], capsys,
             f"error: {flag}", fragment)
    assert not out.exists()


# ------------------------------------------------------------------ report, predict

def test_report_of_a_corrupt_stage_report(tmp_path, capsys):
    # A truncated stage report.json was a JSONDecodeError traceback.
    (tmp_path / "task").mkdir()
    broken = tmp_path / "task" / "report.json"
    broken.write_text('{"steps": 3')
    _refused(report.main, ["--output-dir", tmp_path], capsys,
             f"{broken} is not valid JSON")


def test_report_of_a_run_without_stages(tmp_path, capsys):
    _refused(report.main, ["--output-dir", tmp_path / "none"], capsys,
             "run the earlier pipeline stages first")


def test_predict_with_a_missing_model(tmp_path, capsys):
    _refused(predict.main, ["--model", tmp_path / "model.tflite", "hello"],
             capsys, "Model not found")


def test_augment_json_summary_and_status(tsv, tmp_path, capsys):
    # main returned the summary dict (exit status from its truthiness).
    out = tmp_path / "out.tsv"
    glove = tmp_path / "g.txt"
    glove.write_text("cat 0.1 0.2\ndog 0.2 0.1\nmat 0.3 0.3\npark 0.3 0.2\n")
    assert augment.main([str(a) for a in (
        "--input", tsv, "--output", out, "--glove", glove, "--no-cache",
        "--quiet", "--n", "2")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["output"] == str(out) and out.exists()
