"""Size and speed of the TFLite variants (LiteRT, batch 1, one thread).

Rows:
- a student checkpoint, when `--checkpoint` is given (its real weights);
- TinyBERT4 (4 layers, 312 hidden, full 30522 vocabulary), random weights;
- the embedded BBC student shape (preset "tinybert-3l-192d") with the
  vocabulary trimmed to the BBC training text, random weights;
- BERT-base float32, random weights: the baseline of the speed-up column.

Random weights give the same file sizes and latencies as trained ones (the
graph and the tensor shapes are what count). Every model carries the
MediaPipe metadata (vocabulary + labels), as shipped. Variant
`full_int8_integer_only` is full_int8 converted with `integer_only=True`
(every op in int8, export/convert.py).

`--op-profile N` also times every op of each file on its own (`op_profile`:
the op cut out into a one-op model, LiteRT with its default XNNPACK
delegate, one thread, median of N invokes) and prints, per model, the
milliseconds per op type and how many of its ops XNNPACK took: the ops that
fall back to TFLite's builtin kernels.

Run:

```bash
.venv/bin/python benchmarks/tflite_speed.py --sequence-length 128 \\
    --checkpoint runs/bbc/student --output benchmarks/tflite_speed.json
```
"""

import argparse
import copy
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
INTEGER_ONLY = "full_int8_integer_only"  # full_int8, integer_only=True


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
        content = convert.build_variant(
            saved_model, "full_int8" if variant == INTEGER_ONLY else variant,
            calibration, vocabulary, labels,
            integer_only=variant == INTEGER_ONLY)
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


def one_op_models(content):
    """(op name, .tflite bytes) for each op of the main graph of `content`,
    cut out alone: its non-constant inputs become the model's inputs."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    model.signatureDefs, model.metadata = [], None
    for op in graph.operators:
        alone = copy.copy(graph)
        alone.operators = [op]
        alone.inputs = [t for t in op.inputs if t >= 0 and model.buffers[
            graph.tensors[t].buffer].data is None]
        alone.outputs = list(op.outputs)
        model.subgraphs = [alone]
        yield (flatbuffer_utils.opcode_to_name(model, op.opcodeIndex),
               bytes(flatbuffer_utils.convert_object_to_bytearray(model)))


def _random_input(rng, detail):
    """A value for an input of a one-op model: zeros for int32 / bool
    (valid indices and masks), random numbers otherwise."""
    dtype, shape = detail["dtype"], detail["shape"]
    if dtype in (np.int32, np.bool_):
        return np.zeros(shape, dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, endpoint=True
                            ).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def time_one_op(content, runs):
    """(median µs of `runs` invokes, whether XNNPACK took the op) of a
    one-op model, LiteRT, one thread."""
    from ai_edge_litert.interpreter import Interpreter

    from tinybert_tf import console

    interpreter = Interpreter(model_content=content, num_threads=1)
    with console.native_output_captured():
        interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], _random_input(rng, detail))
    taken = any(op["op_name"] == "DELEGATE"
                for op in interpreter._get_ops_details())
    interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return 1e6 * float(np.median(times)), taken


def op_profile(content, runs):
    """{op name: {count, ms, xnnpack}}, most time first: the summed median
    time of the ops of each type, each run alone, and how many of them
    XNNPACK took (the others run TFLite's builtin kernels)."""
    profile = {}
    for name, alone in one_op_models(content):
        microseconds, taken = time_one_op(alone, runs)
        entry = profile.setdefault(name, {"count": 0, "ms": 0.0,
                                          "xnnpack": 0})
        entry["count"] += 1
        entry["ms"] += microseconds / 1000.0
        entry["xnnpack"] += int(taken)
    for entry in profile.values():
        entry["ms"] = round(entry["ms"], 3)
    return dict(sorted(profile.items(), key=lambda item: -item[1]["ms"]))


def profile_table(model, rows):
    """Markdown: op types x variants of `model`, ms (ops XNNPACK took / ops)."""
    rows = [row for row in rows if row["model"] == model]
    names = sorted({name for row in rows for name in row["op_profile"]},
                   key=lambda name: -max(row["op_profile"].get(
                       name, {"ms": 0.0})["ms"] for row in rows))
    lines = [f"| {model}: op | " + " | ".join(
                 f"{row['variant']} ms (XNNPACK/ops)" for row in rows) + " |",
             "| --- |" + " ---: |" * len(rows)]
    for name in names + ["all ops"]:
        cells = []
        for row in rows:
            entries = (row["op_profile"].values() if name == "all ops"
                       else [row["op_profile"][name]]
                       if name in row["op_profile"] else [])
            cells.append(f"{sum(e['ms'] for e in entries):.3f} ("
                         f"{sum(e['xnnpack'] for e in entries)}/"
                         f"{sum(e['count'] for e in entries)})"
                         if entries else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bbc_trimmed_vocabulary(vocabulary, sequence_length):
    from tinybert_tf.tasks import load_task

    texts = load_task("bbc_news").train.text_a
    tokenizer = BertTextTokenizer(vocabulary, sequence_length=sequence_length)
    keep = vocab_trim.kept_ids(vocabulary, texts, tokenizer)
    return [vocabulary[i] for i in keep]


def run(args):
    variants = convert.check_variants(args.variants,
                                      convert.VARIANTS + (INTEGER_ONLY,))
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
        if not args.skip_tinybert4:
            tinybert4 = BertConfig.from_preset("tinybert-4l-312d")
            converted += convert_variants(
                "tinybert-4l-312d", random_classifier(tinybert4), vocabulary,
                random_inputs(tinybert4.vocab_size, length), variants,
                length, work)
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
    for row, content, _ in converted if args.op_profile else ():
        row["op_profile"] = op_profile(content, args.op_profile)
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
    parser.add_argument("--variants",
                        default=",".join(convert.VARIANTS + (INTEGER_ONLY,)))
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--runs", type=int, default=30,
                        help="timing rounds; each invokes every model once")
    parser.add_argument("--op-profile", type=int, default=0, metavar="N",
                        help="also time every op alone, N invokes each")
    parser.add_argument("--skip-tinybert4", action="store_true")
    parser.add_argument("--skip-bert-base", action="store_true")
    parser.add_argument("--skip-bbc-trimmed", action="store_true")
    parser.add_argument("--output", default=None, help="JSON file of the rows")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rows = run(args)
    print(markdown_table(rows, args.sequence_length))
    for model in dict.fromkeys(r["model"] for r in rows if "op_profile" in r):
        print(profile_table(model, rows))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump({"sequence_length": args.sequence_length, "rows": rows},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
