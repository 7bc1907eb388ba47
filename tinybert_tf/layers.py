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

from tinybert_tf.distribute import unlocked_tracker


def _initializer(initializer_range):
    # A fresh instance per weight: Keras 3 gives every weight that shares one
    # unseeded initializer instance the same values (Q = K = V at init).
    return keras.initializers.TruncatedNormal(stddev=initializer_range)


def exact_gelu(x):
    """BERT's erf GELU, computed in float32: under mixed_bfloat16, TF's erf
    in bfloat16 is ~5x slower on CPU (a no-op cast for float32 inputs)."""
    x = ops.convert_to_tensor(x)
    return ops.cast(keras.activations.gelu(ops.cast(x, "float32"),
                                           approximate=False), x.dtype)


def get_activation(name):
    if name == "gelu":  # BERT's exact (erf) GELU
        return exact_gelu
    if name == "gelu_new":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return keras.activations.get(name)


def attention_bias(padding_mask, mask_value, dtype="float32"):
    """[batch, T] mask of 1 (token) / 0 (pad) -> additive bias [batch, 1, 1, T]."""
    padding_mask = ops.cast(padding_mask, dtype)
    return ops.expand_dims(ops.expand_dims((1.0 - padding_mask) * mask_value, 1), 1)


# ---------------------------------------------------------------------------
# Quantization-aware training (QAT), used by export/quantize.py.
# Off by default: until `enable_fake_quant()` is called, `fake_quant_point` is
# the identity, no variable is added and outputs and checkpoints are unchanged.
# On, int8 rounding is simulated (keras.quantizers.fake_quant_with_min_max_vars,
# i.e. tf.quantization.fake_quant_with_min_max_vars) with ranges tracked by an
# exponential moving average; the TFLite converter turns these ops into int8
# tensors with the learned ranges.


@keras.saving.register_keras_serializable(package="tinybert_tf")
class FakeQuant(keras.layers.Layer):
    """int8 fake quantization with an EMA range (or a fixed one).

    In training the range follows the batch min/max (first batch: taken as
    is, then `momentum`-weighted); while `calibrating` is set it is the running
    min/max of every call. The range always contains 0.

    Example:
    >>> import numpy as np
    >>> layer = FakeQuant()
    >>> _ = layer(np.array([-1.0, 0.5, 2.0], "float32"), training=True)
    >>> float(layer.range_min.numpy()), float(layer.range_max.numpy())
    (-1.0, 2.0)
    """

    def __init__(self, momentum=0.99, fixed_range=None, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.fixed_range = tuple(fixed_range) if fixed_range else None
        self.calibrating = False

    def build(self, input_shape=None):
        low, high = self.fixed_range or (0.0, 0.0)
        # "mean": under tf.distribute every replica updates the range.
        self.range_min = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(low),
            trainable=False, autocast=False, aggregation="mean",
            name="range_min")
        self.range_max = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(high),
            trainable=False, autocast=False, aggregation="mean",
            name="range_max")
        self.seen = self.add_weight(shape=(), initializer="zeros",
                                    trainable=False, autocast=False,
                                    aggregation="mean", name="seen")

    def call(self, x, training=None):
        if self.fixed_range is None and (training or self.calibrating):
            x32 = ops.cast(x, "float32")
            low = ops.minimum(ops.min(x32), 0.0)
            high = ops.maximum(ops.max(x32), 0.0)
            if self.calibrating:
                low = ops.minimum(low, self.range_min)
                high = ops.maximum(high, self.range_max)
                keep = 0.0
            else:
                keep = ops.where(self.seen > 0, self.momentum, 0.0)
            self.range_min.assign(keep * self.range_min + (1 - keep) * low)
            self.range_max.assign(keep * self.range_max + (1 - keep) * high)
            self.seen.assign(1.0)
        return keras.quantizers.fake_quant_with_min_max_vars(
            x, self.range_min, self.range_max, num_bits=8)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum,
                "fixed_range": self.fixed_range}


class FakeQuantPoints:
    """Mixin: the named int8 fake-quant points of a layer, off until enabled.

    `FAKE_QUANT_POINTS` names the tensors of `call` that a full-integer
    TFLite model rounds to int8 (Dense outputs, residual sums, LayerNorm
    outputs, attention scores and probabilities).
    """

    FAKE_QUANT_POINTS = ()
    # Softmax outputs: TFLite's int8 softmax has the fixed range [0, 1].
    FIXED_RANGES = {"probs": (0.0, 1.0)}

    def enable_fake_quant(self, momentum=0.99):
        """Adds one `FakeQuant` per point (also to a built layer)."""
        if getattr(self, "fake_quants", None):
            return
        with unlocked_tracker(self):
            self.fake_quants = {
                name: FakeQuant(momentum, self.FIXED_RANGES.get(name),
                                name=f"fake_quant_{name}")
                for name in self.FAKE_QUANT_POINTS}
            for layer in self.fake_quants.values():
                layer.build()

    def fake_quant_point(self, name, x, training=None):
        fake_quants = getattr(self, "fake_quants", None)
        if not fake_quants:
            return x
        return fake_quants[name](x, training=training)


# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tinybert_tf")
class BertEmbeddings(FakeQuantPoints, keras.layers.Layer):
    """Word + position + segment embeddings, LayerNorm, dropout."""

    FAKE_QUANT_POINTS = ("sum", "output")

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
        self.word_embeddings = keras.layers.Embedding(
            vocab_size, hidden_size, embeddings_initializer=_initializer(initializer_range),
            dtype=self.dtype_policy, name="word_embeddings")
        self.position_embeddings = keras.layers.Embedding(
            max_position_embeddings, hidden_size, embeddings_initializer=_initializer(initializer_range),
            dtype=self.dtype_policy, name="position_embeddings")
        self.token_type_embeddings = keras.layers.Embedding(
            type_vocab_size, hidden_size, embeddings_initializer=_initializer(initializer_range),
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
        x = self.fake_quant_point("sum", x, training)
        x = self.fake_quant_point("output", self.layer_norm(x), training)
        return self.dropout(x, training=training)

    def get_config(self):
        return {**super().get_config(),
                "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size,
                "dropout": self.dropout_rate,
                "layer_norm_eps": self.layer_norm_eps,
                "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="tinybert_tf")
class SelfAttention(FakeQuantPoints, keras.layers.Layer):
    """Multi-head self-attention returning (context, pre-softmax scores).

    `call(hidden, bias)` with `bias` the additive mask of `attention_bias`.
    The scores are QK^T/sqrt(d_head) + bias, shape [batch, heads, T, T],
    computed and returned in float32 under mixed precision too (they are
    the attention loss's targets: bfloat16 would round them to 3
    significant digits; QK^T is about 3 % of a BERT layer's FLOPs at
    T = 128), and so is the softmax.
    """

    FAKE_QUANT_POINTS = ("query", "key", "value", "scores", "probs", "context")

    def __init__(self, hidden_size, num_heads, dropout=0.1,
                 initializer_range=0.02, head_size=None, **kwargs):
        super().__init__(**kwargs)
        if head_size is None:
            if num_heads <= 0 or hidden_size % num_heads:
                raise ValueError(f"hidden_size={hidden_size} is not divisible "
                                 f"by num_heads={num_heads}.")
            head_size = hidden_size // num_heads
        if num_heads < 0 or head_size <= 0:
            raise ValueError(f"SelfAttention needs num_heads >= 0 and "
                             f"head_size > 0, got {num_heads} and {head_size}.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = head_size
        # A pruned layer keeps fewer heads of the original size (possibly
        # none: then it has no weights and its context is empty).
        self.all_head_size = num_heads * head_size
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        self.query, self.key, self.value = (
            keras.layers.Dense(self.all_head_size,
                               kernel_initializer=_initializer(initializer_range),
                               dtype=self.dtype_policy, name=name)
            if num_heads else None
            for name in ("query", "key", "value"))
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, hidden_shape, bias_shape=None):
        for dense in (self.query, self.key, self.value):
            if dense is not None:
                dense.build(hidden_shape)

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_size))
        return ops.transpose(x, (0, 2, 1, 3))  # [batch, heads, T, d]

    def call(self, hidden, bias, training=None):
        if not self.num_heads:
            batch, length = ops.shape(hidden)[0], ops.shape(hidden)[1]
            return (ops.zeros((batch, length, 0), hidden.dtype),
                    ops.zeros((batch, 0, length, length), "float32"))
        q, k, v = (self._split_heads(self.fake_quant_point(
            name, dense(hidden), training)) for name, dense in (
            ("query", self.query), ("key", self.key), ("value", self.value)))
        scores = ops.matmul(ops.cast(q, "float32"),
                            ops.transpose(ops.cast(k, "float32"), (0, 1, 3, 2)))
        scores = scores / math.sqrt(self.head_size) + ops.cast(bias, "float32")
        quantized_scores = self.fake_quant_point("scores", scores, training)
        probs = ops.cast(ops.softmax(quantized_scores, axis=-1), v.dtype)
        probs = self.fake_quant_point("probs", probs, training)
        context = ops.matmul(self.dropout(probs, training=training), v)
        context = self.fake_quant_point("context", context, training)
        context = ops.transpose(context, (0, 2, 1, 3))
        batch, length = ops.shape(context)[0], ops.shape(context)[1]
        return ops.reshape(context, (batch, length, self.all_head_size)), scores

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "num_heads": self.num_heads, "dropout": self.dropout_rate,
                "initializer_range": self.initializer_range,
                "head_size": self.head_size}


@keras.saving.register_keras_serializable(package="tinybert_tf")
class TransformerBlock(FakeQuantPoints, keras.layers.Layer):
    """Post-LayerNorm BERT block: returns (output, attention scores).

    `head_size` (default hidden_size // num_heads) lets a pruned block keep
    fewer heads of the original size; `num_heads=0` is a block whose
    attention sub-layer adds only the output bias.
    """

    FAKE_QUANT_POINTS = ("attention_output", "attention_residual", "attended",
                         "intermediate", "activation", "output_dense",
                         "output_residual", "output")

    def __init__(self, hidden_size, num_heads, intermediate_size,
                 hidden_act="gelu", hidden_dropout=0.1, attention_dropout=0.1,
                 layer_norm_eps=1e-12, initializer_range=0.02, head_size=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        policy = self.dtype_policy
        self.attention = SelfAttention(hidden_size, num_heads, attention_dropout,
                                       initializer_range, head_size,
                                       dtype=policy, name="attention")
        self.head_size = self.attention.head_size
        self.attention_output = keras.layers.Dense(
            hidden_size, kernel_initializer=_initializer(initializer_range), dtype=policy,
            name="attention_output")
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=policy, name="attention_layer_norm")
        self.intermediate = keras.layers.Dense(
            intermediate_size, kernel_initializer=_initializer(initializer_range), dtype=policy,
            name="intermediate")
        self.output_dense = keras.layers.Dense(
            hidden_size, kernel_initializer=_initializer(initializer_range), dtype=policy,
            name="output_dense")
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=policy, name="output_layer_norm")
        self.dropout = keras.layers.Dropout(hidden_dropout, dtype=policy)
        self.activation = get_activation(hidden_act)

    def build(self, hidden_shape, bias_shape=None):
        inner_shape = tuple(hidden_shape[:-1]) + (self.intermediate_size,)
        self.attention.build(hidden_shape)
        self.attention_output.build(tuple(hidden_shape[:-1]) + (
            self.attention.all_head_size,))
        if not self.num_heads:  # a [0, H] kernel: nothing to train
            self.attention_output.kernel.trainable = False
        self.attention_layer_norm.build(hidden_shape)
        self.intermediate.build(hidden_shape)
        self.output_dense.build(inner_shape)
        self.output_layer_norm.build(hidden_shape)

    def call(self, hidden, bias, training=None):
        quant = self.fake_quant_point  # identity unless fake quant is on
        context, scores = self.attention(hidden, bias, training=training)
        if self.num_heads:
            attention_output = self.attention_output(context)
        else:  # every head pruned: only the output bias is left
            attention_output = ops.zeros_like(hidden) + ops.cast(
                self.attention_output.bias, hidden.dtype)
        attention_output = quant("attention_output", attention_output, training)
        attended = quant("attended", self.attention_layer_norm(quant(
            "attention_residual",
            hidden + self.dropout(attention_output, training=training),
            training)), training)
        inner = quant("intermediate", self.intermediate(attended), training)
        inner = quant("activation", self.activation(inner), training)
        output_dense = quant("output_dense", self.output_dense(inner), training)
        output = quant("output", self.output_layer_norm(quant(
            "output_residual",
            attended + self.dropout(output_dense, training=training),
            training)), training)
        return output, scores

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "num_heads": self.num_heads,
                "intermediate_size": self.intermediate_size,
                "hidden_act": self.hidden_act,
                "hidden_dropout": self.hidden_dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_eps": self.layer_norm_eps,
                "initializer_range": self.initializer_range,
                "head_size": self.head_size}
