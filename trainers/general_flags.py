"""The flags of trainers.general, and the general-distilled student they
name in the cache: shared by trainers.general, trainers.task (whose default
student it is) and trainers.pipeline (a helper module, not a CLI).

- `parse_args`, `RECIPES`, `check_counts`: trainers.general's command line.
- `general_run_flags`, `student_source`, `general_student`: trainers.task's
  student: --student general finds the student of these flags in the cache
  (`tinybert_tf.general_students`) or runs trainers.general once to make it.
"""

import argparse
import os
import time

from tinybert_tf import console
from trainers import common

# Defaults of the flags left unset. "paper": the paper's set-up and every
# behaviour of the official general_distill.py (docs/fidelity.md).
# "fast": 2 epochs of the default corpus are 866 steps, the student that
# trainers.task starts from (docs/demo.md: what it buys).
RECIPES = {
    "fast": dict(epochs=2.0, learning_rate=1e-3, optimizer="adamw",
                 clip_mode="global", teacher_dropout=False),
    "paper": dict(epochs=3.0, learning_rate=5e-5, optimizer="bertadam",
                  clip_mode="per_tensor", teacher_dropout=True),
}
RECIPES["official"] = RECIPES["paper"]  # general_distill.py has no known bug


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m trainers.general",
        description="TinyBERT general distillation (attention + hidden-state "
                    "losses, pre-trained teacher, plain text).")
    p.add_argument("--teacher", default=None,
                   help="HF directory, hub id, keras-hub preset or project "
                        "checkpoint (default: the offline MiniLM).")
    p.add_argument("--student", default=common.STUDENT_DEFAULT,
                   help="model preset name, config .json, or a checkpoint "
                        "directory to continue from (default %(default)s).")
    p.add_argument("--corpus", nargs="*", default=None,
                   help="text files (.txt/.gz/.bz2, Wikipedia .xml.bz2) or "
                        "bbc_news:train (the BBC News train articles); "
                        "default: gensim's Wikipedia excerpt + Lee news + "
                        "bbc_news:train.")
    p.add_argument("--doc-format", default="auto", choices=("auto", "line", "blank"))
    p.add_argument("--tfds-dataset", default=None,
                   help="a TFDS text dataset instead of files, e.g. "
                        "wikipedia/20230601.en (feature --tfds-text-key).")
    p.add_argument("--tfds-text-key", default="text")
    p.add_argument("--max-documents", type=int, default=None)
    p.add_argument("--sequence-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32, help="global batch")
    p.add_argument("--recipe", default="fast", choices=sorted(RECIPES),
                   help="defaults of the flags below: " + "; ".join(
                       f"{name}: " + ", ".join(f"{k}={v}" for k, v in
                                               values.items())
                       for name, values in RECIPES.items()))
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--steps", type=int, default=None,
                   help="total steps (overrides --epochs; >= 1)")
    p.add_argument("--save-every", type=int, default=100,
                   help="steps between checkpoints/backups (one Keras epoch)")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak of the warm-up + linear decay (the paper: 5e-5 "
                        "over 3 epochs of Wikipedia; 1e-3 suits short runs "
                        "such as the embedded one, docs/demo.md)")
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of steps")
    common.add_optimization_flags(p)
    common.add_distillation_flags(p)
    common.add_run_flags(p, "outputs/general",
                         "replace a finished run in --output-dir")
    p.add_argument("--into-cache", action="store_true",
                   help="make the student in the cache of general students "
                        "(where trainers.task finds its default student) "
                        "instead of --output-dir; a finished one there is "
                        "reused")
    p.add_argument("--tpu", default=None)
    p.add_argument("--jit-compile", default="auto", choices=("auto", "true", "false"))
    p.add_argument("--cache-dir", default=None,
                   help="tokenized corpus cache (default ~/.cache/tinybert_tf)")
    args = p.parse_args(argv)
    return common.fill_from_recipe(args, RECIPES[args.recipe])


def check_counts(args):
    """Refuses flag values that cannot make a run (`--steps 0` included),
    an unknown --student and missing --corpus files, naming the flag."""
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps {args.steps}: a run needs at least one "
                         "step (leave --steps out to use --epochs).")
    common.check_flags(
        args, positive=("epochs", "learning_rate"),
        # [CLS] A [SEP] B [SEP] with two word-pieces at least
        at_least={"save_every": 1, "batch_size": 1, "sequence_length": 5,
                  "max_documents": 1},
        non_negative=("weight_decay", "clip_norm"), fractions=("warmup",))
    common.check_student(args.student)
    from tinybert_tf.assets import BBC_NEWS_TRAIN
    files_only = argparse.Namespace(corpus=[
        c for c in args.corpus or [] if c != BBC_NEWS_TRAIN])
    common.check_files(files_only, ("corpus",))


# Flags that do not change what a run computes: a resumed run may differ.
RUN_ONLY_FLAGS = ("output_dir", "overwrite", "verbose", "strategy", "tpu",
                  "jit_compile", "cache_dir", "into_cache")
OUTPUTS = ("student", "report.json", "logs", "backup", "backup.old",
           "run.json")


def general_run_flags(args, teacher=None):
    """The trainers.general flags that make the default student of a
    trainers.task run (`--student general`): `teacher`, the task's
    --student-preset, then --general-args (a later flag wins); ValueError
    naming the flag if they cannot be split or set the output."""
    import shlex
    try:
        extra = shlex.split(args.general_args)
    except ValueError as error:
        raise ValueError(f"--general-args {args.general_args!r}: cannot be "
                         f"split into flags ({error}).") from None
    if any(word.split("=")[0] == "--output-dir" for word in extra):
        raise ValueError("--general-args: --output-dir is the cache's; "
                         "leave it out.")
    teacher_flags = ["--teacher", teacher] if teacher else []
    return [*teacher_flags, "--student", args.student_preset, "--into-cache",
            *extra]


def student_source(args, teacher, say, chief=True):
    """(what `students.make_student` builds the student of a trainers.task
    run from, the report's "start": its kind and checkpoint):
    --student-preset for 'random', the cached general student for 'general'
    (`general_student`), else --student. `teacher` is the pre-trained
    source fine-tuned in the run, or the `Checkpoint` of a fine-tuned
    teacher: its general student is that of the pre-trained teacher it
    records, else its own."""
    if args.student == "random":
        return args.student_preset, {"kind": "random", "checkpoint": None}
    if args.student != "general":
        kind = "given checkpoint" if os.path.isdir(args.student) else "random"
        return args.student, {"kind": kind, "checkpoint": args.student
                              if kind != "random" else None}
    from tinybert_tf import assets
    if hasattr(teacher, "extras"):
        teacher = teacher.extras.get("pretrained") or teacher.source
    if teacher == assets.MINILM_NAME:  # the offline default, by display name
        teacher = None
    found = general_student(general_run_flags(args, teacher), say, chief)
    return found, {"kind": "cached general student", "checkpoint": found}


def general_student(flags, say, chief=True):
    """The checkpoint of the general-distilled student that trainers.general
    makes with `flags` (`general_run_flags`): found in the cache
    (`tinybert_tf.general_students`), or made there once by running it, its
    output shown. Returns the checkpoint directory."""
    import subprocess
    import sys
    from tinybert_tf.general_students import cache_dir, finished_student
    directory = cache_dir(parse_args(flags))
    found = finished_student(directory)
    if found:
        say(f"Student: the general-distilled student cached in {found}.")
        return found
    command = [sys.executable, "-m", "trainers.general", *flags]
    if not chief:
        raise console.RunStopped(f"No general-distilled student in {directory}: "
                           "run `python " + " ".join(command[1:]) + "` once "
                           "before a multi-worker run, or pass --student.")
    say("No general-distilled student of this teacher and architecture in "
        f"the cache yet: making one, once, in {directory} (TinyBERT's first "
        "stage; with the default corpus 866 steps, about 13 minutes on 2 CPU "
        "cores; a rerun resumes it; --student random skips it):\n  python "
        + " ".join(command[1:]))
    started = time.time()
    code = subprocess.call(command)
    if code != 0 or not finished_student(directory):
        raise console.RunStopped(f"trainers.general failed (exit status {code}); "
                           "its output is above. Run the same command again "
                           "to resume it, or pass --student random.")
    say(f"General-distilled student made in {(time.time() - started) / 60:.1f}"
        f" min and cached in {directory}.")
    return finished_student(directory)
