"""The training steps of `trainers.task` and `trainers.general` as the CLIs
run them, next to the same steps called bare.

1. Runs both CLIs on the embedded default for a few steps per stage
   (real MiniLM teacher, default student, BBC News articles: every batch is
   full, [32, T]) with $TINYBERT_TF_STEP_TIMES set, so their own `fit`, with
   their callbacks, data pipelines and dev evaluations, records every step.
2. Builds the same models and times each step bare: `train_on_batch` of the
   model or `Distiller` on one fixed batch (what `distill_speed.py` times).
3. Prints per stage: median seconds per step of the CLI and bare, their
   ratio, matmul GFLOP of the step and the share of this machine's float32
   matmul peak (formula in `distill_speed.py`).

    python benchmarks/cli_steps.py                        # T = 64 (task), 128 (general)
    python benchmarks/cli_steps.py --sequence-length 128 --steps 40
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distill_speed import encoder_forward_flops, matmul_peak  # noqa: E402

BATCH = 32
STUDENT = "tinybert-3l-192d"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sequence-length", type=int, default=64,
                   help="of trainers.task (trainers.general runs at 128)")
    p.add_argument("--steps", type=int, default=30, help="per stage")
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def run_clis(args, out):
    times = os.path.join(out, "steps.jsonl")
    env = dict(os.environ, TINYBERT_TF_STEP_TIMES=times,
               TINYBERT_TF_CACHE=os.path.join(out, "cache"))
    examples = str(BATCH * args.steps)
    task = ["-m", "trainers.task", "--output-dir", os.path.join(out, "task"),
            "--sequence-length", str(args.sequence_length), "--no-augment",
            "--student", "random",
            "--max-train-examples", examples, "--teacher-epochs", "1",
            "--intermediate-epochs", "1", "--prediction-epochs", "1",
            "--baseline-epochs", "1", "--eval-every", "0", "--quiet"]
    general = ["-m", "trainers.general", "--output-dir",
               os.path.join(out, "general"), "--steps", str(args.steps),
               "--save-every", str(args.steps // 2)]
    for command in (task, general):
        subprocess.run([sys.executable, *command], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    steps = {}
    with open(times, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            steps.setdefault(row["stage"], []).append(row["seconds"])
    return {stage: statistics.median(values[3:])
            for stage, values in steps.items()}


def bare_steps(args):
    """{stage: (median s per step, matmul FLOPs of the step)}."""
    import numpy as np
    from tinybert_tf import checkpoint, students, training
    from tinybert_tf.task_data import TaskDataOptions, load_task_data
    from tinybert_tf.distillation_options import DistillationOptions

    found = {}
    for stage, length in (("teacher", args.sequence_length),
                          ("intermediate", args.sequence_length),
                          ("prediction", args.sequence_length),
                          ("baseline", args.sequence_length),
                          ("general", 128)):
        _, ckpt, tokenizer = students.read_teacher(None, length)
        task = load_task_data(TaskDataOptions(max_train_examples=BATCH))
        teacher = checkpoint.load_classifier(ckpt, num_labels=5,
                                             head="tanh_relu")
        student, _, _ = students.make_student(
            STUDENT, ckpt.config, 5, vocabulary=tokenizer.vocabulary)
        x, y = next(iter(training.make_dataset(task.train, tokenizer, BATCH)))
        options = training.TrainOptions(1, 1e-4)
        fwd_t = encoder_forward_flops(teacher.config, BATCH, length)
        fwd_s = encoder_forward_flops(student.config, BATCH, length)
        proj = ((student.config.num_layers + 1) * 2 * BATCH * length
                * student.config.hidden_size * teacher.config.hidden_size)
        if stage in ("teacher", "baseline"):
            model = teacher if stage == "teacher" else student
            model.compile(optimizer=options.make_optimizer(
                training.make_dataset(task.train, tokenizer, BATCH)),
                loss=training.task_loss(5))
            call = lambda: model.train_on_batch(x, y)  # noqa: E731
            flops = 3 * (fwd_t if stage == "teacher" else fwd_s)
        else:
            backbones = stage == "general"
            pair = ((teacher.backbone, student.backbone) if backbones
                    else (teacher, student))
            distiller = DistillationOptions().distiller(
                *pair, "intermediate" if stage != "prediction" else stage)
            distiller.compile(optimizer="adamw")
            logits = np.asarray(teacher(x), np.float32)
            call = (lambda: distiller.train_on_batch(x, y, logits)
                    ) if stage == "prediction" else (
                lambda: distiller.train_on_batch(x, y))
            flops = (3 * fwd_s if stage == "prediction"
                     else fwd_t + 3 * (fwd_s + proj))
        for _ in range(3):
            call()
        seconds = []
        for _ in range(10):
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
        found[stage] = (statistics.median(seconds), flops)
    return found


def main(argv=None):
    args = parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="cli_steps-")
    cli = run_clis(args, out)
    import tensorflow as tf
    bare = bare_steps(args)
    peak = matmul_peak(tf, "float32")
    rows = []
    print(f"float32 matmul peak {peak / 1e9:.0f} GFLOP/s; 1-minute load "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| stage | CLI s/step | bare s/step | CLI / bare | GFLOP/step | "
          "CLI % of peak | bare % of peak |\n|---|---:|---:|---:|---:|---:|---:|")
    for stage, (seconds, flops) in bare.items():
        measured = cli.get(stage)
        rows.append({"stage": stage, "cli_s": measured, "bare_s": seconds,
                     "gflop": flops / 1e9, "peak_gflops": peak / 1e9})
        share = (lambda s: f"{flops / s / peak:.0%}")  # noqa: E731
        print(f"| {stage} | {measured:.3f} | {seconds:.3f} | "
              f"{measured / seconds:.2f} | {flops / 1e9:.1f} | "
              f"{share(measured)} | {share(seconds)} |")
    with open(os.path.join(out, "cli_steps.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
