"""TFLite export of tinybert_tf classifiers for Android (MediaPipe Tasks).

One concept per module, imported in this order (no module imports one
below it):

- `signature`: the Android input/output names, the serving SavedModel;
- `metadata`: the MediaPipe metadata (vocabulary + labels) of a .tflite;
- `convert`: SavedModel -> .tflite bytes per variant (+ metadata);
- `runtimes`: LiteRT, MediaPipe's TextClassifier and Keras as runners;
- `quantize`: quantization-aware training; `mask_value`: the attention
  mask constant of the export;
- `vocab_trim`: vocabulary trimming; `device_tokenizer`: what MediaPipe's
  on-device tokenizer feeds the model;
- `data`: a task's text, tokenized; `verify`: checks of a variant;
  `preflight`: the checks of flags, checkpoint, labels and output folder
  before the export, and the entries it may replace;
- `classifier`: `export_classifier` and `ExportOptions`, the whole export;
- `predictor`: classifying text with a .tflite file (LiteRT or MediaPipe,
  no TensorFlow) or a checkpoint (`python -m trainers.predict`);
- `tflite`: the command line, `python -m export.tflite`.

Project modules (tinybert_tf) are imported inside functions: their package
imports TensorFlow, which `--help` should not wait for.
"""
