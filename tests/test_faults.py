"""Faults: a run SIGKILLed at random steps and re-run with the same command
ends with the same student as a run that was never interrupted; a NaN loss
stops a run with a message naming its stage and step, the last good
checkpoint kept; two MultiWorkerMirroredStrategy workers, one killed,
resume from the last backup; only the chief writes.

The faults are real (a SIGKILL of the training process) and placed with
TINYBERT_TF_FAULT=STAGE:STEP:KIND (`tinybert_tf.callbacks.FaultInjection`).
The equality is exact: every training step of the re-run sees the weights,
optimizer state, dropout seeds and batches of the uninterrupted one.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.test_trainer_task import _rows, _write_csv
from tests.tiny import save_tiny_backbone, tiny_config, tiny_corpus
from tinybert_tf import checkpoint

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 600
KILLS_PER_STAGE = 3
RNG = np.random.default_rng(14)  # the kill steps; printed when a test fails


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    dropout = dict(hidden_dropout=0.1, attention_dropout=0.1)
    return {
        "root": root,
        "teacher": save_tiny_backbone(str(root / "teacher"), num_layers=2,
                                      **dropout),
        "student": _write(root / "student.json",
                          tiny_config(hidden_size=8, num_layers=1, **dropout)
                          .to_json()),
        "corpus": tiny_corpus(str(root / "corpus.txt"), documents=30),
        "train": _write_csv(root / "train.csv", _rows(48, 0)),
        "dev": _write_csv(root / "dev.csv", _rows(12, 1)),
        "test": _write_csv(root / "test.csv", _rows(12, 2)),
    }


def _write(path, text):
    path.write_text(text)
    return str(path)


def general_argv(s, out, steps=8):
    return ["-m", "trainers.general", "--teacher", s["teacher"],
            "--student", s["student"], "--corpus", s["corpus"],
            "--sequence-length", "32", "--batch-size", "4",
            "--steps", str(steps), "--save-every", "2", "--teacher-dropout",
            "--output-dir", str(out), "--cache-dir", str(s["root"] / "cache")]


def task_argv(s, out):
    return ["-m", "trainers.task", "--no-augment", "--teacher", s["teacher"],
            "--student", s["student"], "--train-file", s["train"],
            "--dev-file", s["dev"], "--test-file", s["test"],
            "--sequence-length", "16", "--batch-size", "8",
            "--teacher-epochs", "2", "--teacher-lr", "1e-3",
            "--intermediate-epochs", "2", "--intermediate-lr", "1e-3",
            "--prediction-epochs", "2", "--prediction-lr", "1e-3",
            "--baseline-epochs", "2", "--baseline-lr", "1e-3",
            "--eval-every", "4", "--output-dir", str(out), "--quiet"]


def _run(argv, fault=None, env=None, **popen):
    env = {**os.environ, **(env or {})}
    env.pop("TINYBERT_TF_FAULT", None)
    if fault:
        env["TINYBERT_TF_FAULT"] = fault
    return subprocess.run([sys.executable, *argv], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=TIMEOUT_S,
                          **popen)


def _ok(done):
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _weights(directory):
    return checkpoint.read(str(directory)).weights


def assert_same_weights(got, expected, context):
    assert sorted(got) == sorted(expected), context
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name],
                                      err_msg=f"{name}; {context}")


def test_general_killed_three_times_ends_as_an_uninterrupted_run(setup):
    reference, interrupted = setup["root"] / "g_ref", setup["root"] / "g_kill"
    _ok(_run(general_argv(setup, reference)))
    kills = sorted(RNG.choice(np.arange(1, 8), KILLS_PER_STAGE, replace=False))
    for step in kills:
        done = _run(general_argv(setup, interrupted), f"general:{step}:kill")
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
        # What the killed run left is a backup without the teacher.
        state = interrupted / "backup" / "state.safetensors"
        if step >= 2:
            teacher_bytes = os.path.getsize(
                os.path.join(setup["teacher"], "model.safetensors"))
            assert os.path.getsize(state) < teacher_bytes
    done = _ok(_run(general_argv(setup, interrupted)))
    assert "Resumed from" in done.stdout
    assert not (interrupted / "backup").exists()
    assert not (interrupted / ".lock").exists()
    assert_same_weights(_weights(interrupted / "student"),
                        _weights(reference / "student"), f"kills at {kills}")
    report = json.loads((interrupted / "report.json").read_text())
    assert report["steps"] == 8


def test_task_killed_three_times_in_each_stage_ends_as_an_uninterrupted_run(
        setup):
    reference, interrupted = setup["root"] / "t_ref", setup["root"] / "t_kill"
    _ok(_run(task_argv(setup, reference)))
    # 48 examples in batches of 8, 2 epochs: 12 steps in each stage.
    plan = [(stage, int(step)) for stage in ("teacher", "intermediate",
                                             "prediction", "baseline")
            for step in sorted(RNG.choice(np.arange(1, 12), KILLS_PER_STAGE,
                                          replace=False))]
    for stage, step in plan:
        done = _run(task_argv(setup, interrupted), f"{stage}:{step}:kill")
        assert done.returncode == -signal.SIGKILL, (stage, step,
                                                    done.stderr[-2000:])
        assert not (interrupted / "report.json").exists()
    _ok(_run(task_argv(setup, interrupted)))
    for name in ("teacher", "student"):
        assert_same_weights(_weights(interrupted / name),
                            _weights(reference / name), f"{name}; kills {plan}")
    got, expected = (json.loads((out / "report.json").read_text())
                     for out in (interrupted, reference))
    for key in ("student", "baseline"):
        assert got[key]["test"] == expected[key]["test"], key
    assert not (interrupted / "stages").exists()


def test_resuming_with_other_flags_is_refused_and_touches_nothing(setup):
    out = setup["root"] / "g_other"
    done = _run(general_argv(setup, out), "general:5:kill")
    assert done.returncode == -signal.SIGKILL
    before = _snapshot(out)
    argv = general_argv(setup, out)
    argv[argv.index("--batch-size") + 1] = "2"
    done = _run(argv)
    assert done.returncode == 2
    assert "unfinished run with another configuration" in done.stderr
    assert "batch_size: 4 in the unfinished run, 2 now" in done.stderr
    assert _snapshot(out) == before
    # --overwrite starts afresh: the old backup is cleared, not resumed.
    done = _ok(_run([*argv, "--overwrite"]))
    assert "Resumed from" not in done.stdout


def _snapshot(folder):
    """Every file under `folder` and its bytes, but the stale lock of the
    killed run (taken over, then released)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_a_nan_loss_stops_general_naming_the_step_and_keeps_the_checkpoint(
        setup):
    out = setup["root"] / "g_nan"
    done = _run(general_argv(setup, out), "general:5:nan")
    assert done.returncode == 1
    assert "general: non-finite loss at step 6" in done.stderr
    assert "Traceback" not in done.stderr
    saved = checkpoint.read(str(out / "student"))  # the last good one
    assert saved.extras["step"] == 4
    assert all(np.isfinite(v).all() for v in saved.weights.values())


def test_a_nan_loss_stops_task_distillation_naming_the_stage(setup):
    out = setup["root"] / "t_nan"
    done = _run(task_argv(setup, out), "prediction:3:nan")
    assert done.returncode == 1
    assert "prediction: non-finite loss at step 4" in done.stderr
    assert "Traceback" not in done.stderr
    step1 = checkpoint.read(str(out / "stages" / "intermediate"))
    assert all(np.isfinite(v).all() for v in step1.weights.values())
    checkpoint.load_classifier(str(out / "teacher"))
    assert not (out / "student").exists()


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _workers(argvs, ports, fault_of=None, logs=None):
    """Starts one process per worker; worker i runs argvs[i]."""
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    processes = []
    for index, argv in enumerate(argvs):
        env = {**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        env.pop("TINYBERT_TF_FAULT", None)
        if fault_of and index in fault_of:
            env["TINYBERT_TF_FAULT"] = fault_of[index]
        with open(logs[index], "w") as out:
            processes.append(subprocess.Popen(
                [sys.executable, *argv], stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=ROOT))
    return processes


def _wait(processes, logs):
    try:
        return [p.wait(timeout=TIMEOUT_S) for p in processes]
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
        pytest.fail("\n".join(log.read_text()[-2000:] for log in logs))


def test_multiworker_worker_killed_then_both_restarted_resume(setup):
    try:
        ports = _free_ports(2)
    except OSError as error:
        pytest.skip(f"cannot bind localhost ports: {error}")
    out = setup["root"] / "mw"
    argv = [*general_argv(setup, out, steps=8), "--strategy", "multiworker"]
    logs = [setup["root"] / f"mw_{i}.txt" for i in range(2)]
    workers = _workers([argv, argv], ports, {1: "general:5:kill"}, logs)
    assert workers[1].wait(timeout=TIMEOUT_S) == -signal.SIGKILL
    workers[0].kill()  # blocked in a collective with its dead peer
    workers[0].wait()
    assert (out / "backup" / "state.json").exists()
    workers = _workers([argv, argv], _free_ports(2), None, logs)
    codes = _wait(workers, logs)
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    assert "Resumed from" in logs[0].read_text()
    assert json.loads((out / "report.json").read_text())["steps"] == 8


def test_task_writes_nothing_on_a_worker_that_is_not_the_chief(setup):
    # TF_CONFIG names this process worker 1 of 2; it trains on one device
    # (`--strategy default`): Keras 3.15's own `fit` of a classifier under
    # MultiWorkerMirroredStrategy fails in its log reduction
    # (docs/reliability.md), so the chief rule is pinned without it.
    out = setup["root"] / "worker_1"
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    done = _ok(_run(task_argv(setup, out), env={"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": 1}})}))
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
