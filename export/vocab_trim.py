"""Vocabulary trimming: keep only the word-pieces a task's training text uses.

The word-embedding table is most of a small student (30522 x 192 of the
3-layer 192-d student's 7.2M parameters). Trimming keeps the special tokens,
every single-character piece (so any word still splits into known pieces
rather than [UNK]) and the pieces of the training text, and copies their
embedding rows, in their original order, into a smaller model.

Text seen in training tokenizes to the same pieces afterwards (WordPiece
takes the longest known piece, and every piece it took before is kept);
unseen words may split into smaller pieces. `export.classifier` reports
the accuracy change.

Example:

```python
from export import vocab_trim
trimmed = vocab_trim.trim_classifier(model, vocabulary, train_texts, tokenizer)
trimmed.model.config.vocab_size, len(trimmed.vocabulary)  # the same
```
"""

import dataclasses

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass
class TrimmedClassifier:
    model: object  # the trimmed BertClassifier
    vocabulary: list  # its word-pieces
    kept_ids: np.ndarray  # new id -> old id


def is_single_character(token):
    piece = token[2:] if token.startswith("##") else token
    return len(piece) == 1


def used_ids(texts, tokenizer, batch_size=256):
    """Sorted ids of every word-piece of `texts` (no specials)."""
    ids = set()
    for start in range(0, len(texts), batch_size):
        pieces = tokenizer.tokenize(list(texts[start:start + batch_size]))
        ids.update(np.unique(pieces.flat_values.numpy()).tolist())
    return np.asarray(sorted(ids), dtype=np.int64)


def kept_ids(vocabulary, texts, tokenizer):
    """Old ids kept by trimming, ascending: specials, single characters and
    the pieces of `texts`."""
    if len(tokenizer.vocabulary) != len(vocabulary):
        raise ValueError("The tokenizer must use the vocabulary being trimmed.")
    if not len(texts):
        raise ValueError("Vocabulary trimming needs training text; got none.")
    keep = {i for i, token in enumerate(vocabulary)
            if token in SPECIAL_TOKENS or is_single_character(token)}
    keep.update(used_ids(texts, tokenizer).tolist())
    return np.asarray(sorted(keep), dtype=np.int64)


def trim_classifier(model, vocabulary, texts, tokenizer):
    """A copy of the BertClassifier `model` with only the kept word-pieces."""
    from export import quantize
    from tinybert_tf import checkpoint
    from tinybert_tf.heads import clone_classifier

    keep = kept_ids(vocabulary, texts, tokenizer)
    trimmed = clone_classifier(model, vocab_size=len(keep))
    checkpoint.copy_weights(model, trimmed, rows={
        "bert.embeddings.word_embeddings.weight": keep})
    if quantize.fake_quants(model):
        quantize.enable_fake_quant(trimmed, mask_value=None)
        quantize.load_fake_quant_ranges(trimmed,
                                        quantize.fake_quant_ranges(model))
    return TrimmedClassifier(trimmed, [vocabulary[i] for i in keep], keep)
