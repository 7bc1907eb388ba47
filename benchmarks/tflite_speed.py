"""Size and speed of the TFLite variants (LiteRT, batch 1, one thread).

Rows:
- a student checkpoint, when `--checkpoint` is given (its real weights);
- TinyBERT4 (4 layers, 312 hidden, full 30522 vocabulary), random weights;
- the embedded BBC student shape (preset "tinybert-3l-192d") with the
  vocabulary trimmed to the BBC training text, random weights;
- BERT-base float32, random weights: the baseline of the speed-up column.

Random weights give the same file sizes and latencies as trained ones (the
graph and the tensor shapes are what count). Every model carries the
MediaPipe metadata (vocabulary + labels), as shipped.

Run:

```bash
.venv/bin/python benchmarks/tflite_speed.py --sequence-length 128 \\
    --checkpoint runs/bbc/student --output benchmarks/tflite_speed.json
```
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from export import convert, quantize, runtimes, signature, vocab_trim
from tinybert_tf import assets, checkpoint
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.config import BertConfig
from tinybert_tf.heads import BertClassifier
from tinybert_tf.tokenizer import BertTextTokenizer

NUM_LABELS = 5


def random_inputs(vocab_size, sequence_length, rows=64, seed=0):
    """Model inputs with random word-pieces, about a third of them padding."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1000 if vocab_size > 2000 else 5, vocab_size,
                             (rows, sequence_length)).astype(np.int32)
    lengths = rng.integers(sequence_length // 3, sequence_length + 1, rows)
    mask = (np.arange(sequence_length)[None] < lengths[:, None]).astype(np.int32)
    token_ids[:, 0] = 2
    return {"token_ids": token_ids * mask, "segment_ids": np.zeros_like(mask),
            "padding_mask": mask}


def random_classifier(config, seed=0):
    """A classifier whose every tensor holds distinct random values, so that
    the converter cannot store two of them once (it shares identical
    buffers: zero biases, or kernels from one seeded initializer)."""
    model = BertClassifier(BertBackbone(config.replace(
        attention_mask_value=quantize.EXPORT_MASK_VALUE)), NUM_LABELS)
    model(dummy_inputs())
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0.0, config.initializer_range,
                                   variable.shape).astype("float32"))
    return model


def convert_variants(name, model, vocabulary, inputs, variants,
                     sequence_length, work):
    """Converts `model` to each variant: [(row, .tflite bytes, inputs)]."""
    saved_model = signature.export_saved_model(
        model, os.path.join(work, name), sequence_length)
    calibration = convert.representative_dataset(inputs, num_samples=32)
    labels = [f"label_{i}" for i in range(model.num_labels)]
    converted = []
    for variant in variants:
        start = time.perf_counter()
        content = convert.build_variant(saved_model, variant, calibration,
                                       vocabulary, labels)
        row = {"model": name, "variant": variant,
               "parameters": model.count_params(),
               "vocab_size": model.config.vocab_size,
               "size_mb": round(len(content) / 1e6, 2),
               "conversion_seconds": round(time.perf_counter() - start, 1)}
        print(f"converted {name} {variant}: {row['size_mb']} MB", flush=True)
        converted.append((row, content, inputs))
    shutil.rmtree(saved_model, ignore_errors=True)
    return converted


def time_interleaved(calls, rounds, warmup=3):
    """[(median ms, min ms)] of each no-argument call, timed in turns (one
    call of each per round) so that a load change on a shared machine hits
    every one alike."""
    for call in calls:
        for _ in range(warmup):
            call()
    times = [[] for _ in calls]
    for _ in range(rounds):
        for call, spent in zip(calls, times):
            start = time.perf_counter()
            call()
            spent.append(1000.0 * (time.perf_counter() - start))
    return [(round(float(np.median(t)), 2), round(float(np.min(t)), 2))
            for t in times]


def litert_call(content, inputs):
    """A no-argument call of the .tflite `content` on the first input row
    (LiteRT, one thread)."""
    runner = runtimes.LiteRTClassifier(content, num_threads=1)
    one = {k: v[:1] for k, v in signature.to_tflite_inputs(inputs).items()}
    return lambda: runner.predict_one(one)


def interleaved_latency(converted, rounds):
    """Median and min ms per converted model (LiteRT, batch 1, one thread)."""
    calls = [litert_call(content, inputs) for _, content, inputs in converted]
    for (row, _, _), (median, least) in zip(converted,
                                            time_interleaved(calls, rounds)):
        row["latency_ms"], row["latency_min_ms"] = median, least


def bbc_trimmed_vocabulary(vocabulary, sequence_length):
    from tinybert_tf.tasks import load_task

    texts = load_task("bbc_news").train.text_a
    tokenizer = BertTextTokenizer(vocabulary, sequence_length=sequence_length)
    keep = vocab_trim.kept_ids(vocabulary, texts, tokenizer)
    return [vocabulary[i] for i in keep]


def run(args):
    variants = convert.check_variants(args.variants)
    length = args.sequence_length
    vocabulary = checkpoint.read_vocabulary(
        os.path.join(assets.minilm_dir(), "vocab.txt"))
    converted = []
    work = tempfile.mkdtemp(prefix="tflite_speed-")
    try:
        if args.checkpoint:
            student = checkpoint.load_classifier(
                args.checkpoint,
                attention_mask_value=quantize.EXPORT_MASK_VALUE)
            name = os.path.basename(os.path.normpath(args.checkpoint))
            converted += convert_variants(
                f"checkpoint:{name}", student,
                checkpoint.read_vocabulary(student.vocab_file),
                random_inputs(student.config.vocab_size, length), variants,
                length, work)
        tinybert4 = BertConfig.from_preset("tinybert-4l-312d")
        converted += convert_variants(
            "tinybert-4l-312d", random_classifier(tinybert4), vocabulary,
            random_inputs(tinybert4.vocab_size, length), variants, length,
            work)
        if not args.skip_bbc_trimmed:
            trimmed = bbc_trimmed_vocabulary(vocabulary, length)
            bbc = BertConfig.from_preset("tinybert-3l-192d").replace(
                vocab_size=len(trimmed))
            converted += convert_variants(
                "tinybert-3l-192d+bbc-trim", random_classifier(bbc), trimmed,
                random_inputs(bbc.vocab_size, length), variants, length, work)
        if not args.skip_bert_base:
            base = BertConfig.from_preset("bert-base-uncased")
            converted += convert_variants(
                "bert-base-uncased", random_classifier(base), vocabulary,
                random_inputs(base.vocab_size, length), ("float32",), length,
                work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    interleaved_latency(converted, args.runs)
    rows = [row for row, _, _ in converted]
    baseline = next((r["latency_ms"] for r in rows
                     if r["model"] == "bert-base-uncased"), None)
    for row in rows:
        row["speedup_vs_bert_base_fp32"] = (
            round(baseline / row["latency_ms"], 1) if baseline else None)
    return rows


def markdown_table(rows, sequence_length):
    lines = [f"| model (seq {sequence_length}) | variant | params | size (MB) | "
             "median / min latency (ms, 1 thread) | speed-up vs BERT-base "
             "fp32 (median) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        speedup = row["speedup_vs_bert_base_fp32"]
        lines.append(
            f"| {row['model']} | {row['variant']} | "
            f"{row['parameters'] / 1e6:.1f}M | {row['size_mb']:.2f} | "
            f"{row['latency_ms']:.2f} / {row['latency_min_ms']:.2f} | "
            f"{'' if speedup is None else f'{speedup}x'} |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None,
                        help="a student checkpoint to include")
    parser.add_argument("--variants", default=",".join(convert.VARIANTS))
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--runs", type=int, default=30,
                        help="timing rounds; each invokes every model once")
    parser.add_argument("--skip-bert-base", action="store_true")
    parser.add_argument("--skip-bbc-trimmed", action="store_true")
    parser.add_argument("--output", default=None, help="JSON file of the rows")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rows = run(args)
    print(markdown_table(rows, args.sequence_length))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump({"sequence_length": args.sequence_length, "rows": rows},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
