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

Exit status 1 when a variant loses more than `--max-accuracy-drop` points.
"""

import argparse
import os
import sys

from export.classifier import REPORT_FILE, ExportOptions, export_classifier
from export.convert import VARIANTS
from export.quantize import QATOptions
from export.signature import DEFAULT_SEQUENCE_LENGTH
from tinybert_tf import console


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
                        help="timed LiteRT invokes per variant")
    parser.add_argument("--calibration-samples", type=int, default=200)
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
        mediapipe_check=(None if args.mediapipe_examples < 0
                         else args.mediapipe_examples))


def main(argv=None):
    args = parse_args(argv)
    console.setup(args.verbose)
    report = export_classifier(args.checkpoint, args.output,
                               options_from_args(args))
    print(f"Wrote {len(report['variants'])} models and {REPORT_FILE} to "
          f"{os.path.abspath(args.output)}.", flush=True)
    return 1 if report["flagged"] else 0


if __name__ == "__main__":
    sys.exit(main())
