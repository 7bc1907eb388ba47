"""A frozen teacher's logits on a split, computed once and kept on disk.

Step 2 of task distillation (the prediction layer) needs nothing of the
teacher but its logits on the training data, and the teacher's dev and test
scores need nothing but its logits there. Without dropout they are the same
at every epoch, so `TeacherLogits` computes them once and `Distiller` takes
them from the data: step 2 runs the student alone.

The cache key is what determines the logits: the teacher (config and every
weight), the tokenization (vocabulary, sequence length, casing, accents,
truncation) and the texts. Files: `<cache_dir>/<key>.npy`; default
directory $TINYBERT_TF_CACHE/teacher_outputs, else
~/.cache/tinybert_tf/teacher_outputs (`default_cache_dir`). A teacher that
runs with dropout (`--teacher-dropout`) gives other logits at every step:
there is no cache then.

Example (a tiny random teacher; `cache_dir=None` keeps them in memory):
>>> import numpy as np
>>> from tinybert_tf import BertBackbone, BertClassifier, BertConfig
>>> from tinybert_tf.tasks import Split
>>> from tinybert_tf.tokenizer import BertTextTokenizer
>>> from tinybert_tf.teacher_outputs import TeacherLogits
>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
>>> teacher = BertClassifier(BertBackbone(BertConfig(vocab_size=7,
...     hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16)), 2)
>>> cache = TeacherLogits(teacher, BertTextTokenizer(vocab, 8), cache_dir=None)
>>> cache.logits(Split(["good", "bad bad"], None, np.array([1, 0]))).shape
(2, 2)
"""

import os

import numpy as np

from tinybert_tf import assets, files
from tinybert_tf.augment.cache import digest, model_fingerprint, texts_digest

FORMAT_VERSION = 1


def default_cache_dir():
    return assets.cache_dir("teacher_outputs")


class TeacherLogits:
    """The logits of `teacher` on splits (`logits(split)`, float32
    [examples, labels] in the split's order), from `cache_dir` when a run
    computed them before. `cache_dir`: default `default_cache_dir()`; None
    keeps them in memory only."""

    def __init__(self, teacher, tokenizer, cache_dir="default", batch_size=64):
        self.teacher, self.tokenizer = teacher, tokenizer
        self.cache_dir = (default_cache_dir() if cache_dir == "default"
                          else cache_dir)
        self.batch_size = batch_size
        self._memory = {}
        if not teacher.built:  # its weights are part of the key
            from tinybert_tf.backbone import dummy_inputs
            teacher(dummy_inputs())

    def key(self, split):
        t = self.tokenizer
        return digest(FORMAT_VERSION, model_fingerprint(self.teacher),
                      t.vocabulary, t.sequence_length, t.lowercase,
                      t.strip_accents, t.truncate, texts_digest(split.text_a),
                      None if split.text_b is None
                      else texts_digest(split.text_b))

    def path(self, key):
        return os.path.join(self.cache_dir, f"{key}.npy")

    def logits(self, split):
        key = self.key(split)
        if key in self._memory:
            return self._memory[key]
        found = self._load(key, len(split))
        if found is None:
            found = self._compute(split)
            self._save(key, found)
        self._memory[key] = found
        return found

    def _compute(self, split):
        from tinybert_tf import training
        data = training.make_dataset(split, self.tokenizer, self.batch_size,
                                     bucketing=True)
        return training.predict(self.teacher, data)

    def _load(self, key, examples):
        if self.cache_dir is None or not os.path.isfile(self.path(key)):
            return None
        try:
            found = np.load(self.path(key), allow_pickle=False)
        except (OSError, ValueError):  # a damaged file: computed again
            return None
        return found if len(found) == examples else None

    def _save(self, key, logits):
        if self.cache_dir is None:
            return
        with files.staged_file(self.path(key), "wb") as out:
            np.save(out, logits, allow_pickle=False)
