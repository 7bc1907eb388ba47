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


class BertTextTokenizer:
    """Lower-casing WordPiece with [CLS]/[SEP], segment ids and padding.

    Args:
        vocabulary: a list of word-pieces or the path of a vocab.txt.
        sequence_length: every output has this length (truncated, padded).
        lowercase: lower-case the text (uncased BERT).
        strip_accents: drop accents after NFD, as Hugging Face's uncased
            BertTokenizer does. The on-device MediaPipe tokenizer does not;
            see the export docs.
        truncate: "round_robin" (Hugging Face's "longest_first") or
            "waterfall" (cut the second text first).
    """

    def __init__(self, vocabulary, sequence_length=128, lowercase=True,
                 strip_accents=True, truncate="round_robin"):
        if isinstance(vocabulary, str):
            vocabulary = read_vocabulary(vocabulary)
        missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
        if missing:
            raise ValueError(f"Vocabulary lacks the special tokens {missing}.")
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
            vocabulary=self.vocabulary, lowercase=lowercase,
            strip_accents=strip_accents, dtype="int32")
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=sequence_length, start_value=self.cls_id,
            end_value=self.sep_id, pad_value=self.pad_id, truncate=truncate)

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

    def tokenize(self, text):
        """Word-piece ids of raw text (ragged for a batch), no specials."""
        return self.wordpiece(text)

    def __call__(self, text_a, text_b=None):
        segments = [self.wordpiece(tf.convert_to_tensor(text_a))]
        if text_b is not None:
            segments.append(self.wordpiece(tf.convert_to_tensor(text_b)))
        token_ids, segment_ids = self.packer(tuple(segments))
        return {"token_ids": token_ids,
                "segment_ids": tf.cast(segment_ids, "int32"),
                "padding_mask": tf.cast(token_ids != self.pad_id, "int32")}
