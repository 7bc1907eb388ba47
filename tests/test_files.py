"""Outputs: all or nothing, the user's umask, one run per output folder."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.tiny import tiny_corpus
from tinybert_tf import files


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return os.stat(path).st_mode & 0o777


def test_staged_outputs_follow_the_umask(tmp_path, umask_022):
    with files.staged_directory(tmp_path / "folder") as staging:
        (open(os.path.join(staging, "a.txt"), "w")).close()
    files.write_json(tmp_path / "report.json", {"a": 1})
    with files.staged_file(tmp_path / "report.md") as f:
        f.write("# report")
    assert _mode(tmp_path / "folder") == 0o755  # tempfile's would be 0700
    assert _mode(tmp_path / "report.json") == 0o644  # and 0600
    assert _mode(tmp_path / "report.md") == 0o644


def test_a_failed_staged_file_leaves_the_old_one(tmp_path):
    path = tmp_path / "report.json"
    files.write_json(path, {"old": True})
    with pytest.raises(RuntimeError):
        with files.staged_file(path) as f:
            f.write("{half")
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["report.json"]


def _lock_of(directory, pid, host=None):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, files.LOCK_FILE), "w") as f:
        json.dump({"pid": pid, "host": host or socket.gethostname(),
                   "since": "2026-12-01 12:00:00", "command": "trainers.general"},
                  f)


def test_a_live_owner_keeps_the_folder(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock_of(tmp_path, owner.pid)
        with pytest.raises(FileExistsError, match="in use by another run"):
            files.OutputLock(tmp_path).acquire()
        assert json.loads((tmp_path / files.LOCK_FILE).read_text())["pid"] == owner.pid
    finally:
        owner.kill()
        owner.wait()


def test_the_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock_of(tmp_path, dead.pid)
    said = []
    with files.OutputLock(tmp_path, say=said.append):
        held = json.loads((tmp_path / files.LOCK_FILE).read_text())
        assert held["pid"] == os.getpid()
    assert "no longer running" in said[0]
    assert not (tmp_path / files.LOCK_FILE).exists()  # released


def test_a_lock_of_another_host_is_refused_naming_it(tmp_path):
    _lock_of(tmp_path, 1, host="gpu-node-7")
    with pytest.raises(FileExistsError, match="gpu-node-7"):
        files.OutputLock(tmp_path).acquire()


def test_a_second_general_run_is_refused_at_once_and_touches_nothing(
        tmp_path, capsys):
    from trainers import general
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = tmp_path / "run"
        _lock_of(out, owner.pid)
        (out / "logs").mkdir()
        (out / "logs" / "training_log.csv").write_text("epoch,loss\n0,1.0\n")
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        corpus = tiny_corpus(str(tmp_path / "corpus.txt"))
        code = general.main(["--output-dir", str(out), "--steps", "5",
                             "--corpus", corpus])
        assert code == 2
        assert "in use by another run" in capsys.readouterr().err
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    finally:
        owner.kill()
        owner.wait()


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError):
        with files.OutputLock(out):
            raise ValueError("bad flag")
    assert not out.exists()


def test_an_unwritable_output_is_refused_before_the_teacher_is_touched(
        tmp_path, capsys, monkeypatch):
    # Root passes every permission check: the parent is made read-only by
    # `os.access`, which the check uses.
    from trainers import task
    parent = tmp_path / "read_only"
    parent.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: (
        os.fspath(path) != str(parent) and access(path, mode)))
    code = task.main(["--output-dir", str(parent / "run"),
                      "--teacher", str(tmp_path / "no-such-teacher")])
    assert code == 2
    assert f"{parent} is not writable" in capsys.readouterr().err
    assert not (parent / "run").exists()


def test_what_a_killed_writer_left_is_cleaned_or_put_back(tmp_path):
    # A kill between the two renames of a checkpoint save, another inside
    # a save, a third inside a backup write (one level down).
    (tmp_path / "student.old").mkdir()
    (tmp_path / "student.old" / "model.safetensors").write_text("previous")
    (tmp_path / ".saving-x1").mkdir()
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / ".staging-y2").write_text("half")
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher.old").mkdir()
    said = []
    files.sweep_staging(tmp_path, say=said.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "stages", "student", "teacher"]
    assert (tmp_path / "student" / "model.safetensors").read_text() == "previous"
    assert not any((tmp_path / "stages").iterdir())
    assert len(said) == 3
