"""TinyBERT Transformer distillation in TensorFlow/Keras 3."""

from tinybert_tf.backbone import BertBackbone
from tinybert_tf.config import BertConfig
from tinybert_tf.heads import BertClassifier, BertMaskedLM
from tinybert_tf.layer_mapping import LayerMapping
from tinybert_tf.tokenizer import BertTextTokenizer
