"""Writing outputs all or nothing, and one run per output folder.

A folder or a file is written under a temporary name next to its
destination and renamed into place, so an interrupted run never leaves a
half-written checkpoint, export or report; what is written gets the
permissions of the user's umask (temporary names are created private).
`OutputLock` makes an output folder belong to one run at a time.

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
import socket
import sys
import tempfile
import time

LOCK_FILE = ".lock"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def follow_umask(path, directory=False):
    """Gives `path` the mode a plain `open`/`mkdir` would have (tempfile
    creates 0600 files and 0700 folders)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


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
    follow_umask(staging, directory=True)
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


@contextlib.contextmanager
def staged_file(path, mode="w", **open_args):
    """An open file under a temporary name next to `path`, renamed to `path`
    when the block succeeds and removed when it fails."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".staging-", dir=directory)
    if "b" not in mode:
        open_args.setdefault("encoding", "utf-8")
    try:
        with os.fdopen(handle, mode, **open_args) as f:
            yield f
        follow_umask(staging)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise


STAGING_PREFIXES = (".staging-", ".saving-", ".backup-", ".export-")


def sweep_staging(directory, depth=2, say=None):
    """Cleans what a killed writer left in `directory` (and its folders, to
    `depth`): temporary `.staging-*`-style entries are removed; a folder
    swapped out by `staged_directory` (`NAME.old` without `NAME`) is put
    back, a finished swap's `NAME.old` removed. Call it while holding the
    folder (`OutputLock`): another run's staging would look the same."""
    say = say or (lambda line: print(line, file=sys.stderr))
    if depth < 1 or not os.path.isdir(directory):
        return
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith(STAGING_PREFIXES):
            say(f"Removing {path}, left by an interrupted write.")
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
        elif name.endswith(".old") and os.path.isdir(path):
            kept = path[:-len(".old")]
            if os.path.exists(kept):
                shutil.rmtree(path, ignore_errors=True)
            else:
                say(f"Restoring {kept} from {path} (an interrupted save).")
                os.replace(path, kept)
    for name in sorted(os.listdir(directory)):
        if os.path.isdir(os.path.join(directory, name)):
            sweep_staging(os.path.join(directory, name), depth - 1, say)


def read_json(path):
    """The JSON in `path`; ValueError naming the file if it is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON (truncated or corrupt? "
                         f"{error}).") from None


def write_json(path, values):
    """Writes `values` as JSON next to `path`, then renames it into place."""
    with staged_file(path, encoding="utf-8") as f:
        json.dump(values, f, indent=2)


class OutputLock:
    """Holds `directory` for one run: DIRECTORY/.lock names its pid and host.

    A second run on the same folder is refused at once (`FileExistsError`)
    while the owner lives; the lock of a process that died (same host, no
    such pid) is taken over with a message. Released when the block ends,
    however it ends (a folder the lock created is removed if the run left
    it empty); a SIGKILLed owner leaves a stale lock, taken over by the
    next run.

    Example:
    >>> import tempfile
    >>> from tinybert_tf.files import OutputLock
    >>> folder = tempfile.mkdtemp()
    >>> with OutputLock(folder):
    ...     try:
    ...         OutputLock(folder).acquire()
    ...     except FileExistsError as error:
    ...         print("refused")
    refused
    """

    def __init__(self, directory, say=None):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, LOCK_FILE)
        self.say = say or (lambda line: print(line, file=sys.stderr))
        self.owner = {"pid": os.getpid(), "host": socket.gethostname()}

    def acquire(self):
        self.created = not os.path.exists(self.directory)
        os.makedirs(self.directory, exist_ok=True)
        for _ in range(3):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                                 0o666)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(handle, "w") as f:
                json.dump({**self.owner, "since": time.strftime(
                    "%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}, f)
            return self
        raise FileExistsError(f"Could not lock {self.directory} ({self.path}).")

    def _take_over_if_stale(self):
        holder = _read_lock(self.path)
        if holder is None:  # unreadable or half-written: a crashed owner
            self.say(f"Taking over the unreadable lock {self.path}.")
        elif holder.get("host") != self.owner["host"]:
            raise FileExistsError(
                f"{self.directory} is in use by process {holder.get('pid')} "
                f"on host {holder.get('host')} (since {holder.get('since')});"
                f" if that run is over, delete {self.path}.")
        elif _alive(holder.get("pid")):
            raise FileExistsError(
                f"{self.directory} is in use by another run: process "
                f"{holder['pid']} (since {holder.get('since')}: "
                f"{holder.get('command', '?')}). Wait for it to finish, stop "
                "it, or choose another output folder.")
        else:
            self.say(f"Taking over the lock of process {holder['pid']}, "
                     f"which is no longer running ({self.path}).")
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)

    def release(self):
        holder = _read_lock(self.path)
        if holder and (holder.get("pid"), holder.get("host")) == (
                self.owner["pid"], self.owner["host"]):
            os.remove(self.path)
            if self.created and not os.listdir(self.directory):
                os.rmdir(self.directory)  # a run that wrote nothing

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_lock(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return pid is not None  # someone else's live process
    return True


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
