"""TinyBERT task-specific distillation, step by step, from Python.

- `TaskDistillationConfig`: the hyperparameters (`RECIPES`: the "fast"
  embedded default and the paper's values; `QUICK`: a few-minute run).
- `TaskInputs`: a task's tf.data pipelines and the scores of a model on them.
- `TaskDistillation(teacher, student, inputs, config, options)`: teacher
  fine-tuning, step 1 (embedding + attention + hidden losses, constant
  learning rate), step 2 (prediction layer, warm-up + decay, best on dev
  kept) and the baseline (the same student trained on the labels).
- `augment_train`: TinyBERT data augmentation of the train split.
- `TaskRun` and `task_report`: what a run did, as the dict of report.json.

`python -m trainers.task` is these pieces behind a command line.

Example (tiny random models; see README.md for a longer one):
>>> import numpy as np
>>> from tinybert_tf import BertBackbone, BertClassifier, BertConfig
>>> from tinybert_tf.tasks import Split, TaskData
>>> from tinybert_tf.tokenizer import BertTextTokenizer
>>> from tinybert_tf import task_distillation as td
>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
>>> split = Split(["good", "bad", "good good", "bad bad"], None,
...               np.array([1, 0, 1, 0]))
>>> task = TaskData("toy", split, split, None, ["neg", "pos"], False,
...                 ("accuracy",))
>>> inputs = td.TaskInputs(task, BertTextTokenizer(vocab, 8), batch_size=2)
>>> def model(layers):
...     return BertClassifier(BertBackbone(BertConfig(vocab_size=7,
...         hidden_size=8, num_layers=layers, num_heads=2,
...         intermediate_size=16), name="bert"), num_labels=2)
>>> run = td.TaskDistillation(model(2), model(1), inputs, td.TaskDistillationConfig(
...     teacher_epochs=1, intermediate_epochs=1, prediction_epochs=1,
...     eval_every=0))
>>> best = run.fine_tune_teacher()
>>> projections, losses, reused = run.intermediate_step()
>>> best = run.prediction_step()
>>> sorted(inputs.scores(run.student)["dev"])
['accuracy']
"""

import dataclasses
import math
import os
import shutil

# Hyperparameters of each recipe (of `TaskDistillationConfig` and of the
# trainers.task command line).
# "paper": the values of the paper / official code (REFERENCE.md §1).
# "fast": the embedded default, sized for a CPU run of about 40 minutes on
# BBC News with a student that starts from random weights. Its learning rates
# are 20-30x the paper's: at 2e-4 a few hundred steps of step 1 leave the
# student's hidden states at the teacher's mean (docs/demo.md).
# "paper" also turns on every behaviour of the official code
# (docs/fidelity.md): BertAdam, per-tensor clipping, the teacher with
# dropout, the last partial batch dropped.
RECIPES = {
    "fast": dict(
        batch_size=32, teacher_epochs=3, teacher_lr=1e-4,
        intermediate_epochs=2, intermediate_lr=1e-3,
        prediction_epochs=3, prediction_lr=1e-3,
        baseline_epochs=None, baseline_lr=1e-3,
        warmup=0.1, eval_every=100, augment=True, aug_n=None, pooling="mean",
        optimizer="adamw", clip_mode="global", teacher_dropout=False,
        drop_remainder=False, bucketing=True),
    "paper": dict(
        batch_size=32, teacher_epochs=3, teacher_lr=2e-5,
        intermediate_epochs=10, intermediate_lr=5e-5,
        prediction_epochs=3, prediction_lr=3e-5,
        baseline_epochs=None, baseline_lr=5e-5,
        warmup=0.1, eval_every=50, augment=True, aug_n=None, pooling="cls",
        optimizer="bertadam", clip_mode="per_tensor", teacher_dropout=True,
        drop_remainder=True, bucketing=False),
}
# The bugs are the official code's only (the paper's method learns the
# teacher's logits): "official" is "paper" with them, to compare against it.
RECIPES["fast"].update(regression_target="teacher", label_mapping="names")
RECIPES["paper"].update(regression_target="teacher", label_mapping="names")
RECIPES["official"] = dict(RECIPES["paper"], regression_target="labels",
                           label_mapping="index")
# A few minutes on a CPU: the whole train split at 40 word-pieces, 2
# augmented copies per text, a teacher fine-tuned at a higher rate, two
# epochs of step 1 and three of step 2 (README.md: what it leaves out).
QUICK = dict(sequence_length=40, teacher_epochs=2, teacher_lr=5e-4,
             intermediate_epochs=2, prediction_epochs=3, eval_every=0, aug_n=2)
# Single-sentence GLUE tasks (64 word-pieces in both recipes).
SHORT_TASKS = ("cola", "sst2")
# The fast recipe's settings that follow the text length (for the flags left
# unset; docs/demo.md has the runs). Texts of at most SHORT_TEXT word-pieces:
# the official N of single sentences (SST-2's 20) and one epoch of each step
# (an epoch is then 21 passes over the train texts; on BBC News titles 1 + 1
# epochs scored within the seeds' noise of 2 + 3, -0.6 +- 2.5 points over 3
# seeds, in 45 % of the time). Longer texts: N = 4 (4 copies of 128-word-piece
# articles cost as much as 20 of 26-word-piece sentences) and RECIPES["fast"]'s
# 2 + 3 epochs.
SHORT_TEXT = 64
LENGTH_SETTINGS = {
    "short": dict(aug_n=20, intermediate_epochs=1, prediction_epochs=1),
    "long": dict(aug_n=4, **{k: RECIPES["fast"][k] for k in (
        "intermediate_epochs", "prediction_epochs")})}


def fast_length_settings(sequence_length):
    """The fast recipe's `LENGTH_SETTINGS` for `sequence_length` word-pieces."""
    return LENGTH_SETTINGS["short" if sequence_length <= SHORT_TEXT else "long"]


def default_sequence_length(task, recipe="fast"):
    """The longest sequence of a recipe (`automatic_sequence_length` may
    choose a shorter one). Paper: 64 for one text, 128 for pairs. Fast: 64
    only for the short GLUE sentences (BBC News articles are long)."""
    if task.is_pair:
        return 128
    if recipe == "paper" or task.name in SHORT_TASKS:
        return 64
    return 128


def automatic_sequence_length(split, tokenizer, cap, fraction=0.99,
                              multiple=16):
    """The sequence length that holds `fraction` of `split`'s examples
    whole (word-pieces, [CLS] and [SEP]s included), rounded up to a
    `multiple`, at most `cap`; returns (length, the untruncated length at
    `fraction`)."""
    import numpy as np
    needed = int(np.ceil(np.quantile(
        tokenizer.lengths(split.text_a, split.text_b), fraction)))
    return min(cap, -(-needed // multiple) * multiple), needed


def fit_sequence_length(split, tokenizer, given=None):
    """(the tokenizer of the run, how its length was chosen): `given`, or
    the `automatic_sequence_length` of `split`, at most the tokenizer's."""
    if given:
        return tokenizer, "--sequence-length"
    length, needed = automatic_sequence_length(split, tokenizer,
                                               tokenizer.sequence_length)
    return (tokenizer.with_sequence_length(length),
            f"automatic: 99 % of the train texts need <= {needed}")


@dataclasses.dataclass(frozen=True)
class TaskDistillationConfig:
    """The hyperparameters of the four trainings (defaults: "fast" recipe).

    `*_epochs`, `*_lr`: teacher fine-tuning, step 1 (intermediate; 0 epochs
    skips it), step 2 (prediction) and the baseline (None: as many epochs as
    steps 1 and 2 together). `warmup`: fraction of the steps of the teacher,
    step 2 and the baseline. `eval_every`: dev evaluation every N steps (0:
    after each epoch). `optimizer`, `weight_decay`, `clip_norm`, `clip_mode`:
    of every training (`tinybert_tf.optimizers`). `intermediate_stage`:
    "intermediate" (the paper's step 1) or "all" (step 1 also trains the
    prediction layer, weighted by `LossWeights.prediction`).
    """

    batch_size: int = 32
    teacher_epochs: int = 3
    teacher_lr: float = 1e-4
    intermediate_epochs: int = 2
    intermediate_lr: float = 1e-3
    prediction_epochs: int = 3
    prediction_lr: float = 1e-3
    baseline_epochs: int | None = None
    baseline_lr: float = 1e-3
    warmup: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    clip_mode: str = "global"
    optimizer: str = "adamw"
    eval_every: int = 100
    intermediate_stage: str = "intermediate"
    seed: int = 0

    def train_options(self, epochs, learning_rate, warmup=None, decay=True):
        """The `training.TrainOptions` of one training of this config."""
        from tinybert_tf.training import TrainOptions
        return TrainOptions(
            epochs, learning_rate,
            self.warmup if warmup is None else warmup, decay, self.optimizer,
            self.weight_decay, self.clip_norm, self.clip_mode)

    @classmethod
    def from_mapping(cls, values):
        """The fields named in `values` (a recipe, parsed arguments)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(values).items()
                      if k in names and v is not None})

    @classmethod
    def recipe(cls, name="fast", quick=False, **overrides):
        """A recipe of `RECIPES`, with `QUICK` on top, then `overrides`."""
        return cls.from_mapping({**RECIPES[name], **(QUICK if quick else {}),
                                 **overrides})

    @property
    def baseline_epochs_or_default(self):
        if self.baseline_epochs is not None:
            return self.baseline_epochs
        return max(1, self.intermediate_epochs + self.prediction_epochs)


class TaskInputs:
    """The tf.data pipelines of a task and the scores of a model on them.

    Every metric of the task is reported (`task.reported_metrics`); dev
    selection uses `task.select_metric`. `drop_remainder` drops the last
    partial batch of the training pipelines (the official loops skip it).
    `bucketing`: batches of similar lengths, padded to their longest
    (`training.make_dataset`).
    """

    def __init__(self, task, tokenizer, batch_size=32, seed=0,
                 drop_remainder=False, bucketing=False):
        from tinybert_tf import training
        self.training = training
        self.tokenizer, self.batch_size, self.seed = tokenizer, batch_size, seed
        self.drop_remainder, self.bucketing = drop_remainder, bucketing
        self.metric_names = task.reported_metrics
        self.select_metric = task.select_metric
        self.splits = {"dev": task.dev, **task.extra_dev}
        if task.test is not None:
            self.splits["test"] = task.test
        self.eval = {name: self.make(split)
                     for name, split in self.splits.items()}
        self.train = task.train
        self.dev = training.DevSet(self.eval["dev"], task.dev.labels,
                                   self.metric_names, self.select_metric)

    def make(self, split, shuffle=False, targets=None):
        """A new pipeline of `split`: shuffled train batches, or unshuffled
        evaluation batches twice as large; `targets`, one row per example,
        come with each batch. Each training makes its own, so its batches do
        not depend on the trainings before it."""
        batch = self.batch_size if shuffle else 2 * self.batch_size
        return self.training.make_dataset(
            split, self.tokenizer, batch, shuffle=shuffle, seed=self.seed,
            drop_remainder=shuffle and self.drop_remainder,
            bucketing=self.bucketing, targets=targets)

    def scores(self, model, logits=None):
        """{split: {metric: value}} on dev (+ extra dev) and test; with
        `logits` (a `teacher_outputs.TeacherLogits` of `model`), from them."""
        from tinybert_tf import metrics
        def outputs(name, split):
            if logits is not None:
                return logits.logits(split)
            return self.training.predict(model, self.eval[name])
        return {name: metrics.compute_metrics(
                    self.metric_names, outputs(name, split), split.labels)
                for name, split in self.splits.items()}

    def best_on_dev(self, model, every_steps, verbose, name):
        return self.training.BestOnDev(model, self.dev, every_steps,
                                       verbose=verbose, name=name)


@dataclasses.dataclass(frozen=True)
class SavedBest:
    """What a report needs of a step-2 `BestOnDev`."""

    best_step: int
    best_metrics: dict
    history: list

    @classmethod
    def of(cls, best):
        return cls(best.best_step, best.best_metrics, best.history)


@dataclasses.dataclass(frozen=True)
class BaselineResult:
    scores: dict
    best_step: int
    train_data: str
    epochs: int


class TaskDistillation:
    """The trainings of task distillation on one teacher/student pair.

    Args:
        teacher, student: `BertClassifier`s (same vocabulary; for step 1 the
            same number of attention heads).
        inputs: `TaskInputs` of the task.
        config: `TaskDistillationConfig`.
        options: `DistillationOptions` (mapping, projection, losses;
            default: its defaults).
        log_dir: where each training writes STAGE.csv, its losses every 5
            steps (None: no logs).
        say: called with a line of progress (None: silent, and Keras quiet).
        stage_dir: where each finished step saves its result (None: not
            saved). A step whose result is there is not trained again but
            loaded: a run interrupted in a step repeats only that step.
        write: whether to save there (False on a worker that is not the
            chief; it still loads).
        teacher_logits: a `teacher_outputs.TeacherLogits` of the teacher:
            step 2 and the teacher's scores use the logits it computes once
            (step 2 runs the student alone). None: the teacher runs at every
            step 2 step. Not with a teacher that trains with dropout.

    Each training's training data is a `Split` (default: the task's train
    split). Every step starts from a known random state (its dropout seeds
    and Keras's seed set from the inputs' seed and the step), so a step
    repeated after an interruption gives the same student.

    The step-1 `Distiller` is built here, so a pair that cannot be distilled
    fails before any training.
    """

    STEPS = ("teacher", "intermediate", "prediction", "baseline")

    def __init__(self, teacher, student, inputs, config=TaskDistillationConfig(),
                 options=None, log_dir=None, say=None, stage_dir=None,
                 write=True, teacher_logits=None):
        if options is None:
            # Here, not at import: the module's RECIPES serve `--help`.
            from tinybert_tf.distillation_options import DistillationOptions
            options = DistillationOptions()
        if teacher_logits is not None and options.teacher_training:
            raise ValueError("A teacher that runs with dropout has other "
                             "logits at every step: they cannot be computed "
                             "once (teacher_logits).")
        self.teacher_logits = teacher_logits
        self.teacher, self.student, self.inputs = teacher, student, inputs
        self.config, self.options, self.log_dir = config, options, log_dir
        self.stage_dir, self.write = stage_dir, write
        self.say = say or (lambda *a: None)
        self.verbose = say is not None
        self.initial_weights = student.get_weights()
        self.mapping = options.mapping(student.config.num_layers,
                                       teacher.config.num_layers)
        self.intermediate = None
        if config.intermediate_epochs:
            # Built before the Distiller freezes the teacher: a layer built
            # frozen keeps frozen variables, and the teacher is fine-tuned.
            from tinybert_tf.backbone import dummy_inputs
            teacher(dummy_inputs())
            self.intermediate = options.distiller(teacher, student,
                                                  config.intermediate_stage)

    def callbacks(self, stage):
        """The non-finite guard (`callbacks.guarded`) and, with a log_dir
        and `write`, a new LOG_DIR/STAGE.csv of the losses every 5 steps."""
        from tinybert_tf.callbacks import StepLog, guarded
        found = guarded(stage)
        if self.log_dir is None or not self.write:
            return found
        path = os.path.join(self.log_dir, f"{stage}.csv")
        if os.path.exists(path):
            os.remove(path)
        return [*found, StepLog(path, every=5)]

    def _begin(self, step, *models):
        from tinybert_tf.resume import reseed
        reseed([self.teacher, self.student, *models],
               self.inputs.seed + self.STEPS.index(step))

    def _saved(self, step):
        """The saved result of `step`, or None."""
        from tinybert_tf import checkpoint, files
        if self.stage_dir is None:
            return None
        path = os.path.join(self.stage_dir, step)
        if os.path.isfile(path + ".json"):
            return files.read_json(path + ".json")
        if os.path.isdir(path):
            saved = checkpoint.read(path)
            checkpoint.assign(self.student, saved)
            self.say(f"{step}: its result is loaded from {path} (an "
                     "interrupted run).")
            return saved
        return None

    def _save(self, step, extras, projections=None, model=True):
        from tinybert_tf import checkpoint, files
        if self.stage_dir is None or not self.write:
            return
        path = os.path.join(self.stage_dir, step)
        if model:
            checkpoint.save(self.student, path, self.inputs.tokenizer.vocabulary,
                            extra_weights=projections, extras=extras,
                            overwrite=True)
        else:
            files.write_json(path + ".json", extras)

    def finished(self):
        """Removes the saved step results (the run is complete)."""
        if self.stage_dir is not None and self.write:
            shutil.rmtree(self.stage_dir, ignore_errors=True)

    def _fine_tune(self, model, split, epochs, learning_rate, name):
        data = self.inputs.make(split, shuffle=True)
        return self.inputs.training.fine_tune(
            model, data, self.inputs.dev,
            self.config.train_options(epochs, learning_rate),
            self.config.eval_every, verbose=self.verbose, name=f"{name} dev",
            callbacks=self.callbacks(name))

    def fine_tune_teacher(self):
        """The teacher fine-tuned on the labels (AdamW, warm-up + linear
        decay), best on dev kept; returns the `BestOnDev`."""
        c = self.config
        self.say(f"Fine-tuning the teacher ({self.teacher.count_params():,} "
                 f"parameters) for {c.teacher_epochs} epochs, lr "
                 f"{c.teacher_lr}.")
        self._begin("teacher")
        frozen = self.teacher.trainable  # a Distiller froze it
        self.teacher.trainable = True
        try:
            return self._fine_tune(self.teacher, self.inputs.train,
                                   c.teacher_epochs, c.teacher_lr, "teacher")
        finally:
            self.teacher.trainable = frozen

    def intermediate_step(self, data=None, projections_from=None):
        """Step 1 on `data` (a `Split`; default: the task's train split).

        `projections_from`, a student `Checkpoint`, gives projections to
        start from. Returns (projection tensors to save with the student,
        final losses, whether projections were reused).
        """
        c = self.config
        if self.intermediate is None:
            raise ValueError("intermediate_epochs is 0: step 1 is skipped.")
        distiller = self.intermediate
        saved = self._saved("intermediate")
        if saved is not None:
            distiller.load_projections(saved)
            return (distiller.projection_weights(), saved.extras["losses"],
                    saved.extras["projections_reused"])
        self._begin("intermediate")
        reused = (projections_from is not None
                  and distiller.load_projections(projections_from))
        self.say(distiller.describe())
        self.say(f"Step 1 (intermediate layers): {c.intermediate_epochs} "
                 f"epochs, constant lr {c.intermediate_lr}"
                 f"{', projections reused' if reused else ''}.")
        history = self.inputs.training.distill(
            distiller, self._pipeline(data),
            c.train_options(c.intermediate_epochs, c.intermediate_lr,
                            warmup=0.0, decay=False),
            callbacks=self.callbacks("intermediate"), verbose=self.verbose)
        losses = {k: float(v[-1]) for k, v in history.history.items()}
        projections = distiller.projection_weights()
        self._save("intermediate", {"losses": losses,
                                    "projections_reused": bool(reused)},
                   projections)
        return projections, losses, reused

    def _pipeline(self, data):
        return self.inputs.make(self.inputs.train if data is None else data,
                                shuffle=True)

    def teacher_scores(self):
        """The teacher's scores on dev (+ extra dev) and test."""
        return self.inputs.scores(self.teacher, self.teacher_logits)

    def prediction_step(self, data=None):
        """Step 2 on `data` (a `Split`; default: the task's train split);
        the student ends with its best weights on dev. Returns the
        `BestOnDev` (or a `SavedBest` when its result was saved)."""
        c = self.config
        saved = self._saved("prediction")
        if saved is not None:
            return SavedBest(**saved.extras["best"])
        self._begin("prediction")
        distiller = self.options.distiller(self.teacher, self.student,
                                           "prediction")
        every = (f"every {c.eval_every} steps" if c.eval_every
                 else "after each epoch")
        self.say(f"Step 2 (prediction layer): {c.prediction_epochs} epochs, "
                 f"lr {c.prediction_lr}, warm-up {c.warmup}, dev {every}"
                 f"{self._teacher_logits_line()}.")
        data = self.inputs.train if data is None else data
        targets = (None if self.teacher_logits is None
                   else self.teacher_logits.logits(data))
        best = self.inputs.best_on_dev(self.student, c.eval_every,
                                       self.verbose, "student dev")
        self.inputs.training.distill(
            distiller, self.inputs.make(data, shuffle=True, targets=targets),
            c.train_options(c.prediction_epochs, c.prediction_lr),
            callbacks=[best, *self.callbacks("prediction")],
            verbose=self.verbose)
        self._save("prediction", {"best": dataclasses.asdict(SavedBest.of(best))})
        return best

    def _teacher_logits_line(self):
        if self.teacher_logits is None:
            return ("; the teacher runs at every step" + (
                " (with dropout: its logits change)"
                if self.options.teacher_training else ""))
        where = self.teacher_logits.cache_dir
        return ("; the student alone, on the teacher's logits computed once"
                + (f" (cached in {where})" if where else ""))

    def baseline(self, data=None, data_name="original"):
        """The student's architecture and initial weights trained on the
        labels of `data` (the data it was distilled on); a `BaselineResult`."""
        from tinybert_tf.heads import clone_classifier
        c = self.config
        epochs = c.baseline_epochs_or_default
        saved = self._saved("baseline")
        if saved is not None:
            return BaselineResult(**saved)
        direct = clone_classifier(self.student, self.initial_weights)
        self._begin("baseline", direct)
        self.say(f"Baseline: the same student trained on the labels of the "
                 f"{data_name} train data, {epochs} epochs, lr "
                 f"{c.baseline_lr}.")
        best = self._fine_tune(direct, self.inputs.train if data is None
                               else data, epochs, c.baseline_lr, "baseline")
        result = BaselineResult(self.inputs.scores(direct), best.best_step,
                                data_name, epochs)
        self._save("baseline", dataclasses.asdict(result), model=False)
        return result


# ------------------------------------------------------------ augmentation

@dataclasses.dataclass(frozen=True)
class AugmentOptions:
    """`tinybert_tf.augment` settings; `num_samples` None: the official N of
    a GLUE task, the paper's default for other tasks."""

    num_samples: int | None = None
    replace_prob: float = 0.4
    top_k: int = 15
    mlm: str | None = None
    glove: str | None = None
    cache_dir: str | None = None
    seed: int = 0
    progress: bool = True


def no_augmentation(task):
    """The report's augmentation entry of a run without augmentation."""
    return {"enabled": False, "original_examples": len(task.train),
            "augmented_examples": len(task.train)}


def augment_train(task, sequence_length, options=AugmentOptions()):
    """(the augmented train `Split`, what augmentation did, for the report)."""
    import numpy as np
    from tinybert_tf import augment
    from tinybert_tf.tasks import Split
    o = options
    fields = dict(replace_prob=o.replace_prob, top_k=o.top_k, seed=o.seed,
                  progress=o.progress)
    if o.num_samples is not None:
        config = augment.AugmentConfig(num_samples=o.num_samples, **fields)
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
        text_a, text_b, train.labels, config, mlm=o.mlm, glove=o.glove,
        cache_dir=o.cache_dir or augment.default_cache_dir())
    augmented = Split(data.text_a, data.text_b,
                      np.asarray(data.labels, dtype=train.labels.dtype))
    info = {"enabled": True, "original_examples": len(train),
            "augmented_examples": len(augmented),
            "samples_per_example": config.num_samples,
            "replace_prob": config.replace_prob, "top_k": config.top_k,
            "masked_lm": o.mlm,
            "glove": o.glove or "GloVe 6B 50d (offline package)",
            "counts": data.counts}
    return augmented, info


def _first_words(text, count):
    words = text.split()
    return text if len(words) <= count else " ".join(words[:count])


# ------------------------------------------------------------ report

@dataclasses.dataclass(frozen=True)
class TeacherResult:
    model: object
    source: str
    status: str  # "fine-tuned", "reused" or "given"
    checkpoint: str
    scores: dict


@dataclasses.dataclass(frozen=True)
class StudentResult:
    model: object
    init: str
    checkpoint: str
    scores: dict
    best: object  # the step-2 `BestOnDev`
    intermediate_losses: dict | None = None
    # {"kind": "random", "cached general student" or "given checkpoint",
    #  "checkpoint": its directory or None}
    start: dict | None = None


@dataclasses.dataclass(frozen=True)
class TaskRun:
    """What a task-distillation run did (`task_report` makes report.json)."""

    task: object
    sequence_length: int
    teacher: TeacherResult
    student: StudentResult
    augmentation: dict
    baseline: BaselineResult | None = None
    wall_time_s: dict = dataclasses.field(default_factory=dict)
    arguments: dict = dataclasses.field(default_factory=dict)


def _ratio(numerator, denominator):
    if denominator == 0 or not math.isfinite(denominator):
        return None
    return numerator / denominator


def task_report(run):
    """The report.json dict of a `TaskRun`: metrics of teacher, student and
    baseline on every split, retention, parameters, wall times."""
    task, teacher, student = run.task, run.teacher, run.student
    primary = task.select_metric
    teacher_params = teacher.model.count_params()
    student_params = student.model.count_params()

    def retention(scores):
        return {name: _ratio(values[primary], teacher.scores[name][primary])
                for name, values in scores.items()}

    report = {
        "task": task.name,
        "label_names": task.label_names,
        "is_regression": task.is_regression,
        "metrics": list(task.reported_metrics),
        "primary_metric": primary,
        "sequence_length": run.sequence_length,
        "examples": {"train": len(task.train), "dev": len(task.dev),
                     "test": None if task.test is None else len(task.test),
                     **{k: len(v) for k, v in task.extra_dev.items()}},
        "teacher": {"source": str(teacher.source), "status": teacher.status,
                    "checkpoint": teacher.checkpoint,
                    "parameters": teacher_params,
                    "config": teacher.model.config.to_dict(),
                    **teacher.scores},
        "student": {"init": student.init, "start": student.start,
                    "checkpoint": student.checkpoint,
                    "parameters": student_params,
                    "config": student.model.config.to_dict(),
                    "best_dev_step": student.best.best_step,
                    "dev_history": student.best.history,
                    "intermediate_final_losses": student.intermediate_losses,
                    **student.scores},
        "retention": retention(student.scores),
        "parameter_ratio": student_params / teacher_params,
        "augmentation": run.augmentation,
        "baseline": None,
        "wall_time_s": run.wall_time_s,
        "arguments": run.arguments,
    }
    baseline = run.baseline
    if baseline is not None:
        report["baseline"] = {
            "init": student.init, "parameters": student_params,
            "train_data": baseline.train_data, "epochs": baseline.epochs,
            "best_dev_step": baseline.best_step, **baseline.scores,
            "retention": retention(baseline.scores)}
        report["distillation_gain"] = {
            name: student.scores[name][primary] - values[primary]
            for name, values in baseline.scores.items()}
    return report


def scores_line(scores, primary):
    """"dev accuracy 0.9, test accuracy 0.8": a metric on every split."""
    return ", ".join(f"{name} {primary} {values[primary]:.4f}"
                     for name, values in scores.items())


def retention_line(report):
    """One line of a report: teacher, student (retention) and baseline."""
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
