"""TinyBERT's ablations on your task: what each part of the method buys.

    python -m trainers.ablate --repeats 3           # embedded BBC News, every variant
    python -m trainers.ablate --variants full,no-gd,no-da --task-args "--quick"
    python -m trainers.ablate --train-file train.csv --text-column review \
        --label-column stars --repeats 5 --output-dir outputs/ablation-reviews
    python -m trainers.ablate --dry-run              # the plan, nothing run

Each variant and seed is one `python -m trainers.task` run (a process of its
own) into OUT/runs/VARIANT/seedK, with the flags of its variant
(`tinybert_tf.ablation.VARIANTS`): full (the default start, augmentation,
every loss; its baseline is the no-td variant), no-gd (--student random),
no-da (--no-augment), no-emb/no-att/no-hid/no-trm (--loss-weights), no-pred
(--prediction-target labels), top/bottom (--mapping; uniform is full). The
data flags and --task-args go to every run as they are.

Shared work is done once: the first run fine-tunes the teacher and every
other run is given it (--fine-tuned-teacher); trainers.task caches the
augmentation (once per seed: the seed is the augmentation's too), the
teacher's logits and the general student under $TINYBERT_TF_CACHE. A run
whose report.json exists is skipped: an interrupted ablation continues where
it stopped. Outputs: OUT/ablation.json, OUT/ablation.md (the paper's tables:
mean ± standard deviation, the difference to full paired by seed with its
95 % t interval, the paper's numbers beside) and OUT/ablation.png.
"""

import argparse
import os
import shlex
import subprocess
import sys
import time

from tinybert_tf import console, files
from trainers import common

SETTINGS_FILE = "ablation_settings.json"
# The wall time of each run this command made ({"VARIANT/seedK": seconds}):
# what a run costs before trainers.task's clock starts.
TIMES_FILE = "ablation_times.json"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m trainers.ablate",
        description="The paper's ablations (procedures, losses, layer "
                    "mappings) on a task, each variant a trainers.task run, "
                    "with repeats, error bars and the paper's numbers.")
    data = common.add_task_data_flags(p.add_argument_group(
        "data (as trainers.task; given to every run)"))
    p.add_argument("--variants", default="all",
                   help="comma-separated subset of: full, no-gd, no-td, "
                        "no-da, no-emb, no-pred, no-trm, no-att, no-hid, "
                        "uniform, top, bottom (default: all; full always "
                        "runs, the differences are to it)")
    p.add_argument("--repeats", type=int, default=3,
                   help="seeds per variant: 0 .. N-1 (default %(default)s)")
    p.add_argument("--task-args", default="", metavar="FLAGS",
                   help="more trainers.task flags for every run (budget, "
                        "recipe, teacher), e.g. \"--quick "
                        "--max-train-examples 400\"")
    p.add_argument("--student", default=None,
                   help="the general-distilled student the variants start "
                        "from (default: trainers.task's); no-gd starts from "
                        "random weights (--student random)")
    p.add_argument("--fine-tuned-teacher", default=None,
                   help="a fine-tuned teacher for every run (default: the "
                        "first run fine-tunes one, the others reuse it)")
    p.add_argument("--output-dir", default="outputs/ablation")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the commands, run nothing")
    console.add_verbose_flag(p)
    args = p.parse_args(_joined(sys.argv[1:] if argv is None else argv))
    args.data_actions = data._group_actions
    return args


def _joined(argv):
    """`--task-args --quick` as `--task-args=--quick`: argparse would take a
    lone flag for a flag of its own."""
    words = list(argv)
    for i in range(len(words) - 2, -1, -1):
        if words[i] == "--task-args":
            words[i:i + 2] = [f"--task-args={words[i + 1]}"]
    return words


def data_flags(args):
    """The data flags given, as trainers.task arguments (defaults left out)."""
    words = []
    for action in args.data_actions:
        value = getattr(args, action.dest)
        if value == action.default:
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(flag if value else "--no-" + flag[2:])
        elif isinstance(action, argparse._StoreTrueAction):
            words.append(flag)
        else:
            words += [flag, str(value)]
    return words


def check(args):
    """Refuses, before anything runs, flags that cannot make an ablation."""
    from tinybert_tf import ablation
    args.names = ablation.variant_names(args.variants)
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats}: must be >= 1.")
    try:
        task_words = shlex.split(args.task_args)
    except ValueError as error:
        raise ValueError(f"--task-args {args.task_args!r}: cannot be split "
                         f"into flags ({error}).") from None
    ablation.check_task_args(task_words)
    if args.student == "random":
        raise ValueError("--student random: the variants start from a "
                         "general-distilled student; the random start is the "
                         "no-gd variant.")
    if args.student:
        common.check_student(args.student)
    if args.fine_tuned_teacher and not os.path.isdir(args.fine_tuned_teacher):
        raise FileNotFoundError(f"--fine-tuned-teacher "
                                f"{args.fine_tuned_teacher}: no such folder.")
    common.check_files(args, ("train_file", "dev_file", "test_file"))
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise FileExistsError(f"--output-dir {args.output_dir} is a file.")
    common.check_writable(args.output_dir)
    args.task_flags = tuple(data_flags(args) + task_words)


def _difference(then, now):
    """What differs between two settings (lists: the words that differ)."""
    if isinstance(then, list) and isinstance(now, list):
        start = 0
        while start < min(len(then), len(now)) and then[start] == now[start]:
            start += 1
        end = 0
        while (end < min(len(then), len(now)) - start
               and then[-1 - end] == now[-1 - end]):
            end += 1
        then = shlex.join(then[start:len(then) - end]) or "(nothing)"
        now = shlex.join(now[start:len(now) - end]) or "(nothing)"
    return f"{then} then, {now} now"


def check_settings(args, write):
    """The settings every run of OUT shares, kept in OUT/SETTINGS_FILE: a
    later ablation into OUT must have the same (its finished runs are
    reused), else it is refused with the differences."""
    path = os.path.join(args.output_dir, SETTINGS_FILE)
    settings = {"task_flags": list(args.task_flags), "student": args.student,
                "fine_tuned_teacher": args.fine_tuned_teacher}
    if os.path.isfile(path):
        saved = files.read_json(path)
        differ = [f"{k}: {_difference(saved.get(k), v)}"
                  for k, v in settings.items() if saved.get(k) != v]
        if differ:
            raise ValueError(
                f"{args.output_dir} holds the runs of an ablation with other "
                f"settings ({'; '.join(differ)}); its finished runs would be "
                "mixed with new ones: choose another --output-dir, or give "
                "the same flags to continue it.")
    elif write:
        files.write_json(path, settings)


def plan_lines(args, runs, reference):
    """The plan: each variant's runs, what is reused, estimated minutes."""
    from tinybert_tf import ablation as ab
    seeds = range(args.repeats)
    lines = [f"Ablation into {args.output_dir}: {', '.join(args.names)}"
             f"{'' if 'full' in args.names else ' (and full, the reference)'};"
             f" {args.repeats} seed(s) ({', '.join(map(str, seeds))}); each "
             "run is python -m trainers.task under "
             f"{os.path.join(args.output_dir, 'runs', 'VARIANT', 'seedK')}."]
    total = 0.0
    for name in ["full"] * ("full" not in args.names) + args.names:
        v = ab.BY_NAME[name]
        if v.reuses:
            what = "baseline" if v.baseline else "student"
            lines.append(f"  {name:8s} no runs of its own: the {what} of the "
                         f"{v.reuses} runs")
            continue
        done = sum(ab.is_finished(args.output_dir, name, s) for s in seeds)
        minutes = None if reference is None else ab.estimate_minutes(
            name, reference, reference["_startup_s"])
        left = args.repeats - done
        if minutes is not None:
            total += minutes * left
        flags = " ".join(v.flags) or "the default start, augmentation, every loss"
        extra = " + baseline (= no-td)" if name == "full" else ""
        if name == "full" and name not in args.names:
            extra += " (the reference of every difference)"
        time_text = ("?" if minutes is None else f"~{minutes:.1f} min")
        lines.append(f"  {name:8s} {flags}{extra}: {done}/{args.repeats} "
                     f"finished, {time_text} a run")
    teacher = args.fine_tuned_teacher or ab.find_teacher(args.output_dir, seeds)
    lines.append("Shared, done once and reused: the fine-tuned teacher ("
                 + (f"{teacher}" if teacher else "fine-tuned by the first run,"
                    " then given to every other run") + "); the augmentation"
                 " (once per seed, cached by trainers.task); the teacher's "
                 "logits (once per teacher and training data, cached); the "
                 "general student (" + (args.student or "trainers.task's "
                                        "default, cached") + ").")
    if reference is None:
        lines.append("Time: estimated once the first run has finished (from "
                     "its measured stage times).")
    else:
        teacher_min, augment_min = ab.once_minutes(reference)
        seeds_left = sum(not ab.is_finished(args.output_dir, "full", s)
                         for s in seeds)
        total += augment_min * seeds_left + (0 if teacher else teacher_min)
        lines.append(
            f"Time: ~{total:.1f} min left, from the stage times of "
            f"{reference['_path']} (training steps scaled by each variant's "
            f"training examples, process start-up "
            f"{reference['_startup_s']:.0f} s; teacher fine-tuning "
            f"{teacher_min:.1f} min and augmentation {augment_min:.1f} min a "
            "seed counted once).")
    return lines


def reference_report(out, runs, seeds):
    """The report.json of the first finished run (full first), with its
    start-up seconds (`_startup_s`, 0 if its wall time was not recorded),
    or None."""
    from tinybert_tf import ablation as ab
    times = _times(out)
    for name in runs:
        for seed in seeds:
            path = ab.report_path(out, name, seed)
            if os.path.isfile(path):
                report = files.read_json(path)
                wall = times.get(f"{name}/seed{seed}")
                startup = 0.0 if wall is None else max(
                    0.0, wall - report["wall_time_s"]["total"])
                return {**report, "_path": path, "_startup_s": startup}
    return None


def _times(out):
    path = os.path.join(out, TIMES_FILE)
    return files.read_json(path) if os.path.isfile(path) else {}


def run(args):
    from tinybert_tf import ablation as ab
    check(args)
    runs = ab.variants_to_run(args.names)
    seeds = list(range(args.repeats))
    out = args.output_dir
    reference = reference_report(out, runs, seeds)
    check_settings(args, write=False)
    for line in plan_lines(args, runs, reference):
        print(line, flush=True)
    todo = [(n, s) for s in seeds for n in runs
            if not ab.is_finished(out, n, s)]
    if args.dry_run:
        for name, seed in todo:
            print("  python -m trainers.task " + shlex.join(ab.task_argv(
                out, name, seed, shared(args, out, seeds))))
        return 0
    with files.OutputLock(out):
        check_settings(args, write=True)
        code = run_all(args, todo, runs, seeds)
        write_outputs(args, runs, seeds)
    return code


def shared(args, out, seeds):
    from tinybert_tf import ablation as ab
    return ab.Shared(args.task_flags, args.student,
                     args.fine_tuned_teacher or ab.find_teacher(out, seeds))


def run_task(argv):
    """One trainers.task run in a process of its own (TensorFlow's state
    and memory end with it); its exit status."""
    return subprocess.call([sys.executable, "-m", "trainers.task", *argv])


def run_all(args, todo, runs, seeds):
    """Runs the unfinished runs one after the other; the exit status of the
    first that fails (the finished ones are kept), else 0."""
    from tinybert_tf import ablation as ab
    out = args.output_dir
    first = True
    for number, (name, seed) in enumerate(todo, 1):
        argv = ab.task_argv(out, name, seed, shared(args, out, seeds))
        print(f"[{number}/{len(todo)}] {name} seed {seed}: python -m "
              f"trainers.task {shlex.join(argv)}", flush=True)
        started = time.time()
        code = run_task(argv)
        if code != 0:
            print(f"error: the {name} run of seed {seed} failed (exit status "
                  f"{code}); finished runs are kept: fix the cause and run "
                  "the same command again to continue.", file=sys.stderr,
                  flush=True)
            return code
        wall = time.time() - started
        files.write_json(os.path.join(out, TIMES_FILE),
                         {**_times(out), f"{name}/seed{seed}": round(wall, 1)})
        report = files.read_json(ab.report_path(out, name, seed))
        score, metric, split = ab.run_score(report)
        print(f"  {name} seed {seed}: {split} {metric} {score:.4f} "
              f"[{wall / 60:.1f} min]", flush=True)
        if first:
            first = False
            reference = reference_report(out, runs, seeds)
            for line in plan_lines(args, runs, reference)[1:]:
                print("  " + line, flush=True)
    return 0


def write_outputs(args, runs, seeds):
    """ablation.json, ablation.md, ablation.png of the finished runs."""
    from tinybert_tf import ablation as ab
    out = args.output_dir
    scores, report = ab.collect_scores(out, runs, seeds)
    if report is None:
        print("No full run finished: no table yet.", flush=True)
        return
    _, metric, split = ab.run_score(report)
    selected = [n for n in args.names if n in scores]
    if "full" not in selected:
        selected.insert(0, "full")
    stats = ab.summarize({n: scores[n] for n in selected})
    table = ab.ablation_table(stats, {
        "task": report["task"], "metric": metric, "split": split,
        "seeds": seeds, "teacher": report["teacher"][split][metric],
        "partial": any(len(scores[n]) < len(seeds) for n in selected),
        "command": "python -m trainers.ablate " + shlex.join(args.argv)})
    files.write_json(os.path.join(out, "ablation.json"), table)
    with files.staged_file(os.path.join(out, "ablation.md")) as f:
        f.write(ab.markdown(table))
    ab.plot(table, os.path.join(out, "ablation.png"))
    print(f"Ablation: {os.path.join(out, 'ablation.md')}, ablation.json, "
          "ablation.png", flush=True)
    for name, row in table["variants"].items():
        d = row.get("difference")
        diff = "" if not d else f", difference {d['mean'] * 100:+.1f}"
        print(f"  {name:8s} {row['mean'] * 100:.1f}{diff}", flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)

    def parse(words):
        args = parse_args(words)
        args.argv = words
        return args
    return console.run_main(parse, run, argv)


if __name__ == "__main__":
    sys.exit(main())
