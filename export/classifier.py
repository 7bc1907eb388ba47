"""Student checkpoint -> verified, Android-ready TFLite classifiers.

`export_classifier` converts one serving SavedModel (export/signature.py)
into every variant (export/convert.py), verifies each with LiteRT against
the Keras student and end to end in MediaPipe's TextClassifier
(export/verify.py), and only then moves the files into the output folder
with `export_report.json` (size, accuracy, agreement, latency per
variant). The knobs are the fields of `ExportOptions`.

The output folder is checked first (`export.preflight.check_output`); the
files are staged in a `.export-*` folder next to it (the temporary
SavedModels too) and moved into place one by one
(`tinybert_tf.files.publish_entries`): an overwrite replaces only the
export's own entries (and removes an earlier export's variants not exported
again), and the staging folder is removed whether the export succeeds or
fails.

Example:

```python
from export.classifier import ExportOptions, export_classifier
report = export_classifier(
    "runs/bbc/student", "runs/bbc/tflite_own_data",
    ExportOptions(train_file="train.csv", variants=("dynamic_int8",)))
report["variants"]["dynamic_int8"]["accuracy"]
```

tinybert_tf is imported inside the functions: its package imports
TensorFlow, which `python -m export.tflite --help` should not wait for.
"""

import dataclasses
import os
import shutil
import tempfile
import time

import numpy as np

from export import device_tokenizer, quantize, verify, vocab_trim
from export.convert import (VARIANTS, build_variant, check_variants,
                            model_file_name, op_counts,
                            representative_dataset)
from export.data import ExportData, encode, encode_optional, load_export_data
from export.mask_value import (choose_mask_value, mask_value_effect,
                               model_with_mask)
from export.preflight import (QAT_CHECKPOINT, REPORT_FILE, check_labels,
                              check_output, export_entries, stale_entries)
from export.runtimes import keras_probabilities
from export.signature import (check_sequence_length, export_sequence_length,
                              export_saved_model)
from tinybert_tf import files


class AccuracyDropError(RuntimeError):
    """A variant lost more accuracy than allowed, in strict mode (nothing
    was written)."""


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What to export and how to check it.

    Attributes:
        variants: some of VARIANTS (a sequence or a comma-separated string).
        sequence_length: the fixed input length L of the .tflite files
            (None: the student's training length, else 128).
        trim_vocab: keep only the word-pieces of the training text.
        overwrite: replace the export files of an existing output folder
            (one holding anything else is refused).
        eval_split: "test" or "dev" (dev when the task has no test split).
        max_eval: evaluate on the first N examples only.
        max_accuracy_drop: accuracy points a variant may lose against the
            Keras student before it is flagged; with `strict`, a flagged
            variant aborts the export (nothing is written).
        mask_value: the attention mask constant of every variant; default:
            the QAT one (a QAT checkpoint's, or `qat.mask_value`), else the
            first of `mask_value.MASK_VALUE_CANDIDATES` that leaves the float
            outputs unchanged.
        qat: `quantize.QATOptions`: fine-tune the student with int8 fake
            quantization on the training text first (the full_int8 variant
            is converted from it; the QAT checkpoint is written to
            OUTPUT/student_qat); None: no QAT (a QAT checkpoint is used as
            it is).
        calibration_samples: training texts that calibrate full int8.
        integer_only: full_int8 with every op in int8 (for integer-only
            accelerators); default: `convert.FLOAT_OPS` stay float32, the
            fast file on CPUs.
        mediapipe_check: eval texts classified end to end by MediaPipe
            (None: all of them; 0: none).
        tokenizer_check: count the eval texts that MediaPipe's on-device
            tokenizer turns into other ids (export/device_tokenizer.py).
        latency_runs: timed LiteRT invokes per variant.
        task / train_file / task_options: what `tinybert_tf.tasks.load_task`
            takes; the train split calibrates full int8 (and trims the
            vocabulary), `eval_split` verifies. Unused when
            `export_classifier` gets `data`.
    """

    variants: tuple = VARIANTS
    sequence_length: int | None = None
    trim_vocab: bool = False
    overwrite: bool = False
    eval_split: str = "test"
    max_eval: int | None = None
    max_accuracy_drop: float = 1.0
    strict: bool = False
    mask_value: float | None = None
    qat: quantize.QATOptions | None = None
    calibration_samples: int = 200
    integer_only: bool = False
    mediapipe_check: int | None = 32
    tokenizer_check: bool = True
    latency_runs: int = 50
    task: str | None = "bbc_news"
    train_file: str | None = None
    task_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "variants", check_variants(self.variants))
        object.__setattr__(self, "task_options", dict(self.task_options))


@dataclasses.dataclass
class _Export:
    """What the variants of one export share."""

    options: ExportOptions
    data: ExportData
    reference: np.ndarray  # Keras probabilities on data.eval_inputs
    report: dict
    mask_value: float  # of every variant
    vocabulary: list  # of the export: trimmed or not
    eval_inputs: dict  # tokenized with `vocabulary`
    train_inputs: dict | None  # idem
    staging: str | None = None


def _log(message):
    print(message, flush=True)


def export_classifier(checkpoint_dir, output_dir, options=None, data=None):
    """Converts, verifies and writes every variant; returns the report dict.

    Args:
        checkpoint_dir: a student checkpoint with a classification head.
        output_dir: created; an existing one is refused unless empty, or
            unless `options.overwrite` and it holds only export files.
        options: an `ExportOptions` (default: all variants, bbc_news).
        data: an `ExportData` (skips loading the task).
    """
    from tinybert_tf import checkpoint
    from tinybert_tf.tokenizer import BertTextTokenizer

    options = options or ExportOptions()
    output_dir = os.path.abspath(os.fspath(output_dir))
    ckpt = _read_student(checkpoint_dir, output_dir, options)
    options = dataclasses.replace(options, sequence_length=(
        export_sequence_length(options.sequence_length, ckpt.extras)))
    check_sequence_length(ckpt.config, options.sequence_length)
    vocabulary = ckpt.vocabulary()
    qat = quantize.has_fake_quant_ranges(ckpt)
    tokenizer = BertTextTokenizer(vocabulary,
                                  sequence_length=options.sequence_length)
    if data is None:
        data = load_export_data(
            options.task, tokenizer, train_file=options.train_file,
            eval_split=options.eval_split, max_eval=options.max_eval,
            **options.task_options)
    check_labels(ckpt, data, checkpoint_dir)
    if "full_int8" in options.variants and (
            data.train_inputs is None
            or not len(data.train_inputs["token_ids"])):
        raise ValueError("Variant full_int8 needs representative data: give "
                         "a task or a train file with training text.")
    model = checkpoint.load_classifier(ckpt)
    reference = keras_probabilities(model, data.eval_inputs)
    report = {
        "checkpoint": os.path.abspath(checkpoint_dir),
        "sequence_length": options.sequence_length,
        "eval_split": data.eval_split, "eval_examples": len(data.eval_texts),
        "label_names": _label_names(model, data),
        "keras_accuracy": verify.accuracy(reference, data.eval_labels),
        "max_accuracy_drop": options.max_accuracy_drop, "qat_ranges": qat,
        "variants": {}}
    _log(f"Keras student: {report['keras_accuracy']} accuracy on "
         f"{len(data.eval_texts)} {data.eval_split} examples.")
    if qat and options.qat is not None:
        raise ValueError(f"Checkpoint {checkpoint_dir} was already saved "
                         "after QAT; export it without QAT options (or "
                         "give its float source).")
    mask_value = _attention_mask_value(ckpt, options, qat, data, reference,
                                       report)
    models = {"float": model_with_mask(ckpt, mask_value)}
    if options.qat is not None:
        models["qat"] = _quantization_aware_model(ckpt, options, data,
                                                  mask_value, report)
    elif "full_int8" in options.variants and qat:
        models["qat"] = quantize.load_qat_classifier(ckpt)
        quantize.set_attention_mask_value(models["qat"], mask_value)
    qat = report["qat_ranges"] = "qat" in models
    run = _Export(options, data, reference, report, mask_value, vocabulary,
                  data.eval_inputs, data.train_inputs)
    if options.trim_vocab:
        run.vocabulary, run.eval_inputs, run.train_inputs = _trim_models(
            models, vocabulary, tokenizer, data, reference, report)
    if options.tokenizer_check:
        report["device_tokenizer"] = device_tokenizer.compare(
            data.eval_texts, run.vocabulary, options.sequence_length)
        _log(f"On-device tokenizer: {report['device_tokenizer']}")
    if options.trim_vocab:  # for the size comparison only
        models["untrimmed"] = model_with_mask(ckpt, mask_value)
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    run.staging = tempfile.mkdtemp(prefix=".export-",
                                   dir=os.path.dirname(output_dir))
    try:
        _write_staged(run, models, qat, vocabulary)
        written = export_entries(options.variants, options.qat is not None)
        check_output(output_dir, checkpoint_dir, options.overwrite)  # again
        files.publish_entries(run.staging, output_dir, written,
                              stale=stale_entries(output_dir, written))
    finally:
        shutil.rmtree(run.staging, ignore_errors=True)
    return report


def _write_staged(run, models, qat, vocabulary):
    """Every entry of the export, written into `run.staging`."""
    options, report = run.options, run.report
    if options.qat is not None:
        quantize.save_qat_checkpoint(
            models["qat"], os.path.join(run.staging, QAT_CHECKPOINT),
            run.vocabulary)
    _write_variants(run, models, qat, vocabulary)
    report["flagged"] = [v for v, r in report["variants"].items()
                         if r["flagged"]]
    if report["flagged"] and options.strict:
        raise AccuracyDropError(
            f"Variants {report['flagged']} lose more than "
            f"{options.max_accuracy_drop} accuracy points; nothing was "
            "written (strict mode).")
    files.write_json(os.path.join(run.staging, REPORT_FILE), report)


def _write_variants(run, models, qat, untrimmed_vocabulary):
    """Exports the SavedModels of `models`, then every variant of them."""
    options = run.options
    with tempfile.TemporaryDirectory(prefix=".saved_models-",
                                     dir=run.staging) as work:
        saved_models = {
            name: export_saved_model(m, os.path.join(work, name),
                                     options.sequence_length)
            for name, m in models.items()}
        for variant in options.variants:
            source = saved_models["qat" if variant == "full_int8" and qat
                                  else "float"]
            result = _export_variant(run, source, variant)
            if "untrimmed" in saved_models:
                result["untrimmed_size_bytes"] = len(build_variant(
                    saved_models["untrimmed"], variant,
                    representative_dataset(run.data.train_inputs,
                                           options.calibration_samples),
                    untrimmed_vocabulary, run.report["label_names"],
                    options.integer_only))


def _read_student(checkpoint_dir, output_dir, options):
    from tinybert_tf import checkpoint

    check_output(output_dir, checkpoint_dir, options.overwrite)
    ckpt = checkpoint.read(checkpoint_dir)
    if "classifier.weight" not in ckpt.weights:
        raise ValueError(
            f"Checkpoint {checkpoint_dir} has no classification head "
            "(no classifier.* tensors): export a fine-tuned / task-distilled "
            "student, not a general-distillation backbone.")
    return ckpt


def _attention_mask_value(ckpt, options, qat, data, reference, report):
    """The export's mask constant, checked on the eval inputs."""
    mask_value = options.mask_value
    if mask_value is None and qat:
        mask_value = ckpt.config.attention_mask_value
    elif mask_value is None and options.qat is not None:
        mask_value = options.qat.mask_value
    if mask_value is None:
        mask_value, effect = choose_mask_value(ckpt, data.eval_inputs,
                                               reference)
    else:
        effect = mask_value_effect(ckpt, data.eval_inputs, mask_value,
                                   reference)
    report["attention_mask_value"] = {
        "trained": ckpt.config.attention_mask_value, "exported": mask_value,
        "max_probability_change": effect}
    _log(f"Attention mask constant {mask_value} (float outputs change by "
         f"{effect:.2e} at most).")
    return mask_value


def _quantization_aware_model(ckpt, options, data, mask_value, report):
    """The student fine-tuned with int8 fake quantization on the training
    text (export.quantize), with the export's mask constant."""
    from tinybert_tf import checkpoint

    if data.train_inputs is None:
        raise ValueError("Quantization-aware fine-tuning needs the training "
                         "text: give a task or a train file.")
    qat = dataclasses.replace(options.qat, mask_value=mask_value)
    model = checkpoint.load_classifier(ckpt)
    _log(f"Quantization-aware fine-tuning: {qat.epochs} epochs, lr "
         f"{qat.learning_rate}, on {len(data.train_inputs['token_ids'])} "
         "training texts.")
    history = quantize.quantization_aware_finetune(
        model, data.train_inputs, options=qat, verbose=0)
    report["qat"] = {**dataclasses.asdict(qat),
                     "final_loss": float(history.history["loss"][-1]),
                     "checkpoint": QAT_CHECKPOINT}
    return model


def _trim_models(models, vocabulary, tokenizer, data, reference, report):
    """Trims every model in `models` (in place); returns the new vocabulary
    and the eval/train inputs re-tokenized with it."""
    from tinybert_tf.tokenizer import BertTextTokenizer

    if data.train_texts is None:
        raise ValueError("--trim-vocab needs the training text.")
    for name, model in models.items():
        trimmed = vocab_trim.trim_classifier(model, vocabulary,
                                             data.train_texts, tokenizer)
        models[name] = trimmed.model
    trimmed_tokenizer = BertTextTokenizer(
        trimmed.vocabulary, sequence_length=tokenizer.sequence_length)
    eval_inputs = encode(trimmed_tokenizer, data.eval_texts)
    train_inputs = encode_optional(trimmed_tokenizer, data.calibration_texts)
    probabilities = keras_probabilities(models["float"], eval_inputs)
    report["vocab_trim"] = {
        "vocab_size_before": len(vocabulary),
        "vocab_size_after": len(trimmed.vocabulary),
        "keras_accuracy_after": verify.accuracy(probabilities,
                                                data.eval_labels),
        "keras_agreement": verify.agreement(probabilities, reference),
        "eval_texts_with_other_ids": int(np.sum(np.any(
            trimmed.kept_ids[eval_inputs["token_ids"]]
            != data.eval_inputs["token_ids"], axis=1)))}
    _log(f"Vocabulary trimmed {len(vocabulary)} -> {len(trimmed.vocabulary)} "
         f"word-pieces: {report['vocab_trim']}")
    return trimmed.vocabulary, eval_inputs, train_inputs


def _export_variant(run, saved_model, variant):
    """Converts, verifies and stages one variant; adds it to the report."""
    options, data, report = run.options, run.data, run.report
    calibration = (representative_dataset(run.train_inputs,
                                          options.calibration_samples)
                   if run.train_inputs is not None else None)
    start = time.perf_counter()
    content = build_variant(saved_model, variant, calibration, run.vocabulary,
                            report["label_names"], options.integer_only)
    seconds = time.perf_counter() - start
    result = verify.verify_variant(content, run.eval_inputs, data.eval_labels,
                                   run.reference, options.latency_runs)
    path = os.path.join(run.staging, model_file_name(variant))
    with open(path, "wb") as f:
        f.write(content)
    result.update(file=model_file_name(variant), size_bytes=len(content),
                  attention_mask_value=run.mask_value,
                  size_mb=round(len(content) / 1e6, 3),
                  conversion_seconds=round(seconds, 1))
    if variant == "full_int8":
        result.update(integer_only=options.integer_only,
                      float_ops=op_counts(content))
    if options.mediapipe_check is None or options.mediapipe_check > 0:
        result.update(verify.mediapipe_check(
            path, content, data.eval_texts[:options.mediapipe_check],
            run.eval_inputs, data.eval_labels))
    verify.judge(result, report["keras_accuracy"], options.max_accuracy_drop)
    report["variants"][variant] = result
    _log(verify.variant_line(variant, result))
    if result["flagged"]:
        _log(verify.flag_banner(variant, result["accuracy_drop_points"],
                                options.max_accuracy_drop))
    return result


def _label_names(model, data):
    names = model.label_names or data.label_names
    if not names:
        return [str(i) for i in range(model.num_labels)]
    if len(names) != model.num_labels:
        raise ValueError(f"The task has {len(names)} labels but the "
                         f"checkpoint's classifier has {model.num_labels}.")
    return list(names)
