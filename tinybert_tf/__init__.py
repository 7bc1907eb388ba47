"""TinyBERT Transformer distillation in TensorFlow/Keras 3.

The main classes are importable from the package (`from tinybert_tf import
BertBackbone`); they are loaded on first use, so that importing a light
module (`tinybert_tf.files`, `tinybert_tf.config`) does not start TensorFlow.
"""

import importlib

_EXPORTS = {
    "BertBackbone": "tinybert_tf.backbone",
    "BertConfig": "tinybert_tf.config",
    "BertClassifier": "tinybert_tf.heads",
    "BertMaskedLM": "tinybert_tf.heads",
    "LayerMapping": "tinybert_tf.layer_mapping",
    "BertTextTokenizer": "tinybert_tf.tokenizer",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tinybert_tf' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
