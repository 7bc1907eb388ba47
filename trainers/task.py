"""Task-specific distillation: fine-tuned teacher -> small student on a task.

With no arguments it fine-tunes the real pre-trained MiniLM (6L/384) on BBC
News topic classification, then distils it into the 3-layer student
(tinybert-3l-192d) in TinyBERT's two steps, and fine-tunes the same student
directly on the labels for comparison:

    python -m trainers.task                      # embedded default (CPU, ~40 min)
    python -m trainers.task --quick              # a few minutes, smaller data
    python -m trainers.task --student outputs/general/student
    python -m trainers.task --task sst2 --tfds-data-dir ~/tensorflow_datasets \
        --recipe paper --augment --aug-mlm bert-base-uncased
    python -m trainers.task --train-file train.csv --dev-file dev.csv \
        --test-file test.csv --text-column review --label-column stars

Steps:
  1. teacher: the pre-trained --teacher fine-tuned on the labels (AdamW,
     warm-up + linear decay, best on dev kept) and saved to OUTPUT/teacher,
     which a later run reuses; or --fine-tuned-teacher DIR used as is;
  2. data augmentation of the train texts (tinybert_tf.augment; --no-augment
     turns it off);
  3. distillation step 1: embedding + attention + hidden-state losses on the
     (augmented) train data, constant learning rate;
  4. distillation step 2: prediction-layer loss (soft cross-entropy on the
     teacher's logits; MSE to the gold labels for regression), warm-up +
     decay, dev evaluated every --eval-every steps, best kept;
  5. (--baseline, on by default) the same student, from the same initial
     weights, trained on the labels of the same (augmented) train data for as
     many epochs as steps 1 and 2 together.

Outputs under --output-dir: teacher/, student/ (project checkpoints with the
label names), report.json (metrics on dev and test, retention, parameters,
wall time per stage, augmentation counts, baseline).
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

STUDENT_DEFAULT = "tinybert-3l-192d"

# Hyperparameters of each recipe; an explicit flag always wins.
# "paper": the values of the paper / official code (REFERENCE.md §1).
# "fast": the embedded default, sized for a CPU run of about 40 minutes on
# BBC News with a student that starts from random weights. Its learning rates
# are 20-30x the paper's: at 2e-4 a few hundred steps of step 1 leave the
# student's hidden states at the teacher's mean (docs/demo.md).
RECIPES = {
    "fast": dict(
        batch_size=32, teacher_epochs=3, teacher_lr=1e-4,
        intermediate_epochs=2, intermediate_lr=1e-3,
        prediction_epochs=3, prediction_lr=1e-3,
        baseline_epochs=None, baseline_lr=1e-3,
        warmup=0.1, eval_every=100, augment=True, aug_n=4, pooling="mean"),
    "paper": dict(
        batch_size=32, teacher_epochs=3, teacher_lr=2e-5,
        intermediate_epochs=10, intermediate_lr=5e-5,
        prediction_epochs=3, prediction_lr=3e-5,
        baseline_epochs=None, baseline_lr=5e-5,
        warmup=0.1, eval_every=50, augment=True, aug_n=None, pooling="cls"),
}
# --quick: a few minutes on a CPU (subsets, short sequences, few epochs).
QUICK = dict(sequence_length=64, max_train_examples=320, teacher_epochs=2, teacher_lr=2e-4, intermediate_epochs=3,
             prediction_epochs=2, eval_every=0, aug_n=2)
# Single-sentence GLUE tasks (64 word-pieces in both recipes).
SHORT_TASKS = ("cola", "sst2")


def parse_args(argv=None):
    from tinybert_tf.distribute import DISTRIBUTION_STRATEGIES, PRECISIONS
    from tinybert_tf.heads import CLASSIFIER_HEADS, POOLINGS
    from tinybert_tf.layer_mapping import MAPPING_STRATEGIES
    p = argparse.ArgumentParser(
        prog="python -m trainers.task",
        description="TinyBERT task-specific distillation: fine-tune a teacher"
                    ", distil it into a student (intermediate layers, then "
                    "prediction layer), compare with direct fine-tuning.")
    data = p.add_argument_group("data")
    data.add_argument("--task", default=None,
                      help="bbc_news (default) or a GLUE task through TFDS "
                           "(cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli)")
    data.add_argument("--tfds-data-dir", default=None)
    data.add_argument("--tfds-download", action=argparse.BooleanOptionalAction,
                      default=True, help="let TFDS download a missing GLUE task")
    data.add_argument("--test-fraction", type=float, default=0.0,
                      help="GLUE: carve a labelled test split out of train")
    data.add_argument("--train-file", default=None,
                      help="your own .csv/.tsv/.jsonl train file")
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
    data.add_argument("--sequence-length", type=int, default=None,
                      help="default: 128 for pairs; 64 for single texts in "
                           "the paper recipe, for cola/sst2 only in the fast "
                           "one (BBC articles are long)")

    models = p.add_argument_group("models")
    models.add_argument("--teacher", default=None,
                        help="pre-trained teacher to fine-tune: HF directory, "
                             "hub id, keras-hub preset or project checkpoint "
                             "(default: the offline MiniLM)")
    models.add_argument("--fine-tuned-teacher", default=None,
                        help="an already fine-tuned teacher checkpoint to use")
    models.add_argument("--retrain-teacher", action="store_true",
                        help="fine-tune again although OUTPUT/teacher exists "
                             "(needs --overwrite)")
    models.add_argument("--student", default=STUDENT_DEFAULT,
                        help="a general-distilled checkpoint directory "
                             "(trainers.general; projections reused), a preset"
                             " name, a config .json, or 'random' (random "
                             "--student-preset); default %(default)s (random)")
    models.add_argument("--student-preset", default=STUDENT_DEFAULT,
                        help="architecture of --student random")
    models.add_argument("--head", default="tanh_relu", choices=CLASSIFIER_HEADS,
                        help="classifier head of new heads (official: tanh_relu)")
    models.add_argument("--pooling", default=None, choices=POOLINGS,
                        help="what the student's new head reads: the [CLS] "
                             "state (official; paper recipe) or the mean of "
                             "the token states (fast recipe); the teacher's "
                             "head is always [CLS]")

    train = p.add_argument_group("training (defaults from --recipe)")
    train.add_argument("--recipe", default="fast", choices=sorted(RECIPES))
    train.add_argument("--quick", action="store_true",
                       help="a few-minute run: " + ", ".join(
                           f"{k}={v}" for k, v in QUICK.items()))
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--teacher-epochs", type=int, default=None)
    train.add_argument("--teacher-lr", type=float, default=None)
    train.add_argument("--intermediate-epochs", type=int, default=None,
                       help="step 1 epochs (0 skips step 1)")
    train.add_argument("--intermediate-lr", type=float, default=None,
                       help="step 1 constant learning rate")
    train.add_argument("--prediction-epochs", type=int, default=None)
    train.add_argument("--prediction-lr", type=float, default=None)
    train.add_argument("--warmup", type=float, default=None,
                       help="warm-up fraction (teacher, step 2, baseline)")
    train.add_argument("--weight-decay", type=float, default=0.01)
    train.add_argument("--clip-norm", type=float, default=1.0)
    train.add_argument("--eval-every", type=int, default=None,
                       help="evaluate on dev every N steps (0: each epoch)")
    train.add_argument("--baseline", action=argparse.BooleanOptionalAction,
                       default=True, help="also train the same student "
                                          "directly on the labels of the "
                                          "same (augmented) train data")
    train.add_argument("--baseline-epochs", type=int, default=None,
                       help="default: step 1 + step 2 epochs")
    train.add_argument("--baseline-lr", type=float, default=None)

    loss = p.add_argument_group("distillation")
    loss.add_argument("--mapping", default="uniform", choices=MAPPING_STRATEGIES)
    loss.add_argument("--custom-layers", default=None,
                      help="teacher layer per student layer, e.g. 2,4,6")
    loss.add_argument("--projection", default="shared",
                      choices=("shared", "per_layer"))
    loss.add_argument("--attention-loss", default="official",
                      choices=("official", "exact"))
    loss.add_argument("--hidden-loss", default="official",
                      choices=("official", "exact"))
    loss.add_argument("--loss-weights", default="1,1,1",
                      help="embedding,attention,hidden weights")
    loss.add_argument("--layer-weights", default="",
                      help="per student layer weights, e.g. 1=0.5,3=2")
    loss.add_argument("--temperature", type=float, default=1.0)
    loss.add_argument("--prediction-reduction", default="official",
                      choices=("official", "per_example"))

    aug = p.add_argument_group("data augmentation")
    aug.add_argument("--augment", action=argparse.BooleanOptionalAction,
                     default=None, help="augment the train texts (on in "
                                        "both recipes)")
    aug.add_argument("--aug-n", type=int, default=None,
                     help="samples per example (paper: official per-task N)")
    aug.add_argument("--aug-p", type=float, default=0.4,
                     help="replacement probability p_t")
    aug.add_argument("--aug-k", type=int, default=15, help="candidates K")
    aug.add_argument("--aug-mlm", default=None,
                     help="masked-LM checkpoint (a BertForMaskedLM); without "
                          "one, GloVe neighbours only")
    aug.add_argument("--aug-glove", default=None,
                     help="GloVe vectors (default: the offline GloVe 6B 50d)")
    aug.add_argument("--aug-cache-dir", default=None,
                     help="augmentation cache (default: tinybert_tf.augment's, "
                          "shared by runs)")

    run = p.add_argument_group("run")
    run.add_argument("--output-dir", default="outputs/task")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the student and report of a finished run")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--precision", default="float32", choices=PRECISIONS)
    run.add_argument("--strategy", default="default", choices=DISTRIBUTION_STRATEGIES)
    run.add_argument("--quiet", action="store_true")
    return resolve_settings(p.parse_args(argv), p.error)


def resolve_settings(args, error):
    """Fills every unset hyperparameter from --quick, then --recipe;
    `error(message)` reports a bad value (argparse's: exit status 2)."""
    defaults = dict(RECIPES[args.recipe])
    if args.quick:
        defaults.update(QUICK)
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if args.baseline_epochs is None:
        args.baseline_epochs = max(1, args.intermediate_epochs
                                   + args.prediction_epochs)
    for name in ("batch_size", "teacher_epochs", "prediction_epochs",
                 "baseline_epochs"):
        if getattr(args, name) < 1:
            error(f"--{name.replace('_', '-')} must be >= 1.")
    for name in ("intermediate_epochs", "eval_every"):
        if getattr(args, name) < 0:
            error(f"--{name.replace('_', '-')} must be >= 0.")
    return args


# ------------------------------------------------------------------ data

def load_task_data(args):
    """The task's raw splits (`tasks.TaskData`), capped as asked."""
    from tinybert_tf import tasks
    if args.train_file:
        task = tasks.load_files(
            args.train_file, args.dev_file, args.test_file,
            text_column=args.text_column,
            text_pair_column=args.text_pair_column,
            label_column=args.label_column, regression=args.regression,
            dev_fraction=args.dev_fraction, seed=args.seed, name=args.task)
    elif args.dev_file or args.test_file:
        raise ValueError("--dev-file/--test-file need --train-file.")
    elif args.task in (None, "bbc_news"):
        task = tasks.load_bbc_news(seed=args.seed)
    else:
        name = args.task.lower().removeprefix("glue/")
        if name not in tasks.GLUE_TASKS:
            raise ValueError(
                f"Unknown task {args.task!r}. Known tasks: 'bbc_news' "
                f"(default) and the GLUE tasks {sorted(tasks.GLUE_TASKS)}; "
                "or give your own files with --train-file.")
        try:
            task = tasks.load_glue(name, data_dir=args.tfds_data_dir,
                                   download=args.tfds_download,
                                   test_fraction=args.test_fraction,
                                   seed=args.seed)
        except (ValueError, FileNotFoundError, ImportError):
            raise
        except Exception as error:  # TFDS raises its own error types
            raise OSError(
                f"Could not load GLUE task {name!r} through TFDS "
                f"({type(error).__name__}: {error}). Offline, prepare it "
                "elsewhere and pass its folder with --tfds-data-dir.") from error
    task.train = _cap(task.train, args.max_train_examples, args.seed)
    task.dev = _cap(task.dev, args.max_eval_examples, args.seed)
    task.test = _cap(task.test, args.max_eval_examples, args.seed)
    task.extra_dev = {k: _cap(v, args.max_eval_examples, args.seed)
                      for k, v in task.extra_dev.items()}
    return task


def _cap(split, limit, seed):
    import numpy as np
    if split is None or limit is None or len(split) <= limit:
        return split
    return split.take(np.random.default_rng(seed).permutation(len(split))[:limit])


def default_sequence_length(task, recipe):
    """Paper: 64 for one text, 128 for pairs. Fast: 64 only for the short
    GLUE sentences (BBC News articles are long)."""
    if task.is_pair:
        return 128
    if recipe == "paper" or task.name in SHORT_TASKS:
        return 64
    return 128


# ------------------------------------------------------------------ output

def output_paths(args):
    return {name: os.path.join(args.output_dir, name)
            for name in ("teacher", "student", "report.json")}


def check_output(args):
    """Refuses, before any work, to replace what a user has."""
    paths = output_paths(args)
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise FileExistsError(f"--output-dir {args.output_dir} is a file.")
    finished = [p for p in (paths["student"], paths["report.json"])
                if os.path.exists(p)]
    if finished and not args.overwrite:
        raise FileExistsError(
            f"{args.output_dir} already holds {', '.join(finished)}; pass "
            "--overwrite to replace them (a fine-tuned teacher there is "
            "reused either way), or choose another --output-dir.")
    if args.retrain_teacher:
        if args.fine_tuned_teacher:
            raise ValueError("--retrain-teacher and --fine-tuned-teacher "
                             "contradict each other.")
        if os.path.exists(paths["teacher"]) and not args.overwrite:
            raise FileExistsError(
                f"--retrain-teacher would replace {paths['teacher']}; pass "
                "--overwrite too.")
    return paths


def write_json(path, values):
    """Writes next to `path`, then renames: never a half-written report."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".report-", dir=directory)
    try:
        with os.fdopen(handle, "w") as f:
            json.dump(values, f, indent=2)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise


# ------------------------------------------------------------------ models

def check_teacher_for_task(teacher, task, source):
    if teacher.num_labels != task.num_labels:
        raise ValueError(
            f"Teacher {source} has {teacher.num_labels} output(s) but task "
            f"{task.name!r} needs {task.num_labels}.")
    if (teacher.label_names and task.label_names
            and list(teacher.label_names) != list(task.label_names)):
        raise ValueError(
            f"Teacher {source} was fine-tuned for labels {teacher.label_names}"
            f" but task {task.name!r} has {task.label_names}. Use another "
            "--output-dir, or --retrain-teacher --overwrite.")


def make_student(args, teacher_config, tokenizer, task):
    """(student BertClassifier, its checkpoint or None, a description)."""
    from tinybert_tf import checkpoint
    from tinybert_tf.backbone import BertBackbone, dummy_inputs
    from tinybert_tf.config import PRESETS, BertConfig
    from tinybert_tf.heads import BertClassifier
    source = args.student_preset if args.student == "random" else args.student
    if os.path.isdir(source):
        ckpt = checkpoint.read(source)
        if ckpt.vocab_file is None:
            raise FileNotFoundError(f"Student checkpoint {source} has no "
                                    "vocab.txt.")
        if ckpt.vocabulary() != tokenizer.vocabulary:
            raise ValueError(
                f"Student checkpoint {source} has a different vocabulary "
                f"({len(ckpt.vocabulary())} word-pieces) from the teacher's "
                f"({tokenizer.vocab_size}): TinyBERT feeds both the same ids.")
        tokenizer.check_model(ckpt.config)
        _check_heads(ckpt.config, teacher_config, source, args)
        has_head = "classifier.weight" in ckpt.weights
        student = checkpoint.load_classifier(
            ckpt, num_labels=task.num_labels, label_names=task.label_names or None,
            head=None if has_head else args.head,
            pooling=None if has_head else args.pooling)
        return student, ckpt, f"checkpoint {source}"
    if source.endswith(".json"):
        if not os.path.exists(source):
            raise FileNotFoundError(f"Student config {source} not found.")
        with open(source, encoding="utf-8") as f:
            config = BertConfig.from_dict(json.load(f))
    elif source in PRESETS:
        config = BertConfig.from_preset(source)
    else:
        raise ValueError(
            f"--student {source!r} is neither a checkpoint directory, a "
            f"config .json, 'random' nor a preset ({', '.join(sorted(PRESETS))}).")
    config = config.replace(vocab_size=teacher_config.vocab_size,
                            type_vocab_size=teacher_config.type_vocab_size)
    tokenizer.check_model(config)
    _check_heads(config, teacher_config, source, args)
    student = BertClassifier(BertBackbone(config, name="bert"),
                             task.num_labels, head=args.head,
                             label_names=task.label_names or None,
                             pooling=args.pooling)
    student(dummy_inputs())
    return student, None, f"random {source}"


def _check_heads(student_config, teacher_config, source, args):
    if args.intermediate_epochs and student_config.num_heads != teacher_config.num_heads:
        raise ValueError(
            f"Student {source} has {student_config.num_heads} attention heads"
            f" and the teacher {teacher_config.num_heads}: the attention loss "
            "of step 1 compares them head by head (or pass "
            "--intermediate-epochs 0).")


# ------------------------------------------------------------------ augmentation

def augment_train(args, task, sequence_length):
    """The augmented train split and what augmentation did (for the report)."""
    import numpy as np
    from tinybert_tf import augment
    from tinybert_tf.tasks import Split
    fields = dict(replace_prob=args.aug_p, top_k=args.aug_k, seed=args.seed,
                  progress=not args.quiet)
    if args.aug_n is not None:
        config = augment.AugmentConfig(num_samples=args.aug_n, **fields)
    else:
        try:
            config = augment.AugmentConfig.for_task(task.name, **fields)
        except ValueError:  # not a GLUE task: the paper's default N
            config = augment.AugmentConfig(**fields)
    train = task.train
    # Words past the sequence length are cut by the tokenizer anyway (a word
    # is at least one word-piece): do not spend augmentation on them.
    text_a = [_first_words(t, sequence_length) for t in train.text_a]
    text_b = (None if train.text_b is None
              else [_first_words(t, sequence_length) for t in train.text_b])
    data = augment.augment_dataset(
        text_a, text_b, train.labels, config, mlm=args.aug_mlm,
        glove=args.aug_glove,
        cache_dir=args.aug_cache_dir or augment.default_cache_dir())
    augmented = Split(data.text_a, data.text_b,
                      np.asarray(data.labels, dtype=train.labels.dtype))
    info = {"enabled": True, "original_examples": len(train),
            "augmented_examples": len(augmented),
            "samples_per_example": config.num_samples,
            "replace_prob": config.replace_prob, "top_k": config.top_k,
            "masked_lm": args.aug_mlm,
            "glove": args.aug_glove or "GloVe 6B 50d (offline package)",
            "counts": data.counts}
    return augmented, info


def _first_words(text, count):
    words = text.split()
    return text if len(words) <= count else " ".join(words[:count])


# ------------------------------------------------------------------ run

class Stopwatch:
    """Wall time per named stage."""

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

    def report(self):
        return {**self.seconds, "total": round(time.time() - self.started, 2)}


def step_log(args, stage):
    """A new OUTPUT/logs/STAGE.csv of the stage's losses every 5 steps."""
    from tinybert_tf.callbacks import StepLog
    path = os.path.join(args.output_dir, "logs", f"{stage}.csv")
    if os.path.exists(path):
        os.remove(path)
    return StepLog(path, every=5)


def choose_teacher(args, paths):
    """(source, status): given, reused from OUTPUT/teacher, or to fine-tune."""
    from tinybert_tf import assets
    if args.fine_tuned_teacher:
        return args.fine_tuned_teacher, "given"
    if os.path.isdir(paths["teacher"]) and not args.retrain_teacher:
        return paths["teacher"], "reused"
    return args.teacher or assets.minilm_dir(), "fine-tuned"


def load_fine_tuned_teacher(ckpt, task):
    from tinybert_tf import checkpoint
    if "classifier.weight" not in ckpt.weights:
        raise ValueError(f"{ckpt.source} has no classifier head: it is not a "
                         "fine-tuned teacher (give a pre-trained one with "
                         "--teacher instead).")
    teacher = checkpoint.load_classifier(ckpt)
    check_teacher_for_task(teacher, task, ckpt.source)
    return teacher


class TaskInputs:
    """The tf.data pipelines of a task and the scores of a model on them."""

    def __init__(self, task, tokenizer, batch_size, seed):
        from tinybert_tf import training
        self.training = training
        self.tokenizer, self.batch_size, self.seed = tokenizer, batch_size, seed
        self.metric_names = task.metrics
        self.splits = {"dev": task.dev, **task.extra_dev}
        if task.test is not None:
            self.splits["test"] = task.test
        self.eval = {name: self.make(split)
                     for name, split in self.splits.items()}
        self.train = self.make(task.train, shuffle=True)
        self.dev_labels = task.dev.labels

    def make(self, split, shuffle=False):
        batch = self.batch_size if shuffle else 2 * self.batch_size
        return self.training.make_dataset(split, self.tokenizer, batch,
                                          shuffle=shuffle, seed=self.seed)

    def scores(self, model):
        """{split: {metric: value}} on dev (+ extra dev) and test."""
        return {name: self.training.evaluate(model, self.eval[name],
                                             split.labels, self.metric_names)
                for name, split in self.splits.items()}

    def best_on_dev(self, model, every_steps, verbose, name):
        return self.training.BestOnDev(model, self.eval["dev"], self.dev_labels,
                                       self.metric_names, every_steps,
                                       verbose=verbose, name=name)


def fine_tune_teacher(args, ckpt, task, inputs, directory, say):
    """The pre-trained `ckpt` fine-tuned on the labels, saved to `directory`."""
    from tinybert_tf import checkpoint
    from tinybert_tf import training
    teacher = checkpoint.load_classifier(
        ckpt, num_labels=task.num_labels,
        label_names=task.label_names or None, head=args.head)
    say(f"Fine-tuning the teacher {ckpt.source} ({teacher.count_params():,} "
        f"parameters) for {args.teacher_epochs} epochs, lr {args.teacher_lr}.")
    best = training.fine_tune(
        teacher, inputs.train, inputs.eval["dev"], inputs.dev_labels,
        task.metrics, args.teacher_epochs, args.teacher_lr, args.warmup,
        args.weight_decay, args.clip_norm, args.eval_every,
        verbose=not args.quiet, name="teacher dev",
        callbacks=[step_log(args, "teacher")])
    checkpoint.save(
        teacher, directory, inputs.tokenizer.vocabulary,
        extras={"stage": "task-teacher", "task": task.name,
                "pretrained": str(ckpt.source),
                "sequence_length": inputs.tokenizer.sequence_length,
                "best_step": best.best_step, "dev": best.best_metrics},
        overwrite=args.retrain_teacher)
    say(f"Teacher saved to {directory}.")
    return teacher


def intermediate_step(args, teacher, student, student_ckpt, mapping,
                      loss_weights, data, say):
    """Step 1: embedding + attention + hidden losses, constant lr.

    Returns (projection tensors to save with the student, final losses).
    """
    from tinybert_tf import training
    from tinybert_tf.distiller import Distiller
    from tinybert_tf.losses import AttentionLoss, HiddenStateLoss
    distiller = Distiller(
        teacher, student, mapping=mapping, stage="intermediate",
        projection=args.projection, loss_weights=loss_weights,
        attention_loss=AttentionLoss(args.attention_loss),
        hidden_loss=HiddenStateLoss(args.hidden_loss))
    reused = student_ckpt is not None and distiller.load_projections(student_ckpt)
    say(distiller.describe())
    say(f"Step 1 (intermediate layers): {args.intermediate_epochs} epochs, "
        f"constant lr {args.intermediate_lr}"
        f"{', projections reused' if reused else ''}.")
    history = training.distill(
        distiller, data, args.intermediate_epochs, args.intermediate_lr,
        warmup_fraction=0.0, decay=False, weight_decay=args.weight_decay,
        clip_norm=args.clip_norm, callbacks=[step_log(args, "intermediate")],
        verbose=not args.quiet)
    return (distiller.projection_weights(),
            {k: float(v[-1]) for k, v in history.history.items()})


def prediction_step(args, teacher, student, mapping, data, inputs, say):
    """Step 2: prediction-layer loss, warm-up + decay, best on dev kept."""
    from tinybert_tf import training
    from tinybert_tf.distiller import Distiller
    from tinybert_tf.losses import PredictionLoss
    distiller = Distiller(
        teacher, student, mapping=mapping, stage="prediction",
        prediction_loss=PredictionLoss(args.temperature,
                                       args.prediction_reduction))
    every = (f"every {args.eval_every} steps" if args.eval_every
             else "after each epoch")
    say(f"Step 2 (prediction layer): {args.prediction_epochs} epochs, lr "
        f"{args.prediction_lr}, warm-up {args.warmup}, dev {every}.")
    best = inputs.best_on_dev(student, args.eval_every, not args.quiet,
                              "student dev")
    training.distill(distiller, data, args.prediction_epochs,
                     args.prediction_lr, warmup_fraction=args.warmup,
                     weight_decay=args.weight_decay, clip_norm=args.clip_norm,
                     callbacks=[best, step_log(args, "prediction")],
                     verbose=not args.quiet)
    return best


def fine_tune_baseline(args, student, initial_weights, description, task,
                       inputs, train, say):
    """The student's architecture and initial weights, trained on the labels
    of `train` (the data the student was distilled on)."""
    from tinybert_tf import training
    from tinybert_tf.heads import clone_classifier
    direct = clone_classifier(student, initial_weights)
    data = "augmented" if args.augment else "original"
    say(f"Baseline: the same student ({description}) trained on the labels of "
        f"the {data} train data, {args.baseline_epochs} epochs, lr "
        f"{args.baseline_lr}.")
    best = training.fine_tune(
        direct, train, inputs.eval["dev"], inputs.dev_labels,
        task.metrics, args.baseline_epochs, args.baseline_lr, args.warmup,
        args.weight_decay, args.clip_norm, args.eval_every,
        verbose=not args.quiet, name="baseline dev",
        callbacks=[step_log(args, "baseline")])
    return {"scores": inputs.scores(direct), "best_step": best.best_step,
            "train_data": data, "epochs": args.baseline_epochs}


def run(args):
    import keras

    from tinybert_tf import checkpoint
    from tinybert_tf.distribute import make_strategy, set_precision
    from tinybert_tf.metrics import primary_metric
    from tinybert_tf.tokenizer import BertTextTokenizer
    from trainers.general import loss_weights_from_args, mapping_from_args

    paths = check_output(args)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    keras.utils.set_random_seed(args.seed)
    set_precision(args.precision)
    strategy = make_strategy(args.strategy)
    clock = Stopwatch()

    with clock.stage("data"):
        task = load_task_data(args)
    length = args.sequence_length or default_sequence_length(task, args.recipe)
    primary = primary_metric(task.metrics)
    say(f"Task {task.name}: {len(task.train)} train, {len(task.dev)} dev, "
        f"{'no' if task.test is None else len(task.test)} test examples; "
        f"labels {task.label_names or 'regression'}; metric {primary}; "
        f"sequence length {length}.")

    teacher_source, teacher_status = choose_teacher(args, paths)
    if teacher_status == "reused":
        say(f"Reusing the fine-tuned teacher in {paths['teacher']} (pass "
            "--retrain-teacher --overwrite to fine-tune it again).")
    teacher_ckpt = checkpoint.read(teacher_source)
    if teacher_ckpt.vocab_file is None:
        raise FileNotFoundError(f"Teacher {teacher_source} has no vocab.txt.")
    tokenizer = BertTextTokenizer(teacher_ckpt.vocab_file, length)
    tokenizer.check_model(teacher_ckpt.config)

    with strategy.scope():
        # Everything is checked before the first training step.
        student, student_ckpt, student_desc = make_student(
            args, teacher_ckpt.config, tokenizer, task)
        initial_weights = student.get_weights()
        mapping = mapping_from_args(args, student.config.num_layers,
                           teacher_ckpt.config.num_layers)
        loss_weights = loss_weights_from_args(args)
        teacher = None
        if teacher_status != "fine-tuned":
            teacher = load_fine_tuned_teacher(teacher_ckpt, task)
        inputs = TaskInputs(task, tokenizer, args.batch_size, args.seed)

        with clock.stage("teacher"):
            if teacher is None:
                teacher = fine_tune_teacher(args, teacher_ckpt, task, inputs,
                                            paths["teacher"], say)
        with clock.stage("teacher_eval"):
            teacher_scores = inputs.scores(teacher)
        say(f"Teacher: {_summary(teacher_scores, primary)}")
        say(f"Student ({student_desc}): {student.count_params():,} parameters"
            f" ({student.count_params() / teacher.count_params():.1%} of the "
            "teacher).")

        augmentation = {"enabled": False, "original_examples": len(task.train),
                        "augmented_examples": len(task.train)}
        distill_data = inputs.train
        if args.augment:
            with clock.stage("augmentation"):
                augmented, augmentation = augment_train(args, task, length)
                distill_data = inputs.make(augmented, shuffle=True)
            say(f"Augmentation: {augmentation['original_examples']} -> "
                f"{augmentation['augmented_examples']} train examples.")

        # A general-distilled student's projections are kept if step 1 is
        # skipped, replaced by step 1's otherwise.
        projections = intermediate_losses = None
        if student_ckpt is not None:
            projections = {k: v for k, v in student_ckpt.weights.items()
                           if k.startswith("fit_dense")} or None
        if args.intermediate_epochs:
            with clock.stage("intermediate"):
                projections, intermediate_losses = intermediate_step(
                    args, teacher, student, student_ckpt, mapping,
                    loss_weights, distill_data, say)
        with clock.stage("prediction"):
            best_student = prediction_step(args, teacher, student, mapping,
                                           distill_data, inputs, say)
        with clock.stage("student_eval"):
            student_scores = inputs.scores(student)
        say(f"Student: {_summary(student_scores, primary)}")
        checkpoint.save(
            student, paths["student"], tokenizer.vocabulary,
            extra_weights=projections,
            extras={"stage": "task", "task": task.name,
                    "teacher": str(teacher_source), "student_init": student_desc,
                    "sequence_length": length, "metrics": list(task.metrics),
                    "best_step": best_student.best_step},
            overwrite=args.overwrite)
        say(f"Student saved to {paths['student']}.")

        baseline = None
        if args.baseline:
            with clock.stage("baseline"):
                baseline = fine_tune_baseline(args, student, initial_weights,
                                              student_desc, task, inputs,
                                              distill_data, say)
            say(f"Baseline: {_summary(baseline['scores'], primary)}")

    report = build_report(args, task, length, primary, teacher, teacher_source,
                          teacher_status, teacher_scores, student,
                          student_desc, student_scores, best_student,
                          intermediate_losses, augmentation, baseline, clock,
                          paths)
    write_json(paths["report.json"], report)
    say(_retention_line(report))
    say(f"Report: {paths['report.json']}")
    return 0


def _summary(scores, primary):
    return ", ".join(f"{name} {primary} {values[primary]:.4f}"
                     for name, values in scores.items())


def _ratio(numerator, denominator):
    if denominator == 0 or not math.isfinite(denominator):
        return None
    return numerator / denominator


def build_report(args, task, length, primary, teacher, teacher_source,
                 teacher_status, teacher_scores, student, student_desc,
                 student_scores, best_student, intermediate_losses,
                 augmentation, baseline, clock, paths):
    teacher_params, student_params = teacher.count_params(), student.count_params()
    retention = {name: _ratio(student_scores[name][primary],
                              teacher_scores[name][primary])
                 for name in student_scores}
    report = {
        "task": task.name,
        "label_names": task.label_names,
        "is_regression": task.is_regression,
        "metrics": list(task.metrics),
        "primary_metric": primary,
        "sequence_length": length,
        "examples": {"train": len(task.train), "dev": len(task.dev),
                     "test": None if task.test is None else len(task.test),
                     **{k: len(v) for k, v in task.extra_dev.items()}},
        "teacher": {"source": str(teacher_source), "status": teacher_status,
                    "checkpoint": (paths["teacher"]
                                   if teacher_status != "given"
                                   else str(teacher_source)),
                    "parameters": teacher_params,
                    "config": teacher.config.to_dict(),
                    **teacher_scores},
        "student": {"init": student_desc, "checkpoint": paths["student"],
                    "parameters": student_params,
                    "config": student.config.to_dict(),
                    "best_dev_step": best_student.best_step,
                    "dev_history": best_student.history,
                    "intermediate_final_losses": intermediate_losses,
                    **student_scores},
        "retention": retention,
        "parameter_ratio": student_params / teacher_params,
        "augmentation": augmentation,
        "baseline": None,
        "wall_time_s": clock.report(),
        "arguments": vars(args),
    }
    if baseline is not None:
        report["baseline"] = {
            "init": student_desc, "parameters": student_params,
            "train_data": baseline["train_data"], "epochs": baseline["epochs"],
            "best_dev_step": baseline["best_step"], **baseline["scores"],
            "retention": {name: _ratio(values[primary],
                                       teacher_scores[name][primary])
                          for name, values in baseline["scores"].items()},
        }
        report["distillation_gain"] = {
            name: student_scores[name][primary] - values[primary]
            for name, values in baseline["scores"].items()}
    return report


def _retention_line(report):
    primary = report["primary_metric"]
    split = "test" if "test" in report["retention"] else "dev"
    retention = report["retention"][split]
    line = (f"{split} {primary}: teacher {report['teacher'][split][primary]:.4f}"
            f", student {report['student'][split][primary]:.4f} (retention "
            f"{'n/a' if retention is None else f'{retention:.1%}'}, "
            f"{report['parameter_ratio']:.1%} of the parameters)")
    if report["baseline"]:
        line += f", baseline {report['baseline'][split][primary]:.4f}"
    return line


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, FileExistsError, OSError,
            ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
