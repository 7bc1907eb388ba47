"""The whole TinyBERT job on the embedded default, in one command.

    python -m trainers.pipeline                  # about 40 min on 2 CPU cores
    python -m trainers.pipeline --quick          # under 10 min, every stage
    python -m trainers.pipeline --redo task      # run a stage (and the later ones) again

Stages, each a separate process whose outputs stay under --output-dir:

  general  python -m trainers.general --into-cache: the real MiniLM teacher
           distilled into the 3-layer student on the offline English text
           (gensim's Wikipedia + Lee news, the BBC train articles), made once
           and cached: the student trainers.task starts from by default
  task     python -m trainers.task: MiniLM fine-tuned on BBC News (the
           teacher), GloVe data augmentation, TinyBERT's two distillation
           steps from the general student, and the same student fine-tuned
           directly on the labels for comparison -> OUT/task/{teacher,student}
  prune    (only with --prune) python -m trainers.prune: the task student's
           least important heads and FFN neurons removed (default target:
           a third of the heads, half of the neurons), recovered by
           distillation from the task teacher -> OUT/prune/student, which
           the export stage then ships
  export   python -m export.tflite: float32, dynamic-range int8 and full int8
           TFLite files with MediaPipe metadata, each verified with LiteRT and
           evaluated on every test article by MediaPipe's TextClassifier
           -> OUT/export/*.tflite
  report   python -m trainers.report: the final table, loss curves,
           attention maps and accuracy/size/latency plots -> OUT/report.md

A stage whose result file exists is skipped (named in the log); `--redo
STAGE` runs it again, and the stages after it, since they read its output.
An interrupted run continues where it stopped when started again: general
distillation from its last checkpoint (BackupAndRestore), the task stage
from its saved teacher. Outside OUT the run writes only the caches under
$TINYBERT_TF_CACHE (default ~/.cache/tinybert_tf): the general student, the
tokenized corpus, the augmentation results and the teacher's logits, reused
by later runs.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

from tinybert_tf import console

STAGES = ("general", "task", "export", "report")
RESULT_FILES = {"task": "task/report.json", "prune": "prune/prune_report.json",
                "export": "export/export_report.json", "report": "report.md"}
PRUNE_TARGET = ["--heads-keep", "0.67", "--ffn-keep", "0.5"]
# The stage settings of each mode: flags of the stage's own CLI.
SETTINGS = {
    "full": {
        "general": [],  # trainers.general's defaults: trainers.task's student
        "task": [],  # trainers.task's "fast" recipe
        "prune": PRUNE_TARGET,
        "export": [],  # at the student's training length
    },
    "quick": {
        "general": ["--steps", "10", "--save-every", "5"],
        "task": ["--quick"],
        "prune": PRUNE_TARGET + ["--quick"],
        "export": [],
    },
}
EXPORT_VARIANTS = "float32,dynamic_int8,full_int8"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m trainers.pipeline",
        description="General distillation, teacher fine-tuning, augmentation,"
                    " task distillation, TFLite export and a report, on the "
                    "embedded default (MiniLM teacher, BBC News).")
    p.add_argument("--quick", action="store_true",
                   help="every stage, much smaller (under 10 minutes)")
    p.add_argument("--output-dir", default=None,
                   help="default: outputs/demo (outputs/demo-quick with "
                        "--quick)")
    p.add_argument("--prune", action="store_true",
                   help="prune the task student before the export "
                        "(trainers.prune, target " + " ".join(PRUNE_TARGET)
                        + "; --prune-args to change it)")
    p.add_argument("--redo", nargs="+", default=[], metavar="STAGE",
                   choices=STAGES + ("prune", "teacher", "all"),
                   help="run these stages again although finished (and the "
                        "stages after them); 'teacher' also fine-tunes the "
                        "teacher again")
    for stage in ("general", "task", "prune", "export"):
        p.add_argument(f"--{stage}-args", default="", metavar="FLAGS",
                       help=f"extra flags for the {stage} stage's command, "
                            "after the pipeline's own (a later flag wins)")
    console.add_verbose_flag(p)
    args = p.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = "outputs/demo-quick" if args.quick else "outputs/demo"
    return args


def stages_of(prune=False):
    """The stages of a run, in order: with `prune`, "prune" after "task"."""
    return STAGES[:2] + ("prune",) + STAGES[2:] if prune else STAGES


def stages_to_redo(redo, prune=False):
    """The stages to run again: each one named and every stage after it."""
    stages = stages_of(prune or "prune" in redo)
    named = {"task" if s == "teacher" else s for s in redo}
    if "all" in named:
        return set(stages)
    first = min((stages.index(s) for s in named), default=len(stages))
    return set(stages[first:])


def general_stage_flags(mode, extras):
    """The trainers.general flags of the pipeline's general student: the
    mode's settings, then --general-args. trainers.task is given the same
    ones (--general-args), so it finds that student in the cache."""
    return SETTINGS[mode]["general"] + list(extras.get("general", []))


def general_result(mode, extras):
    """Where the general stage's report.json is: in the cache of general
    students (`tinybert_tf.general_students`)."""
    from tinybert_tf.general_students import cache_dir
    from trainers.general_flags import parse_args
    flags = ["--into-cache"] + general_stage_flags(mode, extras)
    return os.path.join(cache_dir(parse_args(flags)), "report.json")


def stage_command(stage, out, mode, retrain_teacher, extras, redo=False,
                  pruned=False):
    """The command line of a stage.

    The pipeline runs a stage only when it is unfinished or to be redone:
    an unfinished one resumes where it stopped (general distillation from
    its backup, task distillation from its finished steps); one to be redone
    gets --overwrite, which replaces its outputs (the task stage still
    reuses its fine-tuned teacher unless --redo teacher).
    """
    path = lambda *parts: os.path.join(out, *parts)  # noqa: E731
    settings = SETTINGS[mode]
    overwrite = [*(["--overwrite"] if redo else []), *extras.get(stage, [])]
    if stage == "general":
        return (["-m", "trainers.general", "--into-cache"]
                + general_stage_flags(mode, extras)
                + (["--overwrite"] if redo else []))
    if stage == "task":
        teacher = ["--retrain-teacher"] if retrain_teacher else []
        general = shlex.join(general_stage_flags(mode, extras))
        return (["-m", "trainers.task", "--output-dir", path("task")]
                + (["--general-args", general] if general else [])
                + settings["task"] + teacher + overwrite)
    if stage == "prune":
        return (["-m", "trainers.prune", "--student", path("task", "student"),
                 "--teacher", path("task", "teacher"), "--output-dir",
                 path("prune")] + settings["prune"] + overwrite)
    if stage == "export":
        student = path("prune" if pruned else "task", "student")
        return (["-m", "export.tflite", "--checkpoint", student,
                 "--output", path("export"), "--variants", EXPORT_VARIANTS,
                 "--mediapipe-examples", "-1"] + settings["export"] + overwrite)
    return ["-m", "trainers.report", "--output-dir", out]


def result_file(stage, out, mode, extras):
    if stage == "general":
        return general_result(mode, extras)
    return os.path.join(out, RESULT_FILES[stage])


def summary_line(stage, result):
    """One line on what a finished stage produced (`result`: its file)."""
    if stage == "report":
        return f"report: {result}"
    with open(result, encoding="utf-8") as f:
        report = json.load(f)
    if stage == "general":
        losses = report["final_losses"]
        return (f"general: {report['steps']} steps, {report['examples_per_s']:.1f}"
                f" examples/s, final loss {losses['loss']:.3f} (attention "
                f"{losses['attention_loss']:.3f}, hidden "
                f"{losses['hidden_loss']:.3f}); student in "
                f"{report['student']['checkpoint']}")
    if stage == "task":
        metric = report["primary_metric"]
        split = "test" if "test" in report["retention"] else "dev"
        baseline = report.get("baseline") or {}
        return (f"task: {split} {metric} teacher "
                f"{report['teacher'][split][metric]:.4f}, student "
                f"{report['student'][split][metric]:.4f} (retention "
                f"{report['retention'][split]:.1%}, "
                f"{report['parameter_ratio']:.1%} of the parameters), "
                f"direct fine-tuning "
                f"{baseline.get(split, {}).get(metric, float('nan')):.4f}")
    if stage == "prune":
        metric, scores = report["primary_metric"], report["scores"]
        split = "test" if "test" in scores["before_pruning"] else "dev"
        params = report["parameters"]
        return (f"prune: {split} {metric} {scores['before_pruning'][split][metric]:.4f}"
                f" -> {scores['after_recovery'][split][metric]:.4f} after "
                f"recovery; non-embedding parameters "
                f"{params['non_embedding_before']:,} -> "
                f"{params['non_embedding_after']:,}")
    variants = ", ".join(
        f"{name} {v['size_mb']:.1f} MB acc {v['accuracy']:.4f} "
        f"(MediaPipe {v.get('mediapipe_accuracy', float('nan')):.4f})"
        for name, v in report["variants"].items())
    return f"export: {variants}"


def stage_flags(args):
    """{stage: its --STAGE-args split as a shell would}; ValueError naming
    the flag for an unbalanced quote or a trailing backslash."""
    extras = {}
    for stage in ("general", "task", "prune", "export"):
        flag = f"--{stage}-args"
        try:
            extras[stage] = shlex.split(getattr(args, f"{stage}_args"))
        except ValueError as error:  # "No closing quotation", "No escaped ..."
            raise ValueError(f"{flag} {getattr(args, f'{stage}_args')!r}: "
                             f"cannot be split into flags ({error}).") from None
        own = "--output" if stage == "export" else "--output-dir"
        if any(word == own or word.startswith(own + "=")
               for word in extras[stage]):
            raise ValueError(f"{flag}: {own} is set by the pipeline (under "
                             "its own --output-dir); leave it out.")
    return extras


def run(args):
    extras = stage_flags(args)
    out = args.output_dir
    mode = "quick" if args.quick else "full"
    stages = stages_of(args.prune)
    redo = stages_to_redo(args.redo, args.prune)
    retrain_teacher = bool({"teacher", "all"} & set(args.redo))
    os.makedirs(out, exist_ok=True)
    timings = {}
    for number, stage in enumerate(stages, 1):
        result = result_file(stage, out, mode, extras)
        header = f"[{number}/{len(stages)}] {stage}"
        if stage != "report" and os.path.exists(result) and stage not in redo:
            print(f"{header}: finished earlier, reusing {result} "
                  f"(--redo {stage} runs it again)", flush=True)
            print("  " + summary_line(stage, result), flush=True)
            continue
        command = [sys.executable] + stage_command(
            stage, out, mode, retrain_teacher, extras, redo=stage in redo,
            pruned=args.prune)
        print(f"{header}: {' '.join(command[1:])}", flush=True)
        started = time.time()
        code = subprocess.call(command)
        timings[stage] = time.time() - started
        if stage == "export" and code == 1 and os.path.exists(result):
            # export.tflite wrote every file but flags a variant that lost
            # too much accuracy: the report shows it, the run goes on.
            print("warning: the export flagged a variant (see above and "
                  f"{result})", file=sys.stderr, flush=True)
        elif code != 0:
            print(f"error: stage {stage} failed (exit status {code}). "
                  "Finished stages are kept: fix the cause and run the same "
                  "command again to continue.", file=sys.stderr)
            return code
        print(f"  {summary_line(stage, result)} [{timings[stage] / 60:.1f} min]",
              flush=True)
        if stage == "prune":  # a new pruned student: export it again
            redo.update(stages[number:])
    total = sum(timings.values())
    print(f"Pipeline done in {total / 60:.1f} min "
          f"({', '.join(f'{k} {v / 60:.1f}' for k, v in timings.items())}).")
    try_it(out)
    return 0


def try_it(out):
    """Shows the predict command on the exported file, and runs it on the
    start of a BBC News test article."""
    from tinybert_tf.tasks import load_bbc_news
    model = os.path.join(out, "export", "model_dynamic_int8.tflite")
    words = load_bbc_news().test.text_a[0].split()[:12]
    command = ["-m", "trainers.predict", "--model", model, " ".join(words)]
    print(f"Try it: python {shlex.join(command)}", flush=True)
    return subprocess.call([sys.executable] + command)


def main(argv=None):
    # console.setup's setting is kept in the environment: the stages
    # inherit it.
    return console.run_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
