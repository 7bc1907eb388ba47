"""`BertBackbone`: every output against a numpy BERT, padding, errors."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tinybert_tf.backbone import BertBackbone, as_config, dummy_inputs
from tinybert_tf.config import BertConfig

CONFIG = BertConfig(vocab_size=40, hidden_size=16, num_layers=3, num_heads=4,
                    intermediate_size=32, max_position_embeddings=12)
INPUTS = {"token_ids": np.array([[2, 11, 17, 5, 3, 8, 9, 3],
                                 [2, 30, 3, 21, 3, 0, 0, 0]], "int32"),
          "segment_ids": np.array([[0, 0, 0, 0, 0, 1, 1, 1],
                                   [0, 0, 0, 1, 1, 0, 0, 0]], "int32"),
          "padding_mask": np.array([[1] * 8, [1] * 5 + [0] * 3], "int32")}


def numpy_bert(backbone, inputs):
    """BERT written from the paper's equations with the model's weights."""
    c = backbone.config
    w = lambda v: v.numpy().astype("float64")
    dense = lambda x, layer: x @ w(layer.kernel) + w(layer.bias)

    def norm(x, layer):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + c.layer_norm_eps) * w(
            layer.gamma) + w(layer.beta)

    emb = backbone.embeddings
    ids, segments = inputs["token_ids"], inputs["segment_ids"]
    x = norm(w(emb.word_embeddings.embeddings)[ids]
             + w(emb.position_embeddings.embeddings)[:ids.shape[1]]
             + w(emb.token_type_embeddings.embeddings)[segments],
             emb.layer_norm)
    bias = (1.0 - inputs["padding_mask"][:, None, None, :]) * -10000.0
    hidden_states, all_scores = [x], []
    d = c.head_size
    erf = np.vectorize(math.erf)
    for block in backbone.transformer_layers:
        split = lambda t: t.reshape(t.shape[0], t.shape[1], c.num_heads,
                                    d).transpose(0, 2, 1, 3)
        a = block.attention
        q, k, v = (split(dense(x, layer)) for layer in (a.query, a.key, a.value))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = norm(x + dense(context, block.attention_output),
                 block.attention_layer_norm)
        inner = dense(x, block.intermediate)
        inner = 0.5 * inner * (1 + erf(inner / math.sqrt(2)))
        x = norm(x + dense(inner, block.output_dense), block.output_layer_norm)
        hidden_states.append(x)
        all_scores.append(scores)
    pooled = np.tanh(dense(x[:, 0], backbone.pooler))
    return hidden_states, all_scores, pooled


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    model = BertBackbone(CONFIG)
    model(dummy_inputs())
    # Non-trivial LayerNorm parameters and biases, so none hides a bug.
    rng = np.random.default_rng(0)
    for variable in model.weights:
        if variable.path.endswith(("gamma", "beta", "bias")):
            variable.assign(1.0 * (variable.path.endswith("gamma"))
                            + 0.1 * rng.normal(size=variable.shape))
    return model


def test_outputs_match_numpy_bert(backbone):
    outputs = backbone(INPUTS)
    hidden_states, scores, pooled = numpy_bert(backbone, INPUTS)
    assert len(outputs["hidden_states"]) == CONFIG.num_layers + 1
    assert len(outputs["attention_scores"]) == CONFIG.num_layers
    for mine, expected in zip(outputs["hidden_states"], hidden_states):
        np.testing.assert_allclose(mine.numpy(), expected, atol=1e-4)
    for mine, expected in zip(outputs["attention_scores"], scores):
        assert mine.shape == (2, CONFIG.num_heads, 8, 8)
        np.testing.assert_allclose(mine.numpy(), expected, atol=1e-3,
                                   rtol=1e-5)
    np.testing.assert_allclose(outputs["pooled_output"].numpy(), pooled,
                               atol=1e-5)
    np.testing.assert_array_equal(outputs["embeddings"].numpy(),
                                  outputs["hidden_states"][0].numpy())
    np.testing.assert_array_equal(outputs["sequence_output"].numpy(),
                                  outputs["hidden_states"][-1].numpy())


def test_padding_does_not_change_real_positions(backbone):
    """The second row, alone and unpadded, gives the same real positions."""
    alone = {k: v[1:, :5] for k, v in INPUTS.items()}
    batched = backbone(INPUTS)["hidden_states"]
    for full, short in zip(batched, backbone(alone)["hidden_states"]):
        np.testing.assert_allclose(full.numpy()[1, :5], short.numpy()[0],
                                   atol=1e-5)


def test_same_outputs_in_tf_function(backbone):
    eager = backbone(INPUTS)["sequence_output"].numpy()
    graph = tf.function(lambda x: backbone(x)["sequence_output"])(INPUTS)
    np.testing.assert_allclose(graph.numpy(), eager, atol=1e-6)


def test_missing_input_is_named(backbone):
    with pytest.raises(ValueError, match=r"lack \['padding_mask'\]"):
        backbone({k: INPUTS[k] for k in ("token_ids", "segment_ids")})


def test_sequence_longer_than_positions_is_rejected(backbone):
    too_long = dummy_inputs(1, CONFIG.max_position_embeddings + 1)
    with pytest.raises(ValueError, match="length 13 exceeds.*"
                                         "max_position_embeddings=12"):
        backbone(too_long)


def test_config_forms():
    assert as_config("tinybert-4l-312d") == BertConfig.from_preset(
        "tinybert-4l-312d")
    assert as_config(CONFIG.to_dict()) == CONFIG
    assert as_config(CONFIG) is CONFIG


def test_get_config_round_trip(backbone, tmp_path):
    expected = backbone(INPUTS)
    clone = BertBackbone.from_config(backbone.get_config())
    assert clone.config == backbone.config
    clone(dummy_inputs())
    clone.set_weights(backbone.get_weights())
    np.testing.assert_array_equal(clone(INPUTS)["pooled_output"].numpy(),
                                  expected["pooled_output"].numpy())
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    for mine, theirs in zip(restored(INPUTS)["attention_scores"],
                            expected["attention_scores"]):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_doctests():
    import doctest
    from tinybert_tf import backbone
    assert doctest.testmod(backbone).failed == 0
