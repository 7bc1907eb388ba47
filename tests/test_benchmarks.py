"""The benchmark scripts: the ours-vs-peers table, the peers' command lines
and the idle-time counter.

`distill_speed.py --compare` is checked on made-up result lines; each peer
script (PyTorch, TextBrewer, onnxruntime) must parse `--help`, skipped when
its optional `bench` extra is not installed.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")
PEERS = {"torch_distill_step.py": ("torch", "transformers"),
         "textbrewer_step.py": ("torch", "transformers", "textbrewer"),
         "official_augment_speed.py": ("torch", "transformers"),
         "onnx_latency.py": ("torch", "transformers", "onnxruntime", "onnx"),
         "textpruner_compare.py": ("torch", "transformers", "textpruner")}


def _result(step_s, **extra):
    shape = {"layers": 2, "hidden": 64, "ffn": 256}
    return {"batch": 32, "seq": 128, "step_s": {"median": step_s, "min": step_s / 2},
            "teacher": shape, "student": shape, "peak_rss_mb": 100.0, **extra}


def _write(folder, name, *runs):
    with open(os.path.join(folder, name + ".jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(run) + "\n" for run in runs)
    return os.path.join(folder, name + ".jsonl")


def test_compare_gives_ours_speed_up_per_peer_and_dtype(tmp_path, capsys):
    sys.path.insert(0, BENCHMARKS)
    try:
        import distill_speed
    finally:
        sys.path.remove(BENCHMARKS)
    paths = [_write(tmp_path, "tf_x_fp32", _result(1.0, matmul_peak_gflop_per_s=100.0),
                    _result(3.0, matmul_peak_gflop_per_s=100.0)),
             _write(tmp_path, "torch_x_fp32", _result(3.0)),
             _write(tmp_path, "textbrewer_x_fp32", _result(6.0)),
             _write(tmp_path, "torch_x_bf16", _result(1.0))]
    distill_speed.compare(paths)
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")
            for line in capsys.readouterr().out.splitlines()[2:]}
    # The median of the runs' medians, and the fastest step of all runs.
    assert rows["tf_x_fp32"][1:3] == ["2", "2.000 (0.500)"]
    assert rows["torch_x_fp32"][4] == "1.50x (3.00x)"
    assert rows["textbrewer_x_fp32"][4] == "3.00x (6.00x)"
    assert rows["torch_x_bf16"][4] == ""  # no ours in bfloat16 given
    flops = distill_speed._json_flops(_result(1.0))
    assert rows["tf_x_fp32"][5] == f"{flops / 2.0 / 1e9:.0f}"
    assert rows["tf_x_fp32"][6] == f"{100 * flops / 2.0 / 1e9 / 100.0:.0f}%"


@pytest.mark.parametrize("script", sorted(PEERS))
def test_peer_parses_help(script):
    missing = [m for m in PEERS[script] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the bench extra is not installed ({', '.join(missing)})")
    done = subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), "--help"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_general_start_runs_and_summary(tmp_path):
    """benchmarks/general_start.py: the teacher is fine-tuned by the first
    run only; the summary pairs the two starts by seed."""
    sys.path.insert(0, BENCHMARKS)
    try:
        import general_start
    finally:
        sys.path.remove(BENCHMARKS)
    order = general_start.runs("titles", "out", [0, 1], "G")
    assert [os.path.basename(t) for t, _ in order] == [
        "random-s0", "general-s0", "general-s1", "random-s1"]
    assert "--fine-tuned-teacher" not in order[0][1]
    assert all(f[f.index("--fine-tuned-teacher") + 1] == os.path.join(
        "out", "random-s0", "teacher") for _, f in order[1:])
    assert "--no-baseline" in order[3][1] and "--no-baseline" not in order[1][1]

    scores = {("general", 0): 0.9, ("general", 1): 0.8,
              ("random", 0): 0.85, ("random", 1): 0.8}
    for (start, seed), accuracy in scores.items():
        folder = tmp_path / "titles" / f"{start}-s{seed}"
        folder.mkdir(parents=True)
        split = {"accuracy": accuracy}
        (folder / "report.json").write_text(json.dumps({
            "student": {"test": split, "dev": split},
            "teacher": {"test": {"accuracy": 1.0}, "dev": {"accuracy": 1.0}},
            "baseline": {"test": {"accuracy": 0.7}, "dev": {"accuracy": 0.7}}}))
    test = general_start.summarise(str(tmp_path), "titles", [0, 1])["test"]
    assert test["general"]["mean"] == pytest.approx(85.0)
    assert test["general_minus_random"]["runs"] == pytest.approx([5.0, 0.0])
    assert test["distillation_gain"]["mean"] == pytest.approx(15.0)


def test_idle_time_counts_the_longest_idle_run():
    sys.path.insert(0, BENCHMARKS)
    try:
        import idle_time
    finally:
        sys.path.remove(BENCHMARKS)
    assert idle_time.longest_run([False, True, True, False, True]) == 2
    assert idle_time.longest_run([]) == 0
    assert idle_time.parse_args(["--", "--quick"]).task_args == ["--quick"]
