"""`BertBackbone`: the encoder shared by teachers and students.

Example:
>>> import numpy as np
>>> from tinybert_tf.backbone import BertBackbone
>>> from tinybert_tf.config import BertConfig
>>> config = BertConfig(vocab_size=100, hidden_size=24, num_layers=2,
...                     num_heads=4, intermediate_size=48)
>>> backbone = BertBackbone(config)
>>> out = backbone({"token_ids": np.ones((2, 8), "int32"),
...                 "segment_ids": np.zeros((2, 8), "int32"),
...                 "padding_mask": np.ones((2, 8), "int32")})
>>> len(out["hidden_states"]), tuple(out["attention_scores"][0].shape)
(3, (2, 4, 8, 8))
"""

import keras
from keras import ops

from tinybert_tf.config import BertConfig
from tinybert_tf.layers import (BertEmbeddings, TransformerBlock,
                                attention_bias)

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


def as_config(config):
    if isinstance(config, BertConfig):
        return config
    if isinstance(config, str):
        return BertConfig.from_preset(config)
    return BertConfig.from_dict(config)


def dummy_inputs(batch_size=1, sequence_length=8):
    """Inputs that build a model's variables (all tokens real)."""
    ones = ops.ones((batch_size, sequence_length), "int32")
    return {"token_ids": ones, "segment_ids": ops.zeros_like(ones),
            "padding_mask": ones}


@keras.saving.register_keras_serializable(package="tinybert_tf")
class BertBackbone(keras.Model):
    """BERT encoder that returns every intermediate result.

    Inputs: a dict of int tensors [batch, T]: `token_ids`, `segment_ids` and
    `padding_mask` (1 = token, 0 = padding).

    Outputs: a dict with
      - `embeddings`: the embedding-layer output [batch, T, H];
      - `hidden_states`: L+1 tensors, `embeddings` then every layer output;
      - `attention_scores`: L tensors [batch, heads, T, T], pre-softmax
        QK^T/sqrt(d) + additive mask (`config.attention_mask_value`); in a
        pruned model layer i has `config.layer_num_heads(i)` heads (maybe 0),
        the original heads `config.layer_heads(i)`;
      - `sequence_output`: the last hidden state;
      - `pooled_output`: tanh(dense(h_[CLS])).
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = as_config(config)
        c = self.config
        policy = self.dtype_policy
        self.embeddings = BertEmbeddings(
            c.vocab_size, c.hidden_size, c.max_position_embeddings,
            c.type_vocab_size, c.hidden_dropout, c.layer_norm_eps,
            c.initializer_range, dtype=policy, name="embeddings")
        self.transformer_layers = [
            TransformerBlock(c.hidden_size, c.layer_num_heads(i),
                             c.layer_intermediate_size(i),
                             c.hidden_act, c.hidden_dropout,
                             c.attention_dropout, c.layer_norm_eps,
                             c.initializer_range, head_size=c.head_size,
                             dtype=policy, name=f"transformer_layer_{i}")
            for i in range(c.num_layers)]
        self.pooler = keras.layers.Dense(
            c.hidden_size, activation="tanh", dtype=policy,
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=c.initializer_range), name="pooler")

    def call(self, inputs, training=None):
        missing = [name for name in INPUT_NAMES if name not in inputs]
        if missing:
            raise ValueError(f"BertBackbone inputs lack {missing}; got "
                             f"{sorted(inputs)}. Expected {list(INPUT_NAMES)}.")
        embeddings = self.embeddings(inputs["token_ids"], inputs["segment_ids"],
                                     training=training)
        bias = attention_bias(inputs["padding_mask"],
                              self.config.attention_mask_value)
        hidden, hidden_states, scores = embeddings, [embeddings], []
        for layer in self.transformer_layers:
            hidden, layer_scores = layer(hidden, bias, training=training)
            hidden_states.append(hidden)
            scores.append(layer_scores)
        return {"embeddings": embeddings, "hidden_states": hidden_states,
                "attention_scores": scores, "sequence_output": hidden,
                "pooled_output": self.pooler(hidden[:, 0])}

    def features(self, inputs, training=None):
        """The output dict (what distillation consumes; see the class doc)."""
        return self(inputs, training=training)

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
