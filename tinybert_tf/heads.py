"""Task heads on `BertBackbone`: sequence classification/regression, masked LM.

As in keras-hub, a head takes a backbone: `BertClassifier(backbone, ...)`.

Example:
>>> from tinybert_tf.backbone import BertBackbone, dummy_inputs
>>> from tinybert_tf.config import BertConfig
>>> from tinybert_tf.heads import BertClassifier
>>> backbone = BertBackbone(BertConfig(vocab_size=100, hidden_size=24,
...                                    num_layers=2, num_heads=4,
...                                    intermediate_size=48))
>>> model = BertClassifier(backbone, num_labels=3, head="tanh_relu")
>>> tuple(model(dummy_inputs(2, 8)).shape)
(2, 3)
>>> sorted(model.features(dummy_inputs(2, 8)))[:3]
['attention_scores', 'embeddings', 'hidden_states']
"""

import keras
from keras import ops

from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.choices import CLASSIFIER_HEADS, POOLINGS
from tinybert_tf.distribute import BuiltBeforeFit
from tinybert_tf.layers import FakeQuantPoints, get_activation


@keras.saving.register_keras_serializable(package="tinybert_tf")
class BertClassifier(BuiltBeforeFit, FakeQuantPoints, keras.Model):
    """Sequence classifier (or regressor when `num_labels == 1`) on a backbone.

    `head="linear"` is BERT's: logits = W . dropout(tanh(pooler(h_CLS))).
    `head="tanh_relu"` is the official TinyBERT code's:
    logits = W . relu(tanh(pooler(h_CLS))), with no dropout
    (`classifier(torch.relu(pooled_output))` in its `modeling.py`);
    `classifier_dropout` adds one between relu and W.
    `pooling="mean"` feeds the pooler the mean of the non-padded tokens'
    last hidden states instead of h_CLS (as sentence-transformers do): a
    briefly general-distilled student's [CLS] state barely depends on the
    input, its token states do.

    `call` returns the logits; `features` returns the backbone's outputs
    plus `logits`, which is what distillation consumes.
    """

    # Quantization-aware training (export/quantize.py); identity until enabled.
    FAKE_QUANT_POINTS = ("pooled", "logits")

    def __init__(self, backbone, num_labels, head="linear",
                 classifier_dropout=None, label_names=None, pooling="cls",
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(backbone, BertBackbone):
            raise TypeError(f"BertClassifier takes a BertBackbone, got "
                            f"{type(backbone).__name__}.")
        if head not in CLASSIFIER_HEADS:
            raise ValueError(f"Unknown classifier head {head!r}; expected one "
                             f"of {CLASSIFIER_HEADS}.")
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {pooling!r}; expected one of "
                             f"{POOLINGS}.")
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}.")
        if label_names is not None and len(label_names) != num_labels:
            raise ValueError(f"{len(label_names)} label names given for "
                             f"num_labels={num_labels}.")
        self.backbone = backbone
        self.num_labels = num_labels
        self.head = head
        self.pooling = pooling
        self.label_names = list(label_names) if label_names else None
        if classifier_dropout is None:
            classifier_dropout = (0.0 if head == "tanh_relu"
                                  else self.config.hidden_dropout)
        self.classifier_dropout = classifier_dropout
        self.dropout = keras.layers.Dropout(self.classifier_dropout,
                                            dtype=self.dtype_policy)
        self.classifier = keras.layers.Dense(
            num_labels, dtype=self.dtype_policy, name="classifier",
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=self.config.initializer_range))

    @property
    def config(self):
        return self.backbone.config

    @property
    def is_regression(self):
        return self.num_labels == 1

    def features(self, inputs, training=None):
        """The backbone's output dict plus `logits`."""
        outputs = dict(self.backbone(inputs, training=training))
        pooled = outputs["pooled_output"]
        if self.pooling == "mean":
            mask = ops.cast(inputs["padding_mask"],
                            outputs["sequence_output"].dtype)[..., None]
            mean = (ops.sum(outputs["sequence_output"] * mask, axis=1)
                    / ops.maximum(ops.sum(mask, axis=1), 1.0))
            pooled = self.backbone.pooler(mean)
        pooled = self.fake_quant_point("pooled", pooled, training)
        if self.head == "tanh_relu":
            pooled = ops.relu(pooled)
        logits = self.fake_quant_point(
            "logits", self.classifier(self.dropout(pooled, training=training)),
            training)
        outputs["logits"] = logits
        return outputs

    def call(self, inputs, training=None):
        return self.features(inputs, training=training)["logits"]

    def get_config(self):
        return {"backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_labels": self.num_labels, "head": self.head,
                "pooling": self.pooling,
                "classifier_dropout": self.classifier_dropout,
                "label_names": self.label_names, "name": self.name,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"])
        return cls(**config)


def reorder_labels(model, label_names):
    """Permutes `model`'s output classes (in place) into the order of
    `label_names`, matching them by name; returns `model`.

    A teacher fine-tuned elsewhere may order the same classes differently:
    MNLI is entailment/neutral/contradiction in `datasets` but
    contradiction/entailment/neutral in the official TinyBERT code, which
    silently scores ~10 % (huawei-noah/Pretrained-Language-Model#229).
    Classes that do not match by name are refused.
    """
    have, want = list(model.label_names or []), list(label_names)
    if sorted(have) != sorted(want):
        raise ValueError(f"The model's labels {have or '(unnamed)'} are not "
                         f"the task's labels {want}: it was fine-tuned for "
                         "another task or label set.")
    order = [have.index(name) for name in want]
    kernel, bias = model.classifier.get_weights()
    model.classifier.set_weights([kernel[:, order], bias[order]])
    model.label_names = want
    return model


def clone_classifier(model, weights=None, **config_changes):
    """A new, built `BertClassifier` of `model`'s configuration.

    `config_changes` replace fields of the backbone's `BertConfig` (e.g.
    `vocab_size`); `weights` (a `get_weights()` list) are set when given.
    """
    config = model.get_config()
    backbone = model.backbone.get_config()
    backbone["config"] = model.config.replace(**config_changes).to_dict()
    config["backbone"] = BertBackbone.from_config(backbone)
    copy = BertClassifier(**config)
    copy(dummy_inputs())
    if weights is not None:
        copy.set_weights(weights)
    return copy


@keras.saving.register_keras_serializable(package="tinybert_tf")
class MaskedLMHead(keras.layers.Layer):
    """BERT's MLM head, computed only at `mask_positions`.

    transform (dense, activation, LayerNorm), then logits against the word
    embedding matrix (tied) plus a bias.
    """

    def __init__(self, embedding_layer, activation="gelu", layer_norm_eps=1e-12,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.embedding_layer = embedding_layer
        self.activation_name = activation
        self.activation = get_activation(activation)
        hidden_size = embedding_layer.output_dim
        self.transform = keras.layers.Dense(
            hidden_size, dtype=self.dtype_policy, name="transform",
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=initializer_range))
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, dtype=self.dtype_policy, name="layer_norm")

    def build(self, sequence_output_shape, mask_positions_shape=None):
        hidden_size = self.embedding_layer.output_dim
        self.transform.build((None, None, hidden_size))
        self.layer_norm.build((None, None, hidden_size))
        self.bias = self.add_weight(name="bias", initializer="zeros",
                                    shape=(self.embedding_layer.input_dim,))

    def call(self, sequence_output, mask_positions):
        gathered = ops.take_along_axis(
            sequence_output,
            ops.expand_dims(ops.cast(mask_positions, "int32"), -1), axis=1)
        x = self.layer_norm(self.activation(self.transform(gathered)))
        embeddings = ops.cast(self.embedding_layer.embeddings, x.dtype)
        logits = ops.matmul(x, ops.transpose(embeddings))
        return logits + ops.cast(self.bias, logits.dtype)


@keras.saving.register_keras_serializable(package="tinybert_tf")
class BertMaskedLM(keras.Model):
    """Backbone + tied masked-LM head.

    Inputs: the backbone's dict plus `mask_positions` [batch, P] (int).
    Output: logits [batch, P, vocab] at those positions only.
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(backbone, BertBackbone):
            raise TypeError(f"BertMaskedLM takes a BertBackbone, got "
                            f"{type(backbone).__name__}.")
        self.backbone = backbone
        self.mlm_head = MaskedLMHead(
            backbone.embeddings.word_embeddings, self.config.hidden_act,
            self.config.layer_norm_eps, self.config.initializer_range,
            dtype=self.dtype_policy, name="mlm_head")

    @property
    def config(self):
        return self.backbone.config

    def call(self, inputs, training=None):
        outputs = self.backbone(inputs, training=training)
        return self.mlm_head(outputs["sequence_output"],
                             inputs["mask_positions"])

    def get_config(self):
        return {"backbone": keras.saving.serialize_keras_object(self.backbone),
                "name": self.name,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"])
        return cls(**config)
