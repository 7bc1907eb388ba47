"""What MediaPipe's on-device tokenizer really feeds the model.

MediaPipe Tasks' TextClassifier tokenizes on the device with the WordPiece
vocabulary from the model's metadata. It lower-cases ASCII only and does not
strip accents ("café" -> [UNK] where Hugging Face's uncased tokenizer gives
"cafe"). To measure the difference on real text, `device_token_ids` runs
MediaPipe itself on a probe model whose "class scores" are its own inputs
(score of class i = 4 * word id + 2 * mask + segment id at position i), so
the ids come back exactly.

`app_normalize` is the normalisation an app applies before `classify` to
match a model trained with accent stripping (the project's default); the
Kotlin equivalent is in docs/export.md.

Example:

```python
from export import device_tokenizer
ids = device_tokenizer.device_token_ids(["Café au lait"], vocabulary, 16)
device_tokenizer.compare(texts, vocabulary, 128)  # counts of differing texts
```
"""

import os
import tempfile
import unicodedata

import numpy as np

from export import metadata
from export.signature import INPUT_NAMES, OUTPUT_NAME, SIGNATURE


def app_normalize(text):
    """Lower-case, NFD, drop combining marks: Hugging Face's uncased clean-up.

    Kotlin: Normalizer.normalize(text.lowercase(), Normalizer.Form.NFD)
            .replace(Regex("\\\\p{Mn}+"), "")
    """
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def probe_model(vocabulary, sequence_length):
    """A .tflite (with MediaPipe metadata) that returns its own inputs."""
    import tensorflow as tf

    spec = [tf.TensorSpec([1, sequence_length], tf.int32, name=name)
            for name in INPUT_NAMES]

    class Probe(tf.Module):
        @tf.function(input_signature=spec)
        def serve(self, input_word_ids, input_mask, input_type_ids):
            scores = 4 * input_word_ids + 2 * input_mask + input_type_ids
            return {OUTPUT_NAME: tf.cast(scores, tf.float32)}

    probe = Probe()
    with tempfile.TemporaryDirectory() as directory:
        tf.saved_model.save(probe, directory,
                            signatures={SIGNATURE: probe.serve})
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        content = converter.convert()
    return metadata.add_text_classifier_metadata(
        content, vocabulary, [str(i) for i in range(sequence_length)])


def device_inputs(texts, vocabulary, sequence_length):
    """MediaPipe's model inputs for `texts`: dict of int32 [N, L] arrays
    token_ids / padding_mask / segment_ids."""
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    from tinybert_tf import console

    content = probe_model(vocabulary, sequence_length)
    scores = np.zeros((len(texts), sequence_length), np.int64)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "probe.tflite")
        with open(path, "wb") as f:
            f.write(content)
        options = text.TextClassifierOptions(
            base_options=BaseOptions(model_asset_path=path))
        # MediaPipe's TFLite announces its XNNPACK delegate, whatever the level.
        with console.native_output_captured():
            classifier = text.TextClassifier.create_from_options(options)
        with classifier:
            for row, item in enumerate(texts):
                result = classifier.classify(item)
                for category in result.classifications[0].categories:
                    scores[row, category.index] = round(category.score)
    return {"token_ids": (scores // 4).astype(np.int32),
            "padding_mask": ((scores // 2) % 2).astype(np.int32),
            "segment_ids": (scores % 2).astype(np.int32)}


def device_token_ids(texts, vocabulary, sequence_length):
    """Word-piece ids [N, L] that MediaPipe feeds the model for `texts`."""
    return device_inputs(texts, vocabulary, sequence_length)["token_ids"]


def compare(texts, vocabulary, sequence_length, device_ids=None):
    """How many `texts` get other ids on the device than in training.

    Returns counts for the training tokenizer with accent stripping (the
    default) and without it, and for accent stripping when the app applies
    `app_normalize` first.
    """
    from tinybert_tf.tokenizer import BertTextTokenizer

    texts = list(texts)
    if device_ids is None:
        device_ids = device_token_ids(texts, vocabulary, sequence_length)
    normalized_ids = device_token_ids([app_normalize(t) for t in texts],
                                      vocabulary, sequence_length)

    def differing(ids, other):
        return int(np.sum(np.any(ids != other, axis=1)))

    counts = {"texts": len(texts)}
    for strip in (True, False):
        ours = BertTextTokenizer(vocabulary, sequence_length,
                                 strip_accents=strip)(texts)["token_ids"]
        ours = np.asarray(ours)
        counts[f"differ_strip_accents_{strip}"] = differing(ours, device_ids)
        if strip:
            counts["differ_strip_accents_True_app_normalized"] = differing(
                ours, normalized_ids)
    return counts
