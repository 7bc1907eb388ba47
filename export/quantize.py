"""Quantization-aware training (QAT) for full-integer int8 TFLite students.

Two things make a full-int8 BERT lose accuracy, and this module fixes both:

1. The -10000 attention mask. The int8 range of the attention scores is
   stretched to hold it, so every real score rounds to the same value. The
   export uses a small constant (`EXPORT_MASK_VALUE`), checked to leave the
   float model's outputs unchanged (`export.mask_value`).
2. Rounding noise. `enable_fake_quant` switches on the fake-quant points of
   the model's own layers (`tinybert_tf.layers.FakeQuantPoints`: Dense
   outputs, residual sums, LayerNorm outputs, attention scores and
   probabilities) and `quantization_aware_finetune` distils the float model
   into its fake-quantized copy for an epoch or two, so the weights learn to
   survive int8; the TFLite converter then reads the learned ranges.

tensorflow-model-optimization (`tfmot.quantization.keras.quantize_model`)
rejects every Keras 3 object, hence the fake-quant ops in our own layers.

A QAT checkpoint is an ordinary float checkpoint (it loads and runs
everywhere as a float model) plus the learned ranges as extra tensors
`quantization.<point>` = [min, max] and a `quantization` section in the
`tinybert` part of config.json; `export.classifier` uses them when present.

Example:

```python
from export import quantize
from tinybert_tf import checkpoint
student = checkpoint.load_classifier("runs/bbc/student")
history = quantize.quantization_aware_finetune(
    student, train_inputs, options=quantize.QATOptions(epochs=2))
quantize.save_qat_checkpoint(student, "runs/bbc/student_qat",
                             student.vocab_file)
```
"""

import dataclasses

import numpy as np

# Small enough for int8 attention scores, large enough that a padded key's
# softmax weight (about e^-30 = 1e-13 of a real key's) changes nothing.
EXPORT_MASK_VALUE = -30.0
QUANTIZATION_PREFIX = "quantization."


def fake_quant_layers(model):
    """(name prefix, layer) of every layer of `model` with fake-quant points:
    the classifier head, the embeddings, each block and its attention."""
    from tinybert_tf.heads import BertClassifier
    from tinybert_tf.layers import FakeQuantPoints

    backbone = getattr(model, "backbone", model)
    layers = [("classifier." if isinstance(model, BertClassifier) else "",
               model), ("embeddings.", backbone.embeddings)]
    for i, block in enumerate(backbone.transformer_layers):
        layers += [(f"layer.{i}.", block),
                   (f"layer.{i}.attention.", block.attention)]
    return [(prefix, layer) for prefix, layer in layers
            if isinstance(layer, FakeQuantPoints)]


def set_attention_mask_value(model, mask_value):
    """Makes `model` (a built BertClassifier/BertBackbone) use `mask_value`.

    The backbone reads `config.attention_mask_value` at every call, so its
    frozen config is replaced (a classifier's `config` is its backbone's).
    """
    backbone = getattr(model, "backbone", model)
    backbone.config = backbone.config.replace(
        attention_mask_value=float(mask_value))


def enable_fake_quant(model, mask_value=EXPORT_MASK_VALUE, momentum=0.99):
    """Switches on int8 fake quantization in every layer of `model`.

    The model's attention mask constant becomes `mask_value` (a -10000 bias
    would stretch the int8 range of the attention scores). Ranges start
    empty: run `calibrate_fake_quant` (or train) before using the model.
    Returns `model`, changed in place.
    """
    layers = [layer for _, layer in fake_quant_layers(model)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no fake-quant points: "
                         "pass a BertClassifier of tinybert_tf.")
    if mask_value is not None:
        set_attention_mask_value(model, mask_value)
    for layer in layers:
        layer.enable_fake_quant(momentum)
    return model


def fake_quants(model):
    """Name -> FakeQuant layer, names stable across builds of one config."""
    return {f"{prefix}{point}": fake_quant
            for prefix, layer in fake_quant_layers(model)
            for point, fake_quant in (getattr(layer, "fake_quants", None)
                                      or {}).items()}


def calibrate_fake_quant(model, batches):
    """Sets every range to the min/max seen over `batches` (inference mode).

    `batches` is an iterable of input dicts (token_ids, segment_ids,
    padding_mask). Fixed ranges (softmax outputs) are left alone.
    """
    layers = list(fake_quants(model).values())
    if not layers:
        raise ValueError("Fake quantization is off: call enable_fake_quant "
                         "first.")
    for layer in layers:
        layer.calibrating = layer.fixed_range is None
        if layer.calibrating:
            layer.range_min.assign(0.0)
            layer.range_max.assign(0.0)
    count = 0
    try:
        for batch in batches:
            model(batch, training=False)
            count += 1
    finally:
        for layer in layers:
            layer.calibrating = False
    if not count:
        raise ValueError("calibrate_fake_quant got no batches.")
    for layer in layers:
        layer.seen.assign(1.0)
    return model


def fake_quant_ranges(model):
    """HF-style tensor name -> float32 [min, max] of every fake-quant point."""
    return {f"{QUANTIZATION_PREFIX}{name}": np.array(
                [layer.range_min.numpy(), layer.range_max.numpy()], "float32")
            for name, layer in fake_quants(model).items()}


def load_fake_quant_ranges(model, tensors):
    """Copies saved ranges (`fake_quant_ranges` names) into `model`."""
    layers = fake_quants(model)
    missing = [name for name in layers
               if f"{QUANTIZATION_PREFIX}{name}" not in tensors]
    if missing:
        raise ValueError(f"The checkpoint lacks fake-quant ranges for "
                         f"{missing[:3]}{'...' if len(missing) > 3 else ''}.")
    for name, layer in layers.items():
        low, high = np.asarray(tensors[f"{QUANTIZATION_PREFIX}{name}"])
        layer.range_min.assign(float(low))
        layer.range_max.assign(float(high))
        layer.seen.assign(1.0)


def has_fake_quant_ranges(checkpoint):
    """Whether a `tinybert_tf.checkpoint.Checkpoint` was saved after QAT."""
    return any(name.startswith(QUANTIZATION_PREFIX)
               for name in checkpoint.weights)


def save_qat_checkpoint(model, directory, vocabulary, overwrite=False):
    """Saves a QAT student: float weights + learned ranges (see module doc)."""
    from tinybert_tf import checkpoint

    ranges = fake_quant_ranges(model)
    if not ranges:
        raise ValueError("The model has no fake-quant ranges: call "
                         "enable_fake_quant and train it first.")
    checkpoint.save(model, directory, vocabulary, extra_weights=ranges,
                    extras={"quantization": {
                        "fake_quant": True,
                        "attention_mask_value":
                            model.config.attention_mask_value}},
                    overwrite=overwrite)


def load_qat_classifier(source):
    """A BertClassifier with fake quant on and the ranges of a QAT checkpoint."""
    from tinybert_tf import checkpoint

    ckpt = source if isinstance(source, checkpoint.Checkpoint) else (
        checkpoint.read(source))
    if not has_fake_quant_ranges(ckpt):
        raise ValueError(f"Checkpoint {ckpt.source} holds no fake-quant "
                         "ranges (it was not saved by save_qat_checkpoint).")
    model = checkpoint.load_classifier(ckpt)
    enable_fake_quant(model, mask_value=None)
    load_fake_quant_ranges(model, ckpt.weights)
    return model


def _batches(inputs, batch_size, limit=None):
    size = len(next(iter(inputs.values())))
    stops = range(0, size, batch_size)
    for start in list(stops)[:limit]:
        yield {k: v[start:start + batch_size] for k, v in inputs.items()}


@dataclasses.dataclass(frozen=True)
class QATOptions:
    """Quantization-aware fine-tuning.

    Attributes:
        epochs, learning_rate, batch_size: of the fine-tuning (a small lr:
            the student is already trained).
        mask_value: the attention mask constant of the student from now on.
        calibration_batches: batches that initialise the ranges.
    """

    epochs: int = 2
    learning_rate: float = 1e-5
    batch_size: int = 32
    mask_value: float = EXPORT_MASK_VALUE
    calibration_batches: int = 8


def quantization_aware_finetune(student, train_inputs, teacher=None,
                                options=None, validation_data=None,
                                verbose="auto"):
    """Distils a float teacher into the fake-quantized `student` (in place).

    The prediction-layer distillation of `tinybert_tf.distiller.Distiller`
    (stage="prediction", soft cross-entropy to the teacher's logits) with
    int8 fake quantization on in the student.

    Args:
        student: a trained BertClassifier (float); it is changed in place.
        train_inputs: dict of int arrays token_ids/segment_ids/padding_mask
            (the task's training text, augmented or not).
        teacher: the BertClassifier to imitate; default: a float copy of the
            student itself (self-distillation: QAT learns to reproduce the
            float student).
        options: `QATOptions`.
        validation_data: passed to `fit`.

    Returns:
        the Keras `History`.

    Only the prediction loss is used: with the small mask constant the
    student's attention scores at padded keys no longer sit below the
    official -100 cut-off, so an attention loss would need the padding mask.
    """
    import keras

    from tinybert_tf import checkpoint
    from tinybert_tf.distiller import Distiller
    from tinybert_tf.heads import BertClassifier, clone_classifier

    options = options or QATOptions()
    if not isinstance(student, BertClassifier):
        raise ValueError("quantization_aware_finetune needs a BertClassifier "
                         f"student, got {type(student).__name__}.")
    if teacher is None:
        teacher = clone_classifier(student)
        checkpoint.copy_weights(student, teacher)
    if not fake_quants(student):
        enable_fake_quant(student, mask_value=options.mask_value)
    calibrate_fake_quant(student, _batches(train_inputs, options.batch_size,
                                           options.calibration_batches))
    distiller = Distiller(teacher, student, stage="prediction")
    distiller.compile(optimizer=keras.optimizers.AdamW(
        options.learning_rate, weight_decay=0.01, global_clipnorm=1.0))
    return distiller.fit(train_inputs, batch_size=options.batch_size,
                         epochs=options.epochs, shuffle=True,
                         validation_data=validation_data, verbose=verbose)
