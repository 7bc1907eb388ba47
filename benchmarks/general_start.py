"""What general distillation buys: the same task distillation from the
general-distilled student and from random weights, over seeds.

For each task and seed it runs `python -m trainers.task` twice, with
`--student GENERAL` (the student `trainers.general --into-cache` makes with
its defaults, found in the cache or made there first) and `--student random`.
Each task's teacher is fine-tuned once, by its first run, and given to the
others. The runs from the general student keep their baseline (the same
student trained on the labels of the same augmented data). A run whose
report.json exists is not run again, so an interrupted benchmark continues.

- titles: BBC News titles (`--task bbc_news_titles`), the fast recipe
  (automatic length: 16 word-pieces; N = 20 augmented copies, 1 + 1
  epochs);
- articles: BBC News articles at the quick budget (`--quick`: 40
  word-pieces, N = 2, 2 + 3 epochs).

It prints, and writes to OUT/general_start.json, per task and start the
test and dev accuracy (mean ± sd over seeds), the gain of the general start
paired by seed, retention of the teacher and the distillation gain over the
baseline.

    python benchmarks/general_start.py --out runs/general_start
    python benchmarks/general_start.py --out runs/general_start --seeds 0 --tasks titles
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

TASKS = {
    "titles": ["--task", "bbc_news_titles", "--aug-n", "20"],
    "articles": ["--quick"],
}
STARTS = ("general", "random")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--general-student", default=None,
                   help="default: trainers.general --into-cache's student")
    return p.parse_args(argv)


def general_student():
    """The default general student: found in the cache, or made there (the
    one trainers.task starts from)."""
    from trainers.general_flags import general_student as find_or_make
    return find_or_make(["--into-cache"], print)


def run_name(start, seed):
    return f"{start}-s{seed}"


def runs(task, folder, seeds, student):
    """(output folder, trainers.task flags) in order: the first run
    (random start, first seed) fine-tunes the teacher; the others are given
    it."""
    first = os.path.join(folder, run_name("random", seeds[0]))
    order = [(first, ["--student", "random", "--seed", str(seeds[0])]
              + (["--no-baseline"] if task == "articles" else []))]
    for seed in seeds:
        for start in STARTS:
            target = os.path.join(folder, run_name(start, seed))
            if target != first:
                order.append((target, [
                    "--student", student if start == "general" else "random",
                    "--seed", str(seed), "--fine-tuned-teacher",
                    os.path.join(first, "teacher"),
                    *(["--no-baseline"] if start == "random" else [])]))
    return order


def run_all(out, task, seeds, student):
    for target, flags in runs(task, os.path.join(out, task), seeds, student):
        if os.path.exists(os.path.join(target, "report.json")):
            continue
        command = [sys.executable, "-m", "trainers.task", "--quiet",
                   *TASKS[task], *flags, "--output-dir", target]
        print(" ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)


def _mean_sd(values):
    values = [100 * v for v in values]
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return {"mean": statistics.mean(values), "sd": sd, "runs": values}


def summarise(out, task, seeds):
    def report(start, seed):
        path = os.path.join(out, task, run_name(start, seed), "report.json")
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    reports = {start: [report(start, s) for s in seeds] for start in STARTS}
    summary = {}
    for split in ("test", "dev"):
        acc = {start: [r["student"][split]["accuracy"] for r in rs]
               for start, rs in reports.items()}
        teacher = reports["general"][0]["teacher"][split]["accuracy"]
        baseline = [r["baseline"][split]["accuracy"] for r in reports["general"]]
        summary[split] = {
            "teacher": 100 * teacher,
            **{start: _mean_sd(values) for start, values in acc.items()},
            "general_minus_random": _mean_sd(
                [g - r for g, r in zip(acc["general"], acc["random"])]),
            "retention_general": _mean_sd([a / teacher for a in acc["general"]]),
            "baseline_general_start": _mean_sd(baseline),
            "distillation_gain": _mean_sd(
                [a - b for a, b in zip(acc["general"], baseline)]),
        }
    return summary


def main(argv=None):
    args = parse_args(argv)
    student = args.general_student or general_student()
    results = {"general_student": student, "seeds": args.seeds, "tasks": {}}
    for task in args.tasks:
        run_all(args.out, task, args.seeds, student)
        results["tasks"][task] = summarise(args.out, task, args.seeds)
    with open(os.path.join(args.out, "general_start.json"), "w") as f:
        json.dump(results, f, indent=2)
    for task, splits in results["tasks"].items():
        for split, s in splits.items():
            line = ", ".join(
                f"{k} {v['mean']:.2f} ± {v['sd']:.2f}" if isinstance(v, dict)
                else f"{k} {v:.2f}" for k, v in s.items())
            print(f"{task} {split}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
