"""The BERT layers against hand-written numpy."""

import math

import keras
import numpy as np
import pytest

from tinybert_tf.layers import (BertEmbeddings, SelfAttention,
                                TransformerBlock, attention_bias,
                                get_activation)

BATCH, LENGTH, HIDDEN, HEADS, INNER = 2, 5, 12, 3, 20
PADDING_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "int32")


def layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * gamma + beta


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                  * (x + 0.044715 * x ** 3)))


def dense(x, layer):
    return x @ layer.kernel.numpy() + layer.bias.numpy()


def numpy_attention(layer, hidden, bias):
    """Loops over heads: scores[b, h] = q_h k_h^T / sqrt(d) + bias."""
    q, k, v = (dense(hidden, d) for d in (layer.query, layer.key, layer.value))
    d = layer.head_size
    scores = np.zeros((hidden.shape[0], layer.num_heads) + (hidden.shape[1],) * 2)
    context = np.zeros_like(q)
    for h in range(layer.num_heads):
        part = slice(h * d, (h + 1) * d)
        scores[:, h] = q[..., part] @ k[..., part].transpose(0, 2, 1) / math.sqrt(d)
        scores[:, h] += bias[:, 0]
        context[..., part] = softmax(scores[:, h]) @ v[..., part]
    return context, scores


def random_inputs(seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(BATCH, LENGTH, HIDDEN)).astype("float32")
    return hidden, attention_bias(PADDING_MASK, -10000.0).numpy()


def test_attention_bias_by_hand():
    bias = attention_bias(np.array([[1, 1, 0]]), -30.0).numpy()
    assert bias.shape == (1, 1, 1, 3)
    np.testing.assert_array_equal(bias[0, 0, 0], [0.0, 0.0, -30.0])


@pytest.mark.parametrize("name, reference", [
    ("gelu", gelu), ("gelu_new", gelu_tanh),
    ("relu", lambda x: np.maximum(x, 0))])
def test_activations(name, reference):
    x = np.linspace(-4, 4, 33).astype("float32")
    np.testing.assert_allclose(get_activation(name)(x), reference(x),
                               atol=1e-6)
    assert not np.allclose(gelu(x), gelu_tanh(x), atol=1e-5)  # they differ


def test_self_attention_matches_numpy():
    hidden, bias = random_inputs()
    layer = SelfAttention(HIDDEN, HEADS)
    context, scores = layer(hidden, bias)
    expected_context, expected_scores = numpy_attention(layer, hidden, bias)
    np.testing.assert_allclose(scores.numpy(), expected_scores, atol=1e-4)
    np.testing.assert_allclose(context.numpy(), expected_context, atol=1e-5)
    assert scores.numpy()[1, :, :, 3:].max() < -9000  # padded keys


def test_scores_are_float32_under_mixed_bfloat16():
    """The attention loss's targets keep float32 precision: scores are
    QK^T of the (bfloat16) projections computed in float32."""
    hidden, bias = random_inputs()
    layer = SelfAttention(HIDDEN, HEADS, dtype="mixed_bfloat16")
    _, scores = layer(hidden, bias)
    assert scores.dtype == "float32"
    q, k = (np.asarray(d(hidden), np.float64) for d in (layer.query, layer.key))
    d = layer.head_size
    for h in range(HEADS):
        part = slice(h * d, (h + 1) * d)
        expected = (q[..., part] @ k[..., part].transpose(0, 2, 1)
                    / math.sqrt(d) + bias[:, 0])
        # float32 arithmetic: ~1e-6 relative (bfloat16 scores: ~4e-3).
        # Keras casts the bias input to bfloat16: compare real keys only.
        real = np.broadcast_to(bias[:, 0] == 0, expected.shape)
        np.testing.assert_allclose(scores.numpy()[:, h][real], expected[real],
                                   rtol=1e-5, atol=1e-5)
    assert scores.numpy()[1, :, :, 3:].max() < -9000


def test_self_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="hidden_size=10 is not divisible by "
                                         "num_heads=3"):
        SelfAttention(10, 3)


@pytest.mark.parametrize("activation, reference",
                         [("gelu", gelu), ("gelu_new", gelu_tanh)])
def test_transformer_block_matches_numpy(activation, reference):
    hidden, bias = random_inputs(1)
    block = TransformerBlock(HIDDEN, HEADS, INNER, hidden_act=activation,
                             layer_norm_eps=1e-6)
    output, scores = block(hidden, bias)
    context, expected_scores = numpy_attention(block.attention, hidden, bias)
    norm = lambda x, ln: layer_norm(x, ln.gamma.numpy(), ln.beta.numpy(), 1e-6)
    attended = norm(hidden + dense(context, block.attention_output),
                    block.attention_layer_norm)
    inner = reference(dense(attended, block.intermediate))
    expected = norm(attended + dense(inner, block.output_dense),
                    block.output_layer_norm)
    np.testing.assert_allclose(output.numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), expected_scores, atol=1e-4)


def test_dropout_only_in_training():
    hidden, bias = random_inputs(2)
    block = TransformerBlock(HIDDEN, HEADS, INNER, hidden_dropout=0.5,
                             attention_dropout=0.5)
    inference = block(hidden, bias)[0].numpy()
    np.testing.assert_array_equal(block(hidden, bias)[0].numpy(), inference)
    assert not np.allclose(block(hidden, bias, training=True)[0].numpy(),
                           inference)


def test_embeddings_match_numpy():
    layer = BertEmbeddings(vocab_size=30, hidden_size=HIDDEN,
                           max_position_embeddings=8, type_vocab_size=2)
    token_ids = np.array([[2, 7, 9, 3, 0], [2, 29, 3, 0, 0]])
    segment_ids = np.array([[0, 0, 0, 1, 1], [0, 1, 1, 0, 0]])
    output = layer(token_ids, segment_ids).numpy()
    words = layer.word_embeddings.embeddings.numpy()[token_ids]
    positions = layer.position_embeddings.embeddings.numpy()[:LENGTH]
    segments = layer.token_type_embeddings.embeddings.numpy()[segment_ids]
    expected = layer_norm(words + positions + segments,
                          layer.layer_norm.gamma.numpy(),
                          layer.layer_norm.beta.numpy(), 1e-12)
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_embeddings_reject_sequences_longer_than_positions():
    layer = BertEmbeddings(vocab_size=30, hidden_size=HIDDEN,
                           max_position_embeddings=4)
    ids = np.zeros((1, 5), "int32")
    with pytest.raises(ValueError, match="length 5 exceeds.*"
                                         "max_position_embeddings=4"):
        layer(ids, ids)


@pytest.mark.parametrize("make, call", [
    (lambda: BertEmbeddings(30, HIDDEN, 8, 3, 0.2, 1e-7, 0.05),
     lambda layer, hidden, bias: layer(np.array([[1, 2, 3]]),
                                       np.array([[0, 2, 1]]))),
    (lambda: SelfAttention(HIDDEN, HEADS, 0.2, 0.05),
     lambda layer, hidden, bias: layer(hidden, bias)[1]),
    (lambda: TransformerBlock(HIDDEN, HEADS, INNER, "gelu_new", 0.2, 0.3,
                              1e-7, 0.05),
     lambda layer, hidden, bias: layer(hidden, bias)[0]),
], ids=["embeddings", "attention", "block"])
def test_get_config_round_trip(make, call):
    hidden, bias = random_inputs(3)
    layer = make()
    expected = call(layer, hidden, bias).numpy()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    call(clone, hidden, bias)  # builds
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(call(clone, hidden, bias).numpy(), expected)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()


def test_doctests():
    import doctest
    from tinybert_tf import layers
    assert doctest.testmod(layers).failed == 0


def test_weights_are_initialised_independently():
    from tinybert_tf.backbone import BertBackbone, dummy_inputs
    from tinybert_tf.config import BertConfig
    model = BertBackbone(BertConfig(vocab_size=40, hidden_size=16, num_layers=1,
                                    num_heads=2, intermediate_size=32))
    model(dummy_inputs())
    attention = model.transformer_layers[0].attention
    q, k, v = (np.asarray(d.kernel) for d in (attention.query, attention.key,
                                              attention.value))
    assert not np.allclose(q, k) and not np.allclose(k, v)
    emb = model.embeddings
    assert not np.allclose(np.asarray(emb.word_embeddings.embeddings)[:8],
                           np.asarray(emb.position_embeddings.embeddings)[:8])
