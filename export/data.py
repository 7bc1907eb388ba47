"""A task's text, tokenized for the export's calibration and verification.

`load_export_data` reads a task of `tinybert_tf.tasks` (or your own files):
its evaluation split verifies every variant, a random sample of its training
text calibrates full int8, and all of its training text trims the
vocabulary. `encode` tokenizes texts in batches into int32 model inputs.

Example:

```python
from export import data
from tinybert_tf.tokenizer import BertTextTokenizer
tokenizer = BertTextTokenizer(vocabulary, sequence_length=128)
export_data = data.load_export_data("bbc_news", tokenizer, max_eval=100)
export_data.eval_inputs["token_ids"].shape  # (100, 128)
```
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class ExportData:
    """Text of a task, tokenized for calibration and verification.

    `train_inputs` tokenizes `calibration_texts` (a sample of the training
    text, default: all of `train_texts`); `train_texts` is the whole training
    text (vocabulary trimming).
    """

    train_inputs: dict | None
    eval_inputs: dict
    eval_texts: list
    eval_labels: np.ndarray | None
    eval_split: str
    label_names: list | None
    train_texts: list | None = None
    calibration_texts: list | None = None

    def __post_init__(self):
        if self.calibration_texts is None:
            self.calibration_texts = self.train_texts


def encode(tokenizer, texts, batch_size=256):
    """`tokenizer(texts)` in batches, as int32 arrays [N, L]."""
    parts = [tokenizer(list(texts[i:i + batch_size]))
             for i in range(0, len(texts), batch_size)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]).astype(np.int32)
            for k in parts[0]}


def encode_optional(tokenizer, texts):
    """`encode`, or None when there are no texts."""
    return encode(tokenizer, texts) if texts else None


def load_export_data(task, tokenizer, train_file=None, eval_split="test",
                     calibration_pool=1000, max_eval=None, seed=0,
                     **task_options):
    """Loads a task: its eval split, all its training text, and a tokenized
    random sample of `calibration_pool` training texts for calibration."""
    from tinybert_tf.tasks import load_task

    if train_file is not None:
        task_options["train_file"] = train_file
    data = load_task(task, **task_options)
    if data.is_pair:
        raise ValueError(
            f"Task {data.name!r} has text pairs; MediaPipe's TextClassifier "
            "takes one text, so only single-text tasks export for Android.")
    if data.is_regression:
        raise ValueError(f"Task {data.name!r} is a regression task; only "
                         "classifiers export to TFLite here.")
    split = getattr(data, eval_split, None) or data.dev
    name = eval_split if getattr(data, eval_split, None) is not None else "dev"
    if max_eval is not None:
        split = split.take(np.arange(min(max_eval, len(split))))
    train_texts = list(data.train.text_a)
    rows = np.random.default_rng(seed).permutation(len(train_texts))
    calibration_texts = [train_texts[i]
                         for i in np.sort(rows[:calibration_pool])]
    return ExportData(
        train_inputs=encode_optional(tokenizer, calibration_texts),
        eval_inputs=encode(tokenizer, split.text_a),
        eval_texts=list(split.text_a), eval_labels=np.asarray(split.labels),
        eval_split=name, label_names=list(data.label_names),
        train_texts=train_texts, calibration_texts=calibration_texts)
