"""The general-distilled students that `trainers.task` starts from, cached.

`trainers.task` without `--student` starts from the student that
`trainers.general` makes of the teacher in use and the student architecture
(TinyBERT's first stage). That student is made once and kept under
$TINYBERT_TF_CACHE/general_students/<key>/ (the folder of a trainers.general
run: student/, report.json, logs/); the key digests everything the student
depends on: the teacher's files, the corpus files, and every flag of the run
that changes what it computes (the flags that only say where and how to run,
such as the output folder or the checkpoint interval, are left out).

Example (no files are read for a source that does not exist):
>>> import argparse
>>> from tinybert_tf.general_students import cache_key
>>> args = argparse.Namespace(teacher="hub-id", student="tinybert-3l-192d",
...                           corpus=["nowhere.txt"], steps=10, seed=0)
>>> len(cache_key(args)) == 16 and cache_key(args) != cache_key(
...     argparse.Namespace(**{**vars(args), "steps": 20}))
True
"""

import hashlib
import json
import os

# Flags of trainers.general that do not change the student it makes.
NOT_IN_KEY = ("output_dir", "overwrite", "verbose", "strategy", "tpu",
              "jit_compile", "cache_dir", "save_every", "into_cache")


def source_identity(source):
    """A checkpoint or corpus source as the key sees it: an existing file or
    folder by the path, size and modification time of each file in it
    (a changed file makes another key); anything else (a hub id, a preset,
    a named corpus) by its name."""
    if source is None or not os.path.exists(str(source)):
        return str(source)
    paths = [source]
    if os.path.isdir(source):
        paths = sorted(os.path.join(folder, name)
                       for folder, _, names in os.walk(source)
                       for name in names)
    return [f"{os.path.abspath(p)}:{os.path.getsize(p)}:"
            f"{int(os.path.getmtime(p))}" for p in paths]


def cache_key(args):
    """16 hex digits of the trainers.general arguments `args` (parsed, its
    recipe filled in) and the files of its teacher and corpus."""
    from tinybert_tf import assets
    values = {k: v for k, v in vars(args).items() if k not in NOT_IN_KEY}
    values["teacher"] = source_identity(values.get("teacher")
                                        or _default_teacher(assets))
    corpus = values.get("corpus")
    if not corpus and not values.get("tfds_dataset"):
        corpus = assets.default_corpus()
    values["corpus"] = [source_identity(c) for c in corpus or []]
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _default_teacher(assets):
    try:
        return assets.minilm_dir()
    except FileNotFoundError:  # named in the error of the run itself
        return None


def cache_dir(args):
    """The folder of the trainers.general run of `args` in the cache."""
    from tinybert_tf import assets
    return os.path.join(assets.cache_dir("general_students"), cache_key(args))


def finished_student(directory):
    """The student checkpoint of a finished run in `directory`, or None."""
    if os.path.isfile(os.path.join(directory, "report.json")):
        return os.path.join(directory, "student")
    return None
