"""Student checkpoint -> verified, Android-ready TFLite classifiers.

Every variant (float32, float16, dynamic-range int8, full-integer int8) is
converted from one serving SavedModel written by `keras.export.ExportArchive`
(`TFLiteConverter.from_keras_model` fails on subclassed Keras 3 models):

- three int32 inputs [1, L] named `input_word_ids`, `input_mask`,
  `input_type_ids` (TFLite tensors `serving_default_input_word_ids:0`, ...),
- one float32 output `probabilities` [1, num_labels] (softmax),
- metadata with the WordPiece vocabulary and the label names, so MediaPipe
  Tasks' TextClassifier (Android: `com.google.mediapipe:tasks-text`) runs it
  on raw text.

Nothing is final before it is verified: each variant is run with LiteRT (one
thread) on the evaluation split and compared with the Keras student, loaded
in MediaPipe's TextClassifier, and only then moved into the output folder
with `export_report.json` (size, accuracy, agreement, latency per variant).

Command line:

```bash
python -m export.tflite --checkpoint runs/bbc/student --output runs/bbc/tflite \\
    --task bbc_news --variants float32,float16,dynamic_int8,full_int8 \\
    --sequence-length 128 --trim-vocab
```

Library:

```python
from export import tflite
report = tflite.export_classifier("runs/bbc/student", "runs/bbc/tflite",
                                  task="bbc_news", variants=("dynamic_int8",))
report["variants"]["dynamic_int8"]["accuracy"]
```
"""

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

VARIANTS = ("float32", "float16", "dynamic_int8", "full_int8")
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
# Model inputs of tinybert_tf models, in the order of INPUT_NAMES.
MODEL_INPUT_NAMES = ("token_ids", "padding_mask", "segment_ids")
OUTPUT_NAME = "probabilities"
SIGNATURE = "serving_default"
REPORT_FILE = "export_report.json"
DEFAULT_SEQUENCE_LENGTH = 128
# Candidate attention-mask constants for the export, smallest magnitude first
# (a small one keeps the int8 range of the attention scores useful).
MASK_VALUE_CANDIDATES = (-30.0, -64.0, -128.0, -1000.0)
MASK_VALUE_TOLERANCE = 1e-4


def model_file_name(variant):
    return f"model_{variant}.tflite"


# --------------------------------------------------------------- conversion

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
    with _quiet_stderr(), warnings.catch_warnings():
        # Calibration runs the deprecated tf.lite.Interpreter internally.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter")
        return converter.convert()


@contextlib.contextmanager
def _quiet_stderr():
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


# --------------------------------------------------------------- running

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

        self.interpreter = Interpreter(model_content=bytes(model_content),
                                       num_threads=num_threads)
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
    logits = model.predict(dict(inputs), batch_size=batch_size, verbose=0)
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return (exp / exp.sum(-1, keepdims=True)).astype(np.float32)


def mediapipe_top_classes(model_path, texts):
    """Top category index for each text with MediaPipe's TextClassifier."""
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = text.TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=os.fspath(model_path)))
    with text.TextClassifier.create_from_options(options) as classifier:
        return [classifier.classify(t).classifications[0].categories[0].index
                for t in texts]


# --------------------------------------------------------------- attention mask

def mask_value_effect(checkpoint_source, inputs, mask_value, reference=None):
    """Max |probability change| of the float model when the attention mask
    constant becomes `mask_value` (on `inputs`)."""
    from tinybert_tf import checkpoint

    if reference is None:
        reference = keras_probabilities(
            checkpoint.load_classifier(checkpoint_source), inputs)
    changed = checkpoint.load_classifier(checkpoint_source,
                                         attention_mask_value=mask_value)
    return float(np.max(np.abs(keras_probabilities(changed, inputs)
                               - reference)))


def choose_mask_value(checkpoint_source, inputs, reference=None,
                      candidates=MASK_VALUE_CANDIDATES,
                      tolerance=MASK_VALUE_TOLERANCE):
    """The smallest-magnitude mask constant that leaves the float model's
    probabilities within `tolerance` on `inputs`; returns (value, effect)."""
    effects = {}
    for value in candidates:
        effects[value] = mask_value_effect(checkpoint_source, inputs, value,
                                           reference)
        if effects[value] <= tolerance:
            return value, effects[value]
    raise ValueError(f"No attention mask constant among {candidates} keeps the"
                     f" float outputs within {tolerance}: {effects}.")


# --------------------------------------------------------------- data

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
        train_inputs=(_encode(tokenizer, calibration_texts)
                      if calibration_texts else None),
        eval_inputs=_encode(tokenizer, split.text_a),
        eval_texts=list(split.text_a), eval_labels=np.asarray(split.labels),
        eval_split=name, label_names=list(data.label_names),
        train_texts=train_texts, calibration_texts=calibration_texts)


def _encode(tokenizer, texts, batch_size=256):
    parts = [tokenizer(list(texts[i:i + batch_size]))
             for i in range(0, len(texts), batch_size)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]).astype(np.int32)
            for k in parts[0]}


# --------------------------------------------------------------- the export

def _accuracy(probabilities, labels):
    if labels is None:
        return None
    return float(np.mean(np.argmax(probabilities, -1) == labels))


def verify_variant(model_content, eval_inputs, eval_labels, reference,
                   latency_runs=50):
    """LiteRT (one thread) on the eval inputs vs the Keras probabilities."""
    runner = LiteRTClassifier(model_content, num_threads=1)
    probabilities = runner.predict(eval_inputs)
    return {
        "accuracy": _accuracy(probabilities, eval_labels),
        "agreement": float(np.mean(probabilities.argmax(-1)
                                   == reference.argmax(-1))),
        "max_probability_diff": float(np.max(np.abs(probabilities
                                                    - reference))),
        "median_latency_ms": runner.median_latency_ms(eval_inputs,
                                                      runs=latency_runs),
    }


def _log(message):
    print(message, flush=True)


def export_classifier(checkpoint_dir, output_dir, task="bbc_news",
                      train_file=None, variants=VARIANTS,
                      sequence_length=DEFAULT_SEQUENCE_LENGTH,
                      trim_vocab=False, overwrite=False, eval_split="test",
                      max_eval=None, max_accuracy_drop=1.0, strict=False,
                      mask_value=None, calibration_samples=200,
                      mediapipe_check=32, tokenizer_check=True,
                      latency_runs=50, data=None, **task_options):
    """Converts, verifies and writes every variant; returns the report dict.

    Args:
        checkpoint_dir: a student checkpoint with a classification head.
        output_dir: created; refused if it exists unless `overwrite`.
        task / train_file / task_options: what `tinybert_tf.tasks.load_task`
            takes; the train split calibrates full int8 (and trims the
            vocabulary), `eval_split` verifies.
        variants: some of VARIANTS.
        trim_vocab: keep only the word-pieces of the training text.
        max_accuracy_drop: accuracy points a variant may lose against the
            Keras student before it is flagged; with `strict`, a flagged
            variant aborts the export (nothing is written).
        mask_value: the attention mask constant of the export; default: the
            QAT checkpoint's, else the smallest of MASK_VALUE_CANDIDATES that
            leaves the float outputs unchanged.
        mediapipe_check: eval texts classified end to end by MediaPipe
            (None: all of them; 0: none).
        tokenizer_check: count the eval texts that MediaPipe's on-device
            tokenizer turns into other ids (export/device_tokenizer.py).
        data: an `ExportData` (skips loading the task).
    """
    from export import quantize
    from tinybert_tf import checkpoint
    from tinybert_tf.tokenizer import BertTextTokenizer

    variants = _check_variants(variants)
    output_dir = os.path.abspath(os.fspath(output_dir))
    ckpt = _read_student(checkpoint_dir, output_dir, overwrite,
                         sequence_length)
    vocabulary = ckpt.vocabulary()
    qat = quantize.has_fake_quant_ranges(ckpt)
    tokenizer = BertTextTokenizer(vocabulary, sequence_length=sequence_length)
    if data is None:
        data = load_export_data(task, tokenizer, train_file=train_file,
                                eval_split=eval_split, max_eval=max_eval,
                                **task_options)
    if "full_int8" in variants and (data.train_inputs is None or not len(
            data.train_inputs["token_ids"])):
        raise ValueError("Variant full_int8 needs representative data: give "
                         "a task or a train file with training text.")
    model = checkpoint.load_classifier(ckpt)
    reference = keras_probabilities(model, data.eval_inputs)
    report = {
        "checkpoint": os.path.abspath(checkpoint_dir),
        "sequence_length": sequence_length, "eval_split": data.eval_split,
        "eval_examples": len(data.eval_texts),
        "label_names": _label_names(model, data),
        "keras_accuracy": _accuracy(reference, data.eval_labels),
        "max_accuracy_drop": max_accuracy_drop, "qat_ranges": qat,
        "variants": {}}
    _log(f"Keras student: {report['keras_accuracy']} accuracy on "
         f"{len(data.eval_texts)} {data.eval_split} examples.")
    mask_value = _attention_mask_value(ckpt, mask_value, qat, data, reference,
                                       report)
    models = {"float": model_with_mask(ckpt, mask_value)}
    if "full_int8" in variants and qat:
        models["qat"] = quantize.load_qat_classifier(ckpt)
    export_vocabulary, eval_inputs, train_inputs = (
        vocabulary, data.eval_inputs, data.train_inputs)
    if trim_vocab:
        export_vocabulary, eval_inputs, train_inputs = _trim_models(
            models, vocabulary, tokenizer, data, reference, report)
    if tokenizer_check:
        from export import device_tokenizer
        report["device_tokenizer"] = device_tokenizer.compare(
            data.eval_texts, export_vocabulary, sequence_length)
        _log(f"On-device tokenizer: {report['device_tokenizer']}")

    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        with tempfile.TemporaryDirectory(prefix="saved_models-") as work:
            saved_models = {
                name: export_saved_model(m, os.path.join(work, name),
                                         sequence_length)
                for name, m in models.items()}
            if trim_vocab:  # for the size comparison only
                saved_models["untrimmed"] = export_saved_model(
                    model_with_mask(ckpt, mask_value),
                    os.path.join(work, "untrimmed"), sequence_length)
            for variant in variants:
                source = saved_models["qat" if variant == "full_int8" and qat
                                      else "float"]
                result = _export_variant(
                    source, variant, staging, export_vocabulary, report,
                    train_inputs, eval_inputs, data, reference,
                    calibration_samples, latency_runs, mediapipe_check)
                if trim_vocab:
                    result["untrimmed_size_bytes"] = len(build_variant(
                        saved_models["untrimmed"], variant,
                        representative_dataset(data.train_inputs,
                                               calibration_samples),
                        vocabulary, report["label_names"]))
        report["flagged"] = [v for v, r in report["variants"].items()
                             if r["flagged"]]
        if report["flagged"] and strict:
            raise RuntimeError(
                f"Variants {report['flagged']} lose more than "
                f"{max_accuracy_drop} accuracy points; nothing was written "
                "(strict mode).")
        with open(os.path.join(staging, REPORT_FILE), "w",
                  encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        _move_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _read_student(checkpoint_dir, output_dir, overwrite, sequence_length):
    from tinybert_tf import checkpoint

    if os.path.exists(output_dir) and not overwrite:
        raise FileExistsError(f"Output {output_dir} already exists; pass "
                              "overwrite=True (--overwrite) to replace it.")
    ckpt = checkpoint.read(checkpoint_dir)
    if "classifier.weight" not in ckpt.weights:
        raise ValueError(
            f"Checkpoint {checkpoint_dir} has no classification head "
            "(no classifier.* tensors): export a fine-tuned / task-distilled "
            "student, not a general-distillation backbone.")
    check_sequence_length(ckpt.config, sequence_length)
    return ckpt


def _attention_mask_value(ckpt, mask_value, qat, data, reference, report):
    """The export's mask constant, checked on the eval inputs."""
    if mask_value is None and qat:
        mask_value = ckpt.config.attention_mask_value
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


def _trim_models(models, vocabulary, tokenizer, data, reference, report):
    """Trims every model in `models` (in place); returns the new vocabulary
    and the eval/train inputs re-tokenized with it."""
    from export import vocab_trim
    from tinybert_tf.tokenizer import BertTextTokenizer

    if data.train_texts is None:
        raise ValueError("--trim-vocab needs the training text.")
    for name, model in models.items():
        trimmed = vocab_trim.trim_classifier(model, vocabulary,
                                             data.train_texts, tokenizer)
        models[name] = trimmed.model
    trimmed_tokenizer = BertTextTokenizer(
        trimmed.vocabulary, sequence_length=tokenizer.sequence_length)
    eval_inputs = _encode(trimmed_tokenizer, data.eval_texts)
    train_inputs = (_encode(trimmed_tokenizer, data.calibration_texts)
                    if data.calibration_texts else None)
    probabilities = keras_probabilities(models["float"], eval_inputs)
    report["vocab_trim"] = {
        "vocab_size_before": len(vocabulary),
        "vocab_size_after": len(trimmed.vocabulary),
        "keras_accuracy_after": _accuracy(probabilities, data.eval_labels),
        "keras_agreement": float(np.mean(
            probabilities.argmax(-1) == reference.argmax(-1))),
        "eval_texts_with_other_ids": int(np.sum(np.any(
            trimmed.kept_ids[eval_inputs["token_ids"]]
            != data.eval_inputs["token_ids"], axis=1)))}
    _log(f"Vocabulary trimmed {len(vocabulary)} -> {len(trimmed.vocabulary)} "
         f"word-pieces: {report['vocab_trim']}")
    return trimmed.vocabulary, eval_inputs, train_inputs


def _export_variant(saved_model, variant, staging, vocabulary, report,
                    train_inputs, eval_inputs, data, reference,
                    calibration_samples, latency_runs, mediapipe_check):
    """Converts, verifies and stages one variant; adds it to `report`."""
    calibration = (representative_dataset(train_inputs, calibration_samples)
                   if train_inputs is not None else None)
    start = time.perf_counter()
    content = build_variant(saved_model, variant, calibration, vocabulary,
                            report["label_names"])
    seconds = time.perf_counter() - start
    result = verify_variant(content, eval_inputs, data.eval_labels,
                            reference, latency_runs)
    path = os.path.join(staging, model_file_name(variant))
    with open(path, "wb") as f:
        f.write(content)
    result.update(file=model_file_name(variant), size_bytes=len(content),
                  size_mb=round(len(content) / 1e6, 3),
                  conversion_seconds=round(seconds, 1))
    if mediapipe_check is None or mediapipe_check > 0:
        # MediaPipe tokenizes the raw text itself: this checks the whole
        # on-device path against LiteRT on our tokenizer's ids.
        texts = data.eval_texts[:mediapipe_check]
        top = np.asarray(mediapipe_top_classes(path, texts))
        ours = LiteRTClassifier(content).predict(
            {k: v[:len(texts)] for k, v in eval_inputs.items()})
        result["mediapipe_examples"] = len(texts)
        result["mediapipe_agreement"] = float(np.mean(top == ours.argmax(-1)))
        if data.eval_labels is not None:
            result["mediapipe_accuracy"] = float(np.mean(
                top == data.eval_labels[:len(texts)]))
    drop = _drop(report["keras_accuracy"], result["accuracy"])
    result["accuracy_drop_points"] = drop
    result["flagged"] = (drop is not None
                         and drop > report["max_accuracy_drop"])
    report["variants"][variant] = result
    _log(_variant_line(variant, result))
    if result["flagged"]:
        _log(_flag_banner(variant, drop, report["max_accuracy_drop"]))
    return result


def model_with_mask(ckpt, mask_value):
    from tinybert_tf import checkpoint
    return checkpoint.load_classifier(ckpt, attention_mask_value=mask_value)


def build_variant(saved_model_dir, variant, representative_data, vocabulary,
                  label_names):
    """Converted variant with the MediaPipe metadata, as bytes."""
    from export import metadata
    return metadata.add_text_classifier_metadata(
        convert(saved_model_dir, variant, representative_data), vocabulary,
        label_names)


def _check_variants(variants):
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(f"Unknown or no variants {unknown or variants}; "
                         f"choose among {', '.join(VARIANTS)}.")
    return tuple(dict.fromkeys(variants))


def _label_names(model, data):
    names = model.label_names or data.label_names
    if not names:
        return [str(i) for i in range(model.num_labels)]
    if len(names) != model.num_labels:
        raise ValueError(f"The task has {len(names)} labels but the "
                         f"checkpoint's classifier has {model.num_labels}.")
    return list(names)


def _drop(reference, accuracy):
    if reference is None or accuracy is None:
        return None
    return round(100.0 * (reference - accuracy), 2)


def _variant_line(variant, result):
    accuracy = result["accuracy"]
    return (f"{variant:>13}: {result['size_mb']:8.2f} MB, accuracy "
            f"{'n/a' if accuracy is None else f'{accuracy:.4f}'}, agreement "
            f"{100 * result['agreement']:.1f}%, max prob diff "
            f"{result['max_probability_diff']:.4f}, "
            f"{result['median_latency_ms']:.2f} ms (1 thread)")


def _flag_banner(variant, drop, limit):
    bar = "!" * 72
    return (f"{bar}\n!!! {variant} loses {drop:.2f} accuracy points against "
            f"the Keras student (limit {limit}).\n{bar}")


def _move_into_place(staging, output_dir):
    if os.path.exists(output_dir):
        old = output_dir + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output_dir, old)
        os.replace(staging, output_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, output_dir)


# --------------------------------------------------------------- CLI

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m export.tflite",
        description="Convert a student checkpoint to verified TFLite "
                    "classifiers with MediaPipe metadata.")
    parser.add_argument("--checkpoint", required=True,
                        help="student checkpoint directory (config.json, "
                             "model.safetensors, vocab.txt)")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--task", default=None,
                        help="task of tinybert_tf.tasks (default bbc_news)")
    parser.add_argument("--train-file", default=None,
                        help="your own training file (CSV/TSV/JSONL)")
    parser.add_argument("--dev-file", default=None)
    parser.add_argument("--test-file", default=None)
    parser.add_argument("--text-column", default=None)
    parser.add_argument("--label-column", default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, among {', '.join(VARIANTS)}")
    parser.add_argument("--sequence-length", type=int,
                        default=DEFAULT_SEQUENCE_LENGTH)
    parser.add_argument("--trim-vocab", action="store_true",
                        help="keep only the word-pieces of the training text")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--eval-split", default="test",
                        choices=("test", "dev"))
    parser.add_argument("--max-eval", type=int, default=None,
                        help="evaluate on the first N examples only")
    parser.add_argument("--max-accuracy-drop", type=float, default=1.0,
                        help="accuracy points a variant may lose before it "
                             "is flagged")
    parser.add_argument("--strict", action="store_true",
                        help="abort (write nothing) when a variant is flagged")
    parser.add_argument("--mask-value", type=float, default=None,
                        help="attention mask constant of the export")
    parser.add_argument("--calibration-samples", type=int, default=200)
    parser.add_argument("--mediapipe-examples", type=int, default=32,
                        help="eval texts classified by MediaPipe's "
                             "TextClassifier (the Android runtime) per "
                             "variant; -1: all, 0: none")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    task_options = {k: v for k, v in (
        ("dev_file", args.dev_file), ("test_file", args.test_file),
        ("text_column", args.text_column),
        ("label_column", args.label_column)) if v is not None}
    report = export_classifier(
        args.checkpoint, args.output, task=args.task or (
            None if args.train_file else "bbc_news"),
        train_file=args.train_file, variants=args.variants,
        sequence_length=args.sequence_length, trim_vocab=args.trim_vocab,
        overwrite=args.overwrite, eval_split=args.eval_split,
        max_eval=args.max_eval, max_accuracy_drop=args.max_accuracy_drop,
        strict=args.strict, mask_value=args.mask_value,
        calibration_samples=args.calibration_samples,
        mediapipe_check=(None if args.mediapipe_examples < 0
                         else args.mediapipe_examples), **task_options)
    _log(f"Wrote {len(report['variants'])} models and {REPORT_FILE} to "
         f"{os.path.abspath(args.output)}.")
    return 1 if report["flagged"] else 0


if __name__ == "__main__":
    sys.exit(main())
