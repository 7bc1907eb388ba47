"""python -m trainers.ablate and tinybert_tf.ablation (issue 17): the variant
-> trainers.task flags, shared work done once, restarts, the statistics, the
outputs and bad input. The runs are real trainers.task runs on tiny models
and files, in this process (`ablate.run_task` patched: the CLI starts each
in a process of its own, which only costs time here)."""

import json
import os
import sys

import numpy as np
import pytest
from scipy import stats

from tests.test_trainer_task import TOPICS, _rows, _write_csv
from tests.tiny import save_tiny_backbone, tiny_config
from tinybert_tf import ablation as ab
from trainers import ablate
from trainers import task as task_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation")
    teacher = save_tiny_backbone(str(root / "pretrained"), num_layers=2)
    general = save_tiny_backbone(str(root / "general"), hidden_size=8,
                                 num_layers=1)
    preset = root / "student.json"
    preset.write_text(tiny_config(hidden_size=8, num_layers=1).to_json())
    glove = root / "glove.txt"
    glove.write_text("".join(
        f"{w} {axis} {1 - axis} {i / 10}\n"
        for axis, words in enumerate(TOPICS.values())
        for i, w in enumerate(words)))
    task_args = (
        f"--teacher {teacher} --student-preset {preset} --sequence-length 16 "
        "--batch-size 8 --teacher-epochs 1 --teacher-lr 1e-3 "
        "--intermediate-epochs 1 --prediction-epochs 1 --baseline-epochs 1 "
        f"--eval-every 0 --aug-n 1 --aug-glove {glove} --aug-cache-dir "
        f"{root / 'aug-cache'} --quiet")
    data = ["--train-file", _write_csv(root / "train.csv", _rows(24, 0)),
            "--dev-file", _write_csv(root / "dev.csv", _rows(8, 1)),
            "--test-file", _write_csv(root / "test.csv", _rows(8, 2))]
    return {"root": root, "general": general, "task_args": task_args,
            "data": data}


def _argv(inputs, out, *extra):
    return [*inputs["data"], "--student", inputs["general"], "--task-args",
            inputs["task_args"], "--output-dir", str(out), *extra]


@pytest.fixture
def runs(monkeypatch, inputs):
    """The trainers.task runs made, each run in this process."""
    made = []

    def run_task(argv):
        made.append(argv)
        return task_cli.main(argv)
    monkeypatch.setattr(ablate, "run_task", run_task)
    monkeypatch.setenv("TINYBERT_TF_CACHE", str(inputs["root"] / "cache"))
    return made


# ------------------------------------------------------------------ variants


def test_each_variant_is_the_full_run_with_its_flags():
    shared = ab.Shared(("--quick",), "gen/student", "out/runs/full/seed0/teacher")

    def argv(variant, seed=1):
        return ab.task_argv("out", variant, seed, shared)

    full = argv("full")
    assert full[:4] == ["--output-dir", os.path.join("out", "runs", "full",
                                                     "seed1"), "--seed", "1"]
    assert full[full.index("--student") + 1] == "gen/student"
    assert "--no-baseline" not in full  # its baseline is no-td
    assert full[full.index("--fine-tuned-teacher") + 1] == shared.teacher
    # The run that fine-tuned the teacher finds it in its own folder.
    assert "--fine-tuned-teacher" not in argv("full", seed=0)
    assert argv("no-gd")[-3:] == ["--student", "random", "--no-baseline"]
    assert argv("no-gd").count("--student") == 1
    assert argv("no-da")[-2:] == ["--no-augment", "--no-baseline"]
    for variant, weights in (("no-emb", "0,1,1"), ("no-att", "1,0,1"),
                             ("no-hid", "1,1,0"), ("no-trm", "1,0,0")):
        assert argv(variant)[-3:] == ["--loss-weights", weights,
                                      "--no-baseline"]
    assert argv("no-pred")[-3:-1] == ["--prediction-target", "labels"]
    assert argv("top")[-3:-1] == ["--mapping", "top"]
    assert argv("bottom")[-3:-1] == ["--mapping", "bottom"]
    for reused in ("no-td", "uniform"):
        with pytest.raises(ValueError, match="reuses full"):
            argv(reused)
    # Full always runs (the differences are to it); reused variants do not.
    assert ab.variants_to_run(["no-td", "uniform", "top"]) == ["full", "top"]
    assert ab.variant_names("top, no-gd") == ["no-gd", "top"]
    assert len(ab.variant_names("all")) == 12


def test_data_flags_are_given_to_every_run_as_they_are():
    args = ablate.parse_args(["--train-file", "t.csv", "--text-column",
                              "review", "--max-train-examples", "50",
                              "--no-tfds-download", "--regression"])
    assert ablate.data_flags(args) == [
        "--no-tfds-download", "--train-file", "t.csv", "--text-column",
        "review", "--regression", "--max-train-examples", "50"]
    assert ablate.parse_args(["--task-args", "--quick"]).task_args == "--quick"


def test_a_run_is_a_process_of_its_own(monkeypatch):
    called = []
    monkeypatch.setattr(ablate.subprocess, "call",
                        lambda command: called.append(command) or 0)
    assert ablate.run_task(["--seed", "2"]) == 0
    assert called == [[sys.executable, "-m", "trainers.task", "--seed", "2"]]


# ------------------------------------------------------------------ statistics


def test_statistics_agree_with_scipy():
    rng = np.random.default_rng(3)
    full = {s: 0.9 + 0.01 * rng.standard_normal() for s in range(5)}
    other = {s: full[s] - 0.02 + 0.01 * rng.standard_normal() for s in range(5)}
    other.pop(4)  # a seed not finished: paired over the seeds both have
    summary = ab.summarize({"full": full, "no-da": other})
    values = [other[s] for s in range(4)]
    assert summary["no-da"]["n"] == 4
    assert summary["no-da"]["mean"] == pytest.approx(np.mean(values))
    assert summary["no-da"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert summary["full"]["difference"] is None
    d = summary["no-da"]["difference"]
    diffs = np.array([other[s] - full[s] for s in range(4)])
    low, high = stats.t.interval(0.95, 3, loc=diffs.mean(),
                                 scale=stats.sem(diffs))
    assert (d["n"], d["seeds"]) == (4, [0, 1, 2, 3])
    assert d["mean"] == pytest.approx(diffs.mean())
    assert (d["low"], d["high"]) == (pytest.approx(low), pytest.approx(high))
    # The interval excludes 0 exactly when the paired t-test rejects at 5 %.
    p = stats.ttest_rel([other[s] for s in range(4)],
                        [full[s] for s in range(4)]).pvalue
    assert d["within_noise"] == (p >= 0.05)
    one = ab.summarize({"full": {0: 0.9}, "top": {0: 0.8}})
    assert one["top"]["std"] is None
    assert one["top"]["difference"]["low"] is None
    assert one["top"]["difference"]["mean"] == pytest.approx(-0.1)
    table = ab.ablation_table(one, {"task": "t", "metric": "accuracy",
                                    "split": "test", "seeds": [0]})
    assert "interval n/a: 1 seed" in ab.markdown(table)


def test_time_estimate_scales_the_training_steps_by_the_examples():
    report = {"wall_time_s": {"teacher": 60.0, "augmentation": 30.0,
                              "intermediate": 40.0, "prediction": 20.0,
                              "baseline": 12.0, "total": 182.0},
              "teacher": {"status": "fine-tuned"},
              "augmentation": {"enabled": True, "original_examples": 100,
                               "augmented_examples": 300}}
    rest = 182.0 - 60 - 30 - 40 - 20 - 12
    assert ab.estimate_minutes("top", report) == pytest.approx((60 + rest) / 60)
    assert ab.estimate_minutes("no-da", report) == pytest.approx(
        (60 / 3 + rest) / 60)
    assert ab.estimate_minutes("full", report) == pytest.approx(
        (60 + 12 + rest) / 60)
    assert ab.estimate_minutes("no-td", report) == 0
    assert ab.estimate_minutes("top", report, startup_s=30) == pytest.approx(
        (60 + rest + 30) / 60)
    assert ab.once_minutes(report) == (1.0, 0.5)
    without = dict(report, augmentation={"enabled": False,
                                         "original_examples": 100,
                                         "augmented_examples": 100})
    assert ab.estimate_minutes("top", without) is None  # augmented: unknown


# ------------------------------------------------------------------ end to end


VARIANTS = "no-td,no-emb"


@pytest.fixture(scope="module")
def finished(inputs, tmp_path_factory):
    """An ablation of two variants (no-td from the full runs), two seeds."""
    out = inputs["root"] / "out"
    made = []
    patch = pytest.MonkeyPatch()
    patch.setattr(ablate, "run_task",
                  lambda argv: made.append(argv) or task_cli.main(argv))
    patch.setenv("TINYBERT_TF_CACHE", str(inputs["root"] / "cache"))
    try:
        assert ablate.main(_argv(inputs, out, "--variants", VARIANTS,
                                 "--repeats", "2")) == 0
    finally:
        patch.undo()
    return out, made


def _report(out, variant, seed):
    with open(ab.report_path(str(out), variant, seed)) as f:
        return json.load(f)


def test_shared_work_is_done_once(finished):
    out, made = finished
    # full runs first (its seed 0 fine-tunes the teacher), seed by seed.
    assert [(a[a.index("--output-dir") + 1].split(os.sep)[-2:]) for a in made] == [
        ["full", "seed0"], ["no-emb", "seed0"], ["full", "seed1"],
        ["no-emb", "seed1"]]
    statuses = [_report(out, v, s)["teacher"]["status"]
                for s in (0, 1) for v in ("full", "no-emb")]
    assert statuses == ["fine-tuned"] + ["given"] * 3
    teacher = str(out / "runs" / "full" / "seed0" / "teacher")
    for argv in made[1:]:
        assert argv[argv.index("--fine-tuned-teacher") + 1] == teacher
    assert len({json.dumps(_report(out, v, s)["teacher"]["test"])
                for s in (0, 1) for v in ("full", "no-emb")}) == 1
    # The augmentation of a seed is made by its full run, then read back
    # from trainers.task's cache by the other variants.
    for seed in (0, 1):
        full = _report(out, "full", seed)["augmentation"]
        other = _report(out, "no-emb", seed)["augmentation"]
        assert (full["counts"]["cache_hit"], other["counts"]["cache_hit"]) == (
            False, True)
        assert other["augmented_examples"] == full["augmented_examples"]
    # Only the full runs train the baseline: it is the no-td variant.
    assert _report(out, "full", 0)["baseline"] is not None
    assert _report(out, "no-emb", 0)["baseline"] is None
    assert _report(out, "no-emb", 0)["arguments"]["loss_weights"] == "0,1,1"


def test_outputs_are_the_papers_tables(finished):
    out, _ = finished
    table = json.loads((out / "ablation.json").read_text())
    assert list(table["variants"]) == ["full", "no-td", "no-emb"]
    assert (table["metric"], table["split"], table["seeds"]) == (
        "accuracy", "test", [0, 1])
    full, no_td = table["variants"]["full"], table["variants"]["no-td"]
    scores = [_report(out, "full", s)["student"]["test"]["accuracy"]
              for s in (0, 1)]
    assert full["scores"] == {"0": scores[0], "1": scores[1]}
    assert full["mean"] == pytest.approx(np.mean(scores))
    assert no_td["scores"]["1"] == _report(out, "full", 1)["baseline"][
        "test"]["accuracy"]
    assert (no_td["paper"], no_td["paper_difference"]) == (68.5, -7.1)
    assert no_td["difference"]["n"] == 2
    assert not table["partial"]
    text = (out / "ablation.md").read_text()
    assert "## Learning procedures" in text and "## Distillation objectives" in text
    assert "| 75.6 |" in text and "| 74.1 | -1.5 |" in text
    assert "## Layer mappings" not in text  # none selected
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_restart_skips_finished_runs(finished, inputs, runs, capsys):
    out, _ = finished
    argv = _argv(inputs, out, "--variants", VARIANTS, "--repeats", "2")
    assert ablate.main(argv) == 0
    assert runs == []
    assert "2/2 finished" in capsys.readouterr().out
    # An interrupted run (no report.json yet) is the only one run again.
    os.remove(ab.report_path(str(out), "no-emb", 1))
    assert ablate.main(argv) == 0
    assert [a[a.index("--output-dir") + 1] for a in runs] == [
        ab.run_dir(str(out), "no-emb", 1)]
    printed = capsys.readouterr().out
    # Estimated from a finished run and the wall time this command measured.
    assert "min a run" in printed and "process start-up" in printed
    assert "Time: estimated once" not in printed
    times = json.loads((out / ablate.TIMES_FILE).read_text())
    assert sorted(times) == ["full/seed0", "full/seed1", "no-emb/seed0",
                             "no-emb/seed1"]


# ------------------------------------------------------------------ bad input


def _fails(argv, capsys, *fragments):
    assert ablate.main(argv) == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err


def test_bad_input_is_refused_naming_it(inputs, runs, tmp_path, capsys):
    new = tmp_path / "new"
    _fails(_argv(inputs, new, "--variants", "full,no-gdd"), capsys,
           "--variants", "'no-gdd'", "no-gd")
    _fails(_argv(inputs, new, "--repeats", "0"), capsys, "--repeats 0")
    _fails(_argv(inputs, new, "--task-args", "--seed 3"), capsys,
           "--task-args: --seed is set by the ablation")
    _fails(_argv(inputs, new, "--task-args", "--quick 'x"), capsys,
           "cannot be split")
    _fails(["--train-file", str(tmp_path / "nope.csv"), "--output-dir",
            str(new)], capsys, "--train-file", "no such file")
    _fails(_argv(inputs, new, "--student", "random"), capsys, "no-gd")
    assert not new.exists() and runs == []


def test_other_settings_into_a_used_folder_are_refused(finished, inputs, runs,
                                                      capsys):
    out, _ = finished
    before = (out / "ablation.json").read_bytes()
    argv = _argv(inputs, out, "--variants", VARIANTS, "--repeats", "2")
    argv[argv.index("--task-args") + 1] += " --aug-k 3"
    _fails(argv, capsys, "other settings", "--aug-k 3", "another --output-dir")
    assert (out / "ablation.json").read_bytes() == before and runs == []


def test_the_plan_names_what_is_reused(finished, inputs, capsys):
    out, _ = finished
    assert ablate.main(_argv(inputs, out, "--variants", "uniform,no-td",
                             "--repeats", "3", "--dry-run")) == 0
    printed = capsys.readouterr().out
    assert "uniform  no runs of its own: the student of the full runs" in printed
    assert "no-td    no runs of its own: the baseline of the full runs" in printed
    assert str(out / "runs" / "full" / "seed0" / "teacher") in printed
    assert "2/3 finished" in printed
    # The one run left: full, seed 2, given the teacher of seed 0.
    commands = [line for line in printed.splitlines()
                if line.startswith("  python -m trainers.task")]
    assert len(commands) == 1 and "--seed 2" in commands[0]
    assert "--fine-tuned-teacher" in commands[0]


def test_a_failed_run_stops_the_ablation_with_its_status(inputs, runs,
                                                          tmp_path, capsys):
    argv = _argv(inputs, tmp_path / "out", "--variants", "top", "--repeats",
                 "1", "--task", "sst3")
    argv[argv.index("--train-file"):argv.index("--train-file") + 6] = []
    assert ablate.main(argv) == 2
    err = capsys.readouterr().err
    assert "Unknown task 'sst3'" in err
    assert "the full run of seed 0 failed (exit status 2)" in err
    assert len(runs) == 1  # top never started
    assert not (tmp_path / "out" / "ablation.md").exists()
