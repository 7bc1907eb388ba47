"""What the command lines of trainers/ share (a helper module, not a CLI).

- `add_distillation_flags`, `add_optimization_flags`, `add_run_flags`:
  argparse flag groups; `distillation_options(args)`: their values as
  library options; `fill_from_recipe`: unset flags from a recipe.
- `check_flags`, `check_student`, `check_files`, `checked`: refuse a bad
  flag value, naming the flag, before any model is loaded.
- `guard_output`: refuse, before any work, to replace a finished run.
- `Stopwatch`: wall time per named stage.

TensorFlow is imported only by the functions that need the library: the
flags' choices come from `tinybert_tf.choices`, so `--help` answers at once.
"""

import argparse
import os
import shutil
import time

from tinybert_tf import console, files

# The student of both distillations by default (tinybert_tf.config.PRESETS).
STUDENT_DEFAULT = "tinybert-3l-192d"


# ------------------------------------------------------------------ flags

def add_distillation_flags(parser, prediction=False):
    """--mapping, --custom-layers, --projection, --attention-loss,
    --hidden-loss, --loss-weights, --layer-weights (and, with `prediction`,
    --temperature, --prediction-reduction, --prediction-target)."""
    from tinybert_tf.layer_mapping import MAPPING_STRATEGIES
    parser.add_argument("--mapping", default="uniform",
                        choices=MAPPING_STRATEGIES)
    parser.add_argument("--custom-layers", default=None,
                        help="teacher layer per student layer, e.g. 2,4,6")
    parser.add_argument("--projection", default="shared",
                        choices=("shared", "per_layer"))
    parser.add_argument("--attention-loss", default="official",
                        choices=("official", "exact"))
    parser.add_argument("--hidden-loss", default="official",
                        choices=("official", "exact"))
    parser.add_argument("--loss-weights", default="1,1,1",
                        help="embedding,attention,hidden weights (a 4th, "
                             "prediction, for trainers.task "
                             "--intermediate-stage all)")
    parser.add_argument("--layer-weights", default="",
                        help="per student layer weights, e.g. 1=0.5,3=2")
    parser.add_argument("--teacher-dropout",
                        action=argparse.BooleanOptionalAction, default=None,
                        help="run the teacher with dropout, as both official "
                             "scripts do (default: from --recipe; off in "
                             "fast)")
    if prediction:
        parser.add_argument("--temperature", type=float, default=1.0)
        parser.add_argument("--prediction-reduction", default="official",
                            choices=("official", "per_example"))
        parser.add_argument("--prediction-target", default="teacher",
                            choices=("teacher", "labels"),
                            help="what step 2 learns: the teacher's logits "
                                 "(TinyBERT) or the gold labels (the paper's "
                                 "ablation without the prediction loss)")
    return parser


def add_task_data_flags(data):
    """The task's data: --task (bbc_news or GLUE through TFDS) or your own
    --train-file/--dev-file/--test-file and their columns, caps, sequence
    length (trainers.task and the commands built on it)."""
    data.add_argument("--task", default=None,
                      help="bbc_news (default), bbc_news_titles (its "
                           "titles: short texts) or a GLUE task through TFDS "
                           "(cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli)")
    data.add_argument("--tfds-data-dir", default=None)
    data.add_argument("--tfds-download", action=argparse.BooleanOptionalAction,
                      default=True, help="let TFDS download a missing GLUE task")
    data.add_argument("--test-fraction", type=float, default=0.0,
                      help="GLUE: carve a labelled test split out of train")
    data.add_argument("--train-file", default=None,
                      help="your own .csv/.tsv/.jsonl train file")
    data.add_argument("--task-name", default=None,
                      help="name of a task from files (default: the train "
                           "file's stem, or its folder's name for "
                           "train/dev/test files: data/reviews/train.tsv -> "
                           "reviews)")
    data.add_argument("--dev-file", default=None)
    data.add_argument("--test-file", default=None)
    data.add_argument("--text-column", default="text")
    data.add_argument("--text-pair-column", default=None)
    data.add_argument("--label-column", default="label")
    data.add_argument("--regression", action="store_true",
                      help="labels are numbers (MSE; pearson/spearman)")
    data.add_argument("--dev-fraction", type=float, default=0.1,
                      help="fraction of train used as dev without --dev-file")
    data.add_argument("--max-train-examples", type=int, default=None)
    data.add_argument("--max-eval-examples", type=int, default=None,
                      help="cap on dev and test examples")
    data.add_argument("--split-seed", type=int, default=0,
                      help="seed of the splits made here (BBC News, "
                           "--dev-fraction, --test-fraction) and of the caps;"
                           " apart from --seed, so runs of several seeds "
                           "share their dev and test texts")
    data.add_argument("--sequence-length", type=int, default=None,
                      help="default: 128 for pairs; 64 for single texts in "
                           "the paper recipe, for cola/sst2 only in the fast "
                           "one (BBC articles are long)")
    return data


def add_optimization_flags(parser):
    """--optimizer, --clip-mode (defaults from the recipe), --weight-decay,
    --clip-norm."""
    from tinybert_tf.choices import CLIP_MODES, OPTIMIZERS
    parser.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                        help="adamw (fast) or the official bertadam (Adam "
                             "without bias correction; paper)")
    parser.add_argument("--clip-mode", default=None, choices=CLIP_MODES,
                        help="clip the global gradient norm (fast) or each "
                             "tensor's, as the official BertAdam (paper)")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--clip-norm", type=float, default=1.0,
                        help="0: no clipping")
    return parser


def fill_from_recipe(args, recipe):
    """Sets every argument still None to the recipe's value."""
    for name, value in recipe.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return args


def add_run_flags(parser, output_dir, overwrite_help):
    """--output-dir, --overwrite, --seed, --precision, --strategy,
    --verbose."""
    from tinybert_tf.choices import DISTRIBUTION_STRATEGIES, PRECISIONS
    parser.add_argument("--output-dir", default=output_dir)
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--strategy", default="default",
                        choices=DISTRIBUTION_STRATEGIES)
    console.add_verbose_flag(parser)
    return parser


def distillation_options(args, **extra):
    """The `DistillationOptions` of the distillation flags."""
    from tinybert_tf.distillation_options import (DistillationOptions,
                                                  parse_loss_weights)
    for_prediction = {name: getattr(args, name) for name in
                      ("temperature", "prediction_reduction",
                       "regression_target", "prediction_target")
                      if hasattr(args, name)}
    return DistillationOptions(
        mapping_strategy=args.mapping, custom_layers=args.custom_layers,
        projection=args.projection, attention_loss=args.attention_loss,
        hidden_loss=args.hidden_loss,
        loss_weights=parse_loss_weights(args.loss_weights, args.layer_weights),
        teacher_training=bool(args.teacher_dropout), **for_prediction, **extra)


# ------------------------------------------------------------------ checks

def _flag(name):
    return "--" + name.replace("_", "-")


def check_flags(args, positive=(), at_least=None, non_negative=(),
                fractions=()):
    """Raises ValueError naming the first flag whose value cannot make a run.

    `positive`: names that must be > 0 (learning rates, epochs, a
    temperature); `at_least`: {name: minimum} (sizes, counts);
    `non_negative`: names that must be >= 0; `fractions`: names that must be
    in [0, 1]. Unset (None) or absent attributes are skipped.
    """
    def values(names):
        for name in names:
            value = getattr(args, name, None)
            if value is not None:
                yield name, value

    for name, value in values(positive):
        if not value > 0:  # also refuses NaN
            raise ValueError(f"{_flag(name)} {value}: must be > 0.")
    for name, value in values(at_least or {}):
        if not value >= at_least[name]:
            raise ValueError(f"{_flag(name)} {value}: must be >= "
                             f"{at_least[name]}.")
    for name, value in values(non_negative):
        if not value >= 0:
            raise ValueError(f"{_flag(name)} {value}: must be >= 0.")
    for name, value in values(fractions):
        if not 0 <= value <= 1:
            raise ValueError(f"{_flag(name)} {value}: must be in [0, 1].")


def check_student(source, flag="--student", random_allowed=False):
    """Refuses, before any model is loaded, a student that is neither a
    directory, an existing config .json nor a preset (the list is given)."""
    from tinybert_tf.config import PRESETS
    if os.path.isdir(source) or (random_allowed and source == "random"):
        return
    if source.endswith(".json"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{flag} {source}: config file not found.")
        return
    if source not in PRESETS:
        if os.sep in source or os.path.exists(source):
            raise FileNotFoundError(
                f"{flag} {source}: not a checkpoint directory or config "
                ".json.")
        known = ", ".join(sorted(PRESETS))
        extra = ", 'random'" if random_allowed else ""
        raise ValueError(f"{flag} {source!r}: unknown preset; known presets: "
                         f"{known}{extra} (or a checkpoint directory, or a "
                         "config .json).")


def check_files(args, names):
    """Refuses input files (flags `names`, each a path or a list of paths)
    that do not exist or are folders."""
    for name in names:
        paths = getattr(args, name, None) or []
        for path in [paths] if isinstance(paths, str) else paths:
            if not os.path.exists(path):
                raise FileNotFoundError(f"{_flag(name)} {path}: no such file.")
            if os.path.isdir(path):
                raise IsADirectoryError(f"{_flag(name)} {path}: is a folder, "
                                        "not a file.")


def check_task_flags(args):
    """trainers.task's flag checks (after its --recipe and --quick filled
    the unset ones)."""
    check_flags(
        args, positive=("teacher_lr", "intermediate_lr", "prediction_lr",
                        "baseline_lr", "temperature"),
        at_least={"batch_size": 1, "sequence_length": 3, "aug_n": 1,
                  "aug_k": 1, "max_train_examples": 1,
                  "max_eval_examples": 1, "teacher_epochs": 1,
                  "prediction_epochs": 1, "baseline_epochs": 1},
        non_negative=("weight_decay", "clip_norm", "intermediate_epochs",
                      "eval_every"),
        fractions=("warmup", "aug_p", "dev_fraction", "test_fraction"))
    if args.test_fraction == 1:
        raise ValueError("--test-fraction 1.0: must be below 1 (train would "
                         "be empty).")
    if args.train_file and not args.dev_file and not 0 < args.dev_fraction < 1:
        raise ValueError(f"--dev-fraction {args.dev_fraction}: must be "
                         "strictly between 0 and 1 without --dev-file.")
    if args.student in ("random", "general"):
        check_student(args.student_preset, "--student-preset")
    else:
        check_student(args.student)
    check_files(args, ("train_file", "dev_file", "test_file", "aug_glove"))


def augment_options(args):
    """trainers.task's --aug-* flags as `task_distillation.AugmentOptions`."""
    from tinybert_tf.task_distillation import AugmentOptions
    return AugmentOptions(
        num_samples=args.aug_n, replace_prob=args.aug_p, top_k=args.aug_k,
        mlm=args.aug_mlm, glove=args.aug_glove, cache_dir=args.aug_cache_dir,
        seed=args.seed, progress=not args.quiet)


def checked(check, run):
    """`run`, after `check(args)`: the `run` of `console.run_main` whose flag
    checks (ValueError, OSError: exit status 2) come before any import of
    TensorFlow or any model."""
    def checked_run(args):
        check(args)
        return run(args)
    return checked_run


# ------------------------------------------------------------------ output

def guard_output(output_dir, finished, overwrite, advice):
    """Raises FileExistsError if `output_dir` is a file, or if it holds any
    of `finished` (names inside it) without `overwrite`; `advice` ends the
    message. Returns the finished paths that exist."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise FileExistsError(f"--output-dir {output_dir} is a file.")
    found = [os.path.join(output_dir, name) for name in finished
             if os.path.exists(os.path.join(output_dir, name))]
    if found and not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds {', '.join(found)}; pass "
            f"--overwrite to replace {advice}, or choose another --output-dir.")
    return found


def check_writable(path, flag="--output-dir"):
    """Raises PermissionError, before any work, if `path` cannot be made or
    written (its first existing ancestor is not writable)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK):
        raise PermissionError(f"{flag} {path}: {existing} is not writable.")


def run_owning_output(args, distil):
    """`distil(args, chief)` once `args.output_dir` is known writable; the
    chief holds it (`files.OutputLock`), the other workers only read it."""
    from tinybert_tf.distribute import is_chief
    check_writable(args.output_dir)
    if not is_chief():
        return distil(args, chief=False)
    with files.OutputLock(args.output_dir):
        return distil(args, chief=True)


def prepare_output(args, outputs, run_only_flags, chief, advice):
    """The output folder of a training CLI, checked before any work:
    a finished run (report.json) is refused without --overwrite (`advice`
    ends the message); --overwrite removes `outputs` (what a run writes,
    nothing else); an unfinished run is resumed only with the same flags
    (run.json; `run_only_flags` may differ), else refused with the
    differences. Only the `chief` writes. Returns the `RunRecord`, to
    `write()` when the run's first training starts."""
    from tinybert_tf.resume import RunRecord
    guard_output(args.output_dir, ("report.json",), args.overwrite, advice)
    if chief:
        files.sweep_staging(args.output_dir)
    if args.overwrite and chief:
        remove_outputs(args.output_dir, outputs)
    record = RunRecord(args.output_dir, {k: v for k, v in vars(args).items()
                                         if k not in run_only_flags})
    record.check(write=False)
    return record


def remove_outputs(output_dir, names):
    """Removes the files and folders `names` of `output_dir` (what a run
    writes there; nothing else)."""
    for name in names:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


# ------------------------------------------------------------------ run

class Stopwatch:
    """Wall time per named stage: `with clock.stage("data"): ...`."""

    def __init__(self):
        self.seconds = {}
        self.started = time.time()

    def stage(self, name):
        watch = self

        class _Stage:
            def __enter__(self):
                self.start = time.time()

            def __exit__(self, *exc):
                watch.seconds[name] = round(time.time() - self.start, 2)

        return _Stage()

    def elapsed(self):
        return time.time() - self.started

    def report(self):
        return {**self.seconds, "total": round(self.elapsed(), 2)}
