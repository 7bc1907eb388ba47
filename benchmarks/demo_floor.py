"""The least time `make demo` could take on this machine: the matmul FLOPs of
every training stage of its recipe, at this machine's float32 matmul peak.

Steps per stage follow the fast recipe on the BBC News articles (the train
split, N augmented copies, the epochs of `task_distillation`, batch 32,
128 word-pieces) and the 866 steps of the default general student. FLOPs
per step are `distill_speed.py`'s formulas (its module doc): a supervised
step is 3 forwards, a distillation step the teacher's forward plus 3 of the
student's and the projections. Element-wise work (softmax, LayerNorm, GELU,
the losses, AdamW), evaluation and export are left out, so the real run
can only be slower; its share of the peak is the floor over its wall time.

    python benchmarks/demo_floor.py            # prints a table and ONE JSON line
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distill_speed import encoder_forward_flops, matmul_peak, step_flops  # noqa: E402

BATCH, LENGTH = 32, 128
# The default general student's steps: 2 epochs of the 13,862 sequences of
# the default corpus (its report.json; docs/demo.md).
GENERAL_STEPS = 866


def stage_steps(train_size):
    """Optimizer steps of each training stage, and the teacher's forwards
    (in batches) of its cached logits."""
    from tinybert_tf import task_distillation as td
    recipe = td.RECIPES["fast"]
    long_text = td.fast_length_settings(LENGTH)
    augmented = train_size * (1 + long_text["aug_n"])
    per_epoch = math.ceil(augmented / BATCH)
    step1, step2 = (long_text["intermediate_epochs"],
                    long_text["prediction_epochs"])
    return {
        "general": GENERAL_STEPS,
        "teacher": math.ceil(train_size / BATCH) * recipe["teacher_epochs"],
        "step 1": per_epoch * step1,
        "teacher logits": per_epoch,
        "step 2": per_epoch * step2,
        "baseline": per_epoch * (step1 + step2),
    }


def main():
    import tensorflow as tf

    from tinybert_tf import assets, tasks
    from tinybert_tf.config import BertConfig
    with open(os.path.join(assets.minilm_dir(), "config.json")) as f:
        teacher = BertConfig.from_json(f.read())
    student = BertConfig.from_preset("tinybert-3l-192d")
    train_size = len(tasks.load_bbc_news().train)
    teacher_forward = encoder_forward_flops(teacher, BATCH, LENGTH)
    distillation = step_flops(teacher, student, BATCH, LENGTH)
    student_alone = 3 * encoder_forward_flops(student, BATCH, LENGTH)
    flops = {"general": distillation, "teacher": 3 * teacher_forward,
             "step 1": distillation, "teacher logits": teacher_forward,
             "step 2": student_alone, "baseline": student_alone}
    peak = matmul_peak(tf, "float32")
    rows = {stage: {"steps": steps, "tflop": steps * flops[stage] / 1e12,
                    "minutes_at_peak": steps * flops[stage] / peak / 60}
            for stage, steps in stage_steps(train_size).items()}
    print(f"{'stage':<16}{'steps':>7}{'TFLOP':>9}{'min at peak':>13}")
    for stage, row in rows.items():
        print(f"{stage:<16}{row['steps']:>7}{row['tflop']:>9.1f}"
              f"{row['minutes_at_peak']:>13.1f}")
    total = sum(row["minutes_at_peak"] for row in rows.values())
    tflop = sum(row["tflop"] for row in rows.values())
    print(f"{'total':<16}{'':>7}{tflop:>9.1f}{total:>13.1f}"
          f"   (peak {peak / 1e9:.0f} GFLOP/s)")
    print(json.dumps({"peak_gflops": peak / 1e9, "train_size": train_size,
                      "stages": rows, "total_minutes_at_peak": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
