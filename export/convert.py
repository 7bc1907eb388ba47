"""SavedModel -> .tflite bytes, one variant at a time.

Variants (`VARIANTS`):

- `float32`: no quantization;
- `float16`: weights stored as float16, computed in float32;
- `dynamic_int8`: int8 weights, activations quantized on the fly;
- `full_int8`: int8 weights and activations, calibrated on training text
  (`representative_dataset`); a QAT checkpoint's learned ranges are used.

`build_variant` adds the MediaPipe metadata (vocabulary + labels) to the
converted bytes: what ships.

Example:

```python
from pathlib import Path
from export import convert, signature
saved = signature.export_saved_model(model, "saved_model", 128)
content = convert.build_variant(saved, "dynamic_int8", None, vocabulary,
                                ["business", "sport"])
Path(convert.model_file_name("dynamic_int8")).write_bytes(content)
```
"""

import contextlib
import os
import sys
import tempfile
import warnings

import numpy as np

from export import metadata
from export.signature import to_tflite_inputs

VARIANTS = ("float32", "float16", "dynamic_int8", "full_int8")


def model_file_name(variant):
    return f"model_{variant}.tflite"


def check_variants(variants):
    """Variants as a tuple (from a sequence or a comma-separated string);
    refuses unknown ones."""
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(f"Unknown or no variants {unknown or variants}; "
                         f"choose among {', '.join(VARIANTS)}.")
    return tuple(dict.fromkeys(variants))


def representative_dataset(inputs, num_samples=200, seed=0):
    """A converter `representative_dataset` over rows of model inputs.

    `inputs`: dict of int arrays [N, L] (token_ids, segment_ids,
    padding_mask) from the task's training text.
    """
    size = len(inputs["token_ids"])
    if size == 0:
        raise ValueError("Full-integer int8 needs representative data: the "
                         "training text is empty.")
    rows = np.random.default_rng(seed).permutation(size)[:num_samples]
    tflite_inputs = to_tflite_inputs(inputs)

    def generate():
        for row in rows:
            yield {name: value[row:row + 1]
                   for name, value in tflite_inputs.items()}
    return generate


def convert(saved_model_dir, variant, representative_data=None):
    """One variant of a serving SavedModel as .tflite bytes (no metadata)."""
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}; expected one of "
                         f"{VARIANTS}.")
    if variant == "full_int8" and representative_data is None:
        raise ValueError("Variant full_int8 needs representative data "
                         "(training text: pass --task or --train-file).")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "full_int8":
        converter.representative_dataset = representative_data
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with quiet_stderr(), warnings.catch_warnings():
        # Calibration runs the deprecated tf.lite.Interpreter internally.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter")
        return converter.convert()


def build_variant(saved_model_dir, variant, representative_data, vocabulary,
                  label_names):
    """Converted variant with the MediaPipe metadata, as bytes."""
    return metadata.add_text_classifier_metadata(
        convert(saved_model_dir, variant, representative_data), vocabulary,
        label_names)


@contextlib.contextmanager
def quiet_stderr():
    """Silences the converter's C++ logging (MLIR dumps) unless it fails."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace")[-4000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
