"""Peer: the same distillation step driven by TextBrewer's GeneralDistiller.

Same teacher, student, batches, AdamW and clipping as
`torch_distill_step.py` (its `Setup`); TextBrewer computes the loss from
its intermediate matches and runs the loop (`distiller.train`):

- `attention_mse` on the PRE-softmax scores of student layer i and
  teacher layer i*k+k-1 (the scores come from the same "tinybert_scores"
  attention; TextBrewer zeroes entries <= -1e-3 on both sides, ours and the
  official code those <= -100: same element-wise work);
- `hidden_mse` of student hidden state j (j = 0: embeddings) through a
  `["linear", d_s, d_t]` projection against teacher state j*k. TextBrewer
  gives every match its own projection (L_s + 1 Linears where ours shares
  one): the same FLOPs, 3-4 more 312x384 weight matrices for AdamW.

    python benchmarks/textbrewer_step.py                           # MiniLM (real) -> 3L-312
    python benchmarks/textbrewer_step.py --student-hidden 192      # -> our default 3L-192
    python benchmarks/textbrewer_step.py --teacher bert-base --student-layers 4

Needs the `bench` extra (`pip install -e .[bench]`: textbrewer, torch,
transformers). Prints ONE JSON line with the fields of
torch_distill_step.py (`bench`: "textbrewer_general_distiller").

Timing: TextBrewer calls `batch_postprocessor` at the start of every step,
so the time between two calls is one whole step of its loop (forward,
loss, backward, clip, AdamW, its per-step `.item()` of every loss term and
its bookkeeping). It trains warmup + steps + 1 steps; the last one (which
ends with TextBrewer's checkpoint save) is not timed. Its `clip` covers the
student's parameters only (not the projections): TextBrewer's own choice.
"""

import argparse
import logging
import math
import sys
import tempfile
import time

# TextBrewer imports torch.utils.tensorboard, which imports TensorFlow when it
# is installed (it is, for ours): keep it out, as in a PyTorch-only setup.
sys.modules.setdefault("tensorflow", None)

import bench_common as common  # noqa: E402
import textbrewer  # noqa: E402
from textbrewer import DistillationConfig, GeneralDistiller, TrainingConfig  # noqa: E402
from torch_distill_step import Setup, add_step_args, parse_args, result_fields  # noqa: E402


def adaptor(_batch, outputs):
    return {"attention": outputs.attentions, "hidden": outputs.hidden_states}


def matches(args, run):
    """TextBrewer's intermediate matches of our step (module doc)."""
    k, d_t = run.k, run.teacher.config.hidden_size
    attention = [{"layer_T": i * k + k - 1, "layer_S": i, "feature": "attention",
                  "loss": "attention_mse", "weight": 1}
                 for i in range(args.student_layers)]
    hidden = [{"layer_T": j * k, "layer_S": j, "feature": "hidden", "loss": "hidden_mse",
               "weight": 1, "proj": ["linear", args.student_hidden, d_t, {}]}
              for j in range(args.student_layers + 1)]
    return attention + hidden


class LossLog:
    """Stands in for TextBrewer's TensorBoard writer: keeps the total loss
    it is handed every step."""

    def __init__(self):
        self.losses = []

    def add_scalar(self, name, value, _step):
        if name == "scalar/total_loss":
            self.losses.append(value)


def train(args, run, output_dir):
    """Seconds of each timed step (between batch_postprocessor calls) and
    the losses of all steps; returns (times, losses, distiller)."""
    distiller = GeneralDistiller(
        TrainingConfig(device="cpu", log_dir=None, output_dir=output_dir,
                       ckpt_steps=args.warmup + args.steps + 1),
        DistillationConfig(intermediate_matches=matches(args, run), kd_loss_weight=0),
        model_T=run.teacher, model_S=run.student, adaptor_T=adaptor, adaptor_S=adaptor)
    distiller.tb_writer = log = LossLog()
    stamps = []

    def stamp(batch):
        stamps.append(time.perf_counter())
        return batch

    with distiller:
        distiller.train(run.optimizer, run.batches, num_steps=args.warmup + args.steps + 1,
                        max_grad_norm=args.clip, batch_postprocessor=stamp,
                        output_attentions=True, output_hidden_states=True)
    times = [b - a for a, b in zip(stamps, stamps[1:])][args.warmup:]
    return times, log.losses, distiller


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_args(ap)
    args = parse_args(ap, argv)
    logging.getLogger("textbrewer").setLevel(logging.WARNING)
    run = Setup(args, fit_dense=False)  # TextBrewer adds its projections
    run.batches.append(run.batches[-1])  # the untimed last step
    rss_before = common.current_rss_mb()
    with tempfile.TemporaryDirectory(prefix="textbrewer-") as output_dir:
        times, losses, distiller = train(args, run, output_dir)
    if not all(math.isfinite(x) for x in losses):
        raise SystemExit(f"non-finite loss: {losses}")
    result = result_fields("textbrewer_general_distiller", args, run, losses, times)
    result["framework"] += f" + textbrewer {textbrewer.__version__}"
    result["student"]["fit_dense_params"] = sum(
        p.numel() for proj in distiller.projs if proj is not None for p in proj.parameters())
    result.update({"dtype_policy": "float32",
                   "rss_before_steps_mb": rss_before, "peak_rss_mb": common.peak_rss_mb()})
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
