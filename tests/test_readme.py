import os
import re

import pytest

pytestmark = pytest.mark.slow

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _read(path):
    with open(path) as f:
        return f.read()


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", _read(README), re.S)


def test_readme_python_blocks_run(capsys):
    blocks = _python_blocks()
    assert len(blocks) >= 2
    printed = []
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
        printed.append(capsys.readouterr().out)
    # The library in a few lines: general distillation of two backbones.
    assert "attention_loss_1" in printed[0] and "hidden_loss_2" in printed[0]
    # Task distillation: teacher fine-tuning, step 1, step 2 on dev.
    assert "teacher dev {'accuracy':" in printed[1]
    student = [line for line in printed[1].splitlines()
               if line.startswith("student dev")]
    assert len(student) == 1 and "'accuracy':" in student[0]


def test_readme_has_two_setup_commands():
    text = _read(README)
    setup = text.split("## Set-up on a fresh machine")[1].split("```bash\n")[1]
    commands = [l for l in setup.split("```")[0].splitlines() if l.strip()]
    assert [c.split()[0:2] for c in commands] == [["make", "demo"], ["make", "test"]]
    ci = _read(os.path.join(os.path.dirname(README), ".ci", "run"))
    assert "make test" in ci


def _day_commands():
    """The commands of the README's "A day with your own data", joined over
    their `\\` continuations, as argument lists."""
    import shlex
    text = open(README).read()
    block = text.split("## A day with your own data")[1].split("```bash\n")[1]
    block = block.split("```")[0].replace("\\\n", " ")
    return [shlex.split(line) for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


# What makes the README's commands run on tiny models in seconds.
TINY_FLAGS = {
    "trainers.task": ["--no-augment", "--sequence-length", "16",
                      "--batch-size", "8", "--teacher-epochs", "1",
                      "--intermediate-epochs", "1", "--prediction-epochs", "1",
                      "--eval-every", "0", "--no-baseline", "--quiet"],
    "export.tflite": ["--variants", "dynamic_int8", "--sequence-length", "16",
                      "--mediapipe-examples", "0", "--no-tokenizer-check",
                      "--latency-runs", "2"],
    "trainers.predict": [],
}


def test_a_day_with_your_own_data_runs(tmp_path, monkeypatch, capsys):
    """Distil on my CSV, export, predict: the README's three commands, as
    written, on a tiny teacher and student."""
    import csv
    import importlib

    import numpy as np

    from tests.tiny import WORDS, save_tiny_backbone, tiny_config

    commands = _day_commands()
    assert [c[:3] for c in commands] == [
        ["python", "-m", "trainers.task"], ["python", "-m", "export.tflite"],
        ["python", "-m", "trainers.predict"]]
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name in ("reviews.csv", "reviews_test.csv"):
        with open(name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["review", "stars"])
            for i in range(40):
                writer.writerow([" ".join(rng.choice(WORDS[i % 2::2], 5)),
                                 ["1", "5"][i % 2]])
    teacher = save_tiny_backbone(str(tmp_path / "teacher"))
    (tmp_path / "student.json").write_text(
        tiny_config(hidden_size=8, num_layers=1).to_json())
    flags = {**TINY_FLAGS, "trainers.task": TINY_FLAGS["trainers.task"] + [
        "--teacher", teacher, "--student", "student.json"]}
    for command in commands:
        module = command[2]
        main = importlib.import_module(module).main
        assert main(command[3:] + flags[module]) == 0, command
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].split()[0] in ("1", "5")
