"""Wall time of a whole `trainers.task` run, before and after the speed work.

Runs `python -m trainers.task` twice on the same task, in fresh output and
cache folders (teacher fine-tuning included, nothing reused):

- "full padding": what the code did before length bucketing, the automatic
  sequence length and the teacher-logit cache (`--sequence-length 128
  --no-bucketing --no-teacher-cache`; 128 was the default length of a task
  that is not a short GLUE one);
- "default": today's defaults.

and prints one JSON line per run (stage wall times from its report.json,
test accuracy of teacher, student and baseline) and a table with the
ratio. The default task is BBC News titles (`--task bbc_news_titles`: the
first line of each article, 5 topics; real offline text).

Both runs start from a random student (`--student random`): the default
general-distilled start is made once per teacher and student architecture
and shared by every task (12.8 min alone, docs/demo.md), so it is not part of
a task's run; pass `-- --student DIR` to start both from a checkpoint.

    python benchmarks/task_speed.py                       # BBC News titles
    python benchmarks/task_speed.py -- --no-augment       # flags for both runs
    python benchmarks/task_speed.py --out /tmp/task_speed -- --quick
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

RUNS = {
    "full padding": ["--sequence-length", "128", "--no-bucketing",
                     "--no-teacher-cache"],
    "default": [],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="bbc_news_titles")
    p.add_argument("--out", default=None,
                   help="where the runs write (default: a temporary folder)")
    p.add_argument("task_args", nargs="*",
                   help="flags of trainers.task for both runs (after --)")
    return p.parse_args(argv)


def run_once(name, flags, args, out):
    folder = os.path.join(out, name.replace(" ", "_"))
    command = [sys.executable, "-m", "trainers.task", "--task", args.task,
               "--output-dir", folder, "--quiet", "--student", "random",
               *flags, *args.task_args]
    env = dict(os.environ, TINYBERT_TF_CACHE=os.path.join(folder, "cache"))
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    wall = time.perf_counter() - start
    with open(os.path.join(folder, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    split = "test" if "test" in report["student"] else "dev"
    metric = report["primary_metric"]
    return {"run": name, "flags": flags + args.task_args, "wall_s": round(wall, 1),
            "sequence_length": report["sequence_length"],
            "stages_s": report["wall_time_s"], "split": split,
            "metric": metric,
            "teacher": report["teacher"][split][metric],
            "student": report["student"][split][metric],
            "baseline": (report["baseline"] or {}).get(split, {}).get(metric),
            "load_1min": os.getloadavg()[0]}


def main(argv=None):
    args = parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="task_speed-")
    results = []
    for name, flags in RUNS.items():
        results.append(run_once(name, flags, args, out))
        print(json.dumps(results[-1]), flush=True)
    before, after = results
    print(f"\n| run | sequence length | wall s | teacher | student | baseline |"
          f"\n|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['run']} | {r['sequence_length']} | {r['wall_s']} | "
              f"{r['teacher']:.4f} | {r['student']:.4f} | "
              f"{r['baseline'] if r['baseline'] is None else round(r['baseline'], 4)} |")
    print(f"\ndefault / full padding wall time: "
          f"{after['wall_s'] / before['wall_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
