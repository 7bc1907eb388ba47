"""Distillation under tf.distribute equals single-device distillation.

- MirroredStrategy over 2 logical CPU devices: one step on a global batch
  gives the student weights and loss of one single-device step on it, with
  plain SGD (the loss is divided by the number of replicas), SGD with an
  active `global_clipnorm` (Keras 3 clips each replica's gradient before the
  all-reduce; the Distiller clips the summed one), and the same under
  mixed_float16 with a LossScaleOptimizer. Logical devices must be configured
  before TensorFlow initialises, so this runs in a subprocess:
  `python tests/test_distribute.py mirrored REPORT.json`.
- MultiWorkerMirroredStrategy: 2 worker processes on localhost
  (`tests/multiworker_worker.py`) end with identical students, equal to a
  single-device run on the same global batches.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "multiworker_worker.py")
LEARNING_RATE, CLIP = 0.5, 1e-2  # multiworker_worker.optimizer()
TIMEOUT_S = 300


def _environment():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, HERE] + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop("TF_CONFIG", None)
    return env


def _tail(path, lines=40):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def _run(command, log_path):
    with open(log_path, "w") as log:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                              env=_environment(), cwd=ROOT, timeout=TIMEOUT_S)


# ---------------------------------------------------------------- mirrored

def _mirrored_cases():
    import keras

    def clipped_sgd():
        return keras.optimizers.SGD(LEARNING_RATE, global_clipnorm=CLIP)

    def loss_scaled_sgd():
        # compile() would wrap with initial_scale=2**15, whose first float16
        # step overflows and is skipped; a small scale keeps the step.
        return keras.optimizers.LossScaleOptimizer(clipped_sgd(),
                                                   initial_scale=8.0)

    return {
        # Unclipped: checks the 1/replicas scaling of the loss.
        "sgd": ("float32", lambda: keras.optimizers.SGD(LEARNING_RATE)),
        "sgd_global_clipnorm": ("float32", clipped_sgd),
        # The official BertAdam's clipping: each tensor to norm CLIP.
        "sgd_clipnorm": ("float32", lambda: keras.optimizers.SGD(
            LEARNING_RATE, clipnorm=CLIP)),
        "sgd_global_clipnorm_float16": ("mixed_float16", loss_scaled_sgd),
    }


def _one_step(distiller, make_optimizer, run_eagerly=False):
    """Fits one global batch; returns (loss, variables before, after)."""
    from multiworker_worker import GLOBAL_BATCH, dataset

    distiller.compile(make_optimizer(), jit_compile=False,
                      run_eagerly=run_eagerly)
    before = [np.array(v.numpy()) for v in distiller.train_variables]
    loss = distiller.fit(dataset(GLOBAL_BATCH), shuffle=False,
                         verbose=0).history["loss"][0]
    after = [np.array(v.numpy()) for v in distiller.train_variables]
    return float(loss), before, after


def mirrored_report(path):
    """Subprocess body: single-device vs MirroredStrategy, one step each."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from multiworker_worker import tiny_distiller

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    report = {}
    for case, (policy, make_optimizer) in _mirrored_cases().items():
        keras.mixed_precision.set_global_policy(policy)
        single = tiny_distiller()
        initial = single.get_weights()
        # The reference runs eagerly (no tracing: faster, same arithmetic).
        single_loss, before, single_after = _one_step(single, make_optimizer,
                                                      run_eagerly=True)
        with strategy.scope():
            mirrored = tiny_distiller()
            mirrored.set_weights(initial)
            mirrored_loss, _, mirrored_after = _one_step(mirrored, make_optimizer)

        def update_norm(after):
            return float(np.sqrt(sum(np.sum((a - b) ** 2)
                                     for a, b in zip(after, before))))

        report[case] = {
            "replicas": strategy.num_replicas_in_sync,
            "optimizer": type(mirrored.optimizer).__name__,
            "single_loss": single_loss, "mirrored_loss": mirrored_loss,
            "max_difference": float(max(np.abs(a - b).max() for a, b in
                                        zip(single_after, mirrored_after))),
            "single_update_norm": update_norm(single_after),
            "mirrored_update_norm": update_norm(mirrored_after),
            "tensor_update_norms": [
                [float(np.linalg.norm(a - b)) for a, b in zip(after, before)]
                for after in (single_after, mirrored_after)],
        }
    keras.mixed_precision.set_global_policy("float32")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirrored")
    report, log = directory / "report.json", directory / "log.txt"
    done = _run([sys.executable, os.path.abspath(__file__), "mirrored",
                 str(report)], log)
    assert done.returncode == 0, _tail(log)
    with open(report) as f:
        return json.load(f)


def test_mirrored_runs_on_two_replicas(mirrored):
    assert {case["replicas"] for case in mirrored.values()} == {2}
    assert mirrored["sgd_global_clipnorm_float16"]["optimizer"] == "LossScaleOptimizer"


@pytest.mark.parametrize("case, tolerance", [
    ("sgd", 1e-5), ("sgd_global_clipnorm", 1e-5), ("sgd_clipnorm", 1e-5),
    # float16 activations: half batches may round a little differently.
    ("sgd_global_clipnorm_float16", 1e-4)])
def test_mirrored_step_equals_single_device_step(mirrored, case, tolerance):
    result = mirrored[case]
    assert result["mirrored_loss"] == pytest.approx(result["single_loss"],
                                                    rel=1e-3)
    assert result["max_difference"] < tolerance, result
    assert result["single_update_norm"] > 10 * tolerance  # the step moved


@pytest.mark.parametrize("case", ["sgd_global_clipnorm",
                                  "sgd_global_clipnorm_float16"])
def test_mirrored_clips_the_global_gradient(mirrored, case):
    """An SGD step clipped to norm CLIP moves the variables by exactly
    LEARNING_RATE * CLIP. Clipping each replica's half apart (Keras' own
    behaviour) moves them by up to twice that."""
    result = mirrored[case]
    expected = LEARNING_RATE * CLIP
    assert result["single_update_norm"] == pytest.approx(expected, rel=1e-3)
    assert result["mirrored_update_norm"] == pytest.approx(expected, rel=1e-3)


def test_mirrored_clips_each_tensor_apart(mirrored):
    """clipnorm (per tensor): every variable moves by at most
    LEARNING_RATE * CLIP, the clipped ones by exactly that, on one device
    and on two replicas alike (the summed gradient is clipped)."""
    limit = LEARNING_RATE * CLIP
    for norms in mirrored["sgd_clipnorm"]["tensor_update_norms"]:
        assert max(norms) == pytest.approx(limit, rel=1e-3)
        assert all(n <= limit * (1 + 1e-3) for n in norms)
    single, both = mirrored["sgd_clipnorm"]["tensor_update_norms"]
    np.testing.assert_allclose(both, single, rtol=1e-3, atol=1e-9)


# ---------------------------------------------------------------- Keras internals

def test_keras_still_calls_the_symbolic_build_hook(monkeypatch):
    """`BuiltBeforeFit` overrides Keras' private `_maybe_symbolic_build`
    (keras-team/keras#20329); if Keras stops calling it, this fails."""
    from multiworker_worker import GLOBAL_BATCH, dataset, tiny_distiller

    from tinybert_tf.distribute import BuiltBeforeFit

    calls = []
    original = BuiltBeforeFit._maybe_symbolic_build

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BuiltBeforeFit, "_maybe_symbolic_build", counted)
    distiller = tiny_distiller()
    distiller.compile("sgd")
    distiller.fit(dataset(GLOBAL_BATCH), shuffle=False, verbose=0)
    assert calls


def test_unlocked_tracker_adds_state_to_a_built_layer():
    import keras

    from tinybert_tf.distribute import unlocked_tracker

    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    with pytest.raises(ValueError):
        layer.extra = keras.layers.Dense(1)
    with unlocked_tracker(layer):
        layer.extra = keras.layers.Dense(1)
        layer.extra.build((None, 2))
    assert len(layer.weights) == 4


# ---------------------------------------------------------------- multi-worker

def _free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_multiworker_workers_end_identical_and_equal_single_device(tmp_path):
    try:
        ports = _free_ports(2)
    except OSError as error:
        pytest.skip(f"cannot bind localhost ports for the workers: {error}")
    logs = [tmp_path / f"worker_{i}.txt" for i in range(2)]
    workers = []
    for index, log in enumerate(logs):
        with open(log, "w") as out:  # the worker writes to its own copy
            workers.append(subprocess.Popen(
                [sys.executable, WORKER, str(index), ",".join(map(str, ports)),
                 str(tmp_path)], stdout=out, stderr=subprocess.STDOUT,
                env=_environment(), cwd=ROOT))
    try:
        codes = [worker.wait(timeout=TIMEOUT_S) for worker in workers]
    except subprocess.TimeoutExpired:
        for worker in workers:
            worker.kill()
            worker.wait()
        pytest.fail("workers timed out:\n" + "\n".join(_tail(p) for p in logs))
    assert codes == [0, 0], "\n".join(_tail(p) for p in logs)

    students = [np.load(tmp_path / f"student_{i}.npz") for i in range(2)]
    names = students[0].files
    for name in names:
        np.testing.assert_array_equal(students[0][name], students[1][name])
    worker_logs = [json.loads((tmp_path / f"logs_{i}.json").read_text())
                   for i in range(2)]
    assert worker_logs[0] == worker_logs[1]

    # The same steps on one device, from the same initial weights.
    import multiworker_worker as setup

    initial = np.load(tmp_path / "initial.npz")
    reference = setup.tiny_distiller()
    reference.set_weights([initial[f"arr_{i}"] for i in range(len(initial.files))])
    reference.compile(setup.optimizer(), run_eagerly=True)
    history = reference.fit(setup.dataset(), shuffle=False, verbose=0).history
    assert worker_logs[0]["steps"] == setup.STEPS
    assert worker_logs[0]["fit_loss"] == pytest.approx(history["loss"][-1],
                                                       rel=1e-4)
    expected = [v.numpy() for v in reference.student.weights]
    assert len(expected) == len(names)
    for i, value in enumerate(expected):
        np.testing.assert_allclose(students[0][f"arr_{i}"], value, atol=1e-5)
    evaluation = reference.evaluate(setup.dataset(), verbose=0, return_dict=True)
    assert worker_logs[0]["evaluate_loss"] == pytest.approx(evaluation["loss"],
                                                            rel=1e-4)


if __name__ == "__main__":
    if sys.argv[1:2] != ["mirrored"] or len(sys.argv) != 3:
        sys.exit("usage: python tests/test_distribute.py mirrored REPORT.json")
    mirrored_report(sys.argv[2])
