import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def test_readme_library_snippet_runs(capsys):
    text = open(README).read()
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(snippet, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "attention_loss_1" in printed and "hidden_loss_2" in printed


def test_readme_has_two_setup_commands():
    text = open(README).read()
    setup = text.split("## Set-up on a fresh machine")[1].split("```bash\n")[1]
    commands = [l for l in setup.split("```")[0].splitlines() if l.strip()]
    assert [c.split()[0:2] for c in commands] == [["make", "demo"], ["make", "test"]]
    ci = open(os.path.join(os.path.dirname(README), ".ci", "run")).read()
    assert "make test" in ci
