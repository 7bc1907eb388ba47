"""Tiny models and data shared by the tests."""

import numpy as np

from tinybert_tf import checkpoint
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.config import BertConfig

WORDS = ("the a cat dog sat ran on mat park city news market sport "
         "game team won lost rose fell price shares film music play").split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS


def tiny_config(**overrides):
    values = dict(vocab_size=len(VOCAB), hidden_size=16, num_layers=2,
                  num_heads=2, intermediate_size=32, max_position_embeddings=64,
                  hidden_dropout=0.0, attention_dropout=0.0)
    values.update(overrides)
    return BertConfig(**values)


def save_tiny_backbone(directory, **overrides):
    model = BertBackbone(tiny_config(**overrides))
    model(dummy_inputs())
    checkpoint.save(model, directory, VOCAB)
    return directory


def tiny_corpus(path, documents=12, seed=0):
    """Blank-line separated documents of random sentences from WORDS."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for _ in range(documents):
            sentences = [" ".join(rng.choice(WORDS, rng.integers(4, 9))).capitalize() + "."
                         for _ in range(rng.integers(3, 7))]
            f.write(" ".join(sentences) + "\n\n")
    return path
