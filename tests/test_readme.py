import os
import re

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
