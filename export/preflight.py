"""Checks of an export before any model is loaded, and what it may replace.

An export writes only the entries `export_entries` names into its output
folder (the .tflite file of each variant, `export_report.json`, and
`student_qat/` after QAT); `check_output` refuses an output folder that
would lose anything else:

- a file, a folder that cannot be written, or one whose parent cannot;
- the checkpoint being exported, a folder holding it, or one inside it;
- without overwrite, a folder that is not empty; with overwrite, a folder
  holding entries no export writes (they are listed, nothing is touched).

`check_flags` and `check_checkpoint` refuse impossible command-line values
and a checkpoint folder without its files, reading only its config.json;
`check_labels` refuses data whose labels are not the checkpoint's.
Every refusal is a ValueError or an OSError naming the flag or the path:
`python -m export.tflite` shows it as `error: ...`, exit status 2.

>>> from export import preflight
>>> preflight.export_entries(("dynamic_int8",), qat=False)
['model_dynamic_int8.tflite', 'export_report.json']
"""

import json
import math
import os

from export.convert import VARIANTS, check_variants, model_file_name

REPORT_FILE = "export_report.json"
QAT_CHECKPOINT = "student_qat"
CONFIG = "config.json"
VOCAB = "vocab.txt"
# Any one of these holds the weights (tinybert_tf.checkpoint reads them).
WEIGHTS = ("model.safetensors", "model.safetensors.index.json",
           "pytorch_model.bin")
FILES_NEEDING_TRAIN_FILE = ("dev_file", "test_file", "text_column",
                            "label_column")


def export_entries(variants, qat):
    """Names of what one export writes into its output folder."""
    return ([model_file_name(v) for v in variants] + [REPORT_FILE]
            + ([QAT_CHECKPOINT] if qat else []))


def all_export_entries():
    """Every name an export may write (any variant, with QAT)."""
    return export_entries(VARIANTS, qat=True)


def stale_entries(output_dir, written):
    """Entries of an earlier export in `output_dir` that this export, which
    writes `written`, does not replace (a variant not exported again)."""
    if not os.path.isdir(output_dir):
        return []
    present = set(os.listdir(output_dir))
    return [n for n in all_export_entries()
            if n in present and n not in written]


def _within(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output(output_dir, checkpoint_dir, overwrite):
    """Refuses an output folder the export must not write (module doc)."""
    output = os.path.abspath(os.fspath(output_dir))
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"--output {output} is a file; give a folder.")
    real, source = os.path.realpath(output), os.path.realpath(checkpoint_dir)
    if _within(source, real) or _within(real, source):
        where = ("is" if real == source else "contains" if _within(
            source, real) else "is inside")
        raise ValueError(
            f"--output {output} {where} the checkpoint being exported "
            f"({source}); choose another output folder.")
    anchor = os.path.dirname(output)
    while not os.path.exists(anchor):
        anchor = os.path.dirname(anchor)
    if not os.path.isdir(anchor):
        raise ValueError(f"--output {output}: {anchor} is a file, not a "
                         "folder.")
    for folder in [anchor] + ([output] if os.path.isdir(output) else []):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"--output {output}: {folder} is not "
                                  "writable.")
    present = sorted(os.listdir(output)) if os.path.isdir(output) else []
    if present and not overwrite:
        raise FileExistsError(
            f"--output {output} already exists and is not empty; pass "
            "--overwrite (overwrite=True) to replace the export in it.")
    foreign = [n for n in present if n not in all_export_entries()]
    if foreign:
        raise ValueError(
            f"--output {output} holds entries no export writes: "
            f"{', '.join(foreign)}. --overwrite replaces only an export's "
            f"own files ({', '.join(all_export_entries())}); move those "
            "away or choose another output folder. Nothing was changed.")
    return output


def check_checkpoint(checkpoint_dir):
    """The config.json (a dict) of a checkpoint folder that has its files."""
    path = os.fspath(checkpoint_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"--checkpoint {path}: no such folder.")
    if not os.path.isdir(path):
        raise ValueError(f"--checkpoint {path} is a file; give the "
                         f"checkpoint folder ({CONFIG}, {WEIGHTS[0]}, "
                         f"{VOCAB}).")
    missing = [name for name, present in (
        (CONFIG, os.path.isfile(os.path.join(path, CONFIG))),
        (WEIGHTS[0], any(os.path.isfile(os.path.join(path, w))
                         for w in WEIGHTS)),
        (VOCAB, os.path.isfile(os.path.join(path, VOCAB)))) if not present]
    if missing:
        raise FileNotFoundError(
            f"--checkpoint {path} has no {' and no '.join(missing)}: a "
            f"student checkpoint folder holds {CONFIG}, {WEIGHTS[0]} and "
            f"{VOCAB}.")
    try:
        with open(os.path.join(path, CONFIG), encoding="utf-8") as f:
            config = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"--checkpoint {path}: {CONFIG} is not valid JSON "
                         f"({error}).") from None
    if not isinstance(config, dict):
        raise ValueError(f"--checkpoint {path}: {CONFIG} is not an object.")
    return config


def check_sequence_length(sequence_length, config, checkpoint_dir):
    """--sequence-length within [3, the checkpoint's position table]."""
    if sequence_length < 3:
        raise ValueError(f"--sequence-length must be at least 3 ([CLS], a "
                         f"word-piece, [SEP]), got {sequence_length}.")
    positions = config.get("max_position_embeddings", 512)
    if sequence_length > positions:
        raise ValueError(
            f"--sequence-length {sequence_length} exceeds the position table "
            f"of --checkpoint {checkpoint_dir} (max_position_embeddings="
            f"{positions} in its {CONFIG}).")


def _require(ok, flag, what, value):
    if not ok:
        raise ValueError(f"{flag} must be {what}, got {value}.")


def check_flags(args):
    """Refuses impossible values of `python -m export.tflite` flags."""
    try:
        check_variants(args.variants)
    except ValueError:
        raise ValueError(f"--variants {args.variants!r}: choose one or more "
                         f"of {', '.join(VARIANTS)} (comma-separated)."
                         ) from None
    finite = math.isfinite
    _require(args.max_eval is None or args.max_eval >= 1, "--max-eval",
             "at least 1", args.max_eval)
    _require(args.latency_runs >= 0, "--latency-runs", "0 or more",
             args.latency_runs)
    _require(args.calibration_samples >= 1, "--calibration-samples",
             "at least 1", args.calibration_samples)
    _require(args.qat_epochs >= 0, "--qat-epochs", "0 or more",
             args.qat_epochs)
    _require(finite(args.qat_learning_rate) and args.qat_learning_rate > 0,
             "--qat-learning-rate", "a positive number",
             args.qat_learning_rate)
    _require(finite(args.max_accuracy_drop) and args.max_accuracy_drop >= 0,
             "--max-accuracy-drop", "0 or more (accuracy points)",
             args.max_accuracy_drop)
    _require(args.mediapipe_examples >= -1, "--mediapipe-examples",
             "-1 (all), 0 (none) or a count", args.mediapipe_examples)
    _require(args.mask_value is None or (finite(args.mask_value)
                                         and args.mask_value < 0),
             "--mask-value", "a negative number", args.mask_value)
    if args.train_file is None:
        given = [f"--{n.replace('_', '-')}" for n in FILES_NEEDING_TRAIN_FILE
                 if getattr(args, n) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to your own "
                             "files: give --train-file too.")
    for flag in ("train_file", "dev_file", "test_file"):
        path = getattr(args, flag)
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"--{flag.replace('_', '-')} {path}: no "
                                    "such file.")


def check_labels(ckpt, data, checkpoint_dir):
    """Refuses data (an `ExportData`) whose labels are not the classes of
    `ckpt` (a `tinybert_tf.checkpoint.Checkpoint`)."""
    if "classifier.weight" not in ckpt.weights:
        return  # export_classifier refuses it
    num_labels = ckpt.weights["classifier.weight"].shape[0]
    names = ckpt.extras.get("label_names")
    ours = list(data.label_names or [])
    if ours and len(ours) != num_labels:
        raise ValueError(
            f"The data has {len(ours)} labels {ours} but the classifier of "
            f"checkpoint {checkpoint_dir} has {num_labels}"
            f"{f' {list(names)}' if names else ''}: export with the task or "
            "files the checkpoint was trained on.")
    if ours and names and ours != list(names):
        raise ValueError(
            f"The labels of the data {ours} are not those of checkpoint "
            f"{checkpoint_dir} {list(names)} (class id = position in the "
            "list): export with the task or files the checkpoint was "
            "trained on.")
