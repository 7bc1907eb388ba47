"""Classifier and masked-LM heads against numpy."""

import math

import keras
import numpy as np
import pytest

from tinybert_tf.backbone import dummy_inputs
from tinybert_tf.config import BertConfig
from tinybert_tf.backbone import BertBackbone
from tinybert_tf.heads import BertClassifier, BertMaskedLM

CONFIG = BertConfig(vocab_size=30, hidden_size=16, num_layers=2, num_heads=4,
                    intermediate_size=24, max_position_embeddings=10)
INPUTS = {"token_ids": np.array([[2, 7, 9, 3, 0, 0], [2, 11, 3, 14, 15, 3]],
                                "int32"),
          "segment_ids": np.array([[0] * 6, [0, 0, 0, 1, 1, 1]], "int32"),
          "padding_mask": np.array([[1, 1, 1, 1, 0, 0], [1] * 6], "int32")}


def numpy_dense(x, layer):
    return x @ layer.kernel.numpy() + layer.bias.numpy()


def classifier(head, num_labels=3, seed=0):
    keras.utils.set_random_seed(seed)
    model = BertClassifier(BertBackbone(CONFIG), num_labels=num_labels, head=head)
    model(dummy_inputs())
    # A pooler bias pushing half of tanh(.) below 0: relu must matter.
    model.backbone.pooler.bias.assign(np.tile([-2.0, 2.0], 8))
    return model


@pytest.mark.parametrize("head", ["linear", "tanh_relu"])
def test_classifier_heads_match_numpy(head):
    model = classifier(head)
    outputs = model.features(INPUTS)
    pooled = np.tanh(numpy_dense(outputs["sequence_output"].numpy()[:, 0],
                                 model.backbone.pooler))
    assert (pooled < 0).any()
    features = np.maximum(pooled, 0) if head == "tanh_relu" else pooled
    expected = numpy_dense(features, model.classifier)
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(model(INPUTS).numpy(),
                                  outputs["logits"].numpy())
    other = "linear" if head == "tanh_relu" else "tanh_relu"
    assert not np.allclose(classifier(other)(INPUTS).numpy(), expected,
                           atol=1e-3)


def test_mean_pooling_averages_only_real_tokens():
    keras.utils.set_random_seed(0)
    model = BertClassifier(BertBackbone(CONFIG), num_labels=3, pooling="mean")
    outputs = model.features(INPUTS)
    sequence = outputs["sequence_output"].numpy()
    mask = INPUTS["padding_mask"][..., None]
    mean = (sequence * mask).sum(1) / mask.sum(1)
    pooled = np.tanh(numpy_dense(mean, model.backbone.pooler))
    np.testing.assert_allclose(outputs["logits"].numpy(),
                               numpy_dense(pooled, model.classifier), atol=1e-5)
    # Padded positions do not count: changing their ids changes nothing.
    changed = {**INPUTS, "token_ids": INPUTS["token_ids"].copy()}
    changed["token_ids"][0, 4:] = 20
    np.testing.assert_allclose(model(changed).numpy()[0],
                               outputs["logits"].numpy()[0], atol=1e-6)
    with pytest.raises(ValueError, match="Unknown pooling 'max'"):
        BertClassifier(BertBackbone(CONFIG), num_labels=2, pooling="max")


def test_features_returns_backbone_outputs_and_logits():
    model = classifier("linear")
    outputs = model.features(INPUTS)
    backbone = model.backbone(INPUTS)
    assert set(outputs) == set(backbone) | {"logits"}
    for mine, theirs in zip(outputs["hidden_states"],
                            backbone["hidden_states"]):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_classifier_dropout_only_in_training():
    model = BertClassifier(BertBackbone(CONFIG), num_labels=2, classifier_dropout=0.5)
    assert model.classifier_dropout == 0.5
    inference = model(INPUTS).numpy()
    np.testing.assert_array_equal(model(INPUTS).numpy(), inference)
    assert not np.allclose(model(INPUTS, training=True).numpy(), inference)
    assert BertClassifier(BertBackbone(CONFIG), 2).classifier_dropout == CONFIG.hidden_dropout


def test_regression_has_one_output():
    model = BertClassifier(BertBackbone(CONFIG), num_labels=1)
    assert model.is_regression and not BertClassifier(BertBackbone(CONFIG), 2).is_regression
    assert tuple(model(INPUTS).shape) == (2, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_labels": 2, "head": "mlp"}, "Unknown classifier head 'mlp'"),
    ({"num_labels": 0}, "num_labels must be >= 1, got 0"),
    ({"num_labels": 2, "label_names": ["a"]}, "1 label names given for "
                                              "num_labels=2"),
])
def test_bad_classifier_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BertClassifier(BertBackbone(CONFIG), **kwargs)


def masked_lm(seed=0):
    keras.utils.set_random_seed(seed)
    model = BertMaskedLM(BertBackbone(CONFIG))
    model({**dummy_inputs(), "mask_positions": np.zeros((1, 1), "int32")})
    model.mlm_head.bias.assign(np.random.default_rng(0).normal(size=30))
    return model


def test_masked_lm_logits_at_positions_equal_full_computation_gathered():
    model = masked_lm()
    every_position = np.tile(np.arange(6), (2, 1))
    full = model({**INPUTS, "mask_positions": every_position}).numpy()
    assert full.shape == (2, 6, CONFIG.vocab_size)
    positions = np.array([[1, 2], [4, 1]])
    logits = model({**INPUTS, "mask_positions": positions}).numpy()
    np.testing.assert_allclose(
        logits, np.take_along_axis(full, positions[..., None], axis=1),
        atol=1e-5)


def test_masked_lm_head_matches_numpy_with_tied_embeddings():
    model = masked_lm()
    positions = np.array([[3], [5]])
    logits = model({**INPUTS, "mask_positions": positions}).numpy()
    sequence = model.backbone(INPUTS)["sequence_output"].numpy()
    head = model.mlm_head
    x = numpy_dense(sequence[[0, 1], positions[:, 0]], head.transform)
    x = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    x = (x - mean) / np.sqrt(var + CONFIG.layer_norm_eps)
    x = x * head.layer_norm.gamma.numpy() + head.layer_norm.beta.numpy()
    words = model.backbone.embeddings.word_embeddings.embeddings.numpy()
    expected = x @ words.T + head.bias.numpy()
    np.testing.assert_allclose(logits[:, 0], expected, atol=1e-4)
    # Tied: the output matrix IS the input embedding variable.
    assert head.embedding_layer is model.backbone.embeddings.word_embeddings


@pytest.mark.parametrize("make, extra", [
    (lambda: BertClassifier(BertBackbone(CONFIG), num_labels=3, head="tanh_relu",
                            classifier_dropout=0.2, label_names=["a", "b", "c"],
                            pooling="mean"),
     {}),
    (lambda: BertMaskedLM(BertBackbone(CONFIG)), {"mask_positions": np.array([[1], [2]])}),
], ids=["classifier", "masked_lm"])
def test_get_config_round_trip(make, extra, tmp_path):
    model = make()
    inputs = {**INPUTS, **extra}
    expected = model(inputs).numpy()
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone(inputs)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(inputs).numpy(), expected)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored(inputs).numpy(), expected)
    if isinstance(model, BertClassifier):
        assert (restored.head, restored.label_names) == ("tanh_relu",
                                                         ["a", "b", "c"])


def test_doctests():
    import doctest
    from tinybert_tf import heads
    assert doctest.testmod(heads).failed == 0


def test_official_head_has_no_dropout():
    """tanh_relu is the official `classifier(relu(pooled))`: no dropout unless
    asked for; BERT's linear head keeps the hidden dropout."""
    model = BertClassifier(BertBackbone(CONFIG.replace(hidden_dropout=0.0,
                                                       attention_dropout=0.0)),
                           num_labels=2, head="tanh_relu")
    assert model.classifier_dropout == 0.0
    np.testing.assert_array_equal(model(INPUTS, training=True).numpy(),
                                  model(INPUTS).numpy())
    assert BertClassifier(BertBackbone(CONFIG), 2, head="tanh_relu",
                          classifier_dropout=0.3).classifier_dropout == 0.3


def test_from_config_copies_the_classifier():
    from tinybert_tf.heads import clone_classifier

    model = BertClassifier(BertBackbone(CONFIG), num_labels=3, head="tanh_relu",
                           label_names=["a", "b", "c"], pooling="mean")
    model(INPUTS)
    copy = clone_classifier(model, model.get_weights())

    def without_build_shapes(config):
        return {**config, "backbone": {**config["backbone"],
                                       "build_config": None}}

    assert (without_build_shapes(copy.get_config())
            == without_build_shapes(model.get_config()))
    np.testing.assert_allclose(copy(INPUTS).numpy(), model(INPUTS).numpy(),
                               rtol=1e-6)
    smaller = clone_classifier(model, vocab_size=20)
    assert smaller.config.vocab_size == 20 and model.config.vocab_size == 30


def test_reorder_labels_matches_classes_by_name():
    from tinybert_tf.heads import reorder_labels

    model = BertClassifier(BertBackbone(CONFIG), num_labels=3,
                           label_names=["contradiction", "entailment",
                                        "neutral"])
    before = model(INPUTS).numpy()
    reorder_labels(model, ["entailment", "neutral", "contradiction"])
    np.testing.assert_allclose(model(INPUTS).numpy(), before[:, [1, 2, 0]],
                               rtol=1e-6)
    assert model.label_names == ["entailment", "neutral", "contradiction"]
    with pytest.raises(ValueError, match="not the task's labels"):
        reorder_labels(model, ["positive", "negative", "neutral"])
