"""Peer: one TinyBERT general-distillation step in PyTorch + transformers.

What a user of the official code (huawei-noah/Pretrained-Language-Model,
TinyBERT/general_distill.py) runs instead of ours, on the same inputs as
`distill_speed.py` (bench_common.distill_text_pairs, seed 42, batch 32,
seq 128) and with the same JSON field names, printed as ONE line:

    python benchmarks/torch_distill_step.py                                # MiniLM (real) -> 3L-312
    python benchmarks/torch_distill_step.py --student-hidden 192           # -> our default 3L-192
    python benchmarks/torch_distill_step.py --teacher bert-base --student-layers 4
    python benchmarks/torch_distill_step.py --dtype bfloat16               # torch.autocast(bfloat16)
    python benchmarks/torch_distill_step.py --check                        # + score-capture self-check

Needs the `bench` extra (`pip install -e .[bench]`: torch, transformers).

One timed step: student forward (train mode, dropout), teacher forward
(eval, no_grad), loss = sum_i MSE(A_s[i], A_t[i*k+k-1]) on PRE-softmax
scores (entries <= -100 zeroed on both sides) + sum_j MSE(fit_dense(H_s[j]),
H_t[j*k]) with ONE Linear(d_s -> d_t) (j = 0: embeddings), backward, global
clip_grad_norm_(1.0), AdamW (lr 5e-5, eps 1e-6, weight decay 0.01 except
bias and LayerNorm), loss.item(). `--dtype bfloat16` runs the forwards and
the loss under torch.autocast("cpu", bfloat16) (backward follows the
forward's dtypes; weights and AdamW stay float32).

The scores: HF BertSelfAttention calls the attention function registered
under config._attn_implementation and returns its second output as
`outputs.attentions`. `scores_attention` (registered as "tinybert_scores")
computes what the "eager" one does but returns the scores, not the
probabilities: nothing is computed twice. The name must also be registered
in ALL_MASK_ATTENTION_FUNCTIONS (else transformers builds no padding mask);
HF's eager_mask adds finfo.min at padding (the official code -10000: both
are zeroed by the loss). `sdpa` would return no attentions at all.
`--check` compares the captured scores with QK^T/sqrt(d) from hooks on the
query/key projections and softmax(scores) with HF eager probabilities.
"""

import argparse
import contextlib
import math
import os
import time

import bench_common as common
import torch
import torch.nn.functional as F
import transformers
from transformers import AutoTokenizer, BertConfig, BertModel
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

ATTN_IMPL = "tinybert_scores"


def scores_attention(module, query, key, value, attention_mask, scaling=None,
                     dropout=0.0, **kwargs):
    """Eager attention returning PRE-softmax scores as its 'weights':
    (context [B, T, heads, d], scores [B, heads, T, T])."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = F.dropout(F.softmax(scores, dim=-1), p=dropout, training=module.training)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), scores


ALL_ATTENTION_FUNCTIONS.register(ATTN_IMPL, scores_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTN_IMPL, eager_mask)


# ---------------------------------------------------------------- models

def build_teacher(kind, seed, attn_impl=ATTN_IMPL):
    if kind == "minilm":
        return BertModel.from_pretrained(common.minilm_dir(), attn_implementation=attn_impl)
    torch.manual_seed(seed + 1)
    return BertModel(BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                                num_attention_heads=12, intermediate_size=3072,
                                attn_implementation=attn_impl))


def build_student(args):
    torch.manual_seed(args.seed)
    return BertModel(BertConfig(
        vocab_size=30522, hidden_size=args.student_hidden,
        num_hidden_layers=args.student_layers, num_attention_heads=args.student_heads,
        intermediate_size=args.student_ffn, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, attn_implementation=ATTN_IMPL),
        add_pooling_layer=False)


def n_params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


def adamw(named_parameters, lr):
    """AdamW with weight decay 0.01 except on biases and LayerNorm."""
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    decay = [p for n, p in named_parameters if not any(x in n for x in no_decay)]
    rest = [p for n, p in named_parameters if any(x in n for x in no_decay)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                              {"params": rest, "weight_decay": 0.0}], lr=lr, eps=1e-6)


def make_batches(tokenizer, n_batches, batch, seq, seed):
    """Pre-tokenized [batch, seq] dicts of real text, pad fraction, words."""
    pairs = common.distill_text_pairs(n_batches * batch, seed=seed)
    enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], max_length=seq,
                    truncation="longest_first", padding="max_length", return_tensors="pt")
    names = ("input_ids", "token_type_ids", "attention_mask")
    batches = [{n: enc[n][i * batch:(i + 1) * batch] for n in names}
               for i in range(n_batches)]
    pad_fraction = 1.0 - enc["attention_mask"].float().mean().item()
    return batches, pad_fraction, common.word_count(a + " " + b for a, b in pairs)


class Setup:
    """Teacher, student, shared fit_dense, AdamW and batches of one run
    (`fit_dense=False`: no projection, the caller brings its own)."""

    def __init__(self, args, fit_dense=True):
        torch.set_num_threads(args.threads)
        transformers.logging.set_verbosity_error()
        start = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(common.minilm_dir())
        self.teacher = build_teacher(args.teacher, args.seed).eval().requires_grad_(False)
        self.student = build_student(args).train()
        t_layers = self.teacher.config.num_hidden_layers
        if t_layers % args.student_layers:
            raise SystemExit(f"teacher layers {t_layers} not divisible by "
                             f"student layers {args.student_layers}")
        self.k = t_layers // args.student_layers
        named = list(self.student.named_parameters())
        if fit_dense:
            self.fit_dense = torch.nn.Linear(args.student_hidden,
                                             self.teacher.config.hidden_size)
            torch.nn.init.normal_(self.fit_dense.weight, std=0.02)
            torch.nn.init.zeros_(self.fit_dense.bias)
            named += [("fit_dense." + n, p) for n, p in self.fit_dense.named_parameters()]
        self.params = [p for _, p in named]
        self.optimizer = adamw(named, args.lr)
        self.batches, self.pad_fraction, self.words = make_batches(
            self.tokenizer, args.warmup + args.steps, args.batch, args.seq, args.seed)
        self.setup_s = time.perf_counter() - start


# ---------------------------------------------------------------- the step

def distill_loss(s_out, t_out, fit_dense, k):
    att, rep = 0.0, 0.0
    for i, sa in enumerate(s_out.attentions):
        ta = t_out.attentions[i * k + k - 1]
        att = att + F.mse_loss(torch.where(sa <= -1e2, torch.zeros_like(sa), sa),
                               torch.where(ta <= -1e2, torch.zeros_like(ta), ta))
    for j, hs in enumerate(s_out.hidden_states):  # j = 0: embedding output
        rep = rep + F.mse_loss(fit_dense(hs), t_out.hidden_states[j * k])
    return att + rep


def make_step(run, clip, dtype):
    """step(batch) -> (loss, seconds, {phase: seconds})."""
    outputs = {"output_attentions": True, "output_hidden_states": True}
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) \
        if dtype == "bfloat16" else contextlib.nullcontext

    def step(batch):
        t0 = time.perf_counter()
        with autocast():
            s_out = run.student(**batch, **outputs)
            t1 = time.perf_counter()
            with torch.no_grad():
                t_out = run.teacher(**batch, **outputs)
            t2 = time.perf_counter()
            loss = distill_loss(s_out, t_out, run.fit_dense, run.k)
        t3 = time.perf_counter()
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t4 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(run.params, clip)
        run.optimizer.step()
        value = loss.item()
        t5 = time.perf_counter()
        return value, t5 - t0, {"student_forward": t1 - t0, "teacher_forward": t2 - t1,
                                "loss": t3 - t2, "backward": t4 - t3,
                                "clip_and_optimizer": t5 - t4}

    return step


def time_steps(step, batches, warmup):
    """Losses, timed step seconds and per-phase seconds after warm-up."""
    losses, times, phases = [], [], {}
    for i, batch in enumerate(batches):
        loss, seconds, phase = step(batch)
        losses.append(loss)
        if i >= warmup:
            times.append(seconds)
            for name, value in phase.items():
                phases.setdefault(name, []).append(value)
    if not all(math.isfinite(x) for x in losses):
        raise SystemExit(f"non-finite loss: {losses}")
    return losses, times, phases


def result_fields(bench, args, run, losses, times):
    """The JSON fields shared with distill_speed.py (its --compare reads them)."""
    st = common.stats(times)
    t_cfg, k = run.teacher.config, run.k
    return {
        "bench": bench,
        "framework": f"torch {torch.__version__} + transformers {transformers.__version__}",
        "threads": torch.get_num_threads(), "batch": args.batch, "seq": args.seq,
        "teacher": {"kind": args.teacher, "layers": t_cfg.num_hidden_layers,
                    "hidden": t_cfg.hidden_size, "heads": t_cfg.num_attention_heads,
                    "ffn": t_cfg.intermediate_size, "params": n_params(run.teacher),
                    "mode": "eval-nograd"},
        "student": {"layers": args.student_layers, "hidden": args.student_hidden,
                    "heads": args.student_heads, "ffn": args.student_ffn,
                    "params": n_params(run.student)},
        "k": k,
        "att_map": [i * k + k - 1 for i in range(args.student_layers)],
        "hid_map": [j * k for j in range(args.student_layers + 1)],
        "warmup_steps": args.warmup, "timed_steps": args.steps,
        "step_s": st, "examples_per_s": args.batch / st["median"],
        "tokens_per_s": args.batch * args.seq / st["median"],
        "loss_first": losses[0], "loss_last": losses[-1],
        "data": {"source": common.TEXT_SOURCE, "pad_fraction": run.pad_fraction,
                 "words": run.words},
        "setup_s": run.setup_s,
    }


# ---------------------------------------------------------------- self-check

def self_check(teacher_kind, tokenizer, seed):
    """Captured scores vs QK^T/sqrt(d) from hooked projections, and
    softmax(scores) / hidden states vs HF eager."""
    ours = build_teacher(teacher_kind, seed).eval()
    eager = build_teacher(teacher_kind, seed, attn_impl="eager").eval()
    eager.load_state_dict(ours.state_dict())
    enc = tokenizer(["The fire crossed the Hume Highway near Goulburn on Tuesday.",
                     "Police said."], padding="longest", return_tensors="pt")
    layer = ours.encoder.layer[-1].attention.self
    captured = {}
    hooks = [getattr(layer, n).register_forward_hook(
        lambda _m, _i, out, n=n: captured.__setitem__(n, out)) for n in ("query", "key")]
    with torch.no_grad():
        o = ours(**enc, output_attentions=True, output_hidden_states=True)
        e = eager(**enc, output_attentions=True, output_hidden_states=True)
    for hook in hooks:
        hook.remove()
    b, s = enc["input_ids"].shape
    q, kk = (captured[n].view(b, s, -1, layer.attention_head_size).transpose(1, 2)
             for n in ("query", "key"))
    manual = q @ kk.transpose(-1, -2) / math.sqrt(layer.attention_head_size)
    keep = enc["attention_mask"][:, None, None, :].bool().expand_as(manual)
    got = o.attentions[-1]
    res = {"max_abs_diff_scores_vs_qk": (got - manual)[keep].abs().max().item(),
           "padding_scores_le_-100": bool((got[~keep] <= -100).all().item()),
           "max_abs_diff_softmax_vs_eager": max(
               (F.softmax(a, -1) - p).abs().max().item()
               for a, p in zip(o.attentions, e.attentions)),
           "max_abs_diff_hidden_vs_eager": max(
               (a - h).abs().max().item() for a, h in zip(o.hidden_states, e.hidden_states))}
    res["ok"] = (res["max_abs_diff_scores_vs_qk"] < 1e-4 and res["padding_scores_le_-100"]
                 and res["max_abs_diff_softmax_vs_eager"] < 1e-5
                 and res["max_abs_diff_hidden_vs_eager"] < 1e-4)
    return res


# ---------------------------------------------------------------- main

def add_step_args(ap):
    """Flags shared with textbrewer_step.py."""
    common.add_step_args(ap)
    ap.add_argument("--student-layers", type=int, default=3)
    ap.add_argument("--student-hidden", type=int, default=312)
    ap.add_argument("--student-heads", type=int, default=12)
    ap.add_argument("--student-ffn", type=int, default=None,
                    help="default: 1200 for hidden 312 (TinyBERT), else 4*hidden")
    ap.add_argument("--threads", type=int, default=os.cpu_count())


def parse_args(ap, argv):
    args = ap.parse_args(argv)
    if args.student_ffn is None:
        args.student_ffn = 1200 if args.student_hidden == 312 else 4 * args.student_hidden
    return args


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_args(ap)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="bfloat16: forwards and loss under torch.autocast")
    ap.add_argument("--check", action="store_true",
                    help="run the score-capture self-check first (inflates peak RSS)")
    args = parse_args(ap, argv)
    run = Setup(args)
    check = self_check(args.teacher, run.tokenizer, args.seed) if args.check else None
    rss_before = common.current_rss_mb()
    losses, times, phases = time_steps(make_step(run, args.clip, args.dtype),
                                       run.batches, args.warmup)
    result = result_fields("torch_distill_step", args, run, losses, times)
    result["student"]["fit_dense_params"] = n_params(run.fit_dense)
    result.update({
        "dtype_policy": "autocast_bfloat16" if args.dtype == "bfloat16" else "float32",
        "phase_median_s": {n: common.stats(v)["median"] for n, v in phases.items()},
        "rss_before_steps_mb": rss_before, "peak_rss_mb": common.peak_rss_mb()})
    if check is not None:
        result["check"] = check
    common.emit(result)
    if check is not None and not check["ok"]:
        raise SystemExit("self-check FAILED")
    return result


if __name__ == "__main__":
    main()
