"""Strategy and precision set-up shared by the trainers.

Example:
>>> from tinybert_tf.distribute import make_strategy
>>> make_strategy("default").num_replicas_in_sync
1
"""

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


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
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def set_precision(name):
    """bfloat16 suits CPUs and TPUs; float16 (with loss scaling) suits GPUs."""
    if name not in PRECISIONS:
        raise ValueError(f"Unknown precision {name!r}; expected one of "
                         f"{PRECISIONS}.")
    keras.mixed_precision.set_global_policy(name)


def is_chief():
    """True unless TF_CONFIG names this process a non-chief worker."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if task.get("type") == "chief":
        return True
    if task.get("type") == "worker":
        return "chief" not in cluster and task.get("index", 0) == 0
    return not task
