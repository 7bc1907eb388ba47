"""Training pieces of task distillation: tf.data inputs, best-on-dev
selection, fine-tuning on labels (teacher, baseline) and fitting a
`Distiller` with a learning-rate schedule (`TrainOptions`).

`tinybert_tf.task_distillation` strings them together; each piece also
works alone.

Example:
>>> import numpy as np
>>> from tinybert_tf.backbone import BertBackbone
>>> from tinybert_tf.config import BertConfig
>>> from tinybert_tf.heads import BertClassifier
>>> from tinybert_tf.tasks import Split
>>> from tinybert_tf.tokenizer import BertTextTokenizer
>>> from tinybert_tf import training
>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
>>> tokenizer = BertTextTokenizer(vocab, sequence_length=8)
>>> split = Split(["good good", "bad", "good", "bad bad"], None,
...               np.array([1, 0, 1, 0]))
>>> data = training.make_dataset(split, tokenizer, batch_size=2)
>>> model = BertClassifier(BertBackbone(BertConfig(vocab_size=7, hidden_size=8,
...     num_layers=1, num_heads=2, intermediate_size=16)), num_labels=2)
>>> dev = training.DevSet(data, split.labels, ("accuracy",))
>>> best = training.fine_tune(model, data, dev, training.TrainOptions(
...     epochs=1, learning_rate=1e-3), verbose=0)
>>> sorted(best.best_metrics)
['accuracy']
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tinybert_tf import metrics as metrics_lib
from tinybert_tf.optimizers import make_optimizer
from tinybert_tf.schedules import WarmupLinearDecay

_TOKENIZE_CHUNK = 256


def make_dataset(split, tokenizer, batch_size, shuffle=False, seed=0,
                 drop_remainder=False, bucketing=False, targets=None):
    """(inputs dict, label[, target]) batches of a `tasks.Split`, tokenized
    once.

    Text is tokenized in chunks by a batched `map`, cached, then (re)shuffled
    each epoch and batched. Labels are int32 class ids, or float32 values for
    regression. The dataset knows its length (Keras shows progress, and
    `fit` agrees with it). `drop_remainder` drops the last
    partial batch, as the official training loops do (they skip a batch
    smaller than the batch size).

    `bucketing`: each batch is cut to its longest member, rounded up to a
    multiple of `BUCKET_STEP` (a few shapes: few retracings). Shuffled
    batches are then made of examples of similar length: each window of
    `BUCKET_WINDOW` batches of the shuffled data is sorted by length, cut
    into batches, and the batches are shuffled. Unshuffled batches keep the
    examples' order (predictions line up with the labels).
    `targets`: an array with one row per example (e.g. a teacher's logits),
    delivered as the third element of each batch.
    """
    labels = np.asarray(split.labels)
    labels = labels.astype("float32" if labels.dtype.kind == "f" else "int32")
    texts = (tf.constant(split.text_a, tf.string),)
    if split.text_b is not None:
        texts += (tf.constant(split.text_b, tf.string),)
    rest = (labels,) if targets is None else (
        labels, np.asarray(targets, np.float32))
    dataset = tf.data.Dataset.from_tensor_slices((texts, *rest))
    dataset = dataset.batch(_TOKENIZE_CHUNK).map(
        lambda text, *rest: (tokenizer(*text), *rest),
        num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(split)))
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(split), seed=seed,
                                  reshuffle_each_iteration=True)
    if bucketing and shuffle:
        dataset = _length_sorted_batches(dataset, len(split), batch_size,
                                         drop_remainder, seed)
    else:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if bucketing:
        dataset = dataset.map(_cut_padding, num_parallel_calls=tf.data.AUTOTUNE)
    return without_autotuner(dataset.prefetch(tf.data.AUTOTUNE))


def without_autotuner(dataset):
    """`dataset` without tf.data's autotuning thread.

    Destroying an iterator (`fit` makes one per epoch; Python may collect
    an old one at any step) waits for that thread to end, and the thread
    can first sleep out its period, up to a minute, with nothing running:
    3 to 4 waits of 15 to 60 s in one task distillation on 2 cores
    (docs/speed.md). Our pipelines read cached, tokenized batches: there
    is little for it to tune.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


BUCKET_STEP = 16
BUCKET_WINDOW = 32


def _length_sorted_batches(dataset, size, batch_size, drop_remainder, seed):
    def sorted_batches(inputs, *rest):
        order = tf.argsort(tf.reduce_sum(inputs["padding_mask"], axis=1),
                           stable=True)
        window = tf.nest.map_structure(lambda x: tf.gather(x, order),
                                       (inputs, *rest))
        return tf.data.Dataset.from_tensor_slices(window).batch(batch_size)

    dataset = dataset.batch(batch_size * BUCKET_WINDOW).flat_map(sorted_batches)
    # Only the last window ends with a partial batch.
    batches = -(-size // batch_size)
    if drop_remainder:
        dataset = dataset.filter(
            lambda inputs, *rest: tf.shape(inputs["token_ids"])[0] == batch_size)
        batches = size // batch_size
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.shuffle(BUCKET_WINDOW, seed=seed,
                           reshuffle_each_iteration=True)


def _cut_padding(inputs, *rest):
    full = tf.shape(inputs["token_ids"])[1]
    longest = tf.reduce_max(tf.reduce_sum(inputs["padding_mask"], axis=1))
    length = tf.minimum(-(-longest // BUCKET_STEP) * BUCKET_STEP, full)
    return ({name: value[:, :length] for name, value in inputs.items()},
            *rest)


def predict(model, dataset):
    """The model's outputs (logits) over `dataset`, as float32 numpy."""
    return np.asarray(model.predict(dataset, verbose=0), dtype=np.float32)


def evaluate(model, dataset, labels, metric_names):
    """`{metric: value}` of `model` on an unshuffled `dataset` with `labels`."""
    return metrics_lib.compute_metrics(metric_names, predict(model, dataset),
                                       labels)


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """One training's epochs, learning-rate schedule and optimizer.

    `warmup_fraction=0, decay=False` is a constant learning rate (TinyBERT's
    step 1); `warmup_fraction=0.1, decay=True` its step 2 and BERT
    fine-tuning. `optimizer`, `clip_mode`: see `tinybert_tf.optimizers`
    ("bertadam", "per_tensor": the official code's).
    """

    epochs: int
    learning_rate: float
    warmup_fraction: float = 0.1
    decay: bool = True
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    clip_mode: str = "global"

    def make_optimizer(self, train):
        """The optimizer of a fit on `train` (a dataset of known length)."""
        total = int(train.cardinality()) * self.epochs
        schedule = WarmupLinearDecay(self.learning_rate, total,
                                     int(self.warmup_fraction * total),
                                     decay=self.decay)
        return make_optimizer(schedule, self.optimizer, self.weight_decay,
                              self.clip_norm, self.clip_mode)


@dataclasses.dataclass(frozen=True)
class DevSet:
    """What best-on-dev selection evaluates: an unshuffled dataset, its
    labels, the metrics to report and the one that selects (default: the
    first of `metric_names`; it is computed too when not among them)."""

    dataset: object
    labels: np.ndarray
    metric_names: tuple = ("accuracy",)
    select_metric: str | None = None


class BestOnDev(keras.callbacks.Callback):
    """Evaluates a model on a `DevSet` and keeps its best weights.

    The model evaluated (`model`) need not be the one being fit: distillation
    fits a `Distiller` and evaluates its student. Evaluation runs every
    `every_steps` training steps (0: at the end of each epoch) and after the
    last step; then the best weights (the first best on ties) are put back.
    The best is the highest `dev.select_metric`.

    Attributes after training: `best_metrics`, `best_step`, `history` (a list
    of `{"step", **metrics}`).
    """

    def __init__(self, model, dev, every_steps=0, verbose=1, name="dev"):
        super().__init__()
        self.evaluated_model = model
        self.dataset = dev.dataset
        self.labels = dev.labels
        self.primary = (dev.select_metric
                        or metrics_lib.primary_metric(dev.metric_names))
        self.metric_names = metrics_lib.with_metric(dev.metric_names,
                                                    self.primary)
        self.every_steps = every_steps
        self.verbose = verbose
        self.name = name
        self.best_metrics = None
        self.best_step = None
        self.history = []
        self._best_weights = None
        self._step = 0
        self._evaluated_at = None

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.every_steps and self._step % self.every_steps == 0:
            self._evaluate()

    def on_epoch_end(self, epoch, logs=None):
        if not self.every_steps:
            self._evaluate()

    def on_train_end(self, logs=None):
        if self._evaluated_at != self._step:
            self._evaluate()
        if self._best_weights is not None:
            self.evaluated_model.set_weights(self._best_weights)

    def _evaluate(self):
        values = evaluate(self.evaluated_model, self.dataset, self.labels,
                          self.metric_names)
        self._evaluated_at = self._step
        self.history.append({"step": self._step, **values})
        improved = (self.best_metrics is None
                    or values[self.primary] > self.best_metrics[self.primary])
        if improved:
            self.best_metrics, self.best_step = values, self._step
            self._best_weights = self.evaluated_model.get_weights()
        if self.verbose:
            mark = " (best)" if improved else ""
            print(f"  step {self._step}: {self.name} {self.primary} "
                  f"{values[self.primary]:.4f}{mark}", flush=True)


def task_loss(num_labels):
    """Cross-entropy on logits, or MSE for regression (`num_labels == 1`)."""
    if num_labels == 1:
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def fine_tune(model, train, dev, options, eval_every=0, verbose=1, name="dev",
              callbacks=()):
    """BERT fine-tuning of a `BertClassifier` on gold labels, best on `dev`
    (a `DevSet`) kept.

    `options` (`TrainOptions`): warm-up and linear decay by default; `model`
    ends with the weights that scored best on dev. Returns the `BestOnDev`
    callback (its `best_metrics`, `best_step`, `history`).
    """
    if not model.built:
        from tinybert_tf.backbone import dummy_inputs
        model(dummy_inputs())
    model.compile(optimizer=options.make_optimizer(train),
                  loss=task_loss(model.num_labels))
    # Built here, outside any replica context (tf.distribute needs it).
    model.optimizer.build(model.trainable_variables)
    best = BestOnDev(model, dev, eval_every, verbose=verbose, name=name)
    model.fit(train, epochs=options.epochs, callbacks=[best, *callbacks],
              shuffle=False, verbose=_fit_verbose(verbose))
    return best


def distill(distiller, train, options, callbacks=(), verbose=1):
    """Fits a `Distiller` (either stage) as `options` (`TrainOptions`) say;
    returns the Keras history."""
    distiller.compile(optimizer=options.make_optimizer(train))
    return distiller.fit(train, epochs=options.epochs,
                         callbacks=list(callbacks), shuffle=False,
                         verbose=_fit_verbose(verbose))


def _fit_verbose(verbose):
    # One line per epoch: readable in logs and on a terminal alike.
    return 2 if verbose else 0
