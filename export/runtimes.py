"""Running a classifier: LiteRT, MediaPipe's TextClassifier, and Keras.

- `LiteRTClassifier`: an exported .tflite with LiteRT (`ai_edge_litert`),
  batch 1, on our tokenizer's ids;
- `mediapipe_top_classes`, `mediapipe_probabilities`: the .tflite in
  MediaPipe's TextClassifier (the Android runtime), which tokenizes the raw
  text itself;
- `keras_probabilities`: the Keras student's softmax, the reference.

Example:

```python
from pathlib import Path
from export import runtimes
path = "runs/bbc/tflite/model_dynamic_int8.tflite"
runner = runtimes.LiteRTClassifier(Path(path).read_bytes())
probabilities = runner.predict(tokenizer(["some text"]))  # [1, C]
runtimes.mediapipe_top_classes(path, ["some text"])  # [top class index]
runtimes.mediapipe_probabilities(path, ["some text"], 2)  # [1, C]
```
"""

import os
import time

import numpy as np

from export.signature import INPUT_NAMES, OUTPUT_NAME, SIGNATURE
from export.signature import to_tflite_inputs
from tinybert_tf.predict import softmax


class LiteRTClassifier:
    """Runs an exported classifier with LiteRT (`ai_edge_litert`), batch 1.

    Example:

    ```python
    runner = LiteRTClassifier(open("model_dynamic_int8.tflite", "rb").read())
    probabilities = runner.predict(tokenizer(["some text"]))
    ```
    """

    def __init__(self, model_content, num_threads=1):
        from ai_edge_litert.interpreter import Interpreter

        from tinybert_tf import console

        self.interpreter = Interpreter(model_content=bytes(model_content),
                                       num_threads=num_threads)
        # The first allocation applies the XNNPACK delegate, which LiteRT
        # announces whatever the log level.
        with console.native_output_captured():
            self.interpreter.allocate_tensors()
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        details = self.runner.get_input_details()
        self.sequence_length = int(details[INPUT_NAMES[0]]["shape"][1])

    def predict_one(self, tflite_inputs):
        return self.runner(**tflite_inputs)[OUTPUT_NAME][0]

    def predict(self, inputs):
        """Probabilities [N, C] for model inputs (dict of [N, L] arrays)."""
        tflite_inputs = to_tflite_inputs(inputs)
        length = tflite_inputs[INPUT_NAMES[0]].shape[1]
        if length != self.sequence_length:
            raise ValueError(f"Inputs have length {length}; the model takes "
                             f"{self.sequence_length}.")
        rows = len(tflite_inputs[INPUT_NAMES[0]])
        return np.stack([self.predict_one(
            {k: v[i:i + 1] for k, v in tflite_inputs.items()})
            for i in range(rows)])

    def median_latency_ms(self, inputs, runs=50, warmup=5):
        """Median wall time of one invoke at batch 1 (first row of inputs)."""
        one = {k: v[:1] for k, v in to_tflite_inputs(inputs).items()}
        for _ in range(warmup):
            self.predict_one(one)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.predict_one(one)
            times.append(time.perf_counter() - start)
        return 1000.0 * float(np.median(times))


def keras_probabilities(model, inputs, batch_size=32):
    """Softmax of a Keras classifier's logits, [N, C] float32."""
    return softmax(model.predict(dict(inputs), batch_size=batch_size,
                                 verbose=0))


def mediapipe_top_classes(model_path, texts):
    """Top category index for each text with MediaPipe's TextClassifier."""
    return [max(scores, key=scores.get)
            for scores in _mediapipe_scores(model_path, texts)]


def mediapipe_probabilities(model_path, texts, num_labels):
    """Every category's score [N, C] for `texts` with MediaPipe's
    TextClassifier (the softmax probabilities of an exported classifier)."""
    probabilities = np.zeros((len(texts), num_labels), np.float32)
    for row, scores in enumerate(_mediapipe_scores(model_path, texts)):
        for index, score in scores.items():
            probabilities[row, index] = score
    return probabilities


def _mediapipe_scores(model_path, texts):
    """{category index: score} of each text, MediaPipe's TextClassifier."""
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    from tinybert_tf import console

    options = text.TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=os.fspath(model_path)))
    # MediaPipe's TFLite announces its XNNPACK delegate, whatever the level.
    with console.native_output_captured():
        classifier = text.TextClassifier.create_from_options(options)
    with classifier:
        return [{c.index: c.score
                 for c in classifier.classify(t).classifications[0].categories}
                for t in texts]
