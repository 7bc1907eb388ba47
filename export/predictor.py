"""Classifying text with an exported .tflite file, without TensorFlow.

- `WordPieceEncoder`: the training tokenization (`BertTextTokenizer`:
  uncased, accents stripped, [CLS] ... [SEP], truncated and padded to L)
  with Hugging Face `tokenizers` instead of TensorFlow;
- `TFLitePredictor`: a .tflite file of `python -m export.tflite`; the
  vocabulary and label names come from its metadata, the sequence length
  is the file's. LiteRT runs it (`runtime="litert"`), or MediaPipe's
  TextClassifier (`runtime="mediapipe"`, the Android runtime, which
  tokenizes itself and does not strip accents: docs/export.md);
- `open_predictor`: a `TFLitePredictor` for a .tflite file, a
  `tinybert_tf.predict.Predictor` (Keras) for a checkpoint directory.

Only the MediaPipe runtime and checkpoints import TensorFlow.

Example:

```python
from export.predictor import TFLitePredictor, open_predictor
predictor = TFLitePredictor("runs/bbc/tflite/model_dynamic_int8.tflite")
predictor.label_names, predictor.sequence_length  # (['business', 'sport'], 128)
[p.label for p in predictor.predict(texts)]
open_predictor("runs/bbc/student").predict(["shares fell"])[0].probabilities
```
"""

import os
import zipfile

import numpy as np

from export import metadata
from export.runtimes import LiteRTClassifier, mediapipe_probabilities
from tinybert_tf.predict import Predictor, make_predictions

RUNTIMES = ("litert", "mediapipe")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
# A word longer than this (UTF-8 bytes) is [UNK]: TensorFlow Text's
# WordPiece limit, which BertTextTokenizer has (Hugging Face counts
# characters instead).
MAX_BYTES_PER_WORD = 100


class WordPieceEncoder:
    """`BertTextTokenizer`'s ids for single texts, without TensorFlow.

    Hugging Face's BertNormalizer (control characters dropped, spaces
    unified, lower-cased, accents stripped) and BertPreTokenizer
    (whitespace and punctuation), then greedy WordPiece per word.

    Args:
        vocabulary: the word-pieces, id = index.
        sequence_length: every output row has this length.
        lowercase, strip_accents: as in `BertTextTokenizer`.
    """

    def __init__(self, vocabulary, sequence_length, lowercase=True,
                 strip_accents=True):
        from tokenizers import normalizers, pre_tokenizers
        from tokenizers.models import WordPiece

        vocabulary = list(vocabulary)
        if len(set(vocabulary)) < len(vocabulary):
            raise ValueError("The vocabulary has duplicate tokens.")
        missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
        if missing:
            raise ValueError(f"The vocabulary lacks the special tokens "
                             f"{missing}.")
        if sequence_length < 3:
            raise ValueError(f"sequence_length must be >= 3, got "
                             f"{sequence_length}.")
        ids = {token: i for i, token in enumerate(vocabulary)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id = (
            ids[t] for t in SPECIAL_TOKENS)
        self.sequence_length = sequence_length
        self.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True,
            strip_accents=strip_accents, lowercase=lowercase)
        self.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self.wordpiece = WordPiece(ids, unk_token="[UNK]",
                                   max_input_chars_per_word=MAX_BYTES_PER_WORD)

    def tokenize(self, text):
        """Word-piece ids of one text, no special tokens, not truncated."""
        words = self.pre_tokenizer.pre_tokenize_str(
            self.normalizer.normalize_str(text))
        pieces = []
        for word, _ in words:
            if len(word.encode("utf-8")) > MAX_BYTES_PER_WORD:
                pieces.append(self.unk_id)
            else:
                pieces += [token.id for token in self.wordpiece.tokenize(word)]
        return pieces

    def __call__(self, texts):
        """int32 [N, L] token_ids, padding_mask and segment_ids."""
        length = self.sequence_length
        token_ids = np.full((len(texts), length), self.pad_id, np.int32)
        for row, text in enumerate(texts):
            ids = [self.cls_id, *self.tokenize(text)[:length - 2],
                   self.sep_id]
            token_ids[row, :len(ids)] = ids
        mask = (token_ids != self.pad_id).astype(np.int32)
        return {"token_ids": token_ids, "padding_mask": mask,
                "segment_ids": np.zeros_like(token_ids)}


def _read_metadata(path, content):
    try:
        vocabulary = metadata.read_vocabulary(content)
        label_names = metadata.read_label_names(content)
    except (zipfile.BadZipFile, KeyError):
        raise ValueError(
            f"{path} has no classifier metadata (vocab.txt and labels.txt): "
            "it cannot be tokenized. Export it with python -m export.tflite, "
            "which writes them.") from None
    if not vocabulary or not label_names:
        raise ValueError(f"{path}: the metadata's vocabulary or label names "
                         "are empty.")
    return vocabulary, label_names


class TFLitePredictor:
    """An exported .tflite classifier, run by LiteRT or MediaPipe.

    Args:
        path: a .tflite file written by `python -m export.tflite` (the
            Android signature and the MediaPipe metadata).
        runtime: "litert" (tokenized here, as in training) or "mediapipe"
            (MediaPipe's TextClassifier, which tokenizes the raw text).
        num_threads: LiteRT threads.
    """

    def __init__(self, path, runtime="litert", num_threads=1):
        if runtime not in RUNTIMES:
            raise ValueError(f"Unknown runtime {runtime!r}; expected one of "
                             f"{RUNTIMES}.")
        self.path, self.runtime = os.fspath(path), runtime
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"Model file not found: {self.path}")
        with open(self.path, "rb") as f:
            content = f.read()
        try:
            self.classifier = LiteRTClassifier(content, num_threads)
        except (ValueError, RuntimeError, KeyError) as error:
            raise ValueError(f"{self.path} is not a classifier exported by "
                             f"python -m export.tflite: {error}") from None
        self.vocabulary, self.label_names = _read_metadata(self.path, content)
        self.sequence_length = self.classifier.sequence_length
        self.encoder = WordPieceEncoder(self.vocabulary, self.sequence_length)

    def probabilities(self, texts):
        """Probabilities [N, C] of `texts`."""
        texts = list(texts)
        if self.runtime == "mediapipe":
            try:
                return mediapipe_probabilities(self.path, texts,
                                               len(self.label_names))
            except ImportError as error:
                raise ImportError(
                    f"--runtime mediapipe needs MediaPipe ({error}); "
                    "install it with pip install mediapipe==1.2.2, or use "
                    "the default LiteRT runtime.") from None
        return self.classifier.predict(self.encoder(texts))

    def predict(self, texts):
        """One `tinybert_tf.predict.Prediction` per text."""
        texts = list(texts)
        return make_predictions(texts, self.probabilities(texts),
                                self.label_names)


def open_predictor(model, runtime=None, sequence_length=None):
    """A predictor for `model`: a checkpoint directory (Keras; `runtime`
    None or "keras") or a .tflite file (`runtime` "litert", the default, or
    "mediapipe"). A .tflite file's sequence length is fixed: a different
    `sequence_length` is an error."""
    model = os.fspath(model)
    if not os.path.exists(model):
        raise FileNotFoundError(f"Model not found: {model} (expected a "
                                "checkpoint directory or a .tflite file).")
    if os.path.isdir(model):
        if runtime not in (None, "keras"):
            raise ValueError(f"Runtime {runtime!r} runs .tflite files; "
                             f"{model} is a checkpoint directory (run by "
                             "Keras).")
        return Predictor(model, sequence_length)
    if not model.lower().endswith(".tflite"):
        raise ValueError(f"{model} is neither a checkpoint directory nor a "
                         ".tflite file.")
    predictor = TFLitePredictor(model, runtime or "litert")
    if sequence_length and sequence_length != predictor.sequence_length:
        raise ValueError(f"{model} takes sequences of exactly "
                         f"{predictor.sequence_length} tokens (fixed at "
                         f"export); got sequence_length {sequence_length}.")
    return predictor
