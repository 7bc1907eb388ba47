"""Peer of our .tflite: the same student in ONNX under onnxruntime, batch 1.

One random-weight classifier of the default student shape
(`tinybert-3l-192d`, full 30522 vocabulary, 5 labels) is built with
tinybert_tf, converted to our TFLite variants (`export.convert`, as
`tflite_speed.py` does) and saved as a HF checkpoint
(`tinybert_tf.checkpoint.save`); transformers' BertForSequenceClassification
loads those same weights, `torch.onnx.export` writes them (opset 17, fixed
[1, seq] inputs, softmax on the logits like our signature) and
`onnxruntime.quantization.quantize_dynamic` makes the int8 model (int8
weights, activations quantized at run time: the counterpart of our
`dynamic_int8`). `ort_fused` first runs onnxruntime's BERT graph optimizer
(`onnxruntime.transformers.optimizer`: fused attention, LayerNorm, GELU),
the documented route for BERT on onnxruntime, then quantizes.

All models run in one process on the same input row, one thread each
(LiteRT `num_threads=1`; onnxruntime intra_op = inter_op = 1, sequential),
interleaved: every round invokes every model once.

    python benchmarks/onnx_latency.py --sequence-length 128
    python benchmarks/onnx_latency.py --sequence-length 64 --runs 100

Needs the `bench` and `mobile` extras (`pip install -e .[bench,mobile]`:
onnxruntime, onnx, torch, transformers; LiteRT, MediaPipe). Prints ONE JSON line:
`rows` (model, runtime, variant, size, median / min ms) and each model's
largest probability difference from the float32 TFLite output.
"""

import argparse
import os
import tempfile

import bench_common as common
import numpy as np

from export import quantize
from tflite_speed import (convert_variants, litert_call, random_classifier,
                          random_inputs, time_interleaved)
from tinybert_tf import assets, checkpoint
from tinybert_tf.config import BertConfig

TFLITE_VARIANTS = ("float32", "dynamic_int8")
ORT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_onnx(hf_dir, path, length):
    """The HF checkpoint as an ONNX graph [1, length] -> probabilities."""
    import torch
    from transformers import BertForSequenceClassification

    class Probabilities(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = BertForSequenceClassification.from_pretrained(hf_dir).eval()

        def forward(self, input_ids, attention_mask, token_type_ids):
            return torch.softmax(self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                           token_type_ids=token_type_ids).logits, -1)

    model = Probabilities()
    dummy = tuple(torch.ones(1, length, dtype=torch.long) for _ in ORT_INPUTS)
    with torch.no_grad():
        torch.onnx.export(model, dummy, path, input_names=list(ORT_INPUTS),
                          output_names=["probabilities"], opset_version=17, dynamo=False)
    return model.bert.config


def onnx_variants(hf_dir, work, length):
    """{variant: .onnx path}: float32, int8, fused+int8."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    paths = {v: os.path.join(work, f"{v}.onnx") for v in ("float32", "int8", "fused_int8")}
    config = export_onnx(hf_dir, paths["float32"], length)
    fused = os.path.join(work, "fused.onnx")
    optimize_model(paths["float32"], model_type="bert", num_heads=config.num_attention_heads,
                   hidden_size=config.hidden_size).save_model_to_file(fused)
    quantize_dynamic(paths["float32"], paths["int8"], weight_type=QuantType.QInt8)
    quantize_dynamic(fused, paths["fused_int8"], weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return paths


def ort_call(path, inputs):
    """(no-argument call, output function) of an .onnx file, one thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {name: np.asarray(inputs[key][:1], np.int64) for name, key in
            zip(ORT_INPUTS, ("token_ids", "padding_mask", "segment_ids"))}
    return lambda: session.run(None, feed)[0][0]


def build(args, work):
    """[(row, call)] of every model, TFLite first."""
    config = BertConfig.from_preset(args.student)
    model = random_classifier(config)
    vocabulary = checkpoint.read_vocabulary(os.path.join(assets.minilm_dir(), "vocab.txt"))
    inputs = random_inputs(config.vocab_size, args.sequence_length)
    models = []
    for row, content, _ in convert_variants(args.student, model, vocabulary, inputs,
                                            TFLITE_VARIANTS, args.sequence_length, work):
        row["runtime"] = "LiteRT"
        models.append((row, litert_call(content, inputs)))
    hf_dir = os.path.join(work, "hf")
    checkpoint.save(model, hf_dir, vocabulary)
    for variant, path in onnx_variants(hf_dir, work, args.sequence_length).items():
        row = {"model": args.student, "variant": variant, "runtime": "onnxruntime",
               "parameters": model.count_params(),
               "size_mb": round(os.path.getsize(path) / 1e6, 2)}
        models.append((row, ort_call(path, inputs)))
    return models


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default="tinybert-3l-192d",
                    help="a tinybert_tf preset (default: our default student)")
    ap.add_argument("--sequence-length", type=int, default=128)
    ap.add_argument("--runs", type=int, default=50,
                    help="timing rounds; each invokes every model once")
    args = ap.parse_args(argv)
    import onnxruntime
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="onnx_latency-") as work:
        models = build(args, work)
        reference = models[0][1]()  # float32 TFLite probabilities
        for row, call in models:
            row["max_abs_diff_vs_tflite_float32"] = float(np.max(np.abs(call() - reference)))
        timings = time_interleaved([call for _, call in models], args.runs)
    rows = [row for row, _ in models]
    for row, (median, least) in zip(rows, timings):
        row["latency_ms"], row["latency_min_ms"] = median, least
    common.emit({"bench": "onnx_vs_tflite_latency", "sequence_length": args.sequence_length,
                 "batch": 1, "threads": 1, "runs": args.runs,
                 "framework": f"tensorflow {tf.__version__}, onnxruntime "
                              f"{onnxruntime.__version__}",
                 "export_mask_value": quantize.EXPORT_MASK_VALUE,
                 "rows": rows})


if __name__ == "__main__":
    main()
