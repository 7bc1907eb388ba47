"""The names a flag or an option may take, in a module that imports nothing.

The command lines build their `choices=` from here while they parse, before
TensorFlow is imported (`--help` answers at once); the modules that check
an option import the same tuple from here (one definition each).
"""

# tinybert_tf.optimizers
OPTIMIZERS = ("adamw", "bertadam")
CLIP_MODES = ("global", "per_tensor")

# tinybert_tf.distribute
DISTRIBUTION_STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

# tinybert_tf.distiller: what a regression student's prediction layer learns.
REGRESSION_TARGETS = ("teacher", "labels")

# tinybert_tf.heads
CLASSIFIER_HEADS = ("linear", "tanh_relu")
POOLINGS = ("cls", "mean")

# tinybert_tf.metrics
CLASSIFICATION_METRICS = ("accuracy", "f1", "matthews")
REGRESSION_METRICS = ("pearson", "spearman", "corr")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS

# tinybert_tf.augment.config
MLM_INPUTS = ("pair", "masked")
DTYPES = ("float32", "bfloat16")
