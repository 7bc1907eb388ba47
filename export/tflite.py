"""Command line: student checkpoint -> verified, Android-ready TFLite files.

Every variant (float32, float16, dynamic-range int8, full-integer int8) has
the Android signature (export/signature.py) and the MediaPipe metadata, and
is verified with LiteRT and MediaPipe's TextClassifier before it is moved
into the output folder with `export_report.json`; the work is done by
`export.classifier.export_classifier`, which this module only calls.

```bash
python -m export.tflite --checkpoint runs/bbc/student --output runs/bbc/tflite \\
    --task bbc_news --variants float32,float16,dynamic_int8,full_int8 \\
    --sequence-length 128 --trim-vocab
```

Exit status:

- 0: every variant written and within `--max-accuracy-drop`;
- 1: a variant loses more than `--max-accuracy-drop` accuracy points against
  the Keras student (written anyway, flagged in `export_report.json`; with
  `--strict` nothing is written), or a bug of ours (shown with its
  traceback);
- 2: a mistake the user can fix, refused before any model is loaded where
  it can be (`export.preflight`): an impossible flag value, a checkpoint
  folder without config.json / model.safetensors / vocab.txt, a
  `--sequence-length` beyond its position table, data whose labels are not
  the checkpoint's, an output folder that is a file, cannot be written,
  holds (or is, or is inside) the checkpoint, or is not empty: `--overwrite`
  replaces only an export's own entries (`model_*.tflite`,
  `export_report.json`, `student_qat/`) and refuses a folder holding
  anything else, listing it;
- 130: interrupted (Ctrl-C). Nothing is half-written in any case: the
  files are staged in a `.export-*` folder next to the output, removed
  whatever happens.
"""

import argparse
import os
import sys

from export import preflight
from export.classifier import (REPORT_FILE, AccuracyDropError, ExportOptions,
                               export_classifier)
from export.convert import VARIANTS
from export.quantize import QATOptions
from export.signature import DEFAULT_SEQUENCE_LENGTH, export_sequence_length
from tinybert_tf import console


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m export.tflite",
        description="Convert a student checkpoint to verified TFLite "
                    "classifiers with MediaPipe metadata.",
        epilog="Exit status: 0 done; 1 a variant lost more than "
               "--max-accuracy-drop points (or a bug, with its traceback); "
               "2 a bad flag, checkpoint, data or output folder (nothing "
               "written); 130 interrupted.")
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
    parser.add_argument("--sequence-length", type=int, default=None,
                        help="the fixed input length of the files (default: "
                             "the student's training length, else "
                             f"{DEFAULT_SEQUENCE_LENGTH})")
    parser.add_argument("--trim-vocab", action="store_true",
                        help="keep only the word-pieces of the training text")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the export files (model_*.tflite, "
                             f"{REPORT_FILE}, student_qat/) of an existing "
                             "output folder; one holding anything else is "
                             "refused")
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
                        help="attention mask constant of every variant "
                             "(default: the QAT one, else the smallest of "
                             "-30, -64, -128, -1000 that leaves the float "
                             "outputs unchanged)")
    parser.add_argument("--qat-epochs", type=int, default=0,
                        help="quantization-aware fine-tuning epochs before "
                             "the export (0: none); full_int8 is converted "
                             "from the QAT student, saved to "
                             "OUTPUT/student_qat")
    parser.add_argument("--qat-learning-rate", type=float, default=1e-5)
    parser.add_argument("--tokenizer-check", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="count the eval texts that MediaPipe's on-device "
                             "tokenizer turns into other ids")
    parser.add_argument("--latency-runs", type=int, default=50,
                        help="timed LiteRT invokes per variant (0: no "
                             "timing)")
    parser.add_argument("--calibration-samples", type=int, default=200)
    parser.add_argument("--integer-only", action="store_true",
                        help="full_int8 with every op in int8, for "
                             "integer-only accelerators (NPU/DSP/Edge TPU); "
                             "default: attention, LayerNorm and GELU stay "
                             "float32 (4x faster on CPUs)")
    parser.add_argument("--mediapipe-examples", type=int, default=32,
                        help="eval texts classified by MediaPipe's "
                             "TextClassifier (the Android runtime) per "
                             "variant; -1: all, 0: none")
    console.add_verbose_flag(parser)
    return parser.parse_args(argv)


def options_from_args(args):
    """The `ExportOptions` of parsed command-line arguments."""
    task_options = {k: v for k, v in (
        ("dev_file", args.dev_file), ("test_file", args.test_file),
        ("text_column", args.text_column),
        ("label_column", args.label_column)) if v is not None}
    return ExportOptions(
        task=args.task or (None if args.train_file else "bbc_news"),
        train_file=args.train_file, task_options=task_options,
        variants=args.variants, sequence_length=args.sequence_length,
        trim_vocab=args.trim_vocab, overwrite=args.overwrite,
        eval_split=args.eval_split, max_eval=args.max_eval,
        max_accuracy_drop=args.max_accuracy_drop, strict=args.strict,
        mask_value=args.mask_value,
        qat=(QATOptions(epochs=args.qat_epochs,
                        learning_rate=args.qat_learning_rate)
             if args.qat_epochs else None),
        tokenizer_check=args.tokenizer_check, latency_runs=args.latency_runs,
        calibration_samples=args.calibration_samples,
        integer_only=args.integer_only,
        mediapipe_check=(None if args.mediapipe_examples < 0
                         else args.mediapipe_examples))


def check_args(args):
    """Refuses bad flags, checkpoint folder and output folder (ValueError /
    OSError naming the flag) before anything is loaded."""
    preflight.check_flags(args)
    config = preflight.check_checkpoint(args.checkpoint)
    length = export_sequence_length(args.sequence_length,
                                    config.get("tinybert", {}))
    preflight.check_sequence_length(length, config, args.checkpoint)
    preflight.check_output(args.output, args.checkpoint, args.overwrite)


def run(args):
    check_args(args)
    try:
        report = export_classifier(args.checkpoint, args.output,
                                   options_from_args(args))
    except AccuracyDropError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Wrote {len(report['variants'])} models and {REPORT_FILE} to "
          f"{os.path.abspath(args.output)}.", flush=True)
    if report["flagged"]:
        print(f"Flagged (more than {args.max_accuracy_drop} accuracy points "
              f"lost): {', '.join(report['flagged'])}; exit status 1.",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    return console.run_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
