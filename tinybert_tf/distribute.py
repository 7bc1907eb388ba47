"""Strategy and precision set-up shared by the trainers, and the few places
where distributed training needs more than Keras' public API.

Each Keras internal the project relies on sits in one function here, with the
reason, and `tests/test_distribute.py` fails if a Keras upgrade removes it.

Example:
>>> from tinybert_tf.distribute import make_strategy
>>> make_strategy("default").num_replicas_in_sync
1
"""

import contextlib
import json
import os

import keras
import tensorflow as tf

from tinybert_tf.choices import DISTRIBUTION_STRATEGIES, PRECISIONS


def make_strategy(name="default", tpu=None):
    """"default": one device; "mirrored": all local GPUs (or CPU);
    "multiworker": MultiWorkerMirroredStrategy from TF_CONFIG;
    "tpu": TPUStrategy on `tpu` (name or grpc address; "" = local)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multiworker' needs the TF_CONFIG "
                             "environment variable (cluster and task).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; expected one of "
                     f"{DISTRIBUTION_STRATEGIES}.")


def set_precision(name):
    """bfloat16 suits CPUs and TPUs; float16 (with loss scaling) suits GPUs."""
    if name not in PRECISIONS:
        raise ValueError(f"Unknown precision {name!r}; expected one of "
                         f"{PRECISIONS}.")
    keras.mixed_precision.set_global_policy(name)


def is_chief():
    """True unless TF_CONFIG names this process a non-chief worker."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task, cluster = config.get("task", {}), config.get("cluster", {})
    if task.get("type") == "chief":
        return True
    if task.get("type") == "worker":
        return "chief" not in cluster and task.get("index", 0) == 0
    return not task


def is_multi_worker(strategy):
    """Whether `strategy` spans more than one worker process."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(spec.get("chief", [])) + len(spec.get("worker", [])) > 1


def clip_gradients(gradients, optimizer):
    """`gradients` clipped as `optimizer`'s clipnorm (each tensor apart),
    global_clipnorm or clipvalue ask; None entries stay None."""
    present = [g for g in gradients if g is not None]
    if optimizer.global_clipnorm:
        present, _ = tf.clip_by_global_norm(present, optimizer.global_clipnorm)
    elif optimizer.clipnorm:
        present = [tf.clip_by_norm(g, optimizer.clipnorm) for g in present]
    elif optimizer.clipvalue:
        present = [tf.clip_by_value(g, -optimizer.clipvalue,
                                    optimizer.clipvalue) for g in present]
    clipped = iter(present)
    return [None if g is None else next(clipped) for g in gradients]


class BuiltBeforeFit:
    """Mixin for a `keras.Model` that builds all its variables (and its
    optimizer's) itself, before `fit`.

    Keras' TF trainer first MEAN-reduces an input batch across replicas to
    build a model symbolically, which fails on dict inputs under
    MultiWorkerMirroredStrategy (keras-team/keras#20329). This overrides that
    private hook, `_maybe_symbolic_build`, to skip it once everything is
    built; a test checks that Keras still calls the hook.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if not (self.built and self.optimizer is not None
                and self.optimizer.built):
            super()._maybe_symbolic_build(iterator, data_batch)


@contextlib.contextmanager
def unlocked_tracker(layer):
    """Lets a built Keras layer take new sub-layers and variables.

    Keras locks a layer's attribute tracker after `build`; there is no
    public way to add state later. Keras' own `Layer.quantize` unlocks its
    private `_tracker` the same way (fake quantization is added to built
    models).
    """
    tracker = layer._tracker
    locked = tracker.locked
    tracker.unlock()
    try:
        yield layer
    finally:
        if locked:
            tracker.lock()
