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


@contextlib.contextmanager
def staged_file(path, newline=None, encoding="utf-8"):
    """A text file open for writing under a temporary name next to `path`,
    renamed to `path` if the block succeeds (removed on an error: an existing
    `path` stays as it was)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".staging-", dir=directory)
    try:
        with os.fdopen(handle, "w", newline=newline, encoding=encoding) as f:
            yield f
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
