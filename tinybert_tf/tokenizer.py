"""The one tokenizer path: text (or text pairs) -> fixed-length model inputs.

Built from a checkpoint's vocab.txt with keras-hub's WordPieceTokenizer and
MultiSegmentPacker, so it runs eagerly and inside `tf.data`.

Example:
>>> from tinybert_tf.tokenizer import BertTextTokenizer
>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat",
...          "sat", "mat", "on", "##s"]
>>> tokenizer = BertTextTokenizer(vocab, sequence_length=8)
>>> out = tokenizer(["The cats sat"], ["on the mat"])
>>> out["token_ids"].numpy().tolist()
[[2, 5, 6, 10, 3, 9, 5, 3]]
>>> out["segment_ids"].numpy().tolist()
[[0, 0, 0, 0, 0, 1, 1, 1]]
"""

import keras_hub
import tensorflow as tf

from tinybert_tf.checkpoint import read_vocabulary

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TRUNCATIONS = ("longest_first", "round_robin", "waterfall")


class BertTextTokenizer:
    """Lower-casing WordPiece with [CLS]/[SEP], segment ids and padding.

    Args:
        vocabulary: a list of word-pieces or the path of a vocab.txt.
        sequence_length: every output has this length (truncated, padded).
        lowercase: lower-case the text (uncased BERT).
        strip_accents: drop accents after NFD, as Hugging Face's uncased
            BertTokenizer does. The on-device MediaPipe tokenizer does not;
            see the export docs.
        truncate: how a pair too long is cut: "longest_first" (Hugging
            Face's default), "round_robin" or "waterfall" (keras-hub's;
            "waterfall" cuts the second text first).

    The text is cleaned as Hugging Face's BertNormalizer does (control
    characters dropped, every Unicode space, U+00A0 included, is a space) and
    lower-cased with `str.lower` semantics, not keras-hub's NFKC case folding
    (which turns "´" into a space plus a combining accent inside a word).
    """

    def __init__(self, vocabulary, sequence_length=128, lowercase=True,
                 strip_accents=True, truncate="longest_first"):
        if isinstance(vocabulary, str):
            vocabulary = read_vocabulary(vocabulary)
        duplicates = sorted({t for t in vocabulary if vocabulary.count(t) > 1}
                            ) if len(set(vocabulary)) < len(vocabulary) else []
        if duplicates:
            raise ValueError(f"Vocabulary has duplicate tokens: {duplicates[:10]}.")
        missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
        if missing:
            raise ValueError(f"Vocabulary lacks the special tokens {missing}.")
        if truncate not in TRUNCATIONS:
            raise ValueError(f"Unknown truncate={truncate!r}; expected one of "
                             f"{TRUNCATIONS}.")
        if sequence_length < 3:
            raise ValueError(f"sequence_length must be >= 3, got "
                             f"{sequence_length}.")
        self.vocabulary = list(vocabulary)
        self.sequence_length = sequence_length
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.truncate = truncate
        self.token_to_id = {t: i for i, t in enumerate(self.vocabulary)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.token_to_id[t] for t in SPECIAL_TOKENS)
        self.wordpiece = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=self.vocabulary, lowercase=False,
            strip_accents=strip_accents, dtype="int32")
        # longest_first trims before packing, so nothing is left to cut there.
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=sequence_length, start_value=self.cls_id,
            end_value=self.sep_id, pad_value=self.pad_id,
            truncate="waterfall" if truncate == "longest_first" else truncate)
        # Eager keras-hub calls take a pure-Python path (other text handling,
        # Python-list outputs); in a graph they take the TensorFlow one, the
        # one tf.data uses. Always run the graph so both give the same ids.
        # A fixed signature traces once per mode; autograph only slows it.
        texts = tf.TensorSpec([None], tf.string)
        graph = dict(input_signature=[texts], autograph=False)
        self._tokenize = tf.function(self._tokenize_batch, **graph)
        self._encode_single = tf.function(
            lambda text_a: self._encode_batch(text_a, None), **graph)
        self._encode_pair = tf.function(
            self._encode_batch, input_signature=[texts, texts],
            autograph=False)

    def with_sequence_length(self, sequence_length):
        """The same tokenizer with another output length."""
        return BertTextTokenizer(self.vocabulary, sequence_length,
                                 self.lowercase, self.strip_accents,
                                 self.truncate)

    def lengths(self, text_a, text_b=None):
        """Untruncated word-piece counts of each example, [CLS] and [SEP]s
        included (numpy int)."""
        import numpy as np
        counts = self.tokenize(text_a).row_lengths().numpy() + 2
        if text_b is not None:
            counts = counts + self.tokenize(text_b).row_lengths().numpy() + 1
        return np.asarray(counts)

    @property
    def vocab_size(self):
        return len(self.vocabulary)

    def check_model(self, config):
        """Raises if this tokenizer cannot feed a model with `config`."""
        if config.vocab_size != self.vocab_size:
            raise ValueError(f"The tokenizer has {self.vocab_size} word-pieces"
                             f" but the model's vocab_size is "
                             f"{config.vocab_size}.")
        if self.sequence_length > config.max_position_embeddings:
            raise ValueError(
                f"sequence_length {self.sequence_length} exceeds the model's "
                f"max_position_embeddings {config.max_position_embeddings}.")

    def normalize(self, text):
        """Hugging Face's BertNormalizer clean-up (+ lower-casing)."""
        text = tf.strings.regex_replace(
            text, r"[\x{0}\x{FFFD}]|[^\P{C}\t\n\r]", "")
        text = tf.strings.regex_replace(text, r"[\t\n\r\p{Zs}]", " ")
        if self.lowercase:
            # Hugging Face lower-cases character by character: no final-sigma
            # rule, which is the one context-dependent mapping of str.lower.
            text = tf.strings.regex_replace(text, "Σ", "σ")
            text = tf.strings.lower(text, encoding="utf-8")
        return text

    def tokenize(self, text):
        """Word-piece ids of raw text (ragged for a batch), no specials."""
        text = tf.convert_to_tensor(text)
        if text.shape.rank == 0:
            return self._tokenize(text[None])[0]
        return self._tokenize(text)

    def __call__(self, text_a, text_b=None):
        text_a = tf.convert_to_tensor(text_a)
        batched = text_a.shape.rank > 0
        text_a = text_a if batched else text_a[None]
        if text_b is None:
            outputs = self._encode_single(text_a)
        else:
            text_b = tf.convert_to_tensor(text_b)
            outputs = self._encode_pair(text_a,
                                        text_b if batched else text_b[None])
        return outputs if batched else {k: v[0] for k, v in outputs.items()}

    def _tokenize_batch(self, text):
        return self.wordpiece(self.normalize(text))

    def _encode_batch(self, text_a, text_b):
        segments = [self._tokenize_batch(text_a)]
        if text_b is not None:
            segments.append(self._tokenize_batch(text_b))
            if self.truncate == "longest_first":
                segments = _truncate_longest_first(
                    *segments, self.sequence_length - 3)
        token_ids, segment_ids = self.packer(tuple(segments))
        return {"token_ids": token_ids,
                "segment_ids": tf.cast(segment_ids, "int32"),
                "padding_mask": tf.cast(token_ids != self.pad_id, "int32")}


def _truncate_longest_first(first, second, budget):
    """Hugging Face's pair truncation: if the shorter text fits in half the
    budget it is kept and the longer one cut to the rest; otherwise each gets
    half, the odd token going to the longer text (the second on a tie)."""
    first_length, second_length = first.row_lengths(), second.row_lengths()
    shorter = tf.minimum(first_length, second_length)
    half = tf.fill(tf.shape(shorter), tf.cast(budget // 2, shorter.dtype))
    shorter_keep = tf.where(2 * shorter > budget, half, shorter)
    longer_keep = budget - shorter_keep
    first_longer = first_length > second_length
    first_keep = tf.where(first_longer, longer_keep, shorter_keep)
    second_keep = tf.where(first_longer, shorter_keep, longer_keep)
    return (_keep_first(first, tf.minimum(first_keep, first_length)),
            _keep_first(second, tf.minimum(second_keep, second_length)))


def _keep_first(ragged, counts):
    """The first `counts[i]` pieces of each row i of a [batch, (pieces)]."""
    starts = ragged.row_starts()
    kept = tf.ragged.range(starts, starts + counts).flat_values
    return tf.RaggedTensor.from_row_lengths(
        tf.gather(ragged.values, kept), counts, validate=False)
