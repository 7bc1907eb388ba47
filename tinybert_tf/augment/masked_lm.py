"""Top-K masked-LM predictions for many masked words at once.

The official code runs one BERT forward at batch 1 per masked word (and the
MLM head at every position). Here every (sentence, word) request becomes one
row "[CLS] masked [SEP] original [SEP]"; rows of all sentences are sorted by
length, padded to a multiple of `length_multiple` and batched by a token
budget, then go through ONE traced `tf.function` (dynamic shapes, so no
retracing) that runs the encoder, the MLM head only at the masked position,
and `tf.math.top_k`. Only [rows, K] ids leave the graph.

Example:
>>> import keras, numpy as np
>>> from tinybert_tf.backbone import BertBackbone
>>> from tinybert_tf.config import BertConfig
>>> from tinybert_tf.heads import BertMaskedLM
>>> from tinybert_tf.augment.masked_lm import MaskedLMCandidates, build_row
>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##c"]
>>> build_row([5, 6, 7], 1, cls=2, sep=3, mask=4)
([2, 5, 4, 7, 3, 5, 6, 7, 3], [0, 0, 0, 0, 0, 1, 1, 1, 1], 2)
>>> keras.utils.set_random_seed(0)
>>> mlm = BertMaskedLM(BertBackbone(BertConfig(
...     vocab_size=8, hidden_size=8, num_layers=1, num_heads=2,
...     intermediate_size=16)))
>>> _ = mlm({"token_ids": np.ones((1, 4), "int32"),
...          "segment_ids": np.zeros((1, 4), "int32"),
...          "padding_mask": np.ones((1, 4), "int32"),
...          "mask_positions": np.zeros((1, 1), "int32")})
>>> predict = MaskedLMCandidates(mlm, vocab, top_k=3)
>>> [len(c) <= 3 for c in predict([([5, 6, 7], 0), ([5, 6], 1)])]
[True, True]
"""

import math
import sys

import numpy as np
import tensorflow as tf
from keras import ops
from tqdm.auto import tqdm

from tinybert_tf import console


def build_row(piece_ids, position, cls, sep, mask, mode="pair",
              max_length=512):
    """One masked-LM input: (token ids, segment ids, index of [MASK]).

    `piece_ids` are the sentence's word-pieces, `position` the piece to mask.
    mode "pair": [CLS] masked [SEP] original [SEP], segments 0 then 1 (the
    official input); "masked": [CLS] masked [SEP]. When that is longer than
    `max_length`, both copies are cut to the same window of pieces around
    the masked one, so the masked word is always kept.
    """
    width = (max_length - 3) // 2 if mode == "pair" else max_length - 2
    pieces = list(piece_ids)
    if len(pieces) > width:
        start = min(max(0, position - width // 2), len(pieces) - width)
        pieces = pieces[start:start + width]
        position -= start
    masked = list(pieces)
    masked[position] = mask
    tokens = [cls] + masked + [sep]
    segments = [0] * len(tokens)
    if mode == "pair":
        tokens += pieces + [sep]
        segments += [1] * (len(pieces) + 1)
    return tokens, segments, position + 1


class MaskedLMCandidates:
    """Callable: requests [(piece ids, piece to mask)] -> candidate words.

    Args:
        mlm: a built `tinybert_tf.heads.BertMaskedLM`.
        vocabulary: its word-pieces (list), in id order.
        top_k: K predictions per request; pieces starting with ## are then
            dropped (so a request gets at most K words).
        mode, max_length: see `build_row`.
        dtype: "bfloat16" runs a bfloat16 copy of the encoder (the MLM head
            and the top-k stay float32).
        tokens_per_batch, length_multiple: batching (speed only).
    """

    def __init__(self, mlm, vocabulary, top_k=15, mode="pair",
                 max_length=512, dtype="float32", tokens_per_batch=8192,
                 length_multiple=8):
        config = mlm.config
        if len(vocabulary) != config.vocab_size:
            raise ValueError(
                f"The vocabulary has {len(vocabulary)} word-pieces but the "
                f"masked LM's vocab_size is {config.vocab_size}: the masked LM"
                " must be fed with its own vocabulary.")
        self.vocabulary = list(vocabulary)
        index = {piece: i for i, piece in enumerate(self.vocabulary)}
        self.cls, self.sep, self.mask = (index[t] for t in
                                         ("[CLS]", "[SEP]", "[MASK]"))
        self.is_continuation = np.array(
            [piece.startswith("##") for piece in self.vocabulary])
        self.top_k = min(top_k, config.vocab_size)
        self.mode = mode
        self.max_positions = config.max_position_embeddings
        self.max_length = min(max_length, self.max_positions)
        self.tokens_per_batch = tokens_per_batch
        self.length_multiple = length_multiple
        encoder = mlm.backbone
        if dtype == "bfloat16":
            encoder = _bfloat16_copy(mlm.backbone)
        self._top_k_ids = _top_k_function(encoder, mlm.mlm_head, self.top_k)

    def __call__(self, requests, progress=False):
        ids = self.top_ids(requests, progress)
        return [[self.vocabulary[i] for i in row if not self.is_continuation[i]]
                for row in ids]

    def top_ids(self, requests, progress=False):
        """[len(requests), K] int32 ids of the top-K predictions, best first."""
        lengths = [self.row_length(len(pieces)) for pieces, _ in requests]
        out = np.zeros((len(requests), self.top_k), np.int32)
        with tqdm(total=len(requests), unit="word", desc="masked LM",
                  disable=not (progress and console.interactive(sys.stderr)),
                  leave=False) as bar:
            for batch in self.batches(lengths):
                rows = [build_row(*requests[i], self.cls, self.sep, self.mask,
                                  self.mode, self.max_length) for i in batch]
                out[batch] = self._run(rows)
                bar.update(len(batch))
        return out

    def row_length(self, num_pieces):
        """Length of `build_row`'s output for a sentence of num_pieces."""
        if self.mode == "pair":
            return 2 * min(num_pieces, (self.max_length - 3) // 2) + 3
        return min(num_pieces, self.max_length - 2) + 2

    def padded_length(self, length):
        multiple = self.length_multiple
        return min(math.ceil(length / multiple) * multiple, self.max_positions)

    def batches(self, lengths):
        """Row indices grouped by padded length, at most tokens_per_batch."""
        order = np.argsort(np.asarray(lengths), kind="stable")
        batch, batch_length = [], None
        for i in order:
            length = self.padded_length(lengths[i])
            size = max(1, self.tokens_per_batch // length)
            if batch and (length != batch_length or len(batch) == size):
                yield batch
                batch = []
            batch.append(int(i))
            batch_length = length
        if batch:
            yield batch

    def _run(self, rows):
        length = self.padded_length(max(len(r[0]) for r in rows))
        token_ids = np.zeros((len(rows), length), np.int32)
        segment_ids = np.zeros_like(token_ids)
        padding_mask = np.zeros_like(token_ids)
        positions = np.zeros((len(rows), 1), np.int32)
        for i, (tokens, segments, position) in enumerate(rows):
            token_ids[i, :len(tokens)] = tokens
            segment_ids[i, :len(tokens)] = segments
            padding_mask[i, :len(tokens)] = 1
            positions[i, 0] = position
        return self._top_k_ids(token_ids, segment_ids, padding_mask,
                               positions).numpy()


def _top_k_function(encoder, head, k):
    matrix = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[matrix, matrix, matrix,
                                  tf.TensorSpec([None, 1], tf.int32)],
                 autograph=False)
    def top_k_ids(token_ids, segment_ids, padding_mask, mask_positions):
        sequence = encoder({"token_ids": token_ids, "segment_ids": segment_ids,
                            "padding_mask": padding_mask},
                           training=False)["sequence_output"]
        logits = head(ops.cast(sequence, head.compute_dtype), mask_positions)
        return tf.math.top_k(tf.cast(logits[:, 0], tf.float32), k).indices

    return top_k_ids


def _bfloat16_copy(backbone):
    """The same encoder under Keras' mixed_bfloat16 policy."""
    from tinybert_tf.backbone import BertBackbone, dummy_inputs
    copy = BertBackbone(backbone.config, dtype="mixed_bfloat16")
    copy(dummy_inputs())
    copy.set_weights(backbone.get_weights())
    return copy
