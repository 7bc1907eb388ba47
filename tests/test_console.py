"""The console of the command lines: quiet by default, --help without
TensorFlow, --verbose (or TINYBERT_TF_VERBOSE=1) for the dependencies' own
output, inherited by subprocesses."""

import io
import os
import subprocess
import sys

import pytest

from tinybert_tf import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every command line: each module of trainers/ (but the shared helper) and
# export.tflite; a new one is checked as soon as it exists.
CLIS = sorted(
    [f"trainers.{name[:-3]}" for name in os.listdir(os.path.join(ROOT, "trainers"))
     if name.endswith(".py") and name not in ("__init__.py", "common.py", "general_flags.py")]
    + ["export.tflite"])
# What TensorFlow's libraries print on a machine without a GPU (and with).
NOISE = ("absl::InitializeLog", "cuInit", "cudart_stub", "cuda drivers",
         "oneDNN", "cpu_feature_guard", "XNNPACK", "I0000", "W0000", "E0000")


def _environment(**values):
    """os.environ without the settings this module is about, plus `values`."""
    env = {k: v for k, v in os.environ.items() if k not in (
        "TF_CPP_MIN_LOG_LEVEL", console.VERBOSE_ENV, console._SET_BY_US_ENV,
        "PYTHONWARNINGS")}
    env.update(values)
    return env


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                          env=_environment(**env), capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("cli", CLIS)
def test_help_imports_no_tensorflow_and_offers_verbose(cli):
    done = _python(
        "import runpy, sys\n"
        f"sys.argv = [{cli!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_module({cli!r}, run_name='__main__', alter_sys=True)\n"
        "except SystemExit as stop:\n"
        "    assert stop.code in (0, None), stop.code\n"
        "print('heavy:', sorted({m.split('.')[0] for m in sys.modules}\n"
        "                       & {'tensorflow', 'keras'}))\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--verbose" in done.stdout
    assert "heavy: []" in done.stdout
    assert done.stderr == ""


def test_tensorflow_loads_without_a_line_on_stderr():
    done = _python("from tinybert_tf import console\n"
                   "console.setup()\n"
                   "import keras, tensorflow as tf  # keras imports it first\n"
                   "print(len(tf.config.list_physical_devices()) > 0)\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"
    assert not [word for word in NOISE if word in done.stderr], done.stderr


def test_quiet_sets_the_log_level_and_verbose_takes_it_back():
    code = ("import os, subprocess, sys\n"
            "from tinybert_tf import console\n"
            "console.setup()\n"
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
            "child = 'from tinybert_tf import console; import os; "
            "print(console.setup(%s), "
            "os.environ.get(\"TF_CPP_MIN_LOG_LEVEL\"))'\n"
            "for verbose in (False, True):\n"
            "    subprocess.run([sys.executable, '-c', child % verbose])\n")
    done = _python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    # Quiet: level 3, inherited by a quiet child; a verbose child (a
    # pipeline stage given --verbose) gets TensorFlow's default back.
    assert done.stdout.split("\n")[:3] == ["3", "False 3", "True None"]
    # A level the user chose is kept.
    done = _python("import os\nfrom tinybert_tf import console\n"
                   "console.setup()\n"
                   "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])\n",
                   TF_CPP_MIN_LOG_LEVEL="0")
    assert done.stdout.strip() == "0"


def test_verbose_is_inherited_by_subprocesses():
    child = ("from tinybert_tf import console; import os; "
             "print(console.setup(), "
             "os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    code = ("import subprocess, sys\n"
            "from tinybert_tf import console\n"
            "console.setup(verbose=True)\n"
            f"subprocess.run([sys.executable, '-c', {child!r}])\n")
    assert _python(code).stdout.strip() == "True None"
    assert _python(child, TINYBERT_TF_VERBOSE="1").stdout.strip() == "True None"
    assert _python(child, TINYBERT_TF_VERBOSE="0").stdout.strip() == "False 3"


def test_quiet_hides_the_warnings_of_dependencies_only():
    code = ("import warnings\n"
            "from tinybert_tf import console\n"
            "console.setup(verbose=%s)\n"
            "for module in ('numpy.core', 'keras.src.ops', 'tinybert_tf.x',\n"
            "               'trainers.task', 'export.convert'):\n"
            "    warnings.warn_explicit('from ' + module, UserWarning,\n"
            "                           module + '.py', 1, module=module)\n")
    quiet = _python(code % False).stderr
    assert "from numpy.core" not in quiet and "from keras" not in quiet
    for ours in ("tinybert_tf.x", "trainers.task", "export.convert"):
        assert f"from {ours}" in quiet
    verbose = _python(code % True).stderr
    assert "from numpy.core" in verbose and "from keras.src.ops" in verbose
    # python -W decides over the quiet default.
    assert "from numpy.core" in _python(
        code % False, PYTHONWARNINGS="default").stderr


def test_load_output_is_dropped_unless_the_import_fails():
    code = ("import os\n"
            "from tinybert_tf import console\n"
            "with console._stderr_captured():\n"
            "    os.write(2, b'while loading\\n')\n"
            "os.write(2, b'after\\n')\n"
            "try:\n"
            "    with console._stderr_captured():\n"
            "        os.write(2, b'why it failed\\n')\n"
            "        raise ImportError('no')\n"
            "except ImportError:\n"
            "    pass\n")
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "after\nwhy it failed\n"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_only_on_a_terminal(monkeypatch):
    assert not console.interactive(io.StringIO())
    assert console.interactive(_Terminal())
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert console.fit_verbose() == 2  # one line per epoch
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert console.fit_verbose() == 1


@pytest.mark.parametrize("raised, status, shown", [
    (ValueError("--batch-size 0: must be >= 1."), 2,
     "error: --batch-size 0: must be >= 1."),
    (FileNotFoundError("no such file: train.csv"), 2,
     "error: no such file: train.csv"),
    (console.RunStopped("prediction: non-finite loss at step 4"), 1,
     "error: prediction: non-finite loss at step 4"),
    (KeyboardInterrupt(), 130, "Interrupted."),
    (ZeroDivisionError("division by zero"), 1, console.BUG_REPORT),
])
def test_run_main_exit_status_and_message(raised, status, shown, capsys):
    import argparse

    def run(args):
        raise raised

    parse = argparse.ArgumentParser().parse_args
    assert console.run_main(parse, run, []) == status
    err = capsys.readouterr().err
    assert shown in err
    # A user's mistake is one line; a bug keeps its traceback.
    assert ("Traceback" in err) == isinstance(raised, ZeroDivisionError)
