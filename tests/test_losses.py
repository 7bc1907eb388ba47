"""Losses against hand-written numpy (loops where it keeps them independent)."""

import numpy as np
import pytest
import tensorflow as tf

from tinybert_tf.losses import (
    AttentionLoss,
    EmbeddingLoss,
    HiddenStateLoss,
    PredictionLoss,
    RegressionLoss,
)

MASK_VALUE = -10000.0
BATCH, HEADS, LENGTH, WIDTH, CLASSES = 3, 2, 5, 4, 3
# Row 0 unpadded, rows 1 and 2 padded.
PADDING_MASK = np.array(
    [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype="int32"
)


def attention_scores(rng, padding_mask, mask_value=MASK_VALUE):
    """[batch, heads, T, T] scores with `mask_value` added at padded keys."""
    scores = rng.normal(size=(BATCH, HEADS, LENGTH, LENGTH)).astype("float32")
    padding = 1.0 - padding_mask[:, None, None, :]
    return (scores + padding * mask_value).astype("float32")


def numpy_attention_official(student, teacher, threshold=-100.0):
    student = np.where(student <= threshold, 0.0, student)
    teacher = np.where(teacher <= threshold, 0.0, teacher)
    return np.mean((student - teacher) ** 2)


def numpy_attention_exact(student, teacher, padding_mask):
    total, count = 0.0, 0
    for b in range(student.shape[0]):
        for h in range(student.shape[1]):
            for q in range(student.shape[2]):
                for k in range(student.shape[3]):
                    if padding_mask[b, q] and padding_mask[b, k]:
                        total += (float(student[b, h, q, k]) - teacher[b, h, q, k]) ** 2
                        count += 1
    return total / count


def numpy_hidden_exact(student, teacher, padding_mask):
    real = padding_mask.astype(bool)
    return np.mean((student[real] - teacher[real]) ** 2)


def numpy_log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def numpy_soft_cross_entropy(student_logits, teacher_logits, temperature):
    """Per-example -sum_c p_T(c) log p_S(c)."""
    teacher_probs = np.exp(numpy_log_softmax(teacher_logits / temperature))
    student_log_probs = numpy_log_softmax(student_logits / temperature)
    return -(teacher_probs * student_log_probs).sum(axis=-1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------- attention


def test_attention_official_matches_numpy(rng):
    student = attention_scores(rng, PADDING_MASK)
    teacher = attention_scores(rng, PADDING_MASK)
    loss = AttentionLoss()(student, teacher)
    assert loss.dtype == tf.float32 and loss.shape == ()
    np.testing.assert_allclose(
        loss.numpy(), numpy_attention_official(student, teacher), rtol=1e-5
    )


def test_attention_official_threshold_is_configurable(rng):
    student = rng.normal(size=(BATCH, HEADS, LENGTH, LENGTH)).astype("float32")
    teacher = rng.normal(size=(BATCH, HEADS, LENGTH, LENGTH)).astype("float32")
    loss = AttentionLoss(threshold=0.0)(student, teacher)
    np.testing.assert_allclose(
        loss.numpy(), numpy_attention_official(student, teacher, 0.0), rtol=1e-5
    )


def test_attention_exact_matches_numpy(rng):
    student = attention_scores(rng, PADDING_MASK)
    teacher = attention_scores(rng, PADDING_MASK)
    loss = AttentionLoss(mode="exact")(student, teacher, padding_mask=PADDING_MASK)
    assert loss.dtype == tf.float32 and loss.shape == ()
    np.testing.assert_allclose(
        loss.numpy(), numpy_attention_exact(student, teacher, PADDING_MASK), rtol=1e-5
    )


def test_attention_modes_differ_on_padded_batch_agree_unpadded(rng):
    student = attention_scores(rng, PADDING_MASK)
    teacher = attention_scores(rng, PADDING_MASK)
    official = AttentionLoss()(student, teacher).numpy()
    exact = AttentionLoss(mode="exact")(student, teacher, PADDING_MASK).numpy()
    assert abs(official - exact) > 1e-3 * exact

    no_padding = np.ones_like(PADDING_MASK)
    student = attention_scores(rng, no_padding)
    teacher = attention_scores(rng, no_padding)
    official = AttentionLoss()(student, teacher).numpy()
    exact = AttentionLoss(mode="exact")(student, teacher, no_padding).numpy()
    np.testing.assert_allclose(official, exact, rtol=1e-6)
    np.testing.assert_allclose(exact, np.mean((student - teacher) ** 2), rtol=1e-5)


def test_attention_exact_ignores_mask_value_official_does_not(rng):
    clean_student = attention_scores(rng, PADDING_MASK, mask_value=0.0)
    clean_teacher = attention_scores(rng, PADDING_MASK, mask_value=0.0)
    padding = (1.0 - PADDING_MASK[:, None, None, :]).astype("float32")
    exact = AttentionLoss(mode="exact")
    official = AttentionLoss()
    results = {}
    for mask_value in (-10000.0, -30.0):
        # Student and teacher use different mask values: only the exact mode
        # must be blind to them.
        student = clean_student + padding * mask_value
        teacher = clean_teacher + padding * MASK_VALUE
        results[mask_value] = (
            exact(student, teacher, PADDING_MASK).numpy(),
            official(student, teacher).numpy(),
        )
    np.testing.assert_allclose(results[-10000.0][0], results[-30.0][0], rtol=1e-6)
    assert abs(results[-10000.0][1] - results[-30.0][1]) > 1.0


def test_attention_exact_needs_padding_mask(rng):
    scores = attention_scores(rng, PADDING_MASK)
    with pytest.raises(ValueError, match="padding_mask"):
        AttentionLoss(mode="exact")(scores, scores)
    with pytest.raises(ValueError, match="padding_mask"):
        AttentionLoss(mode="exact")(scores, scores, padding_mask=PADDING_MASK[:, :3])


def test_attention_shape_errors(rng):
    student = np.zeros((BATCH, 2, LENGTH, LENGTH), "float32")
    teacher = np.zeros((BATCH, 3, LENGTH, LENGTH), "float32")
    with pytest.raises(ValueError, match="same number of attention heads"):
        AttentionLoss()(student, teacher)
    with pytest.raises(ValueError, match="shapes differ"):
        AttentionLoss()(student, np.zeros((BATCH, 2, LENGTH + 1, LENGTH + 1)))
    with pytest.raises(ValueError, match=r"\[batch, heads, T, T\]"):
        AttentionLoss()(student[:, 0], teacher[:, 0])
    with pytest.raises(ValueError, match="mode"):
        AttentionLoss(mode="paper")


def test_attention_gradient_reaches_student_only_on_kept_entries(rng):
    student_np = attention_scores(rng, PADDING_MASK)
    teacher_np = attention_scores(rng, PADDING_MASK)
    student = tf.Variable(student_np)
    both_real = PADDING_MASK[:, None, :, None] * PADDING_MASK[:, None, None, :] > 0
    for mode, keep in [("official", student_np > -100.0), ("exact", both_real)]:
        with tf.GradientTape() as tape:
            loss = AttentionLoss(mode=mode)(student, teacher_np, PADDING_MASK)
        gradient = tape.gradient(loss, student).numpy()
        keep = np.broadcast_to(keep, student_np.shape)
        teacher_kept = np.where(teacher_np <= -100.0, 0.0, teacher_np)
        # Official mode averages over every entry, exact mode over kept ones.
        count = keep.size if mode == "official" else keep.sum()
        expected = np.where(keep, 2.0 * (student_np - teacher_kept) / count, 0.0)
        np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-7)


# -------------------------------------------------------------- hidden states


@pytest.mark.parametrize("loss_class", [HiddenStateLoss, EmbeddingLoss])
def test_hidden_official_and_exact_match_numpy(rng, loss_class):
    student = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    teacher = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    official = loss_class()(student, teacher)
    exact = loss_class(mode="exact")(student, teacher, padding_mask=PADDING_MASK)
    assert official.dtype == tf.float32 and exact.dtype == tf.float32
    np.testing.assert_allclose(
        official.numpy(), np.mean((student - teacher) ** 2), rtol=1e-5
    )
    np.testing.assert_allclose(
        exact.numpy(), numpy_hidden_exact(student, teacher, PADDING_MASK), rtol=1e-5
    )
    assert abs(official.numpy() - exact.numpy()) > 1e-3


def test_hidden_modes_agree_unpadded(rng):
    student = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    teacher = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    no_padding = np.ones((BATCH, LENGTH), "int32")
    np.testing.assert_allclose(
        HiddenStateLoss()(student, teacher).numpy(),
        HiddenStateLoss(mode="exact")(student, teacher, no_padding).numpy(),
        rtol=1e-6,
    )


def test_hidden_gradient_is_zero_at_padding_in_exact_mode(rng):
    student = tf.Variable(rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32"))
    teacher = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    with tf.GradientTape() as tape:
        loss = HiddenStateLoss(mode="exact")(student, teacher, PADDING_MASK)
    gradient = tape.gradient(loss, student).numpy()
    real = PADDING_MASK.astype(bool)
    count = real.sum() * WIDTH
    np.testing.assert_allclose(
        gradient[real], 2.0 * (student.numpy()[real] - teacher[real]) / count, rtol=1e-5
    )
    assert np.all(gradient[~real] == 0.0)


def test_hidden_errors(rng):
    hidden = np.zeros((BATCH, LENGTH, WIDTH), "float32")
    with pytest.raises(ValueError, match="shapes differ"):
        HiddenStateLoss()(hidden, np.zeros((BATCH, LENGTH, WIDTH + 1)))
    with pytest.raises(ValueError, match=r"\[batch, T, d\]"):
        HiddenStateLoss()(hidden[0], hidden[0])
    with pytest.raises(ValueError, match="EmbeddingLoss.*padding_mask"):
        EmbeddingLoss(mode="exact")(hidden, hidden)


# ----------------------------------------------------------------- prediction


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_prediction_loss_matches_numpy(rng, temperature):
    student = rng.normal(size=(BATCH, CLASSES)).astype("float32") * 3
    teacher = rng.normal(size=(BATCH, CLASSES)).astype("float32") * 3
    per_example = numpy_soft_cross_entropy(student, teacher, temperature)
    official = PredictionLoss(temperature)(student, teacher)
    summed = PredictionLoss(temperature, reduction="per_example")(student, teacher)
    assert official.dtype == tf.float32 and official.shape == ()
    # Official: (-targets_prob * student_likelihood).mean() over batch x classes.
    np.testing.assert_allclose(
        official.numpy(), per_example.mean() / CLASSES, rtol=1e-5
    )
    np.testing.assert_allclose(summed.numpy(), per_example.mean(), rtol=1e-5)


def test_prediction_loss_temperature_changes_value(rng):
    student = rng.normal(size=(BATCH, CLASSES)).astype("float32") * 3
    teacher = rng.normal(size=(BATCH, CLASSES)).astype("float32") * 3
    assert abs(
        PredictionLoss(1.0)(student, teacher).numpy()
        - PredictionLoss(4.0)(student, teacher).numpy()
    ) > 1e-3


def test_prediction_loss_is_minimised_by_teacher_logits(rng):
    teacher = rng.normal(size=(BATCH, CLASSES)).astype("float32")
    student = tf.Variable(teacher)
    with tf.GradientTape() as tape:
        loss = PredictionLoss()(student, teacher)
    np.testing.assert_allclose(tape.gradient(loss, student).numpy(), 0.0, atol=1e-6)


def test_prediction_loss_errors():
    with pytest.raises(ValueError, match="temperature"):
        PredictionLoss(temperature=0.0)
    with pytest.raises(ValueError, match="reduction"):
        PredictionLoss(reduction="sum")
    with pytest.raises(ValueError, match="shapes differ"):
        PredictionLoss()(np.zeros((2, 3)), np.zeros((2, 2)))


# ----------------------------------------------------------------- regression


def test_regression_loss_matches_numpy(rng):
    predictions = rng.normal(size=(BATCH, 1)).astype("float32")
    labels = rng.uniform(0, 5, size=(BATCH,)).astype("float32")
    expected = np.mean((predictions[:, 0] - labels) ** 2)
    loss = RegressionLoss()
    np.testing.assert_allclose(loss(predictions, labels).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(
        loss(predictions[:, 0], labels[:, None]).numpy(), expected, rtol=1e-6
    )


def test_regression_loss_errors():
    with pytest.raises(ValueError, match=r"\[batch, 1\]"):
        RegressionLoss()(np.zeros((2, 3)), np.zeros((2,)))
    with pytest.raises(ValueError, match="shapes differ"):
        RegressionLoss()(np.zeros((2,)), np.zeros((3,)))


# ------------------------------------------------------------ all the losses


def test_get_config_round_trip():
    for loss in [
        AttentionLoss(mode="exact", threshold=-50.0),
        HiddenStateLoss(mode="exact"),
        EmbeddingLoss(),
        PredictionLoss(temperature=2.0, reduction="per_example"),
        RegressionLoss(),
    ]:
        config = loss.get_config()
        rebuilt = type(loss)(**config)
        assert rebuilt.get_config() == config
        assert type(loss).from_config(config).get_config() == config
    assert AttentionLoss().get_config() == {"mode": "official", "threshold": -100.0}


def test_bfloat16_inputs_are_cast_and_gradients_flow(rng):
    """Values equal float32 numpy on the bf16-rounded inputs; result is float32."""
    scores_s = tf.cast(attention_scores(rng, PADDING_MASK), tf.bfloat16)
    scores_t = tf.cast(attention_scores(rng, PADDING_MASK), tf.bfloat16)
    hidden_s = tf.cast(rng.normal(size=(BATCH, LENGTH, WIDTH)), tf.bfloat16)
    hidden_t = tf.cast(rng.normal(size=(BATCH, LENGTH, WIDTH)), tf.bfloat16)
    logits_s = tf.cast(rng.normal(size=(BATCH, CLASSES)), tf.bfloat16)
    logits_t = tf.cast(rng.normal(size=(BATCH, CLASSES)), tf.bfloat16)

    def f32(x):
        return tf.cast(x, tf.float32).numpy()

    cases = [
        (
            lambda s: AttentionLoss()(s, scores_t),
            scores_s,
            numpy_attention_official(f32(scores_s), f32(scores_t)),
        ),
        (
            lambda s: AttentionLoss(mode="exact")(s, scores_t, PADDING_MASK),
            scores_s,
            numpy_attention_exact(f32(scores_s), f32(scores_t), PADDING_MASK),
        ),
        (
            lambda s: HiddenStateLoss(mode="exact")(s, hidden_t, PADDING_MASK),
            hidden_s,
            numpy_hidden_exact(f32(hidden_s), f32(hidden_t), PADDING_MASK),
        ),
        (
            lambda s: PredictionLoss()(s, logits_t),
            logits_s,
            numpy_soft_cross_entropy(f32(logits_s), f32(logits_t), 1.0).mean()
            / CLASSES,
        ),
        (
            lambda s: RegressionLoss()(s, logits_t[:, 0]),
            logits_s[:, :1],
            np.mean((f32(logits_s)[:, 0] - f32(logits_t)[:, 0]) ** 2),
        ),
    ]
    for loss_fn, student, expected in cases:
        student = tf.Variable(student)
        with tf.GradientTape() as tape:
            loss = loss_fn(student)
        assert loss.dtype == tf.float32
        np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
        gradient = tape.gradient(loss, student)
        assert gradient is not None and gradient.dtype == tf.bfloat16
        assert np.any(f32(gradient) != 0.0)


def test_losses_trace_with_unknown_shapes_and_run_under_distribution(rng):
    student = attention_scores(rng, PADDING_MASK)
    teacher = attention_scores(rng, PADDING_MASK)
    hidden_s = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    hidden_t = rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32")
    scores_spec = tf.TensorSpec([None, None, None, None], tf.float32)
    hidden_spec = tf.TensorSpec([None, None, None], tf.float32)
    mask_spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[scores_spec] * 2 + [hidden_spec] * 2 + [mask_spec])
    def total(scores_s, scores_t, hid_s, hid_t, padding_mask):
        return (
            AttentionLoss(mode="exact")(scores_s, scores_t, padding_mask)
            + AttentionLoss()(scores_s, scores_t)
            + HiddenStateLoss(mode="exact")(hid_s, hid_t, padding_mask)
        )

    expected = (
        numpy_attention_exact(student, teacher, PADDING_MASK)
        + numpy_attention_official(student, teacher)
        + numpy_hidden_exact(hidden_s, hidden_t, PADDING_MASK)
    )
    inputs = (student, teacher, hidden_s, hidden_t, PADDING_MASK)
    np.testing.assert_allclose(total(*inputs).numpy(), expected, rtol=1e-5)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    per_replica = strategy.run(total, args=tuple(tf.constant(x) for x in inputs))
    result = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5)


def test_prediction_loss_plugs_into_keras_distiller():
    """Our losses are keras.distillation.DistillationLoss subclasses: Keras'
    own Distiller trains with one and reports the same value."""
    import keras

    from tinybert_tf.backbone import BertBackbone, dummy_inputs
    from tinybert_tf.config import BertConfig
    from tinybert_tf.heads import BertClassifier

    keras.utils.set_random_seed(0)
    config = BertConfig(vocab_size=20, hidden_size=8, num_layers=1,
                        num_heads=2, intermediate_size=16, hidden_dropout=0.0,
                        attention_dropout=0.0)
    teacher, student = (BertClassifier(BertBackbone(config), 3)
                        for _ in range(2))
    inputs = {k: np.asarray(v).repeat(4, 0)
              for k, v in dummy_inputs(1, 6).items()}
    teacher(inputs), student(inputs)
    loss = PredictionLoss()
    assert isinstance(loss, keras.distillation.DistillationLoss)
    expected = float(loss(student(inputs), teacher(inputs)))
    distiller = keras.distillation.Distiller(
        teacher, student, distillation_losses=loss, student_loss_weight=0.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss="sparse_categorical_crossentropy")
    labels = np.zeros(4, "int32")
    logs = distiller.evaluate(inputs, labels, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    history = distiller.fit(inputs, labels, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
