"""BERT layers that expose what Transformer distillation needs.

`SelfAttention` returns the UNNORMALISED attention scores
QK^T / sqrt(d) + additive mask next to its context, which keras-hub's layers do
not (they return post-softmax probabilities at most).

Example:
>>> import numpy as np
>>> from tinybert_tf.layers import SelfAttention, attention_bias
>>> layer = SelfAttention(hidden_size=24, num_heads=4)
>>> x = np.random.rand(2, 5, 24).astype("float32")
>>> bias = attention_bias(np.array([[1, 1, 1, 0, 0]] * 2), -10000.0)
>>> context, scores = layer(x, bias)
>>> tuple(context.shape), tuple(scores.shape)
((2, 5, 24), (2, 4, 5, 5))
"""

import math

import keras
from keras import ops


def _initializer(initializer_range):
    return keras.initializers.TruncatedNormal(stddev=initializer_range)


def get_activation(name):
    if name == "gelu":  # BERT's exact (erf) GELU
        return lambda x: keras.activations.gelu(x, approximate=False)
    if name == "gelu_new":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return keras.activations.get(name)


def attention_bias(padding_mask, mask_value, dtype="float32"):
    """[batch, T] mask of 1 (token) / 0 (pad) -> additive bias [batch, 1, 1, T]."""
    padding_mask = ops.cast(padding_mask, dtype)
    return ops.expand_dims(ops.expand_dims((1.0 - padding_mask) * mask_value, 1), 1)


@keras.saving.register_keras_serializable(package="tinybert_tf")
class BertEmbeddings(keras.layers.Layer):
    """Word + position + segment embeddings, LayerNorm, dropout."""

    def __init__(self, vocab_size, hidden_size, max_position_embeddings=512,
                 type_vocab_size=2, dropout=0.1, layer_norm_eps=1e-12,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        init = _initializer(initializer_range)
        self.word_embeddings = keras.layers.Embedding(
            vocab_size, hidden_size, embeddings_initializer=init,
            dtype=self.dtype_policy, name="word_embeddings")
        self.position_embeddings = keras.layers.Embedding(
            max_position_embeddings, hidden_size, embeddings_initializer=init,
            dtype=self.dtype_policy, name="position_embeddings")
        self.token_type_embeddings = keras.layers.Embedding(
            type_vocab_size, hidden_size, embeddings_initializer=init,
            dtype=self.dtype_policy, name="token_type_embeddings")
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=self.dtype_policy, name="layer_norm")
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, token_ids_shape, segment_ids_shape=None):
        self.word_embeddings.build(token_ids_shape)
        self.position_embeddings.build(token_ids_shape)
        self.token_type_embeddings.build(token_ids_shape)
        self.layer_norm.build(tuple(token_ids_shape) + (self.hidden_size,))

    def call(self, token_ids, segment_ids, training=None):
        length = token_ids.shape[1]
        if length is not None and length > self.max_position_embeddings:
            raise ValueError(
                f"Input sequence length {length} exceeds the model's "
                f"max_position_embeddings={self.max_position_embeddings}.")
        positions = ops.arange(ops.shape(token_ids)[1])
        x = (self.word_embeddings(token_ids)
             + ops.expand_dims(self.position_embeddings(positions), 0)
             + self.token_type_embeddings(segment_ids))
        return self.dropout(self.layer_norm(x), training=training)

    def get_config(self):
        return {**super().get_config(),
                "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size,
                "dropout": self.dropout_rate,
                "layer_norm_eps": self.layer_norm_eps,
                "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="tinybert_tf")
class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention returning (context, pre-softmax scores).

    `call(hidden, bias)` with `bias` the additive mask of `attention_bias`.
    The scores are QK^T/sqrt(d_head) + bias, shape [batch, heads, T, T]; the
    softmax runs in float32 under mixed precision.
    """

    def __init__(self, hidden_size, num_heads, dropout=0.1,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size={hidden_size} is not divisible by "
                             f"num_heads={num_heads}.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        init = _initializer(initializer_range)
        self.query, self.key, self.value = (
            keras.layers.Dense(hidden_size, kernel_initializer=init,
                               dtype=self.dtype_policy, name=name)
            for name in ("query", "key", "value"))
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, hidden_shape, bias_shape=None):
        for dense in (self.query, self.key, self.value):
            dense.build(hidden_shape)

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_size))
        return ops.transpose(x, (0, 2, 1, 3))  # [batch, heads, T, d]

    def call(self, hidden, bias, training=None):
        q = self._split_heads(self.query(hidden))
        k = self._split_heads(self.key(hidden))
        v = self._split_heads(self.value(hidden))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        scores = scores * ops.cast(1.0 / math.sqrt(self.head_size), scores.dtype)
        scores = scores + ops.cast(bias, scores.dtype)
        probs = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1),
                         v.dtype)
        context = ops.matmul(self.dropout(probs, training=training), v)
        context = ops.transpose(context, (0, 2, 1, 3))
        batch, length = ops.shape(context)[0], ops.shape(context)[1]
        return ops.reshape(context, (batch, length, self.hidden_size)), scores

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "num_heads": self.num_heads, "dropout": self.dropout_rate,
                "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="tinybert_tf")
class TransformerBlock(keras.layers.Layer):
    """Post-LayerNorm BERT block: returns (output, attention scores)."""

    def __init__(self, hidden_size, num_heads, intermediate_size,
                 hidden_act="gelu", hidden_dropout=0.1, attention_dropout=0.1,
                 layer_norm_eps=1e-12, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        init = _initializer(initializer_range)
        policy = self.dtype_policy
        self.attention = SelfAttention(hidden_size, num_heads, attention_dropout,
                                       initializer_range, dtype=policy,
                                       name="attention")
        self.attention_output = keras.layers.Dense(
            hidden_size, kernel_initializer=init, dtype=policy,
            name="attention_output")
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=policy, name="attention_layer_norm")
        self.intermediate = keras.layers.Dense(
            intermediate_size, kernel_initializer=init, dtype=policy,
            name="intermediate")
        self.output_dense = keras.layers.Dense(
            hidden_size, kernel_initializer=init, dtype=policy,
            name="output_dense")
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=policy, name="output_layer_norm")
        self.dropout = keras.layers.Dropout(hidden_dropout, dtype=policy)
        self.activation = get_activation(hidden_act)

    def build(self, hidden_shape, bias_shape=None):
        inner_shape = tuple(hidden_shape[:-1]) + (self.intermediate_size,)
        self.attention.build(hidden_shape)
        self.attention_output.build(hidden_shape)
        self.attention_layer_norm.build(hidden_shape)
        self.intermediate.build(hidden_shape)
        self.output_dense.build(inner_shape)
        self.output_layer_norm.build(hidden_shape)

    def call(self, hidden, bias, training=None):
        context, scores = self.attention(hidden, bias, training=training)
        attended = self.attention_layer_norm(
            hidden + self.dropout(self.attention_output(context),
                                  training=training))
        inner = self.activation(self.intermediate(attended))
        output = self.output_layer_norm(
            attended + self.dropout(self.output_dense(inner),
                                    training=training))
        return output, scores

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "num_heads": self.num_heads,
                "intermediate_size": self.intermediate_size,
                "hidden_act": self.hidden_act,
                "hidden_dropout": self.hidden_dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_eps": self.layer_norm_eps,
                "initializer_range": self.initializer_range}
