"""TinyBERT's ablations on a task: the variants, their runs, the statistics.

The paper's ablation tables (REFERENCE.md §1: procedures, distillation
objectives, layer mappings) remade on one task with repeats. Each variant
is `python -m trainers.task` run with the flags of `VARIANTS` (`python -m
trainers.ablate` runs them); this module holds what is not a training:

- `VARIANTS` / `variant_names`: each variant, the trainers.task flags that
  make it from the full recipe, and the paper's number (dev average of
  MNLI-m, MNLI-mm, MRPC, CoLA with TinyBERT4);
- `run_dir`, `task_argv`, `find_teacher`: where a run goes, its command
  line, the fine-tuned teacher that every run after the first reuses;
- `estimate_minutes`: a variant's time from the stage times a finished run
  measured;
- `run_score`, `collect_scores`, `summarize`, `paired_difference`: the
  metric of a run and of every finished run, mean and standard deviation
  over seeds, the difference to full paired by seed with a 95 % t interval;
- `ablation_table`, `markdown`, `plot`: ablation.json, ablation.md and the
  bar chart ablation.png.

Example (statistics of made-up scores of three seeds):
>>> from tinybert_tf.ablation import summarize
>>> scores = {"full": {0: 0.90, 1: 0.92, 2: 0.91},
...           "no-da": {0: 0.85, 1: 0.88, 2: 0.86}}
>>> stats = summarize(scores)
>>> round(stats["no-da"]["mean"], 4), round(stats["no-da"]["std"], 4)
(0.8633, 0.0153)
>>> d = stats["no-da"]["difference"]
>>> round(d["mean"], 4), round(d["low"], 4), round(d["high"], 4)
(-0.0467, -0.061, -0.0323)
>>> d["within_noise"]
False
"""

import dataclasses
import math
import os

# ------------------------------------------------------------------ variants


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the ablation.

    `flags`: what the variant adds to a trainers.task run of the full recipe;
    `reuses`: the variant whose runs give its score instead of runs of its
    own ("full": the full runs' student, or with `baseline`, their baseline);
    `paper`: the paper's score (TinyBERT4, dev average of MNLI-m/mm, MRPC,
    CoLA); `group`: the table it belongs to.
    """

    name: str
    title: str
    group: str
    paper: float
    flags: tuple = ()
    reuses: str | None = None
    baseline: bool = False


GROUPS = {
    "procedures": "Learning procedures (the paper's ablation of GD, TD, DA)",
    "objectives": "Distillation objectives (losses of task distillation)",
    "mappings": "Layer mappings g(m)",
}
VARIANTS = (
    Variant("full", "TinyBERT (full)", "procedures", 75.6),
    Variant("no-gd", "w/o general distillation (random student)",
            "procedures", 72.5, ("--student", "random")),
    Variant("no-td", "w/o task distillation (general student fine-tuned on "
            "the labels)", "procedures", 68.5, reuses="full", baseline=True),
    Variant("no-da", "w/o data augmentation", "procedures", 68.4,
            ("--no-augment",)),
    Variant("no-emb", "w/o embedding loss", "objectives", 74.1,
            ("--loss-weights", "0,1,1")),
    Variant("no-pred", "w/o prediction loss (step 2 learns the labels)",
            "objectives", 73.5, ("--prediction-target", "labels")),
    Variant("no-trm", "w/o Transformer-layer losses (attention, hidden)",
            "objectives", 56.3, ("--loss-weights", "1,0,0")),
    Variant("no-att", "w/o attention loss", "objectives", 71.0,
            ("--loss-weights", "1,0,1")),
    Variant("no-hid", "w/o hidden-state loss", "objectives", 72.9,
            ("--loss-weights", "1,1,0")),
    Variant("uniform", "uniform mapping (= full)", "mappings", 75.6,
            reuses="full"),
    Variant("top", "top mapping", "mappings", 70.9, ("--mapping", "top")),
    Variant("bottom", "bottom mapping", "mappings", 71.3,
            ("--mapping", "bottom")),
)
BY_NAME = {v.name: v for v in VARIANTS}
# The flags a variant sets or the ablation decides: not in --task-args.
OWN_FLAGS = ("--output-dir", "--seed", "--student", "--fine-tuned-teacher",
             "--retrain-teacher", "--overwrite", "--augment", "--no-augment",
             "--baseline", "--no-baseline", "--mapping", "--loss-weights",
             "--prediction-target")


def variant_names(text):
    """The variants of a comma-separated text ("all": every one), in table
    order; ValueError naming an unknown one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return [v.name for v in VARIANTS]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        raise ValueError(
            f"--variants {text!r}: unknown variant "
            f"{', '.join(repr(n) for n in unknown) or '(none given)'}; "
            f"choose from {', '.join(BY_NAME)} (or all).")
    return [v.name for v in VARIANTS if v.name in names]


def variants_to_run(names):
    """The variants that need runs of their own: the selected ones, full
    always (every difference is to it), those that reuse others left out."""
    own = {"full"} | {n for n in names if BY_NAME[n].reuses is None}
    return [v.name for v in VARIANTS if v.name in own]


def check_task_args(words):
    """Refuses (ValueError) a --task-args flag that the ablation sets."""
    for word in words:
        flag = word.split("=", 1)[0]
        if flag in OWN_FLAGS:
            raise ValueError(
                f"--task-args: {flag} is set by the ablation (per variant "
                "and seed, or by its own flags); leave it out.")


# ------------------------------------------------------------------ runs

def run_dir(out, variant, seed):
    return os.path.join(out, "runs", variant, f"seed{seed}")


def report_path(out, variant, seed):
    return os.path.join(run_dir(out, variant, seed), "report.json")


def is_finished(out, variant, seed):
    return os.path.isfile(report_path(out, variant, seed))


def find_teacher(out, seeds):
    """The teacher/ of the first run (table order, then seed) that holds
    one, or None: a fine-tuned teacher is saved whole or not at all."""
    for variant in VARIANTS:
        for seed in seeds:
            path = os.path.join(run_dir(out, variant.name, seed), "teacher")
            if os.path.isdir(path):
                return path
    return None


@dataclasses.dataclass(frozen=True)
class Shared:
    """What every run of an ablation shares: the task's flags (data and
    budget, given to trainers.task as they are), the general student
    (None: trainers.task's default) and the fine-tuned teacher (None: the
    first run fine-tunes it)."""

    task_flags: tuple = ()
    student: str | None = None
    teacher: str | None = None


def task_argv(out, variant, seed, shared):
    """The trainers.task arguments of one run (without `-m trainers.task`).

    The full runs also train the baseline (the no-td variant); the other
    variants leave it out. The run that fine-tuned the teacher reuses it
    from its own folder; every other run is given it.
    """
    v = BY_NAME[variant]
    if v.reuses:
        raise ValueError(f"{variant} has no runs of its own (it reuses "
                         f"{v.reuses}'s).")
    folder = run_dir(out, variant, seed)
    argv = ["--output-dir", folder, "--seed", str(seed), *shared.task_flags]
    if shared.student and "--student" not in v.flags:
        argv += ["--student", shared.student]
    teacher = shared.teacher
    if teacher and os.path.dirname(os.path.normpath(teacher)) != os.path.normpath(
            folder):
        argv += ["--fine-tuned-teacher", teacher]
    argv += list(v.flags)
    if variant != "full":
        argv.append("--no-baseline")
    return argv


# ------------------------------------------------------------------ time

TRAINING_STAGES = ("intermediate", "prediction")
ONCE_STAGES = ("teacher", "augmentation", "baseline")


def _examples(report, augmented):
    a = report["augmentation"]
    if augmented:
        return a["augmented_examples"] if a["enabled"] else None
    return a["original_examples"]


def estimate_minutes(variant, reference, startup_s=0.0):
    """A run's minutes, from the report.json dict of a finished run of the
    same task and budget: its training steps (intermediate, prediction)
    scaled by the variant's training examples (every variant runs the same
    epochs; without augmentation, fewer examples), plus the rest of the
    run (data, evaluations) and `startup_s` (the process's start, before
    trainers.task's clock). Teacher fine-tuning and augmentation, done
    once, are not counted; the full runs add their baseline. None: not
    known yet (a run without augmentation cannot tell an augmented one).
    """
    seconds = reference["wall_time_s"]
    v = BY_NAME[variant]
    if v.reuses:
        return 0.0
    ref_examples = _examples(reference, reference["augmentation"]["enabled"])
    examples = _examples(reference, "--no-augment" not in v.flags)
    if examples is None:
        return None
    training = sum(seconds.get(s, 0.0) for s in TRAINING_STAGES)
    rest = seconds["total"] - training - sum(seconds.get(s, 0.0)
                                             for s in ONCE_STAGES)
    total = training * examples / ref_examples + max(rest, 0.0) + startup_s
    if variant == "full":
        if "baseline" not in seconds:
            return None
        total += seconds["baseline"] * examples / ref_examples
    return total / 60


def once_minutes(reference):
    """(teacher fine-tuning, augmentation of one seed) minutes measured by
    a run (0 for what it reused)."""
    seconds = reference["wall_time_s"]
    teacher = (seconds.get("teacher", 0.0)
               if reference["teacher"]["status"] == "fine-tuned" else 0.0)
    return teacher / 60, seconds.get("augmentation", 0.0) / 60


# ------------------------------------------------------------------ statistics

def run_score(report, baseline=False):
    """(score, metric, split) of a trainers.task report: the student's (or
    its baseline's) primary metric on test, or on dev without a test split."""
    metric = report["primary_metric"]
    split = "test" if "test" in report["student"] else "dev"
    model = report["baseline"] if baseline else report["student"]
    return model[split][metric], metric, split


def collect_scores(out, runs, seeds):
    """({variant: {seed: score}} of the finished runs under `out`, the
    report of a finished full run or None); `runs`: the variants that ran
    (a variant that reuses one of them takes its scores from its runs)."""
    from tinybert_tf import files
    scores, full_report = {}, None
    for v in VARIANTS:
        source = v.reuses or v.name
        if source not in runs:
            continue
        for seed in seeds:
            if not is_finished(out, source, seed):
                continue
            report = files.read_json(report_path(out, source, seed))
            if v.baseline and not report.get("baseline"):
                continue
            scores.setdefault(v.name, {})[seed] = run_score(
                report, baseline=v.baseline)[0]
            if source == "full" and full_report is None:
                full_report = report
    return scores, full_report


def _t_interval(values, confidence=0.95):
    from scipy import stats
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None, None
    std = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def paired_difference(scores, reference):
    """The difference `scores` - `reference` ({seed: value} each) over the
    seeds both have: n, mean, std and its 95 % t interval (None with fewer
    than 2 seeds), and whether the interval holds 0 (`within_noise`)."""
    seeds = sorted(set(scores) & set(reference))
    if not seeds:
        return None
    diffs = [scores[s] - reference[s] for s in seeds]
    mean, std, low, high = _t_interval(diffs)
    return {"n": len(seeds), "seeds": seeds, "mean": mean, "std": std,
            "low": low, "high": high,
            "within_noise": None if low is None else bool(low <= 0 <= high)}


def summarize(scores, reference="full"):
    """{variant: {scores, n, mean, std, difference}} of {variant: {seed:
    score}}; `difference` is `paired_difference` to `reference` (None for
    the reference itself)."""
    out = {}
    for name, by_seed in scores.items():
        if not by_seed:
            continue
        values = [by_seed[s] for s in sorted(by_seed)]
        mean, std, _, _ = _t_interval(values)
        out[name] = {
            "scores": {str(s): by_seed[s] for s in sorted(by_seed)},
            "n": len(values), "mean": mean, "std": std,
            "difference": None if name == reference or reference not in scores
            else paired_difference(by_seed, scores[reference])}
    return out


# ------------------------------------------------------------------ outputs

def ablation_table(stats, context):
    """The ablation.json dict: `context` (task, metric, split, seeds, ...)
    and a row per variant, the paper's number and difference beside it."""
    full_paper = BY_NAME["full"].paper
    rows = {}
    for v in VARIANTS:
        if v.name in stats:
            rows[v.name] = {
                "title": v.title, "group": v.group, "paper": v.paper,
                "paper_difference": round(v.paper - full_paper, 1),
                "reuses": v.reuses, **stats[v.name]}
    return {**context, "paper_reference": "TinyBERT4 (4 layers, 312), dev "
            "average of MNLI-m, MNLI-mm, MRPC, CoLA (REFERENCE.md §1)",
            "variants": rows}


# Scores are shown x 100 (points), as the paper's.
SCALE = 100.0


def _points(value, scale):
    return "" if value is None else f"{value * scale:.1f}"


def _cell(row, scale):
    text = _points(row["mean"], scale)
    if row["std"] is not None:
        text += f" ± {_points(row['std'], scale)}"
    return f"{text} (n={row['n']})"


def _difference_cell(row, scale):
    d = row.get("difference")
    if not d:
        return ""
    text = f"{d['mean'] * scale:+.1f}"
    if d["low"] is None:
        return text + " (interval n/a: 1 seed)"
    noise = "within noise" if d["within_noise"] else "real"
    return (f"{text} [{d['low'] * scale:+.1f}, {d['high'] * scale:+.1f}] "
            f"{noise}")


def markdown(table):
    """ablation.md: one table per group, the paper's numbers beside."""
    scale = SCALE
    lines = [f"# Ablation on {table['task']}", "",
             f"Metric: {table['metric']} on {table['split']} (x 100), mean ± "
             f"standard deviation over {len(table['seeds'])} seed(s) "
             f"({', '.join(map(str, table['seeds']))}). Difference to full: "
             "paired by seed, with its 95 % t interval; \"within noise\" when "
             "the interval holds 0.", ""]
    if table.get("teacher") is not None:
        lines += [f"Teacher: {table['teacher'] * scale:.1f}.", ""]
    if table.get("partial"):
        lines += ["**Partial**: some runs are not finished yet.", ""]
    lines += [f"Paper: {table['paper_reference']}.", ""]
    for group, heading in GROUPS.items():
        rows = [(n, r) for n, r in table["variants"].items()
                if r["group"] == group]
        if not rows:
            continue
        lines += [f"## {heading}", "",
                  "| variant | this task | difference to full [95 % CI] | "
                  "paper | paper difference |", "|---|---|---|---|---|"]
        for name, row in rows:
            paper_difference = ("" if name == "full"
                                else f"{row['paper_difference']:+.1f}")
            lines.append(
                f"| {row['title']} (`{name}`) | {_cell(row, scale)} | "
                f"{_difference_cell(row, scale)} | {row['paper']:.1f} | "
                f"{paper_difference} |")
        lines.append("")
    lines += ["![ablation](ablation.png)", ""]
    if table.get("command"):
        lines += ["Command:", "", "```bash", table["command"], "```", ""]
    return "\n".join(lines)


def plot(table, path):
    """ablation.png: the metric per variant (mean, standard deviation as
    error bars) and its difference to full (95 % interval as error bars)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    scale = SCALE
    rows = list(table["variants"].items())
    names = [n for n, _ in rows]
    colours = {"procedures": "tab:blue", "objectives": "tab:orange",
               "mappings": "tab:green"}
    colour = [colours[r["group"]] for _, r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    means = [r["mean"] * scale for _, r in rows]
    stds = [(r["std"] or 0.0) * scale for _, r in rows]
    left.bar(names, means, yerr=stds, capsize=4, color=colour)
    low = min(m - s for m, s in zip(means, stds)) if means else 0
    high = max(m + s for m, s in zip(means, stds)) if means else 1
    margin = max(0.5, 0.1 * (high - low))
    left.set_ylim(low - margin, high + margin)
    left.set_ylabel(f"{table['metric']} on {table['split']}")
    left.set_title("mean ± standard deviation over seeds")
    diffs = [(n, r["difference"]) for n, r in rows if r.get("difference")]
    right.bar([n for n, _ in diffs], [d["mean"] * scale for _, d in diffs],
              yerr=[[0 if d["low"] is None else (d["mean"] - d["low"]) * scale
                     for _, d in diffs],
                    [0 if d["high"] is None else (d["high"] - d["mean"]) * scale
                     for _, d in diffs]],
              capsize=4, color=[colours[table["variants"][n]["group"]]
                                for n, _ in diffs])
    right.scatter([n for n, _ in diffs],
                  [table["variants"][n]["paper_difference"] for n, _ in diffs],
                  marker="x", color="black", zorder=3, label="paper")
    if diffs:
        right.legend(loc="best")
    right.axhline(0, color="black", linewidth=0.8)
    right.set_title("difference to full, 95 % interval (paired by seed)")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=45)
    fig.suptitle(f"TinyBERT ablation on {table['task']}")
    fig.tight_layout()
    from tinybert_tf import files
    with files.staged_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path
