"""Classifying new text with a trained classifier: texts in, labels out.

- `read_texts`: texts given directly, from a file (.txt: one a line;
  CSV/TSV/JSONL: one column, read by `tinybert_tf.tasks`) or from a stream
  (standard input: one a line);
- `Prediction`: the top label and the probabilities of one text;
  `format_plain` and `format_json` turn it into one line of output;
- `Predictor`: a student or teacher checkpoint run by Keras, tokenized as in
  training (its vocab.txt, uncased, accents stripped, the sequence length
  the checkpoint records).

The .tflite counterpart, which needs no TensorFlow, is
`export.predictor.TFLitePredictor`; `python -m trainers.predict` runs either.
TensorFlow is imported only when a `Predictor` is built.

Example:

```python
from tinybert_tf.predict import Predictor, format_json, format_plain
predictor = Predictor("runs/bbc/student")
for prediction in predictor.predict(["the team won the game", "shares fell"]):
    print(format_plain(prediction, top=2))  # e.g. "sport  0.52  (business 0.48)  the team ..."
print(format_json(predictor.predict(texts)[0]))  # {"text": ..., "label": ..., ...}
```
"""

import dataclasses
import json
import os
import pathlib

import numpy as np

DEFAULT_SEQUENCE_LENGTH = 128
TEXT_SUFFIXES = (".txt",)
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
NO_TEXTS = ("No texts to classify: give them as arguments, in a file "
            "(--file), or on standard input, one a line.")


# ------------------------------------------------------------------ input

def _lines(text):
    return [line for line in text.splitlines() if line.strip()]


def read_text_file(path, text_column="text"):
    """The texts of a file: a .txt holds one a line (blank lines skipped);
    a .csv, .tsv, .jsonl or .json file holds them in `text_column`."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES + TABLE_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported file type {suffix!r}; use a .txt file (one "
            f"text a line) or one of {', '.join(TABLE_SUFFIXES)} with a text "
            "column.")
    if not path.is_file():
        raise FileNotFoundError(f"Text file not found: {path}")
    if suffix in TEXT_SUFFIXES:
        texts = _lines(path.read_text(encoding="utf-8-sig"))
    else:
        from tinybert_tf import tasks
        try:
            texts = tasks.read_text_column(path, text_column)
        except ValueError as error:
            if "missing column" not in str(error):
                raise
            raise ValueError(f"{error} Choose one with --text-column."
                             ) from None
    if not texts:
        raise ValueError(f"{path} holds no texts.")
    return texts


def read_texts(texts=(), file=None, text_column="text", stdin=None):
    """The texts to classify, in order: `texts` (a "-" among them stands for
    the lines of `stdin`), then those of `file`. With neither, the lines of
    `stdin` when it is not a terminal. Raises ValueError if there are none."""
    found = []
    for text in texts:
        if text == "-":
            if stdin is None:
                raise ValueError("'-' reads standard input, which is closed.")
            found += _lines(stdin.read())
        else:
            found.append(text)
    if file is not None:
        found += read_text_file(file, text_column)
    if not texts and file is None and stdin is not None and not (
            stdin.isatty()):
        found += _lines(stdin.read())
    if not any(text.strip() for text in found):
        raise ValueError(NO_TEXTS)
    return found


# ------------------------------------------------------------------ output

@dataclasses.dataclass
class Prediction:
    """One classified text.

    Args:
        text: the text as given.
        label: the most probable label.
        probabilities: {label: probability}, most probable first.
    """

    text: str
    label: str
    probabilities: dict

    def top(self, count=None):
        """The `count` most probable labels (all when None) and theirs."""
        items = list(self.probabilities.items())
        return dict(items if count is None else items[:count])


def softmax(logits):
    """Row-wise softmax in float64, as float32 [N, C]."""
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return (exp / exp.sum(-1, keepdims=True)).astype(np.float32)


def make_predictions(texts, probabilities, label_names):
    """One `Prediction` per text from probabilities [N, C]."""
    predictions = []
    for text, row in zip(texts, np.asarray(probabilities)):
        order = np.argsort(-row, kind="stable")
        ranked = {label_names[i]: float(row[i]) for i in order}
        predictions.append(Prediction(text, label_names[order[0]], ranked))
    return predictions


def format_plain(prediction, top=None, width=100):
    """`label  0.97  (other 0.02, ...)  text` on one line; the text is
    shortened to about `width` characters (0: not shortened)."""
    shown = prediction.top(top)
    first, *others = shown.items()
    line = f"{first[0]}  {first[1]:.2f}"
    if others:
        line += "  (" + ", ".join(f"{k} {p:.2f}" for k, p in others) + ")"
    text = " ".join(prediction.text.split())
    if width and len(text) > width:
        text = text[:width - 3].rstrip() + "..."
    return f"{line}  {text}"


def format_json(prediction, top=None):
    """One JSON object: text, label and probabilities {label: p}."""
    return json.dumps({
        "text": prediction.text, "label": prediction.label,
        "probabilities": {k: round(p, 6)
                          for k, p in prediction.top(top).items()}},
        ensure_ascii=False)


# ------------------------------------------------------------------ Keras

def read_classifier_checkpoint(directory):
    """The `Checkpoint` of a classifier directory; clear errors for a path
    that is missing, not a checkpoint, or a checkpoint without a head."""
    from tinybert_tf import checkpoint

    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Checkpoint directory not found: "
                                f"{directory}")
    try:
        ckpt = checkpoint.read(directory)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"{directory} is not a checkpoint directory: "
                         f"{error}") from None
    if ckpt.vocab_file is None:
        raise ValueError(f"Checkpoint {directory} has no {checkpoint.VOCAB}: "
                         "its texts cannot be tokenized.")
    if "classifier.weight" not in ckpt.weights:
        raise ValueError(
            f"Checkpoint {directory} has no classifier head (classifier.* "
            "tensors): it is a backbone, e.g. a general-distillation "
            "student. Give a task-distilled student or a fine-tuned teacher.")
    if ckpt.weights["classifier.weight"].shape[0] < 2:
        raise ValueError(f"Checkpoint {directory} is a regression model (one "
                         "output); only classifiers are supported here.")
    return ckpt


class Predictor:
    """A classifier checkpoint (student or teacher) run by Keras.

    Args:
        directory: a checkpoint with a classifier head.
        sequence_length: the tokenized length; default the
            `sequence_length` the checkpoint's `tinybert` extras record (the
            training length), else 128 (at most the model's
            max_position_embeddings).
    """

    def __init__(self, directory, sequence_length=None):
        ckpt = read_classifier_checkpoint(directory)  # before TensorFlow
        from tinybert_tf import checkpoint
        from tinybert_tf.tokenizer import BertTextTokenizer

        self.sequence_length = int(
            sequence_length or ckpt.extras.get("sequence_length")
            or min(DEFAULT_SEQUENCE_LENGTH,
                   ckpt.config.max_position_embeddings))
        self.tokenizer = BertTextTokenizer(ckpt.vocabulary(),
                                           self.sequence_length)
        self.tokenizer.check_model(ckpt.config)
        self.model = checkpoint.load_classifier(ckpt)
        self.label_names = [str(name) for name in (
            self.model.label_names or range(self.model.num_labels))]

    def probabilities(self, texts, batch_size=32):
        """Softmax probabilities [N, C] of `texts`."""
        inputs = {k: np.asarray(v) for k, v in
                  self.tokenizer(list(texts)).items()}
        return softmax(self.model.predict(inputs, batch_size=batch_size,
                                          verbose=0))

    def predict(self, texts):
        """One `Prediction` per text."""
        texts = list(texts)
        return make_predictions(texts, self.probabilities(texts),
                                self.label_names)
