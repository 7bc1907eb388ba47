"""AdamW / BertAdam and global / per-tensor clipping against hand computations."""

import keras
import numpy as np
import pytest

from tinybert_tf.optimizers import BertAdam, make_optimizer

LR, WD, EPS, B1, B2 = 0.1, 0.01, 1e-6, 0.9, 0.999
GRADIENTS = [[np.array([3.0, 4.0]), np.array([0.5])],      # norms 5, 0.5
             [np.array([-1.0, 0.2]), np.array([2.0])]]


def variables():
    return [keras.Variable(np.array([1.0, -2.0]), name="kernel"),
            keras.Variable(np.array([0.5]), name="bias")]


def run(optimizer):
    weights = variables()
    for step in GRADIENTS:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step], weights)
    return [np.asarray(w.numpy()) for w in weights]


def clip(gradients, mode, norm=1.0):
    if mode == "per_tensor":
        return [g * min(1.0, norm / np.linalg.norm(g)) for g in gradients]
    total = np.sqrt(sum(np.sum(g ** 2) for g in gradients))
    return [g * min(1.0, norm / total) for g in gradients]


def bertadam_by_hand(mode):
    """The official BertAdam.step: clip, moments, no bias correction,
    lr * (m / (sqrt(v) + eps) + wd * p), no decay on biases."""
    params = [np.array([1.0, -2.0]), np.array([0.5])]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for step in GRADIENTS:
        for i, g in enumerate(clip(step, mode)):
            m[i] = B1 * m[i] + (1 - B1) * g
            v[i] = B2 * v[i] + (1 - B2) * g * g
            update = m[i] / (np.sqrt(v[i]) + EPS)
            if i == 0:  # the kernel; the bias is not decayed
                update = update + WD * params[i]
            params[i] = params[i] - LR * update
    return params


def adamw_by_hand(mode):
    params = [np.array([1.0, -2.0]), np.array([0.5])]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, step in enumerate(GRADIENTS, start=1):
        for i, g in enumerate(clip(step, mode)):
            if i == 0:
                params[i] = params[i] - LR * WD * params[i]
            m[i] = B1 * m[i] + (1 - B1) * g
            v[i] = B2 * v[i] + (1 - B2) * g * g
            alpha = LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)
            params[i] = params[i] - alpha * m[i] / (np.sqrt(v[i]) + EPS)
    return params


@pytest.mark.parametrize("mode", ["global", "per_tensor"])
def test_bertadam_equals_the_official_step(mode):
    got = run(make_optimizer(LR, "bertadam", WD, clip_norm=1.0, clip_mode=mode))
    for ours, expected in zip(got, bertadam_by_hand(mode)):
        np.testing.assert_allclose(ours, expected, rtol=1e-5)


@pytest.mark.parametrize("mode", ["global", "per_tensor"])
def test_adamw_with_either_clipping(mode):
    got = run(make_optimizer(LR, "adamw", WD, clip_norm=1.0, clip_mode=mode))
    for ours, expected in zip(got, adamw_by_hand(mode)):
        np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_clip_modes_differ():
    """Per-tensor clipping leaves the small bias gradient alone; global
    clipping scales it with the kernel's."""
    assert not np.allclose(bertadam_by_hand("global")[1],
                           bertadam_by_hand("per_tensor")[1])


def test_bertadam_round_trips_its_config():
    optimizer = BertAdam(learning_rate=0.2, epsilon=1e-4, clipnorm=1.0)
    copy = BertAdam.from_config(optimizer.get_config())
    assert (copy.epsilon, copy.clipnorm) == (1e-4, 1.0)


@pytest.mark.parametrize("kwargs", [dict(name="sgd"), dict(clip_mode="norm")])
def test_unknown_choices_are_refused(kwargs):
    with pytest.raises(ValueError, match="Unknown"):
        make_optimizer(LR, **kwargs)
