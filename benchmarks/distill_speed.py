"""Speed of one TinyBERT general-distillation step (`Distiller.train_step`).

Ours, timed like its peers `torch_distill_step.py` (PyTorch + transformers)
and `textbrewer_step.py` (TextBrewer's GeneralDistiller): same inputs (real
text from `bench_common.distill_text_pairs`, seed 42, batch 32, seq 128),
same step (teacher forward in inference mode, student forward with dropout,
attention + hidden losses with one shared projection, backward, global clip
1.0, AdamW 5e-5), same timing (3 warm-up steps, median of 10) and the same
JSON field names, printed as ONE line on stdout.

    python benchmarks/distill_speed.py                                  # MiniLM (real) -> 3L-312
    python benchmarks/distill_speed.py --student tinybert-3l-192d       # our default student
    python benchmarks/distill_speed.py --teacher bert-base --student tinybert-4l-312d
    python benchmarks/distill_speed.py --dtype bfloat16                 # mixed_bfloat16 policy
    python benchmarks/distill_speed.py --matmul-peak                    # this machine's matmul FLOP/s
    python benchmarks/distill_speed.py --dtype bfloat16 --phases        # where the step's time goes
    python benchmarks/distill_speed.py --compare OUT/*.jsonl            # ours vs peers table

Each step is one call of the compiled `distiller.train_function` on a
pre-tokenized batch, timed until its loss is read back. `--phases` also times
the parts of the step as separate compiled functions (teacher forward, student
forward, forward + loss, gradients) and reports their differences under the
phase names of torch_distill_step.py.

FLOPs of a step (multiply-add = 2 FLOPs; B batch, T sequence, per encoder of
L layers, width H, FFN width F):
    encoder forward = L * B * T * (8 H^2 + 4 H F + 4 T H)
        (Q, K, V and output projections 4 * 2H^2; FFN 2 * 2HF;
         QK^T and probs @ V 2 * 2TH summed over heads)
    projections forward = (L_s + 1) * 2 B T H_s H_t   (shared fit_dense)
    step = teacher forward + 3 * (student forward + projections forward)
        (backward ~ 2x forward: gradients of inputs and of weights; the
         teacher has no backward). Embedding look-ups, LayerNorm, softmax,
         GELU, the losses and AdamW are element-wise and left out.
"""

import argparse
import math
import os
import statistics
import time
from types import SimpleNamespace

import bench_common as common

STUDENTS = {"3l-312": "3 layers of TinyBERT4's width (the peers' default)",
            "tinybert-3l-192d": "our default student",
            "tinybert-4l-312d": "TinyBERT4"}


# ---------------------------------------------------------------- FLOPs

def encoder_forward_flops(config, batch, seq):
    h, f = config.hidden_size, config.intermediate_size
    return config.num_layers * batch * seq * (8 * h * h + 4 * h * f + 4 * seq * h)


def step_flops(teacher_config, student_config, batch, seq):
    """Matmul FLOPs of one distillation step (formula in the module doc)."""
    projections = ((student_config.num_layers + 1) * 2 * batch * seq
                   * student_config.hidden_size * teacher_config.hidden_size)
    return (encoder_forward_flops(teacher_config, batch, seq)
            + 3 * (encoder_forward_flops(student_config, batch, seq)
                   + projections))


def matmul_peak(tf, dtype, size=2048, chain=8, repeats=7):
    """Best FLOP/s of `chain` independent [size, size] matmuls in a tf.function."""
    a = tf.cast(tf.random.normal((chain, size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)

    @tf.function
    def run(a, b):
        return tf.reduce_sum(tf.cast(tf.matmul(a, b), "float32"))

    run(a, b).numpy()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return chain * 2 * size ** 3 / best


# ---------------------------------------------------------------- models

def student_config(name, BertConfig):
    if name == "3l-312":  # the peers' default: 3 layers of TinyBERT4's width
        return BertConfig.from_preset("tinybert-4l-312d").replace(num_layers=3)
    return BertConfig.from_preset(name)


def build_models(args):
    import keras
    from tinybert_tf import assets, checkpoint
    from tinybert_tf.backbone import BertBackbone
    from tinybert_tf.config import BertConfig

    keras.utils.set_random_seed(args.seed)
    if args.teacher == "minilm":
        teacher = checkpoint.load_backbone(assets.minilm_dir())
    else:
        teacher = BertBackbone(BertConfig.from_preset("bert-base-uncased"))
    config = student_config(args.student, BertConfig)
    if args.student_attention_dropout is not None:
        config = config.replace(attention_dropout=args.student_attention_dropout)
    student = BertBackbone(config)
    return teacher, student


def make_batches(tf, vocab_file, n_batches, batch, seq, seed):
    from tinybert_tf.tokenizer import BertTextTokenizer

    pairs = common.distill_text_pairs(n_batches * batch, seed=seed)
    tokenizer = BertTextTokenizer(vocab_file, sequence_length=seq)
    encoded = tokenizer([a for a, _ in pairs], [b for _, b in pairs])
    batches = [{name: tf.identity(value[i * batch:(i + 1) * batch])
                for name, value in encoded.items()} for i in range(n_batches)]
    pad_fraction = 1.0 - float(tf.reduce_mean(
        tf.cast(encoded["padding_mask"], "float32")))
    return batches, pad_fraction, common.word_count(a + " " + b for a, b in pairs)


def time_calls(function, batches, warmup):
    """Seconds per call of `function(batch)` (result read back) after warm-up."""
    times, values = [], []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        values.append(float(function(batch)))
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times, values


def phase_times(tf, distiller, batches, warmup, jit_compile):
    """Parts of the step compiled on their own; phases are their differences."""
    compile_ = lambda f: tf.function(f, jit_compile=bool(jit_compile))
    total = lambda out: tf.add_n([tf.reduce_sum(tf.cast(t, "float32"))
                                  for t in out["hidden_states"]])

    @compile_
    def teacher_forward(x):
        return total(distiller.teacher(x, training=distiller.teacher_training))

    @compile_
    def student_forward(x):
        return total(distiller.student(x, training=True))

    @compile_
    def forward_and_loss(x):
        return distiller._losses_for(x, training=True)["loss"]

    @compile_
    def gradients(x):
        variables = distiller.train_variables
        with tf.GradientTape() as tape:
            loss = distiller._losses_for(x, training=True)["loss"]
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, variables)])

    med = {}
    for name, fn in (("teacher", teacher_forward), ("student", student_forward),
                     ("forward_loss", forward_and_loss), ("gradients", gradients)):
        med[name] = statistics.median(time_calls(fn, batches, warmup)[0])
    return med


# ---------------------------------------------------------------- main

def run(args):
    import keras
    import tensorflow as tf

    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    policy = "mixed_bfloat16" if args.dtype == "bfloat16" else "float32"
    keras.mixed_precision.set_global_policy(policy)

    from tinybert_tf import assets
    from tinybert_tf.distiller import Distiller
    from tinybert_tf.optimizers import make_optimizer

    t_setup = time.perf_counter()
    teacher, student = build_models(args)
    distiller = Distiller(teacher, student)
    jit = {"false": False, "true": True, "auto": "auto"}[args.jit_compile]
    distiller.compile(optimizer=make_optimizer(args.lr, clip_norm=args.clip),
                      jit_compile=jit)
    distiller.make_train_function()
    n_batches = args.warmup + args.steps
    vocab = os.path.join(assets.minilm_dir(), "vocab.txt")
    batches, pad_fraction, n_words = make_batches(
        tf, vocab, n_batches, args.batch, args.seq, args.seed)
    setup_s = time.perf_counter() - t_setup

    rss_before = common.current_rss_mb()
    step = lambda batch: distiller.train_function(iter([batch]))["loss"]
    times, losses = time_calls(step, batches, args.warmup)
    if not all(math.isfinite(x) for x in losses):
        raise SystemExit(f"non-finite loss: {losses}")
    st = common.stats(times)

    t_cfg, s_cfg = teacher.config, student.config
    k = distiller.mapping.teacher_layers // distiller.mapping.student_layers
    flops = step_flops(t_cfg, s_cfg, args.batch, args.seq)
    result = {
        "bench": "tf_distill_step",
        "framework": f"tensorflow {tf.__version__} + keras {keras.__version__}",
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        "batch": args.batch, "seq": args.seq,
        "dtype_policy": policy,
        "jit_compile": distiller.jit_compile,
        "teacher": {"kind": args.teacher, "layers": t_cfg.num_layers,
                    "hidden": t_cfg.hidden_size, "heads": t_cfg.num_heads,
                    "ffn": t_cfg.intermediate_size,
                    "params": teacher.count_params(),
                    "mode": "inference" if not distiller.teacher_training else "dropout"},
        "student": {"layers": s_cfg.num_layers, "hidden": s_cfg.hidden_size,
                    "heads": s_cfg.num_heads, "ffn": s_cfg.intermediate_size,
                    "params": student.count_params(),
                    "attention_dropout": s_cfg.attention_dropout,
                    "fit_dense_params": sum(d.count_params() for d in distiller.projections)},
        "k": k,
        "att_map": [t for _, t in distiller.mapping.attention_pairs()],
        "hid_map": [t for _, t in distiller.mapping.hidden_pairs(include_embeddings=True)],
        "warmup_steps": args.warmup, "timed_steps": args.steps,
        "step_s": st,
        "examples_per_s": args.batch / st["median"],
        "tokens_per_s": args.batch * args.seq / st["median"],
        "step_gflop": flops / 1e9,
        "achieved_gflop_per_s": flops / st["median"] / 1e9,
        "loss_first": losses[0], "loss_last": losses[-1],
        "data": {"source": common.TEXT_SOURCE,
                 "pad_fraction": pad_fraction, "words": n_words},
        "setup_s": setup_s,
        "rss_before_steps_mb": rss_before,
        # Before --phases / --matmul-peak add their own allocations.
        "peak_rss_mb": common.peak_rss_mb(),
    }
    if args.phases:
        med = phase_times(tf, distiller, batches, args.warmup, distiller.jit_compile)
        result["phase_median_s"] = {
            "teacher_forward": med["teacher"], "student_forward": med["student"],
            "loss": med["forward_loss"] - med["teacher"] - med["student"],
            "backward": med["gradients"] - med["forward_loss"],
            "clip_and_optimizer": st["median"] - med["gradients"]}
        result["phase_method"] = ("parts compiled separately; loss, backward and "
                                  "clip_and_optimizer are differences of medians")
    if args.matmul_peak:
        peak = matmul_peak(tf, "bfloat16" if args.dtype == "bfloat16" else "float32")
        result["matmul_peak_gflop_per_s"] = peak / 1e9
        result["fraction_of_matmul_peak"] = flops / st["median"] / peak
    common.emit(result)
    return result


def peak_only(args):
    import tensorflow as tf
    result = {"bench": "tf_matmul_peak", "size": 2048,
              "framework": f"tensorflow {tf.__version__}"}
    for dtype in ("float32", "bfloat16"):
        result[f"{dtype}_gflop_per_s"] = matmul_peak(tf, dtype) / 1e9
    common.emit(result)


# ---------------------------------------------------------------- comparison

def _median(runs, *path):
    values = []
    for run in runs:
        for key in path:
            run = run.get(key) if isinstance(run, dict) else None
        if run is not None:
            values.append(run)
    return statistics.median(values) if values else None


def _json_flops(run):
    """step_flops from a result line's teacher/student fields."""
    shape = lambda m: SimpleNamespace(num_layers=m["layers"], hidden_size=m["hidden"],
                                      intermediate_size=m["ffn"])
    return step_flops(shape(run["teacher"]), shape(run["student"]), run["batch"], run["seq"])


def _row_order(name):
    """Rows by configuration, float32 first, ours first, then the peers."""
    who, rest = name.split("_", 1)
    config, dtype = rest.rsplit("_", 1)
    return config, dtype != "fp32", who != "tf", who != "torch", who


def compare(paths):
    """Markdown table of result files named `<who>_<config>_<dtype>.jsonl`,
    who = tf (ours), torch or textbrewer, dtype = fp32 or bf16 (as
    run_distill_bench.sh writes them).

    Rows come by configuration, float32 first, ours first. s/step is the
    median over runs of each run's median step, "best" the
    fastest step of all runs (the least disturbed one on a shared machine);
    examples/s and GFLOP/s derive from the median. "ours vs it" = its s/step
    / ours (tf_<config>_<dtype>), for the median and for the best step.
    % of peak: against the best matmul peak of the dtype measured by our
    runs (`--matmul-peak`) among the files given (a busy machine only
    lowers a measured peak).
    """
    files = {os.path.basename(p).rsplit(".", 1)[0]: common.load_runs(p) for p in paths}
    files = {name: files[name] for name in sorted(files, key=_row_order) if files[name]}
    step = {name: _median(runs, "step_s", "median") for name, runs in files.items()}
    best = {name: min(r["step_s"]["min"] for r in runs) for name, runs in files.items()}
    peak = {dtype: max((r["matmul_peak_gflop_per_s"] for n, runs in files.items()
                        if n.endswith(dtype) for r in runs
                        if "matmul_peak_gflop_per_s" in r), default=None)
            for dtype in ("fp32", "bf16")}
    rows = ["| file | runs | s/step (best) | examples/s | ours vs it (best) | GFLOP/s "
            "| % of matmul peak | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for name, runs in files.items():
        who, rest = name.split("_", 1)
        config, dtype = rest.rsplit("_", 1)
        ours = f"tf_{config}_{dtype}"
        ratio = (f"{step[name] / step[ours]:.2f}x ({best[name] / best[ours]:.2f}x)"
                 if who != "tf" and ours in step else "")
        gflops = _json_flops(runs[0]) / step[name] / 1e9
        share = f"{100 * gflops / peak[dtype]:.0f}%" if peak.get(dtype) else ""
        rows.append(f"| {name} | {len(runs)} | {step[name]:.3f} ({best[name]:.3f}) "
                    f"| {runs[0]['batch'] / step[name]:.2f} | {ratio} | {gflops:.0f} "
                    f"| {share} | {_median(runs, 'peak_rss_mb'):.0f} |")
    print("\n".join(rows))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_step_args(ap)
    ap.add_argument("--student", choices=sorted(STUDENTS), default="3l-312",
                    help="; ".join(f"{k}: {v}" for k, v in STUDENTS.items()))
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="bfloat16 = Keras mixed_bfloat16 policy")
    ap.add_argument("--student-attention-dropout", type=float, default=None,
                    help="override the student's attention-probability dropout "
                         "(default: the preset's 0.1); 0 shows what it costs")
    ap.add_argument("--jit-compile", choices=["false", "true", "auto"], default="false",
                    help="XLA for the train step ('auto' means off on CPU)")
    ap.add_argument("--intra-op-threads", type=int, default=0, help="0: TF default")
    ap.add_argument("--inter-op-threads", type=int, default=0, help="0: TF default")
    ap.add_argument("--phases", action="store_true",
                    help="also time the parts of the step (slower run)")
    ap.add_argument("--matmul-peak", action="store_true",
                    help="also measure the matmul peak of the step's dtype")
    ap.add_argument("--peak-only", action="store_true",
                    help="only measure float32 and bfloat16 matmul peaks")
    ap.add_argument("--compare", nargs="+", metavar="JSONL",
                    help="print the ours-vs-peers table of result files")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(args.compare)
    if args.peak_only:
        return peak_only(args)
    if args.steps < 1 or args.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    return run(args)


if __name__ == "__main__":
    main()
