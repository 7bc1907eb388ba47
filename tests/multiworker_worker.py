"""One worker of the MultiWorkerMirroredStrategy test, and the tiny setup
shared by `tests/test_distribute.py` and `tests/test_callbacks.py`.

Run by the test, one process per worker:

    python tests/multiworker_worker.py TASK_INDEX PORT0,PORT1 OUTPUT_DIR

Each worker joins the localhost cluster (TF_CONFIG), distils for
`STEPS` steps on its shard of `dataset()`, and writes
`OUTPUT_DIR/initial.npz` (worker 0: the distiller's weights before training),
`OUTPUT_DIR/student_<index>.npz` (the student's weights after) and
`OUTPUT_DIR/logs_<index>.json` (fit and evaluate losses, steps run).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

GLOBAL_BATCH, LENGTH, VOCAB_SIZE, STEPS = 8, 8, 60, 3
SEED = 1


def tiny_distiller(seed=SEED):
    """Teacher 4x16, student 2x8, no dropout, seeded: reproducible."""
    import keras

    from tinybert_tf.backbone import BertBackbone
    from tinybert_tf.config import BertConfig
    from tinybert_tf.distiller import Distiller

    keras.utils.set_random_seed(seed)
    small = dict(vocab_size=VOCAB_SIZE, num_heads=2, intermediate_size=16,
                 hidden_dropout=0.0, attention_dropout=0.0)
    teacher = BertBackbone(BertConfig(hidden_size=16, num_layers=4, **small))
    student = BertBackbone(BertConfig(hidden_size=8, num_layers=2, **small))
    return Distiller(teacher, student)


def examples(count=GLOBAL_BATCH * STEPS):
    """Deterministic inputs with some padded rows."""
    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, VOCAB_SIZE, (count, LENGTH)).astype("int32")
    lengths = rng.integers(3, LENGTH + 1, count)
    padding_mask = (np.arange(LENGTH)[None] < lengths[:, None]).astype("int32")
    return {"token_ids": token_ids * padding_mask,
            "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask}


def dataset(count=GLOBAL_BATCH * STEPS):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(examples(count)).batch(GLOBAL_BATCH)


def optimizer():
    """SGD with a global clip small enough to be active at every step."""
    import keras

    return keras.optimizers.SGD(0.5, global_clipnorm=1e-2)


def main(index, ports, output_dir):
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"localhost:{port}" for port in ports]},
        "task": {"type": "worker", "index": index}})
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        distiller = tiny_distiller()
        # jit_compile=True fails with several CPU replicas (REFERENCE.md §3).
        distiller.compile(optimizer(), jit_compile=False)
    if index == 0:
        np.savez(os.path.join(output_dir, "initial.npz"),
                 *distiller.get_weights())
    history = distiller.fit(dataset(), epochs=1, shuffle=False,
                            verbose=0).history
    evaluation = distiller.evaluate(dataset(), verbose=0, return_dict=True)
    np.savez(os.path.join(output_dir, f"student_{index}.npz"),
             *[np.asarray(v.numpy()) for v in distiller.student.weights])
    with open(os.path.join(output_dir, f"logs_{index}.json"), "w") as f:
        json.dump({"fit_loss": float(history["loss"][-1]),
                   "evaluate_loss": float(evaluation["loss"]),
                   "steps": int(distiller.optimizer.iterations.numpy())}, f)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main(int(sys.argv[1]), [int(p) for p in sys.argv[2].split(",")], sys.argv[3])
