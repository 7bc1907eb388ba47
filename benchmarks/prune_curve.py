"""Accuracy against size and TFLite dynamic-int8 latency of pruned students.

Each `--checkpoint NAME=DIR` (a student of trainers.task or trainers.prune)
is converted to a dynamic-range int8 .tflite (with the MediaPipe metadata,
as export.tflite ships it; the mask constant of the export), timed with
LiteRT at batch 1 on one thread (every model once per round, in turns, so
that the load of a shared machine hits all alike: tflite_speed.py's
method), and run on the test split of the task (BBC News by default). The
Keras scores before pruning / after pruning / after recovery come from the
prune_report.json next to a pruned student.

Run (docs/pruning.md):

```bash
.venv/bin/python benchmarks/prune_curve.py --sequence-length 40 \\
    --checkpoint unpruned=outputs/task/student \\
    --checkpoint h67-f50=outputs/pruned/student \\
    --output benchmarks/results/prune_curve.json
```
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tflite_speed import convert_variants, interleaved_latency  # noqa: E402

from export import quantize  # noqa: E402
from export.data import encode  # noqa: E402
from export.runtimes import LiteRTClassifier  # noqa: E402
from tinybert_tf import checkpoint  # noqa: E402
from tinybert_tf.task_data import TaskDataOptions, load_task_data  # noqa: E402
from tinybert_tf.tokenizer import BertTextTokenizer  # noqa: E402


def _report(directory):
    path = os.path.join(os.path.dirname(os.path.normpath(directory)),
                        "prune_report.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def measure(named, sequence_length, runs, task_options, accuracy=True):
    """Rows {model, parameters, non_embedding, heads, ffn, latency_ms,
    tflite_test_accuracy, keras scores} of each (name, checkpoint dir)."""
    task = load_task_data(task_options) if accuracy else None
    work = tempfile.mkdtemp(prefix="prune_curve-")
    converted, rows = [], []
    try:
        for name, directory in named:
            model = checkpoint.load_classifier(
                directory, attention_mask_value=quantize.EXPORT_MASK_VALUE)
            vocabulary = checkpoint.read_vocabulary(model.vocab_file)
            tokenizer = BertTextTokenizer(vocabulary, sequence_length)
            inputs = encode(tokenizer, task.test.text_a if task else
                            ["a short text"] * 4)
            (row, content, _), = convert_variants(
                name, model, vocabulary, inputs, ("dynamic_int8",),
                sequence_length, work)
            config = model.config
            layers = range(config.num_layers)
            row.update(
                checkpoint=directory,
                non_embedding_parameters=config.non_embedding_parameters(),
                heads=[config.layer_num_heads(i) for i in layers],
                ffn=[config.layer_intermediate_size(i) for i in layers])
            if task is not None:
                probabilities = LiteRTClassifier(content).predict(inputs)
                row["tflite_test_accuracy"] = float(np.mean(
                    probabilities.argmax(-1) == task.test.labels))
            report = _report(directory)
            if report is not None:
                row["keras_test_accuracy"] = {
                    stage: None if scores is None else scores["test"]["accuracy"]
                    for stage, scores in report["scores"].items()}
            converted.append((row, content, inputs))
            rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    interleaved_latency(converted, runs)
    base = rows[0]["latency_ms"]
    for row in rows:
        row["latency_vs_first"] = round(row["latency_ms"] / base, 3)
    return rows


def markdown_table(rows, sequence_length):
    lines = [f"| model (seq {sequence_length}) | heads | FFN | non-emb. params "
             "| test acc. after pruning | after recovery | TFLite dyn-int8 "
             "test acc. | dyn-int8 ms (median / min) | vs first |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        keras = row.get("keras_test_accuracy") or {}

        def cell(stage):
            value = keras.get(stage)
            return "" if value is None else f"{value:.4f}"
        lines.append(
            f"| {row['model']} | {'/'.join(map(str, row['heads']))} | "
            f"{'/'.join(map(str, row['ffn']))} | "
            f"{row['non_embedding_parameters']:,} | {cell('after_pruning')} | "
            f"{cell('after_recovery')} | "
            f"{row.get('tflite_test_accuracy', float('nan')):.4f} | "
            f"{row['latency_ms']:.2f} / {row['latency_min_ms']:.2f} | "
            f"{row['latency_vs_first']:.2f}x |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", action="append", required=True,
                        metavar="NAME=DIR", help="the first is the reference")
    parser.add_argument("--sequence-length", type=int, default=40)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--no-accuracy", action="store_true",
                        help="latency only")
    parser.add_argument("--output", default=None, help="JSON file of the rows")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    named = []
    for item in args.checkpoint:
        name, _, directory = item.partition("=")
        if not directory or not os.path.isdir(directory):
            raise SystemExit(f"--checkpoint {item}: expected NAME=DIR.")
        named.append((name, directory))
    rows = measure(named, args.sequence_length, args.runs, TaskDataOptions(),
                   accuracy=not args.no_accuracy)
    print(markdown_table(rows, args.sequence_length))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
