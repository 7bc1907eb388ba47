"""SavedModel -> .tflite bytes, one variant at a time.

Variants (`VARIANTS`):

- `float32`: no quantization;
- `float16`: weights stored as float16, computed in float32;
- `dynamic_int8`: int8 weights, activations quantized on the fly;
- `full_int8`: int8 weights and activations, calibrated on training text
  (`representative_dataset`); a QAT checkpoint's learned ranges are used.
  By default the ops of `FLOAT_OPS` (attention core, LayerNorm, GELU, the
  mask and pooling arithmetic) stay float32 between DEQUANTIZE/QUANTIZE
  pairs: LiteRT's CPU delegate (XNNPACK) has no int8 kernel for most of
  them, and the builtin int8 fallbacks made the file 4x slower than
  dynamic_int8 (docs/export.md). `integer_only=True` quantizes every op that
  has an int8 kernel (for integer-only NPU/DSP/Edge TPU delegates).

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
# Ops that full_int8 keeps in float32 (unless integer_only): XNNPACK takes
# none of BATCH_MATMUL (activation x activation), SOFTMAX, GELU,
# SQUARED_DIFFERENCE, RSQRT, DIV in int8 (TFLite's builtin int8 kernels run
# instead, up to 75x slower); MEAN, NEG, MUL, ADD, SUB, SUM and MAXIMUM sit
# in the same LayerNorm / attention / mask / pooling chains, where int8
# would put a DEQUANTIZE-QUANTIZE pair between every two ops.
# What stays int8: FULLY_CONNECTED (every weight matrix), the embedding
# GATHERs and the RESHAPE/TRANSPOSEs between them.
FLOAT_OPS = ("BATCH_MATMUL", "SOFTMAX", "GELU", "MEAN", "SQUARED_DIFFERENCE",
             "RSQRT", "NEG", "MUL", "ADD", "SUB", "DIV", "SUM", "MAXIMUM")


def model_file_name(variant):
    return f"model_{variant}.tflite"


def check_variants(variants, known=VARIANTS):
    """Variants as a tuple (from a sequence or a comma-separated string);
    refuses those not in `known`."""
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in known]
    if unknown or not variants:
        raise ValueError(f"Unknown or no variants {unknown or variants}; "
                         f"choose among {', '.join(known)}.")
    return tuple(dict.fromkeys(variants))


def representative_dataset(inputs, num_samples=200, seed=0):
    """A converter `representative_dataset` over rows of model inputs.

    `inputs`: dict of int arrays [N, L] (token_ids, segment_ids,
    padding_mask) from the task's training text. Every second row is also
    cut short (`_cut_short`), so that calibration sees padding even when
    every training text fills the L tokens (BBC articles): else the int8
    range of the attention mask is [0, 0] and a padded key is not masked.
    """
    size = len(inputs["token_ids"])
    if size == 0:
        raise ValueError("Full-integer int8 needs representative data: the "
                         "training text is empty.")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(size)[:num_samples]
    tflite_inputs = to_tflite_inputs(inputs)
    lengths = tflite_inputs["input_mask"].sum(1)
    cuts = {row: int(rng.integers(1, lengths[row]))
            for row in rows[1::2] if lengths[row] > 1}

    def generate():
        for row in rows:
            one = {name: value[row:row + 1]
                   for name, value in tflite_inputs.items()}
            yield _cut_short(one, cuts[row]) if row in cuts else one
    return generate


def _cut_short(one, length):
    """A batch-1 row of TFLite inputs truncated to `length` tokens: its last
    token ([SEP]) moved to position length - 1, the rest padding."""
    real = int(one["input_mask"].sum())
    cut = {name: value.copy() for name, value in one.items()}
    for value in cut.values():
        value[:, length:] = 0
    cut["input_word_ids"][0, length - 1] = one["input_word_ids"][0, real - 1]
    return cut


def convert(saved_model_dir, variant, representative_data=None,
            integer_only=False):
    """One variant of a serving SavedModel as .tflite bytes (no metadata).

    `integer_only` (full_int8 only): every op in int8 where TFLite has an
    int8 kernel, those of `FLOAT_OPS` too.
    """
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
        if variant != "full_int8" or integer_only:
            return converter.convert()
        return quantize_with_float_ops(converter, FLOAT_OPS)


def quantize_with_float_ops(converter, float_ops):
    """Full-int8 conversion that leaves the op types `float_ops` in float32.

    The converter calibrates only; the calibrated model is then quantized
    with those ops denylisted (TFLite's selective quantization, the route
    of `tf.lite.experimental.QuantizationDebugger`): each float island gets
    a DEQUANTIZE in front and a QUANTIZE behind.
    """
    from tensorflow.lite.python import convert as lite_convert

    converter._experimental_calibrate_only = True
    return lite_convert.mlir_quantize(
        converter.convert(), denylisted_ops=list(float_ops))


def op_counts(model_content, dtype=np.float32):
    """{op name: count} of the ops of a .tflite whose output is `dtype`
    (float32: the ops that compute in float), the type conversions QUANTIZE,
    DEQUANTIZE and CAST left out."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=bytes(model_content),
        experimental_op_resolver_type=(
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    dtypes = {t["index"]: t["dtype"]
              for t in interpreter.get_tensor_details()}
    counts = {}
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name not in ("QUANTIZE", "DEQUANTIZE", "CAST") and any(
                dtypes.get(i) == dtype for i in op["outputs"]):
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def build_variant(saved_model_dir, variant, representative_data, vocabulary,
                  label_names, integer_only=False):
    """Converted variant with the MediaPipe metadata, as bytes."""
    return metadata.add_text_classifier_metadata(
        convert(saved_model_dir, variant, representative_data, integer_only),
        vocabulary, label_names)


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
