import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.test_console import NOISE
from tests.test_trainer_task import TOPICS, _rows, _write_csv
from tests.tiny import save_tiny_backbone, tiny_config, tiny_corpus
from trainers import pipeline

pytestmark = pytest.mark.slow


def test_redo_reruns_the_stage_and_every_later_one():
    assert pipeline.stages_to_redo([]) == set()
    assert pipeline.stages_to_redo(["export"]) == {"export", "report"}
    assert pipeline.stages_to_redo(["teacher"]) == {"task", "export", "report"}
    assert pipeline.stages_to_redo(["report", "general"]) == set(pipeline.STAGES)
    assert pipeline.stages_to_redo(["all"]) == set(pipeline.STAGES)


def test_stage_commands_chain_the_outputs():
    extras = {"task": ["--seed", "3"], "general": ["--steps", "7"]}
    task = pipeline.stage_command("task", "out", "full", True, extras)
    assert task[:2] == ["-m", "trainers.task"]
    # The task starts from the general stage's student: the same flags
    # give trainers.task's cached one.
    assert "--student" not in task
    assert task[task.index("--general-args") + 1] == "--steps 7"
    general = pipeline.stage_command("general", "out", "full", False, extras)
    assert general == ["-m", "trainers.general", "--into-cache", "--steps", "7"]
    quick = pipeline.stage_command("task", "out", "quick", False, {})
    assert quick[quick.index("--general-args") + 1] == "--steps 10 --save-every 5"
    assert "--general-args" not in pipeline.stage_command("task", "out",
                                                          "full", False, {})
    assert "--retrain-teacher" in task
    assert task[-2:] == ["--seed", "3"]  # the user's flags come last and win
    export = pipeline.stage_command("export", "out", "quick", False, {})
    assert export[export.index("--checkpoint") + 1] == os.path.join(
        "out", "task", "student")
    assert export[export.index("--mediapipe-examples") + 1] == "-1"


def test_an_unfinished_stage_resumes_and_a_redone_one_overwrites():
    for stage in ("general", "task", "export"):
        assert "--overwrite" not in pipeline.stage_command(stage, "out", "full",
                                                           False, {})
        assert "--overwrite" in pipeline.stage_command(stage, "out", "full",
                                                       False, {}, redo=True)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole pipeline on tiny models and files, as a user would run it."""
    root = tmp_path_factory.mktemp("pipeline")
    teacher = save_tiny_backbone(str(root / "teacher"), num_layers=2)
    student = root / "student.json"
    student.write_text(tiny_config(hidden_size=8, num_layers=1).to_json())
    corpus = tiny_corpus(str(root / "corpus.txt"), documents=30)
    files = {name: _write_csv(root / f"{name}.csv", _rows(count, seed))
             for name, count, seed in (("train", 40, 0), ("dev", 10, 1),
                                       ("test", 10, 2))}
    glove = root / "glove.txt"
    glove.write_text("".join(
        f"{w} {axis} {1 - axis} {i / 10}\n"
        for axis, words in enumerate(TOPICS.values())
        for i, w in enumerate(words)))
    data = (f"--train-file {files['train']} --dev-file {files['dev']} "
            f"--test-file {files['test']} --sequence-length 16")
    argv = [
        "--quick", "--output-dir", str(root / "run"),
        "--general-args", f"--teacher {teacher} --student {student} "
        f"--corpus {corpus} --sequence-length 16 --batch-size 4 --steps 4 "
        f"--save-every 2 --cache-dir {root / 'cache'}",
        "--task-args", f"--teacher {teacher} {data} --batch-size 8 "
        f"--teacher-epochs 1 --teacher-lr 1e-3 --intermediate-lr 1e-3 "
        f"--prediction-lr 1e-3 --baseline-epochs 1 --aug-glove {glove} "
        f"--aug-cache-dir {root / 'aug-cache'}",
        "--export-args", f"{data} --calibration-samples 8"]
    # A user's default console (no log level of their own).
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TINYBERT_TF_VERBOSE")}

    def run(*extra):
        done = subprocess.run([sys.executable, "-m", "trainers.pipeline",
                               *argv, *extra], capture_output=True, text=True,
                              env=env, cwd=os.getcwd())
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # The stages inherit the quiet console; into a pipe, no progress
        # bar (Keras's, the augmentation's) draws itself.
        assert not [word for word in NOISE if word in done.stderr], (
            done.stderr[-3000:])
        both = done.stdout + done.stderr
        assert "\r" not in both and "\x1b[" not in both
        return done.stdout

    return {"out": root / "run", "first": run(), "run": run}


def test_pipeline_runs_every_stage_and_writes_the_report(tiny_run):
    out = tiny_run["out"]
    log = tiny_run["first"]
    for number, stage in enumerate(pipeline.STAGES, 1):
        assert f"[{number}/4] {stage}: " in log
    assert "Pipeline done" in log
    # It ends with the predict command and one prediction of the student.
    tried = log.split("Try it: python -m trainers.predict --model ")[1]
    assert tried.splitlines()[1].split()[0] in TOPICS
    task = json.loads((out / "task" / "report.json").read_text())
    assert task["augmentation"]["augmented_examples"] > 40
    export = json.loads((out / "export" / "export_report.json").read_text())
    assert set(export["variants"]) == {"float32", "dynamic_int8", "full_int8"}
    for variant in export["variants"].values():
        assert variant["mediapipe_examples"] == 10  # every test text

    summary = json.loads((out / "summary.json").read_text())
    models = [row["model"] for row in summary["rows"]]
    assert models[:3] == [
        "teacher (Keras, fine-tuned)",
        "student (Keras, TinyBERT distilled from a cached general student)",
        "same student, trained on labels only (augmented data, from the same "
        "cached general student)"]
    # The task started from the general stage's student, in the cache.
    general = task["student"]["start"]["checkpoint"]
    assert task["student"]["start"]["kind"] == "cached general student"
    assert os.path.isfile(os.path.join(os.path.dirname(general),
                                       "report.json"))
    assert [m for m in models if "TFLite" in m] == [
        f"student TFLite {v}" for v in export["variants"]]
    for row in summary["rows"]:
        assert 0 <= row["accuracy"] <= 1 and row["latency_ms"] > 0
        assert row["size_mb"] > 0 and row["parameters"] > 0
    # The table's Keras student is the exported checkpoint's own accuracy.
    assert summary["rows"][1]["accuracy"] == pytest.approx(
        export["keras_accuracy"])

    page = (out / "report.md").read_text()
    for name in ("losses", "attention", "variants"):
        assert f"(plots/{name}.png)" in page
        with open(out / "plots" / f"{name}.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "| student TFLite full_int8 |" in page


def test_rerun_skips_finished_stages_and_redo_runs_them(tiny_run):
    out = tiny_run["out"]
    student = (out / "task" / "student" / "model.safetensors").read_bytes()
    exported = out / "export" / "model_full_int8.tflite"
    before = exported.stat().st_mtime_ns
    log = tiny_run["run"]()
    for stage in ("general", "task", "export"):
        assert f"{stage}: finished earlier, reusing" in log
    assert (out / "task" / "student" / "model.safetensors").read_bytes() == student
    assert exported.stat().st_mtime_ns == before

    log = tiny_run["run"]("--redo", "export")
    assert "general: finished earlier" in log and "task: finished earlier" in log
    assert "[3/4] export: " in log and exported.stat().st_mtime_ns != before
    assert (out / "task" / "student" / "model.safetensors").read_bytes() == student


def test_a_failing_stage_stops_the_run_and_says_so(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trainers.pipeline", "--quick", "--output-dir",
         str(tmp_path / "run"), "--general-args",
         f"--corpus {tmp_path / 'missing.txt'}"],
        capture_output=True, text=True, cwd=os.getcwd())
    assert done.returncode == 2
    assert "stage general failed" in done.stderr
    assert "missing.txt" in done.stderr
    assert not (tmp_path / "run" / "task").exists()
