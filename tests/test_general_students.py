"""trainers.task starts from a general-distilled student by default: made
once by trainers.general into the cache (tinybert_tf.general_students),
found there by later runs, and named in the report."""

import json
import os

import pytest

from tests.test_trainer_task import _argv, files  # noqa: F401 (fixture)
from tests.tiny import tiny_corpus
from tinybert_tf.general_students import cache_key
from trainers import general_flags as general
from trainers import task as task_cli

pytestmark = pytest.mark.slow


def _general_args(files):
    corpus = str(files["root"] / "general-corpus.txt")
    if not os.path.exists(corpus):  # rewritten, it would be another key
        tiny_corpus(corpus, documents=20)
    return (f"--corpus {corpus} --sequence-length 16 --batch-size 4 "
            "--steps 2 --save-every 2")


def _default_start_argv(files, out, *extra):
    argv = _argv(files, out, "--general-args", _general_args(files),
                 "--student-preset", files["student"], "--no-baseline", *extra)
    argv[argv.index("--student") + 1] = "general"
    argv.remove("--quiet")
    return argv


def test_the_key_follows_what_the_student_depends_on(files, tmp_path):
    base = ["--teacher", files["teacher"], "--corpus", files["train"],
            "--steps", "5"]
    key = cache_key(general.parse_args(base))
    # Where and how often a run saves does not change its student.
    assert cache_key(general.parse_args(
        base + ["--save-every", "1", "--output-dir", str(tmp_path)])) == key
    assert cache_key(general.parse_args(base + ["--steps", "6"])) != key
    assert cache_key(general.parse_args(base + ["--recipe", "paper"])) != key
    assert cache_key(general.parse_args(
        base + ["--student", "tinybert-4l-312d"])) != key
    # Another teacher, or the same path with other weights.
    copy = tmp_path / "teacher"
    copy.mkdir()
    for name in os.listdir(files["teacher"]):
        (copy / name).write_bytes(
            open(os.path.join(files["teacher"], name), "rb").read())
    moved = base.copy()
    moved[1] = str(copy)
    assert cache_key(general.parse_args(moved)) != key
    weights = copy / "model.safetensors"
    changed = cache_key(general.parse_args(moved))
    weights.write_bytes(weights.read_bytes() + b" ")
    assert cache_key(general.parse_args(moved)) != changed


def test_the_default_student_is_made_once_then_found(files, capfd):
    out = files["root"] / "default-start"
    assert task_cli.main(_default_start_argv(files, out / "first")) == 0
    said = capfd.readouterr().out
    assert "No general-distilled student of this teacher" in said
    assert "General-distilled student made in" in said
    first = json.loads((out / "first" / "report.json").read_text())
    start = first["student"]["start"]
    assert start["kind"] == "cached general student"
    assert start["checkpoint"].startswith(os.environ["TINYBERT_TF_CACHE"])
    made = json.loads(open(os.path.join(
        os.path.dirname(start["checkpoint"]), "report.json")).read())
    assert made["stage"] == "general" and made["steps"] == 2
    assert made["teacher"]["source"] == files["teacher"]

    # Another run of the same teacher finds it, and so does a run given the
    # fine-tuned teacher (the general student of its pre-trained teacher).
    for name, extra in (("second", ()), ("given", (
            "--fine-tuned-teacher", str(out / "first" / "teacher")))):
        assert task_cli.main(_default_start_argv(files, out / name,
                                                 *extra)) == 0
        said = capfd.readouterr().out
        assert "No general-distilled student" not in said
        assert f"general-distilled student cached in {start['checkpoint']}" \
            in said
        report = json.loads((out / name / "report.json").read_text())
        assert report["student"]["start"] == start


def test_random_and_given_starts_are_named_in_the_report(files):
    out = files["root"] / "starts"
    argv = _argv(files, out / "random", "--student-preset", files["student"],
                 "--no-baseline")
    argv[argv.index("--student") + 1] = "random"
    assert task_cli.main(argv) == 0
    report = json.loads((out / "random" / "report.json").read_text())
    assert report["student"]["start"] == {"kind": "random", "checkpoint": None}
    given = str(out / "random" / "student")
    argv = _argv(files, out / "given", "--no-baseline")
    argv[argv.index("--student") + 1] = given
    assert task_cli.main(argv) == 0
    report = json.loads((out / "given" / "report.json").read_text())
    assert report["student"]["start"] == {"kind": "given checkpoint",
                                          "checkpoint": given}


def test_the_offline_teacher_uses_the_default_general_student(monkeypatch):
    # trainers.task names the offline MiniLM by its display name; the
    # general student of that teacher is trainers.general's default one.
    from types import SimpleNamespace
    made = []
    monkeypatch.setattr(general, "general_student",
                        lambda flags, say, chief=True: made.append(flags)
                        or "cached")
    args = task_cli.parse_args(["--student", "general"])
    fine_tuned = SimpleNamespace(extras={"pretrained": "all-MiniLM-L6-v2"},
                                 source="outputs/teacher")
    for teacher in ("all-MiniLM-L6-v2", fine_tuned):
        general.student_source(args, teacher, print)
    assert made == [general.general_run_flags(args)] * 2
    assert "--teacher" not in made[0]
