"""Start-up time of every command line: `python -m <cli> --help`.

Each command runs in a fresh interpreter `--runs` times; the median wall time
is printed per command, as ONE JSON line (seconds). `--help` imports no
TensorFlow (tests/test_console.py checks it), so it answers in well under a
second; a command that does work pays TensorFlow's import on top.

    python benchmarks/cli_startup.py
    python benchmarks/cli_startup.py --runs 5 --commands trainers.task
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def commands():
    """Every module of trainers/ (but the shared helper) and export.tflite."""
    names = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "trainers"))
                   if name.endswith(".py") and name not in ("__init__.py",
                                                            "common.py"))
    return [f"trainers.{name}" for name in names] + ["export.tflite"]


def help_seconds(command, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", command, "--help"], cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--commands", nargs="*", default=None)
    args = p.parse_args(argv)
    result = {command: help_seconds(command, args.runs)
              for command in args.commands or commands()}
    print(json.dumps({"help_seconds_median": result, "runs": args.runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
