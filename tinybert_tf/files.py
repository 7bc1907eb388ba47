"""Writing outputs all or nothing: a folder or a file is written under a
temporary name next to its destination and renamed into place, so an
interrupted run never leaves a half-written checkpoint, export or report.

Example:
>>> import os, tempfile
>>> from tinybert_tf import files
>>> out = os.path.join(tempfile.mkdtemp(), "export")
>>> with files.staged_directory(out) as folder:
...     with open(os.path.join(folder, "a.txt"), "w") as f:
...         _ = f.write("all or nothing")
>>> os.listdir(out)
['a.txt']
>>> files.write_json(os.path.join(out, "report.json"), {"steps": 5})
>>> sorted(os.listdir(out))
['a.txt', 'report.json']
"""

import contextlib
import json
import os
import shutil
import tempfile


def refuse_existing(path, overwrite):
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"Output {path} already exists; pass "
                              "overwrite=True (--overwrite) to replace it.")


@contextlib.contextmanager
def staged_directory(output_dir, prefix=".staging-"):
    """A staging folder that becomes `output_dir` if the block succeeds (an
    existing `output_dir` is swapped out, then removed); on an error it is
    removed and `output_dir` stays as it was."""
    output_dir = os.path.abspath(os.fspath(output_dir))
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield staging
        _move_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _move_into_place(staging, output_dir):
    if os.path.exists(output_dir):
        old = output_dir + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output_dir, old)
        os.replace(staging, output_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, output_dir)


def write_json(path, values):
    """Writes `values` as JSON next to `path`, then renames it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".staging-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            json.dump(values, f, indent=2)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise


def publish_entries(staging, output_dir, names, stale=()):
    """Moves the entries `names` (files or folders) of `staging` into
    `output_dir` (created if needed), each with `os.replace`, replacing an
    entry of that name; then removes the entries `stale` of `output_dir`.
    Nothing else in `output_dir` is touched. If a move fails, the entries
    already moved are put back as they were and the error is raised.
    `staging` must be on the file system of `output_dir`; the caller removes
    it (what is left in it).

    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> out, staging = os.path.join(root, "out"), tempfile.mkdtemp(dir=root)
    >>> os.makedirs(out)
    >>> for folder, name in ((out, "old.txt"), (out, "mine.txt"),
    ...                      (staging, "new.txt")):
    ...     open(os.path.join(folder, name), "w").close()
    >>> publish_entries(staging, out, ["new.txt"], stale=["old.txt"])
    >>> sorted(os.listdir(out))
    ['mine.txt', 'new.txt']
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    created = not os.path.exists(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    replaced = tempfile.mkdtemp(prefix=".replaced-", dir=staging)
    names = list(names)
    moved = []  # (name, whether an old entry was moved aside)
    try:
        for name in names + [n for n in stale if n not in names]:
            target = os.path.join(output_dir, name)
            had_old = os.path.lexists(target)
            if had_old:
                os.replace(target, os.path.join(replaced, name))
            moved.append((name, had_old))
            if name in names:
                os.replace(os.path.join(staging, name), target)
    except BaseException:
        for name, had_old in reversed(moved):
            target = os.path.join(output_dir, name)
            with contextlib.suppress(OSError):
                if name in names and os.path.lexists(target):
                    os.replace(target, os.path.join(staging, name))
                if had_old:
                    os.replace(os.path.join(replaced, name), target)
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(output_dir)
        raise
    shutil.rmtree(replaced, ignore_errors=True)
