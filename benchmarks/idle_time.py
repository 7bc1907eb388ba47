"""Where a `trainers.task` run waits with nothing to do.

Runs `python -m trainers.task --output-dir OUT FLAGS` with
$TINYBERT_TF_STEP_TIMES set, reads the process's CPU time once a second
(/proc/PID/stat: Linux only) and prints one JSON line:

- per training stage, its wall time (the run's report.json) and the sum of
  its steps' times (dev evaluations run inside a step): their difference is
  time spent between steps;
- `idle_s`: the seconds in which the process used under 5 % of a core, and
  `longest_idle_s`, the longest run of them.

Before tf.data's autotuning thread was turned off (docs/speed.md) a task
distillation on 2 cores waited 15 to 60 s at a time, several times a run.

    python benchmarks/idle_time.py --out /tmp/idle -- \\
        --fine-tuned-teacher outputs/demo/task/teacher --intermediate-epochs 1 \\
        --baseline-epochs 3
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench_common import emit

IDLE_CORES = 0.05
TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None,
                   help="output folder of the run (default: a temporary one)")
    p.add_argument("task_args", nargs="*",
                   help="flags of trainers.task (after --)")
    return p.parse_args(argv)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def cores_per_second(process):
    """[cores used in each second] until `process` ends."""
    used, before = [], cpu_seconds(process.pid)
    while process.poll() is None:
        time.sleep(1)
        try:
            now = cpu_seconds(process.pid)
        except (OSError, IndexError):  # ended during the second
            break
        used.append(now - before)
        before = now
    return used


def longest_run(flags):
    longest = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


def main(argv=None):
    args = parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="idle_time-")
    steps_file = out.rstrip("/") + "-steps.jsonl"
    if os.path.exists(steps_file):
        os.remove(steps_file)
    command = [sys.executable, "-m", "trainers.task", "--output-dir", out,
               "--quiet", *args.task_args]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=dict(
        os.environ, TINYBERT_TF_STEP_TIMES=steps_file))
    used = cores_per_second(process)
    if process.wait():
        return process.returncode
    wall = time.perf_counter() - start
    in_steps = {}
    with open(steps_file, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            in_steps[row["stage"]] = in_steps.get(row["stage"], 0) + row["seconds"]
    with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
        stage_wall = json.load(f)["wall_time_s"]
    idle = [cores < IDLE_CORES for cores in used]
    emit({"command": command[1:], "wall_s": wall,
          "stages": {stage: {"wall_s": stage_wall[stage], "in_steps_s": seconds,
                             "between_steps_s": stage_wall[stage] - seconds}
                     for stage, seconds in in_steps.items() if stage in stage_wall},
          "idle_s": sum(idle), "longest_idle_s": longest_run(idle),
          "load_1min": os.getloadavg()[0]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
