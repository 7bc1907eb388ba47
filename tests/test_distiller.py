"""`Distiller` against a hand-written numpy TinyBERT loss, its stages and
projections, training behaviour, mixed precision and the user snippet."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tinybert_tf import checkpoint
from tinybert_tf.backbone import BertBackbone
from tinybert_tf.config import BertConfig
from tinybert_tf.distiller import Distiller, LossWeights
from tinybert_tf.heads import BertClassifier
from tinybert_tf.layer_mapping import LayerMapping
from tinybert_tf.optimizers import make_optimizer
from tinybert_tf.schedules import WarmupLinearDecay

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(45)]
SMALL = dict(vocab_size=len(VOCAB), num_heads=2, intermediate_size=16,
             hidden_dropout=0.0, attention_dropout=0.0)
TEACHER = BertConfig(hidden_size=16, num_layers=4, **SMALL)
STUDENT = BertConfig(hidden_size=8, num_layers=2, **SMALL)
K = TEACHER.num_layers // STUDENT.num_layers  # uniform mapping step


def make_inputs(batch=4, length=8, seed=0):
    """Inputs whose rows 1 and 3 are padded."""
    rng = np.random.default_rng(seed)
    lengths = np.array([length, 5, length, 3])[:batch]
    padding_mask = (np.arange(length)[None] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(5, len(VOCAB), (batch, length)).astype("int32")
    segment_ids = (np.arange(length)[None] >= length // 2).astype("int32")
    return {"token_ids": token_ids * padding_mask,
            "segment_ids": np.repeat(segment_ids, batch, 0) * padding_mask,
            "padding_mask": padding_mask}


def backbones(seed=0):
    keras.utils.set_random_seed(seed)
    return BertBackbone(TEACHER), BertBackbone(STUDENT)


def classifiers(num_labels=3, seed=0):
    keras.utils.set_random_seed(seed)
    return (BertClassifier(BertBackbone(TEACHER), num_labels, head="tanh_relu"),
            BertClassifier(BertBackbone(STUDENT), num_labels, head="tanh_relu"))


def outputs(distiller, inputs):
    """Student and teacher outputs as float64 numpy structures."""
    def run(model):
        out = model.features(inputs, training=False)
        return tf.nest.map_structure(lambda x: np.asarray(x, np.float64), out)
    return run(distiller.student), run(distiller.teacher)


def projection_params(distiller):
    return ([np.asarray(d.kernel, np.float64) for d in distiller.projections],
            [np.asarray(d.bias, np.float64) for d in distiller.projections])


# ------------------------------------------------ the official loss in numpy

def mse(a, b):
    return float(np.mean((a - b) ** 2))


def zero_masked(scores, threshold=-100.0):
    return np.where(scores <= threshold, 0.0, scores)


def numpy_intermediate(student, teacher, kernels, biases, weights=LossWeights()):
    """Official TinyBERT: student layer m <-> teacher layer m*K; attention
    scores <= -100 zeroed; one shared projection (or one per hidden state)."""
    def project(m, hidden):
        i = 0 if len(kernels) == 1 else m
        return hidden @ kernels[i] + biases[i]

    s_hidden, t_hidden = student["hidden_states"], teacher["hidden_states"]
    s_scores, t_scores = student["attention_scores"], teacher["attention_scores"]
    losses = {"embedding_loss": mse(project(0, s_hidden[0]), t_hidden[0])}
    for m in range(1, STUDENT.num_layers + 1):
        losses[f"attention_loss_{m}"] = mse(zero_masked(s_scores[m - 1]),
                                            zero_masked(t_scores[m * K - 1]))
        losses[f"hidden_loss_{m}"] = mse(project(m, s_hidden[m]),
                                         t_hidden[m * K])
    for name in ("attention", "hidden"):
        losses[f"{name}_loss"] = sum(
            weights.layers.get(m, 1.0) * losses[f"{name}_loss_{m}"]
            for m in range(1, STUDENT.num_layers + 1))
    losses["loss"] = (weights.embedding * losses["embedding_loss"]
                      + weights.attention * losses["attention_loss"]
                      + weights.hidden * losses["hidden_loss"])
    return losses


def numpy_soft_cross_entropy(student_logits, teacher_logits):
    """Official: mean over batch AND classes of -p_T * log p_S."""
    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return float(np.mean(-softmax(teacher_logits) * np.log(softmax(student_logits))))


def assert_losses_equal(got, expected, rel=1e-5):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert float(got[name]) == pytest.approx(value, rel=rel, abs=1e-7), name


def compute(distiller, inputs, labels=None):
    student, teacher = (m.features(inputs, training=False)
                        for m in (distiller.student, distiller.teacher))
    return distiller.compute_losses(student, teacher, inputs["padding_mask"],
                                    labels)


# ------------------------------------------------ loss values

def test_total_loss_equals_numpy_official_loss():
    distiller = Distiller(*backbones())
    inputs = make_inputs()
    student, teacher = outputs(distiller, inputs)
    # The padded keys carry the -10000 mask, which the loss must zero.
    assert (teacher["attention_scores"][0] < -100).any()
    expected = numpy_intermediate(student, teacher, *projection_params(distiller))
    got = compute(distiller, inputs)
    assert_losses_equal(got, expected)
    assert got["loss"].dtype == "float32" and got["loss"].shape == ()


def test_component_and_layer_weights_scale_the_loss():
    weights = LossWeights(embedding=0.5, attention=3.0, hidden=0.25,
                          layers={1: 2.0})
    distiller = Distiller(*backbones(), loss_weights=weights)
    inputs = make_inputs()
    student, teacher = outputs(distiller, inputs)
    params = projection_params(distiller)
    expected = numpy_intermediate(student, teacher, *params, weights)
    assert_losses_equal(compute(distiller, inputs), expected)
    unweighted = numpy_intermediate(student, teacher, *params)
    assert expected["loss"] != pytest.approx(unweighted["loss"], rel=1e-3)
    # Per-layer values are reported unweighted.
    assert expected["attention_loss_1"] == unweighted["attention_loss_1"]


def test_per_layer_projection_has_one_projection_per_hidden_state():
    distiller = Distiller(*backbones(), projection="per_layer")
    assert len(distiller.projections) == STUDENT.num_layers + 1
    kernels, biases = projection_params(distiller)
    assert not np.allclose(kernels[0], kernels[1])  # independent initialisation
    inputs = make_inputs()
    expected = numpy_intermediate(*outputs(distiller, inputs), kernels, biases)
    assert_losses_equal(compute(distiller, inputs), expected)
    tensors = distiller.projection_weights()
    assert sorted(tensors) == sorted(
        f"fit_denses.{m}.{p}" for m in range(3) for p in ("weight", "bias"))
    np.testing.assert_array_equal(tensors["fit_denses.2.weight"], kernels[2].T)


def test_shared_projection_weights_use_official_names():
    distiller = Distiller(*backbones())
    tensors = distiller.projection_weights()
    assert sorted(tensors) == ["fit_dense.bias", "fit_dense.weight"]
    # PyTorch nn.Linear layout [out, in] = [teacher width, student width].
    assert tensors["fit_dense.weight"].shape == (16, 8)


def test_custom_mapping_pairs_the_chosen_layers():
    mapping = LayerMapping(2, 4, strategy="custom", custom=[1, 3])
    distiller = Distiller(*backbones(), mapping=mapping)
    inputs = make_inputs()
    student, teacher = outputs(distiller, inputs)
    got = compute(distiller, inputs)
    for m, t in ((1, 1), (2, 3)):
        assert float(got[f"attention_loss_{m}"]) == pytest.approx(mse(
            zero_masked(student["attention_scores"][m - 1]),
            zero_masked(teacher["attention_scores"][t - 1])), rel=1e-5)


# ------------------------------------------------ stages

def test_intermediate_stage_has_no_prediction_loss():
    distiller = Distiller(*classifiers(), stage="intermediate")
    inputs = make_inputs()
    expected = numpy_intermediate(*outputs(distiller, inputs),
                                  *projection_params(distiller))
    assert_losses_equal(compute(distiller, inputs), expected)


def test_prediction_stage_is_soft_cross_entropy():
    distiller = Distiller(*classifiers(), stage="prediction")
    inputs = make_inputs()
    student, teacher = outputs(distiller, inputs)
    value = numpy_soft_cross_entropy(student["logits"], teacher["logits"])
    assert_losses_equal(compute(distiller, inputs),
                        {"prediction_loss": value, "loss": value})


def test_all_stage_adds_the_prediction_loss():
    weights = LossWeights(prediction=2.0)
    distiller = Distiller(*classifiers(), stage="all", loss_weights=weights)
    inputs = make_inputs()
    student, teacher = outputs(distiller, inputs)
    expected = numpy_intermediate(student, teacher, *projection_params(distiller))
    expected["prediction_loss"] = numpy_soft_cross_entropy(student["logits"],
                                                           teacher["logits"])
    expected["loss"] += 2.0 * expected["prediction_loss"]
    assert_losses_equal(compute(distiller, inputs), expected)


def test_regression_prediction_learns_the_teacher_outputs():
    """The paper's prediction-layer distillation, also for regression (the
    official code's gold-label MSE is its bug #128)."""
    distiller = Distiller(*classifiers(num_labels=1), stage="prediction")
    inputs = make_inputs()
    labels = np.array([0.5, 1.0, -2.0, 3.0], "float32")
    student, teacher = outputs(distiller, inputs)
    value = mse(student["logits"][:, 0], teacher["logits"][:, 0])
    assert_losses_equal(compute(distiller, inputs, labels),
                        {"prediction_loss": value, "loss": value})
    assert_losses_equal(compute(distiller, inputs),
                        {"prediction_loss": value, "loss": value})


def test_regression_prediction_uses_gold_labels():
    distiller = Distiller(*classifiers(num_labels=1), stage="prediction",
                          regression_target="labels")
    inputs = make_inputs()
    labels = np.array([0.5, 1.0, -2.0, 3.0], "float32")
    student, _ = outputs(distiller, inputs)
    value = mse(student["logits"][:, 0], labels)
    assert_losses_equal(compute(distiller, inputs, labels),
                        {"prediction_loss": value, "loss": value})
    with pytest.raises(ValueError, match="gold labels"):
        compute(distiller, inputs)


def test_prediction_target_labels_is_cross_entropy_on_the_gold_labels():
    """The paper's ablation without L_pred: the prediction layer learns the
    labels, not the teacher."""
    distiller = Distiller(*classifiers(), stage="prediction",
                          prediction_target="labels")
    inputs = make_inputs()
    labels = np.array([0, 2, 1, 2])
    student, _ = outputs(distiller, inputs)
    logits = np.asarray(student["logits"], "float64")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    value = -log_p[np.arange(4), labels].mean()
    assert_losses_equal(compute(distiller, inputs, labels),
                        {"prediction_loss": value, "loss": value})
    with pytest.raises(ValueError, match="gold labels"):
        compute(distiller, inputs)


def test_prediction_stage_trains_the_classifier_only_from_logits():
    teacher, student = classifiers()
    distiller = Distiller(teacher, student, stage="prediction")
    names = {v.path for v in distiller.train_variables}
    assert any("/classifier/" in n for n in names)
    assert not any("fit_dense" in n for n in names)
    intermediate = Distiller(teacher, student, stage="intermediate")
    names = {v.path for v in intermediate.train_variables}
    assert not any("/classifier/" in n or "/pooler/" in n for n in names)
    assert any("fit_dense" in n for n in names)


# ------------------------------------------------ bad configurations

@pytest.mark.parametrize("change, message", [
    (dict(vocab_size=len(VOCAB) + 1), "vocab_size"),
    (dict(num_heads=4), "attention heads"),
])
def test_mismatched_student_raises(change, message):
    teacher = BertBackbone(TEACHER)
    student = BertBackbone(STUDENT.replace(**change))
    with pytest.raises(ValueError, match=message):
        Distiller(teacher, student)


def test_bad_arguments_raise():
    teacher, student = backbones()
    with pytest.raises(ValueError, match="stage"):
        Distiller(teacher, student, stage="final")
    with pytest.raises(ValueError, match="projection"):
        Distiller(teacher, student, projection="none")
    with pytest.raises(ValueError, match="classifier"):
        Distiller(teacher, student, stage="prediction")
    with pytest.raises(ValueError, match="mapping"):
        Distiller(teacher, student, mapping=LayerMapping(2, 6))
    with pytest.raises(ValueError, match="labels"):
        Distiller(*[BertClassifier(BertBackbone(c), n) for c, n in ((TEACHER, 3), (STUDENT, 2))],
                  stage="prediction")


def test_prediction_stage_allows_different_head_counts():
    teacher = BertClassifier(BertBackbone(TEACHER), 3)
    student = BertClassifier(BertBackbone(STUDENT.replace(num_heads=4)), 3)
    distiller = Distiller(teacher, student, stage="prediction")
    inputs = make_inputs()
    student_out, teacher_out = outputs(distiller, inputs)
    expected = numpy_soft_cross_entropy(student_out["logits"],
                                        teacher_out["logits"])
    assert_losses_equal(compute(distiller, inputs),
                        {"prediction_loss": expected, "loss": expected})
    distiller.compile(optimizer="sgd")
    logs = distiller.fit(inputs, epochs=1, batch_size=len(inputs["token_ids"]),
                         verbose=0).history
    assert np.isfinite(logs["prediction_loss"][0])


# ------------------------------------------------ training

def dataset(count=8, batch=4, seed=0):
    return tf.data.Dataset.from_tensor_slices(
        make_inputs(count, seed=seed) if count <= 4 else {
            k: np.concatenate([make_inputs(4, seed=seed + i)[k]
                               for i in range(count // 4)])
            for k in make_inputs()}).batch(batch)


def test_fit_logs_equal_numpy_losses_per_component_and_layer():
    """One step at learning rate 0 (graph mode): the logged losses, training
    and validation, are the numpy losses of that batch."""
    distiller = Distiller(*backbones())
    inputs = make_inputs()
    expected = numpy_intermediate(*outputs(distiller, inputs),
                                  *projection_params(distiller))
    distiller.compile(keras.optimizers.SGD(0.0))
    data = tf.data.Dataset.from_tensor_slices(inputs).batch(4)
    history = distiller.fit(data, validation_data=data, shuffle=False,
                            verbose=0).history
    assert sorted(history) == sorted(list(expected) + [f"val_{n}" for n in expected])
    for name, value in expected.items():
        assert history[name][0] == pytest.approx(value, rel=1e-5), name
        assert history[f"val_{name}"][0] == pytest.approx(value, rel=1e-5), name


def test_fit_trains_student_and_projections_never_teacher():
    distiller = Distiller(*backbones())
    teacher_before = [w.numpy() for w in distiller.teacher.weights]
    student_before = {v.path: v.numpy() for v in distiller.student.weights}
    projection_before = distiller.projections[0].kernel.numpy()
    distiller.compile(keras.optimizers.Adam(1e-2), run_eagerly=True)
    distiller.fit(dataset(), epochs=1, shuffle=False, verbose=0)
    for before, after in zip(teacher_before, distiller.teacher.weights):
        np.testing.assert_array_equal(before, after.numpy())
    assert not distiller.teacher.trainable_weights
    trained = {v.path for v in distiller.train_variables}
    for variable in distiller.student.weights:
        moved = not np.array_equal(student_before[variable.path], variable.numpy())
        # The pooler gets no gradient from the intermediate losses.
        assert moved == (variable.path in trained), variable.path
    assert not np.array_equal(projection_before,
                              distiller.projections[0].kernel.numpy())


def test_global_clipnorm_sees_the_dense_embedding_gradient():
    """Keras measures an IndexedSlices gradient's norm over its rows, each
    repeated token id apart; the Distiller densifies first. With SGD and an
    active global clip the step must be exactly lr * clip * g / ||g||, with
    g the dense gradient."""
    distiller = Distiller(*backbones())
    inputs = make_inputs()
    variables = distiller.train_variables
    with tf.GradientTape() as tape:
        loss = compute(distiller, inputs)["loss"]
    gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
    norm = np.sqrt(sum(float(tf.reduce_sum(g ** 2)) for g in gradients))
    learning_rate, clip = 0.1, 1e-3
    assert norm > clip
    before = [v.numpy() for v in variables]
    distiller.compile(keras.optimizers.SGD(learning_rate, global_clipnorm=clip),
                      run_eagerly=True)
    distiller.fit(tf.data.Dataset.from_tensor_slices(inputs).batch(4),
                  shuffle=False, verbose=0)
    for b, v, g in zip(before, variables, gradients):
        np.testing.assert_allclose(v.numpy(), b - learning_rate * clip / norm
                                   * g.numpy(), atol=1e-8, rtol=1e-5)


def test_fit_with_keras_callbacks(tmp_path):
    distiller = Distiller(*backbones())
    distiller.compile(keras.optimizers.Adam(1e-3), run_eagerly=True)
    batch_keys = []
    weights_file = str(tmp_path / "distiller.weights.h5")
    callbacks = [
        keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: batch_keys.append(sorted(logs))),
        keras.callbacks.ModelCheckpoint(weights_file, save_weights_only=True),
        # Keras cannot infer the direction of custom metric names: mode="min".
        keras.callbacks.EarlyStopping(monitor="val_hidden_loss_2", mode="min",
                                      patience=5),
    ]
    distiller.fit(dataset(), validation_data=dataset(4), epochs=2,
                  callbacks=callbacks, shuffle=False, verbose=0)
    assert len(batch_keys) == 4
    assert {"attention_loss_1", "hidden_loss_2", "loss"} <= set(batch_keys[0])
    restored = Distiller(*backbones(seed=1))
    restored.load_weights(weights_file)
    for a, b in zip(distiller.student.weights, restored.student.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_adamw_decays_kernels_but_not_biases_or_layer_norms():
    dense, norm = keras.layers.Dense(3), keras.layers.LayerNormalization()
    dense.build((None, 2))
    norm.build((None, 3))
    variables = [dense.kernel, dense.bias, norm.gamma, norm.beta]
    for v in variables[1:]:
        v.assign(np.full(v.shape, 0.5, "float32"))
    before = [v.numpy() for v in variables]
    optimizer = make_optimizer(0.1, weight_decay=0.5)
    # Zero gradients: Adam's update is 0, only weight decay moves anything.
    optimizer.apply([tf.zeros_like(v) for v in variables], variables)
    np.testing.assert_allclose(dense.kernel.numpy(), before[0] * (1 - 0.1 * 0.5),
                               rtol=1e-6)
    for b, v in zip(before[1:], variables[1:]):
        np.testing.assert_array_equal(v.numpy(), b)
    assert optimizer.global_clipnorm == 1.0


def test_warmup_linear_decay_rejects_bad_steps():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupLinearDecay(1e-3, total_steps=10, warmup_steps=11)
    with pytest.raises(ValueError, match="total_steps"):
        WarmupLinearDecay(1e-3, total_steps=0)


def test_user_snippet_end_to_end(tmp_path):
    """Configs -> Distiller -> make_optimizer(WarmupLinearDecay) -> fit on tf.data ->
    checkpoint.save with projections -> load_backbone + load_projections."""
    teacher = BertBackbone(TEACHER)
    student = BertBackbone(STUDENT)
    distiller = Distiller(teacher, student)
    total_steps = 4
    schedule = WarmupLinearDecay(1e-3, total_steps=total_steps, warmup_steps=1)
    distiller.compile(optimizer=make_optimizer(schedule))
    distiller.fit(dataset(8, batch=4), epochs=2, shuffle=False, verbose=0)
    assert int(distiller.optimizer.iterations) == total_steps
    assert float(distiller.optimizer.learning_rate) == 0.0  # decayed to 0

    directory = tmp_path / "student"
    checkpoint.save(student, directory, VOCAB,
                    extra_weights=distiller.projection_weights())
    reloaded = checkpoint.load_backbone(str(directory))
    for a, b in zip(student.weights, reloaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    inputs = make_inputs()
    np.testing.assert_allclose(reloaded(inputs)["sequence_output"],
                               student(inputs)["sequence_output"], atol=1e-6)

    again = Distiller(BertBackbone(TEACHER), reloaded)
    assert again.load_projections(checkpoint.read(str(directory)))
    np.testing.assert_array_equal(again.projections[0].kernel.numpy(),
                                  distiller.projections[0].kernel.numpy())
    np.testing.assert_array_equal(again.projections[0].bias.numpy(),
                                  distiller.projections[0].bias.numpy())
    # Per-layer projections are not found in a shared-projection checkpoint.
    per_layer = Distiller(BertBackbone(TEACHER), reloaded, projection="per_layer")
    assert not per_layer.load_projections(checkpoint.read(str(directory)))


# ------------------------------------------------ mixed precision

@pytest.fixture
def restore_policy():
    previous = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_mixed_bfloat16_losses_are_float32_and_close(restore_policy):
    keras.mixed_precision.set_global_policy("float32")
    reference = Distiller(*backbones())
    inputs = make_inputs()
    expected = {k: float(v) for k, v in compute(reference, inputs).items()}

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    distiller = Distiller(*backbones())
    distiller.set_weights(reference.get_weights())
    assert distiller.student.embeddings.compute_dtype == "bfloat16"
    assert distiller.projections[0].compute_dtype == "bfloat16"
    got = compute(distiller, inputs)
    for name, value in got.items():
        assert value.dtype == "float32"
        assert float(value) == pytest.approx(expected[name], rel=5e-2), name

    distiller.compile(keras.optimizers.Adam(1e-3), run_eagerly=True)
    history = distiller.fit(dataset(), epochs=2, shuffle=False,
                            verbose=0).history
    assert all(np.isfinite(v).all() for v in history.values())
    assert history["loss"][-1] < history["loss"][0]


def test_mixed_float16_uses_loss_scaling(restore_policy):
    keras.mixed_precision.set_global_policy("mixed_float16")
    distiller = Distiller(*backbones())
    distiller.compile(keras.optimizers.SGD(1e-2), run_eagerly=True)
    assert isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
    before = [v.numpy() for v in distiller.student.trainable_weights]
    history = distiller.fit(dataset(), epochs=1, shuffle=False,
                            verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert all(np.isfinite(v.numpy()).all()
               for v in distiller.student.trainable_weights)
    # Steps whose scaled gradients overflow are skipped, not applied.
    assert int(distiller.optimizer.iterations) <= 2
    moved = any(not np.array_equal(b, v.numpy()) for b, v in
                zip(before, distiller.student.trainable_weights))
    assert moved == (int(distiller.optimizer.iterations) > 0)


def test_custom_hidden_loss_without_mode():
    """A hidden-state loss of the user's own (no `.mode`) works; the
    embedding loss is then the official one, or the one given."""
    from tinybert_tf.losses import EmbeddingLoss

    def cosine_like(student, teacher, padding_mask=None):
        return tf.reduce_mean(tf.abs(student - teacher))

    distiller = Distiller(*backbones(), hidden_loss=cosine_like)
    assert distiller.embedding_loss.mode == "official"
    losses = compute(distiller, make_inputs())
    assert np.isfinite(float(losses["loss"]))
    exact = Distiller(*backbones(), hidden_loss=cosine_like,
                      embedding_loss=EmbeddingLoss("exact"))
    assert exact.embedding_loss.mode == "exact"
