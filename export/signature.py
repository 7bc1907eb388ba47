"""The Android serving signature every exported classifier has.

MediaPipe's TextClassifier (and the Task Library's BertNLClassifier) expects

- three int32 inputs [1, L] named `input_word_ids`, `input_mask`,
  `input_type_ids` (TFLite tensors `serving_default_input_word_ids:0`, ...),
- one float32 output `probabilities` [1, num_labels] (softmax).

`export_saved_model` writes that signature for a tinybert_tf BertClassifier
with `keras.export.ExportArchive` (`TFLiteConverter.from_keras_model` fails
on subclassed Keras 3 models); the converter (export/convert.py) reads it.

Example:

```python
from export import signature
signature.to_tflite_inputs({"token_ids": [[2, 5, 3]],
                            "padding_mask": [[1, 1, 1]],
                            "segment_ids": [[0, 0, 0]]})
# {'input_word_ids': array([[2, 5, 3]], dtype=int32), ...}
```
"""

import numpy as np

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
# Model inputs of tinybert_tf models, in the order of INPUT_NAMES.
MODEL_INPUT_NAMES = ("token_ids", "padding_mask", "segment_ids")
OUTPUT_NAME = "probabilities"
SIGNATURE = "serving_default"
DEFAULT_SEQUENCE_LENGTH = 128


def export_sequence_length(given, extras):
    """`given`, else the student's training length (its checkpoint's
    `sequence_length` extra), else DEFAULT_SEQUENCE_LENGTH."""
    if given is not None:
        return int(given)
    return int(extras.get("sequence_length") or DEFAULT_SEQUENCE_LENGTH)


def to_model_inputs(inputs):
    """TFLite-named inputs -> the dict tinybert_tf models take."""
    return {model: inputs[tflite]
            for tflite, model in zip(INPUT_NAMES, MODEL_INPUT_NAMES)}


def to_tflite_inputs(inputs):
    """tinybert_tf model inputs -> TFLite-named int32 arrays."""
    return {tflite: np.asarray(inputs[model], np.int32)
            for tflite, model in zip(INPUT_NAMES, MODEL_INPUT_NAMES)}


def export_saved_model(model, directory, sequence_length):
    """Writes the serving SavedModel of a BertClassifier.

    Signature `serving_default`: int32 [1, sequence_length] inputs
    input_word_ids / input_mask / input_type_ids -> {"probabilities"}.
    """
    import keras
    import tensorflow as tf

    check_sequence_length(model.config, sequence_length)
    if model.num_labels < 2:
        raise ValueError("Only classifiers export to TFLite here: the model "
                         "is a regression head (num_labels=1), which "
                         "MediaPipe's TextClassifier cannot serve.")

    def serve(input_word_ids, input_mask, input_type_ids):
        logits = model(to_model_inputs({
            "input_word_ids": input_word_ids, "input_mask": input_mask,
            "input_type_ids": input_type_ids}), training=False)
        return {OUTPUT_NAME: tf.nn.softmax(tf.cast(logits, tf.float32), -1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=[
        tf.TensorSpec([1, sequence_length], tf.int32, name=name)
        for name in INPUT_NAMES])
    archive.write_out(directory, verbose=False)
    return directory


def check_sequence_length(config, sequence_length):
    if sequence_length < 3:
        raise ValueError(f"sequence_length must be >= 3, got {sequence_length}.")
    if sequence_length > config.max_position_embeddings:
        raise ValueError(
            f"sequence_length {sequence_length} exceeds the model's "
            f"max_position_embeddings={config.max_position_embeddings}.")
